"""Backends that answer what was not asked: every reply is checked before the user sees it, and
a wrong one is a ProtocolError naming the field, never a plausible wrong answer."""

from __future__ import annotations

import base64
import json
import os
import sys
from typing import Any

import numpy as np
import pytest

from qibo_core import PROTOCOL_VERSION, Circuit, Handle, ProtocolError, gates
from qibo_core.client.spawned import ProcessTransport

LIAR = """
import json, sys
ANSWERS = json.loads(sys.argv[1])
for line in sys.stdin:
    request = json.loads(line)
    method = request.get("method")
    if method == "initialize":
        result = {"protocolVersion": request["params"]["protocolVersion"],
                  "serverInfo": {"name": "liar", "version": "0"},
                  "capabilities": {"gates": ["H", "CNOT"], "nativeGates": [], "maxQubits": 4,
                                   "precisions": ["complex128"], "stateEncodings": ["base64"],
                                   "threads": 1, "devices": ["CPU"],
                                   "features": ["samples", "densityMatrix", "expectation",
                                                "initialState"]}}
        result.update(ANSWERS.get("initialize", {}))
    else:
        result = ANSWERS.get(method)
    if "id" in request:
        print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}), flush=True)
"""


def liar(**answers: Any) -> Handle:
    """A backend that answers `answers[method]` to each method (null to the others)."""
    answers = {k.replace("_", "/"): v for k, v in answers.items()}
    return Handle(ProcessTransport([sys.executable, "-c", LIAR, json.dumps(answers)], name="liar"))


def array(values: Any, dtype: str) -> dict[str, Any]:
    data = np.asarray(values, dtype=dtype)
    return {"dtype": dtype, "shape": list(data.shape),
            "data": base64.b64encode(data.tobytes()).decode()}


def bell(density: bool = False) -> Circuit:
    c = Circuit(2, density_matrix=density)
    c.add([gates.H(0), gates.CNOT(0, 1), gates.M(0, 1)])
    return c


def test_samples_of_the_wrong_shape() -> None:
    samples = array(np.full((3, 7), 9), "uint8")
    with liar(execute={"state": 1, "frequencies": {"00": 10}, "samples": samples}) as handle:
        with pytest.raises(ProtocolError, match=r"samples of shape \[3, 7\] \(expected \[10, 2\]"):
            handle.execute(bell(), nshots=10, samples=True)


def test_samples_that_are_not_bits() -> None:
    samples = array(np.full((10, 2), 9), "uint8")
    with liar(execute={"state": 1, "frequencies": {"00": 10}, "samples": samples}) as handle:
        with pytest.raises(ProtocolError, match="samples holding 9"):
            handle.execute(bell(), nshots=10, samples=True)


def test_samples_asked_for_and_left_out() -> None:
    with liar(execute={"state": 1, "frequencies": {"00": 10}}) as handle:
        with pytest.raises(ProtocolError, match="no 'samples' for 10 shots"):
            handle.execute(bell(), nshots=10, samples=True)


@pytest.mark.parametrize("frequencies, message", [
    ({"00": 7}, "adding up to 7 shots, not 10"),
    ({"000": 10}, "'000': 10 for outcomes of 2 bits"),
    ({"0x": 10}, "'0x'"),
    ({"00": 12, "11": -2}, "-2"),
    (None, "no 'frequencies' for 10 shots"),
])
def test_frequencies_that_are_not_the_shots(frequencies: Any, message: str) -> None:
    with liar(execute={"state": 1, "frequencies": frequencies}) as handle:
        with pytest.raises(ProtocolError, match=message):
            handle.execute(bell(), nshots=10)


@pytest.mark.parametrize("amplitudes, message", [
    ([1, 0, 0], r"a state of shape \[3\] for 1 qubits \(expected \[2\]\)"),
    ([1, 1], "a state of norm 1.41421, not 1"),
    ([np.nan, 0], "norm nan"),
])
def test_states_that_are_not_the_state(amplitudes: list[float], message: str) -> None:
    with liar(state_new={"state": 1}, state_read=array(amplitudes, "complex128")) as handle:
        with pytest.raises(ProtocolError, match=message):
            handle.new_state(1).read()


