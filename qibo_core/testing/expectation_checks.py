"""Prepared circuits and expectation values (4.11; version 3, feature "expectation"). What a
value must be is computed by the kit from the state the backend itself reads back (state/read)
or from section 7's matrices, so that a wrong Pauli factor is told from a wrong gate."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..protocol import ErrorCode, Feature
from . import dense
from .checks import kit_check
from .density_checks import DAMPING, channel
from .exchange import Exchange, array, decoded
from .report import CheckFailed

EXPECTATION = (Feature.EXPECTATION,)
TERMS = ["X0", "Y0", "Z0", "X1", "Y1", "Z1", "X2", "Y2", "Z2", "Y0 X2", "Z0 Y1", "X0 Y1 Z2",
         "Y0 Y2", "Y1 X2"]
"""Every factor on every qubit of three, and products: none symmetric under reversing qubits."""
GENERIC = [("RY", 0, 0.7), ("RY", 1, 1.9), ("RY", 2, -0.4), ("CNOT", 0, 1), ("CNOT", 1, 2),
           ("RX", 0, 0.5), ("RX", 1, -1.2), ("RZ", 2, 0.8), ("RX", 2, 0.3)]
"""Gates that make a 3-qubit state with complex amplitudes and no symmetry."""


def term(pauli: str, coefficient: float = 1.0) -> dict[str, Any]:
    return {"coefficient": coefficient, "pauli": pauli}


def value(s: Exchange, state: int, observable: list[dict[str, Any]]) -> float:
    answer = s.result("state/expectation", {"state": state, "observable": observable})
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        raise CheckFailed(f"§4.11: state/expectation answered {answer!r}, not a number")
    return float(answer)


def _diagnosis(actual: float, state: np.ndarray, text: str) -> str:
    """What a wrong value matches, when it matches a usual mistake."""
    n = state.shape[0].bit_length() - 1
    if text.count("Y") % 2 and abs(actual + dense.expectation(state, text)) < 1e-8:
        return "; it matches Y with the opposite sign (Y = [[0, -i], [i, 0]])"
    if state.ndim == 2 and abs(actual - dense.expectation(state.T, text)) < 1e-8:
        return "; it matches the density matrix transposed"
    mirrored = " ".join(f"{f[0]}{n - 1 - int(f[1:])}" for f in text.split())
    if abs(actual - dense.expectation(state, mirrored)) < 1e-8:
        return (f"; it matches {mirrored!r}: a factor on qubit q was applied to qubit n-1-q "
                "(qubit 0 is the most significant bit)")
    return ""


def _each_term(s: Exchange, state: int, read: np.ndarray, what: str) -> None:
    """state/expectation of every term of TERMS alone, and of their sum, against the kit's."""
    for text in TERMS:
        actual, expected = value(s, state, [term(text)]), dense.expectation(read, text)
        if abs(actual - expected) > 1e-8:
            raise CheckFailed(f"§4.11: <{text}> on {what} is {actual:.10f}; the state read back "
                              f"gives {expected:.10f}{_diagnosis(actual, read, text)}")
    weights = np.linspace(-1, 1, len(TERMS))
    total = value(s, state, [term(t, float(w)) for t, w in zip(TERMS, weights, strict=True)])
    expected = sum(w * dense.expectation(read, t) for t, w in zip(TERMS, weights, strict=True))
    if abs(total - expected) > 1e-8:
        raise CheckFailed(f"§4.11: a weighted sum of terms on {what} is {total:.10f}, not the "
                          f"sum of its terms' values {expected:.10f}")


@kit_check("4.11", "state/expectation of every Pauli factor, on every qubit, of a state vector",
           since=3, features=EXPECTATION)
def _pauli_factors(s: Exchange) -> None:
    s.initialize()
    gates = [{"name": name, "qubits": [a, b]} if name == "CNOT" else
             {"name": name, "qubits": [a], "params": {"theta": b}} for name, a, b in GENERIC]
    state = s.state({"circuit": {"nqubits": 3, "gates": gates}})
    _each_term(s, state, s.read(state, [8]), "a generic 3-qubit state")


@kit_check("4.11", "state/expectation on a density matrix is Tr(P rho)", since=3,
           features=(Feature.EXPECTATION, Feature.DENSITY_MATRIX))
def _density_terms(s: Exchange) -> None:
    s.initialize()
    gates: list[dict[str, Any]] = [
        {"name": name, "qubits": [a, b]} if name == "CNOT" else
        {"name": name, "qubits": [a], "params": {"theta": b}} for name, a, b in GENERIC]
    if Feature.CHANNELS in s.features:
        gates.append(channel([1], DAMPING))
    state = s.state({"circuit": {"nqubits": 3, "densityMatrix": True, "gates": gates}})
    _each_term(s, state, s.read(state, [8, 8]), "a 3-qubit density matrix")


