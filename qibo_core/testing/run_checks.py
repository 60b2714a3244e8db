"""Version 4's runs (4.1, 4.12): `execute` answering its final state inline (`read`), holding
none (`keep`), running a prepared circuit with one set of values (`prepared`, `parameters`),
and `execute/many`. What a state must be is the kit's own (dense.py) or what the backend's
state/read answers for the same state."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..protocol import RUNS_SINCE, ErrorCode, Feature
from . import dense
from .base_checks import BELL
from .checks import kit_check
from .exchange import Exchange, decoded, frequencies
from .report import CheckFailed

RY_CIRCUIT = {"nqubits": 2, "gates": [{"name": "RY", "qubits": [0], "params": {"theta": 0.0}},
                                      {"name": "CNOT", "qubits": [0, 1]}]}
RY_SLOTS = [{"gate": 0, "param": "theta", "parameter": 0}]


def _ry_bell(theta: float) -> np.ndarray:
    return dense.circuit([(dense.ry(theta), [0]), (dense.CNOT, [0, 1])], 2)[:, 0]


def _amplitudes(result: dict[str, Any], shape: list[int], what: str) -> np.ndarray:
    return decoded(result.get("amplitudes"), "complex128", shape, f"§4.1 {what}")


@kit_check("4.1", "read answers the final state inline, as state/read does", since=RUNS_SINCE)
def _read(s: Exchange) -> None:
    s.initialize()
    result = s.object("execute", {"circuit": BELL, "read": True})
    inline = _amplitudes(result, [4], "execute with read")
    if not isinstance(result.get("state"), int):
        raise CheckFailed(f"§4.1: execute with read (keep by default) answered the state id "
                          f"{result.get('state')!r}")
    if not np.allclose(inline, [2**-0.5, 0, 0, 2**-0.5], atol=1e-8):
        raise CheckFailed(f"§4.1: execute with read answered {inline} for a Bell state")
    if not np.array_equal(inline, s.read(result["state"], [4])):
        raise CheckFailed("§4.1: the amplitudes answered inline differ from state/read's")
    if Feature.DENSITY_MATRIX in s.features:
        result = s.object("execute", {"circuit": {**BELL, "densityMatrix": True}, "read": True})
        rho = _amplitudes(result, [4, 4], "execute with read of a density matrix")
        bell = np.array([2**-0.5, 0, 0, 2**-0.5])
        if not np.allclose(rho, np.outer(bell, bell), atol=1e-8):
            raise CheckFailed(f"§4.1: a Bell density matrix read inline is {rho}")


@kit_check("4.1", "keep false holds no state; its shots are answered", since=RUNS_SINCE)
def _keep(s: Exchange) -> None:
    s.initialize()
    result = s.object("execute", {"circuit": BELL, "nshots": 50, "seed": 1, "keep": False})
    if "state" in result and result["state"] is not None:
        raise CheckFailed(f"§4.1: execute with keep false answered the state id "
                          f"{result['state']!r}; it holds none")
    counts = frequencies(result, 50, 2, "§4.1 execute with keep false")
    if not set(counts) <= {"00", "11"}:
        raise CheckFailed(f"§4.1: a Bell circuit's frequencies are {counts}")


@kit_check("4.1", "prepared runs a prepared circuit with its values; misuse is refused",
           since=RUNS_SINCE, features=(Feature.EXPECTATION,))
def _prepared(s: Exchange) -> None:
    s.initialize()
    prepared = s.object("circuit/prepare", {"circuit": RY_CIRCUIT, "slots": RY_SLOTS,
                                            "parameters": 1}).get("circuit")
    if not isinstance(prepared, int):
        raise CheckFailed(f"§4.11: circuit/prepare answered the id {prepared!r}")
    for theta in (0.4, -2.2):
        result = s.object("execute", {"prepared": prepared, "parameters": [theta],
                                      "read": True, "keep": False})
        state = _amplitudes(result, [4], "execute of a prepared circuit")
        if not np.allclose(state, _ry_bell(theta), atol=1e-8):
            raise CheckFailed(f"§4.1: the prepared RY({theta}), CNOT gave {state}, not "
                              f"{_ry_bell(theta)}")
    for params, rule in (
            ({"prepared": prepared, "parameters": [0.1], "circuit": RY_CIRCUIT},
             "§4.1 both circuit and prepared"),
            ({"nshots": 0}, "§4.1 neither circuit nor prepared"),
            ({"prepared": prepared, "parameters": [0.1, 0.2]}, "§4.1 parameters of another "
                                                               "length"),
            ({"prepared": prepared + 1000, "parameters": [0.1]}, "§4.1 an unknown prepared id")):
        s.error("execute", params, ErrorCode.INVALID_PARAMS, rule)


@kit_check("4.12", "execute/many answers every run in order, as execute would",
           since=RUNS_SINCE)
def _many(s: Exchange) -> None:
    s.initialize()
    flip = {"nqubits": 1, "gates": [{"name": "X", "qubits": [0]}],
            "measurements": [{"qubits": [0]}]}
    runs = [{"circuit": BELL, "nshots": 40, "seed": 5, "keep": False},
            {"circuit": flip, "read": True, "keep": False},
            {"circuit": flip, "nshots": 7, "keep": False},
            {"circuit": BELL, "nshots": 40, "seed": 5, "keep": False}]
    results = s.object("execute/many", {"runs": runs}).get("results")
    if not isinstance(results, list) or len(results) != len(runs) or \
            not all(isinstance(r, dict) for r in results):
        raise CheckFailed(f"§4.12: execute/many of {len(runs)} runs answered results "
                          f"{results!r}")
    first = frequencies(results[0], 40, 2, "§4.12 run 0")
    if not set(first) <= {"00", "11"} or results[3].get("frequencies") != first:
        raise CheckFailed(f"§4.12: runs 0 and 3 (a Bell circuit, the same seed) answered "
                          f"{first} and {results[3].get('frequencies')}")
    if not np.allclose(_amplitudes(results[1], [2], "run 1"), [0, 1], atol=1e-8):
        raise CheckFailed(f"§4.12: run 1 (X) read {results[1].get('amplitudes')}")
    if frequencies(results[2], 7, 1, "§4.12 run 2") != {"1": 7}:
        raise CheckFailed(f"§4.12: run 2 (X, 7 shots) counted {results[2]['frequencies']}")


@kit_check("4.12", "a failed run of execute/many is named in its error", since=RUNS_SINCE)
def _many_fails(s: Exchange) -> None:
    s.initialize()
    bad = {"nqubits": 1, "gates": [{"name": "NOPE", "qubits": [0]}]}
    reply = s.error("execute/many", {"runs": [{"circuit": BELL}, {"circuit": bad}]},
                    ErrorCode.INVALID_PARAMS, "§4.12 a run with an unknown gate")
    error = reply["error"]
    data = error.get("data")
    if not str(error.get("message", "")).startswith("run 1: ") or \
            not isinstance(data, dict) or data.get("run") != 1:
        raise CheckFailed(f"§4.12: the error of run 1 is {error}: its message starts 'run 1: ' "
                          "and its data carries \"run\": 1")
    s.result("state/new", {"nqubits": 1})  # still serving