@pytest.mark.parametrize("rho, message", [
    ([[0.5, 5], [5, 0.5]], "not positive semidefinite"),
    ([[0.5, 1j], [0, 0.5]], "not Hermitian"),
    ([[1, 0], [0, 1]], "trace 2"),
])
def test_density_matrices_that_are_not_one(rho: list[list[complex]], message: str) -> None:
    c = Circuit(1, density_matrix=True)
    c.add(gates.H(0))
    plus = array([[0.5, 0.5], [0.5, 0.5]], "complex128")
    with liar(execute={"state": 1, "amplitudes": array(rho, "complex128")}) as handle:
        with pytest.raises(ProtocolError, match=message):
            handle.execute(c)  # answered inline
    with liar(execute={"state": 1, "amplitudes": plus},
              state_read=array(rho, "complex128")) as handle:
        with pytest.raises(ProtocolError, match=message):
            handle.execute(c).final_state.read()


@pytest.mark.parametrize("probabilities, message", [
    ([0.5, 0.5, -3, 7], "not a distribution"),
    ([0.5, 0.5, 0, np.nan], "not a distribution"),
    ([0.25, 0.25], r"probabilities of shape \[2\] \(expected \[4\]\)"),
])
def test_probabilities_that_are_not_a_distribution(probabilities: list[float],
                                                  message: str) -> None:
    with liar(state_new={"state": 1}, state_probabilities=array(probabilities, "float64")) \
            as handle:
        with pytest.raises(ProtocolError, match=message):
            handle.new_state(2).probabilities()


def test_an_expectation_value_no_observable_has() -> None:
    with liar(state_new={"state": 1}, state_expectation=1e300) as handle:
        with pytest.raises(ProtocolError, match="whose values lie within"):
            handle.new_state(2).expectation("Z0 + 0.5 X1")


def test_expectation_values_for_other_sets() -> None:
    c = Circuit(1)
    c.add(gates.RX(0, 0.1))
    with liar(circuit_prepare={"circuit": 1}, circuit_expectation=array([0.1, 0.2], "float64")
              ) as handle:
        with pytest.raises(ProtocolError, match=r"\[2\] expectation values for 1 sets"):
            handle.expectation(c, "Z0")


@pytest.mark.parametrize("initialize, message", [
    ({"protocolVersion": 1}, f"protocol version 1 when version {PROTOCOL_VERSION} was asked for"),
    ({"protocolVersion": PROTOCOL_VERSION + 1},
     f"protocol version {PROTOCOL_VERSION + 1} when version {PROTOCOL_VERSION} was asked for"),
])
def test_an_answer_to_another_version(initialize: dict[str, Any], message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        liar(initialize=initialize)


def test_an_empty_list_of_devices() -> None:
    capabilities = {"gates": [], "nativeGates": [], "maxQubits": 2, "threads": 1,
                    "precisions": ["complex128"], "stateEncodings": ["base64"], "devices": []}
    with pytest.raises(ProtocolError, match="an empty 'devices' list"):
        liar(initialize={"capabilities": capabilities})


def test_a_left_out_samples_segment_is_released() -> None:
    """Each call asking for samples in a segment gives the segment back when none came."""
    program = LIAR.replace('"stateEncodings": ["base64"]', '"stateEncodings": ["base64", "shm"]')
    program = program.replace("    else:\n", '    elif method == "shm/attach":\n'
                              '        result = {"segment": 1}\n    else:\n')
    answers = {"execute": {"state": 1, "frequencies": {"00": 2**15}}}
    c = bell()
    with Handle(ProcessTransport([sys.executable, "-c", program, json.dumps(answers)],
                               name="liar")) as handle:
        descriptors = None
        for _ in range(20):
            with pytest.raises(ProtocolError, match="no 'samples'"):
                handle.execute(c, nshots=2**15, samples=True)
            count = len(os.listdir("/proc/self/fd"))
            descriptors = descriptors or count
        assert count <= descriptors