def _bell_rx(a: float, b: float) -> np.ndarray:
    """RY(a) on qubit 0, CNOT(0, 1), RX(b) on qubit 1, from |00>."""
    return dense.circuit([(dense.ry(a), [0]), (dense.CNOT, [0, 1]), (dense.rx(b), [1])], 2)[:, 0]


PREPARED_GATES: list[dict[str, Any]] = [{"name": "RY", "qubits": [0], "params": {"theta": 0.0}},
                  {"name": "CNOT", "qubits": [0, 1]},
                  {"name": "RX", "qubits": [1], "params": {"theta": 0.0}}]
SLOTS: list[dict[str, Any]] = [{"gate": 0, "param": "theta", "parameter": 0},
         {"gate": 2, "param": "theta", "parameter": 1}]
OBSERVABLE = [term("Z0 Z1"), term("X1", 0.5), term("Y0 Y1", -0.3), term("Y1", 0.7),
              term("X0 Z1", 0.4), term("", -0.2)]
SETS = np.array([[0.3, 0.5], [1.1, -0.4], [-2.0, 2.5]])


def _expected(states: list[np.ndarray]) -> list[float]:
    return [sum(t["coefficient"] * dense.expectation(rho, t["pauli"]) for t in OBSERVABLE)
            for rho in states]


def _values(s: Exchange, circuit_id: int, sets: np.ndarray) -> np.ndarray:
    answer = s.result("circuit/expectation", {"circuit": circuit_id,
                                              "parameters": array(sets, "float64"),
                                              "observable": OBSERVABLE})
    return decoded(answer, "float64", [len(sets)], "§4.11 circuit/expectation")


@kit_check("4.11", "prepared circuits: a value per set, bad slots and params refused, freed once",
           since=3, features=EXPECTATION)
def _prepared(s: Exchange) -> None:
    s.initialize()
    circuit = {"nqubits": 2, "gates": PREPARED_GATES, "measurements": [{"qubits": [0, 1]}]}
    for bad in ({**SLOTS[0], "gate": 7}, {**SLOTS[0], "param": "phi"},
                {**SLOTS[0], "parameter": 2}):
        s.error("circuit/prepare", {"circuit": circuit, "slots": [bad], "parameters": 2},
                ErrorCode.INVALID_PARAMS, f"§4.11 the slot {bad}")
    prepared = s.object("circuit/prepare", {"circuit": circuit, "slots": SLOTS,
                                            "parameters": 2})["circuit"]
    values = _values(s, prepared, SETS)
    expected = _expected([_bell_rx(a, b) for a, b in SETS])
    if not np.allclose(values, expected, atol=1e-8):
        raise CheckFailed(f"§4.11: expectation values {values.tolist()}, expected {expected} "
                          "(closing measurements are ignored)")
    for bad_params in ({"parameters": array(SETS[:, :1], "float64")},
                       {"observable": [term("Z5")]}, {"observable": [term("Q0")]},
                       {"circuit": prepared + 1000}):
        s.error("circuit/expectation", {"circuit": prepared, "parameters": array(SETS, "float64"),
                                        "observable": OBSERVABLE, **bad_params},
                ErrorCode.INVALID_PARAMS, f"§4.11 {list(bad_params)[0]} {bad_params}")
    s.result("circuit/free", {"circuit": prepared})
    s.error("circuit/free", {"circuit": prepared}, ErrorCode.INVALID_PARAMS,
            "§4.11 a circuit freed already")


@kit_check("4.11", "each prepared circuit has an id of its own", since=3, features=EXPECTATION)
def _distinct(s: Exchange) -> None:
    s.initialize()
    one = {"circuit": {"nqubits": 2, "gates": [PREPARED_GATES[0]]},
           "slots": [SLOTS[0]], "parameters": 1}
    other = {"circuit": {"nqubits": 2, "gates": [{**PREPARED_GATES[2], "qubits": [0]},
                                                 {"name": "X", "qubits": [1]}]},
             "slots": [{**SLOTS[1], "gate": 0, "parameter": 0}], "parameters": 1}
    first = s.object("circuit/prepare", one)["circuit"]
    second = s.object("circuit/prepare", other)["circuit"]
    if first == second:
        raise CheckFailed(f"§4.11: two different circuits were both prepared as {first}")
    theta = np.array([[0.6]])
    z = [term("Z0"), term("Z1")]
    for circuit_id, expected in ((first, np.cos(0.6) + 1), (second, np.cos(0.6) - 1)):
        answer = s.result("circuit/expectation", {"circuit": circuit_id, "observable": z,
                                                  "parameters": array(theta, "float64")})
        got = decoded(answer, "float64", [1], "§4.11 circuit/expectation")[0]
        if abs(got - expected) > 1e-8:
            raise CheckFailed(f"§4.11: prepared circuit {circuit_id} gives <Z0 + Z1> = {got}, "
                              f"not {expected} (the value of the other circuit?)")
    s.result("circuit/free", {"circuit": first})
    s.result("circuit/expectation", {"circuit": second, "observable": z,
                                     "parameters": array(theta, "float64")})


@kit_check("4.11", "a prepared density matrix: values are Tr(P rho) with channels exact",
           since=3, features=(Feature.EXPECTATION, Feature.DENSITY_MATRIX))
def _prepared_density(s: Exchange) -> None:
    s.initialize()
    gates: list[dict[str, Any]] = list(PREPARED_GATES)
    noisy = Feature.CHANNELS in s.features
    if noisy:
        gates.append(channel([1], DAMPING))
    prepared = s.object("circuit/prepare", {
        "circuit": {"nqubits": 2, "densityMatrix": True, "gates": gates},
        "slots": SLOTS, "parameters": 2})["circuit"]
    values = _values(s, prepared, SETS)
    states = []
    for a, b in SETS:
        psi = _bell_rx(a, b)
        rho = np.outer(psi, psi.conj())
        if noisy:
            rho = sum(dense.full(k, [1], 2) @ rho @ dense.full(k, [1], 2).conj().T
                      for k in DAMPING)
        states.append(rho)
    expected = _expected(states)
    if not np.allclose(values, expected, atol=1e-8):
        raise CheckFailed(f"§4.11: a prepared density matrix gives {values.tolist()}, expected "
                          f"{expected}")


@kit_check("4.11", "observables: real coefficients, well-formed strings, qubits once and inside",
           since=3, features=EXPECTATION)
def _observables(s: Exchange) -> None:
    s.initialize()
    state = s.state({"circuit": {"nqubits": 2, "gates": [
        {"name": "H", "qubits": [0]}, {"name": "RX", "qubits": [1], "params": {"theta": 0.9}}]}})
    for observable, what in (
            ([{"coefficient": [1.0, 0.5], "pauli": "Z0"}], "a complex coefficient [1, 0.5]"),
            ([{"coefficient": "1", "pauli": "Z0"}], "a coefficient that is text"),
            ([], "an empty observable"), ([term("Z00")], "'Z00' (a leading zero)"),
            ([term("Z\u0661")], "an Arabic-Indic digit"), ([term("I5")], "I5 on 2 qubits"),
            ([term("I0 Z0")], "qubit 0 twice"), ([term("Z")], "a factor without a qubit"),
            ([term("Z0\tZ1")], "a tab between factors"),
            ([term("Z0", 1e308), term("Z1", 1e308)], "coefficients whose sizes overflow")):
        s.error("state/expectation", {"state": state, "observable": observable},
                ErrorCode.INVALID_PARAMS, f"§4.11 {what}")
    plain = value(s, state, [term("Z0 Z1")])
    for text in ("  Z0   Z1 ", "Z1 Z0"):
        if abs(value(s, state, [term(text)]) - plain) > 1e-12:
            raise CheckFailed(f"§4.11: {text!r} is the string 'Z0 Z1' (spaces around and "
                              "between factors, in any order)")
    for text in ("", "I0", "I0 I1"):
        if abs(value(s, state, [term(text, 0.25)]) - 0.25) > 1e-12:
            raise CheckFailed(f"§4.11: {text!r} is the identity: 0.25 times it is 0.25")


@kit_check("4.11", "a circuit whose shots differ midway is refused by circuit/prepare", since=3,
           features=(Feature.EXPECTATION, Feature.MID_CIRCUIT_MEASUREMENT))
def _stochastic_refused(s: Exchange) -> None:
    s.initialize()
    entries: list[dict[str, Any]] = [{"name": "M", "qubits": [0], "register": "m"},
                                     {"name": "RESET", "qubits": [0]}]
    if Feature.CHANNELS in s.features:
        entries.append(channel([0], DAMPING))
    for entry in entries:
        s.error("circuit/prepare", {"circuit": {"nqubits": 1, "gates": [entry]}, "slots": [],
                                    "parameters": 0},
                ErrorCode.INVALID_PARAMS, f"§4.11 a prepared state-vector circuit with "
                f"{entry['name']}")
