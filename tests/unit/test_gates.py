"""Every gate's matrix against an independent definition, and the gate model's rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qibo_core import CircuitError, gates
from qibo_core.circuit import GATES, GateReader, from_data
from qibo_core.protocol import GateData
from qibo_core.testing.strategies import angles, any_gate

I2 = np.eye(2)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]])
Z = np.diag([1.0, -1.0]).astype(complex)


def expm_hermitian(h: np.ndarray, t: float) -> np.ndarray:
    """exp(-i t h) by diagonalising h: independent of the cos/sin formulas in gates.py."""
    w, v = np.linalg.eigh(h)
    return v @ np.diag(np.exp(-1j * t * w)) @ v.conj().T


def controlled(u: np.ndarray, ncontrols: int = 1) -> np.ndarray:
    full = np.eye(len(u) * 2**ncontrols, dtype=complex)
    full[-len(u):, -len(u):] = u
    return full


A, B, C = 0.37, -1.1, 2.9  # parameter values away from special angles


def axis(phi: float) -> np.ndarray:
    return math.cos(phi) * X + math.sin(phi) * Y


EXPECTED = {
    "H": ((X + Z) / math.sqrt(2), ()),
    "X": (X, ()), "Y": (Y, ()), "Z": (Z, ()),
    "S": (expm_hermitian(Z - I2, math.pi / 4), ()),  # sqrt(Z) with S|0> = |0>
    "SDG": (expm_hermitian(Z - I2, -math.pi / 4), ()),
    "T": (expm_hermitian(Z - I2, math.pi / 8), ()),
    "TDG": (expm_hermitian(Z - I2, -math.pi / 8), ()),
    "SX": (expm_hermitian(X - I2, math.pi / 4), ()),
    "SXDG": (expm_hermitian(X - I2, -math.pi / 4), ()),
    "I": (I2, ()),
    "RX": (expm_hermitian(X, A / 2), (A,)),
    "RY": (expm_hermitian(Y, A / 2), (A,)),
    "RZ": (expm_hermitian(Z, A / 2), (A,)),
    "U1": (np.exp(0.5j * A) * expm_hermitian(Z, A / 2), (A,)),
    "U2": (expm_hermitian(Z, A / 2) @ expm_hermitian(Y, math.pi / 4) @ expm_hermitian(Z, B / 2),
           (A, B)),
    "U3": (expm_hermitian(Z, B / 2) @ expm_hermitian(Y, A / 2) @ expm_hermitian(Z, C / 2),
           (A, B, C)),
    "GPI": (axis(A), (A,)),
    "GPI2": (expm_hermitian(axis(A), math.pi / 4), (A,)),
    "PRX": (expm_hermitian(axis(B), A / 2), (A, B)),
    "CNOT": (controlled(X), ()), "CY": (controlled(Y), ()), "CZ": (controlled(Z), ()),
    "CH": (controlled((X + Z) / math.sqrt(2)), ()),
    "CSX": (controlled(expm_hermitian(X - I2, math.pi / 4)), ()),
    "CRX": (controlled(expm_hermitian(X, A / 2)), (A,)),
    "CRY": (controlled(expm_hermitian(Y, A / 2)), (A,)),
    "CRZ": (controlled(expm_hermitian(Z, A / 2)), (A,)),
    "CU1": (controlled(np.diag([1, np.exp(1j * A)])), (A,)),
    "CU2": (controlled(expm_hermitian(Z, A / 2) @ expm_hermitian(Y, math.pi / 4)
                       @ expm_hermitian(Z, B / 2)), (A, B)),
    "CU3": (controlled(expm_hermitian(Z, B / 2) @ expm_hermitian(Y, A / 2)
                       @ expm_hermitian(Z, C / 2)), (A, B, C)),
    "SWAP": ((np.kron(I2, I2) + np.kron(X, X) + np.kron(Y, Y) + np.kron(Z, Z)) / 2, ()),
    "iSWAP": (expm_hermitian(np.kron(X, X) + np.kron(Y, Y), -math.pi / 4), ()),
    "FSWAP": ((np.kron(I2, I2) + np.kron(X, X) + np.kron(Y, Y) + np.kron(Z, Z)) / 2
              @ np.diag([1, 1, 1, -1]), ()),
    "ECR": ((np.kron(X, I2) - np.kron(Y, X)) / math.sqrt(2), ()),
    "RXX": (expm_hermitian(np.kron(X, X), A / 2), (A,)),
    "RYY": (expm_hermitian(np.kron(Y, Y), A / 2), (A,)),
    "RZZ": (expm_hermitian(np.kron(Z, Z), A / 2), (A,)),
    "RZX": (expm_hermitian(np.kron(Z, X), A / 2), (A,)),
    "fSim": (np.diag([1, 1, 1, np.exp(-1j * B)])
             @ expm_hermitian(np.kron(X, X) + np.kron(Y, Y), A / 2), (A, B)),
    "TOFFOLI": (controlled(X, 2), ()),
    "CCZ": (controlled(Z, 2), ()),
}


def full_matrix(gate: gates.Gate) -> np.ndarray:
    """The gate's matrix on all its qubits, controls first as in the constructor."""
    return controlled(gate.matrix(), len(gate.controls))


def test_every_gate_has_an_independent_definition() -> None:
    assert set(EXPECTED) | {"Unitary"} == set(GATES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_matrix_matches_independent_definition(name: str) -> None:
    expected, params = EXPECTED[name]
    cls = GATES[name]
    nqubits = int(math.log2(len(expected)))
    gate = cls(*range(nqubits), *params)
    np.testing.assert_allclose(full_matrix(gate), expected, atol=1e-12)


@given(any_gate(4))
def test_dagger_composes_to_identity(gate: gates.Gate) -> None:
    m = full_matrix(gate)
    np.testing.assert_allclose(full_matrix(gate.dagger()) @ m, np.eye(len(m)), atol=1e-10)
    assert gate.dagger().dagger() == gate or gate.hermitian


@given(any_gate(5))
def test_every_matrix_is_unitary(gate: gates.Gate) -> None:
    m = gate.matrix()
    np.testing.assert_allclose(m.conj().T @ m, np.eye(len(m)), atol=1e-10)


@given(any_gate(3, variants=False), st.lists(st.lists(angles, min_size=3, max_size=3),
                                             max_size=4))
def test_matrices_of_many_gates_are_each_ones_matrix(gate: gates.Gate,
                                                      values: list[list[float]]) -> None:
    kind = type(gate)
    many = [gate] + ([] if kind is gates.Unitary else
                     [kind(*gate.qubits, *v[:len(kind.param_names)]) for v in values])
    np.testing.assert_allclose(kind.matrices(many), [kind.matrices([g])[0] for g in many],
                               rtol=0, atol=1e-15)
    for g in many:
        np.testing.assert_array_equal(g.base_matrix(), kind.matrices([g])[0])


def test_parameters_by_position_or_name() -> None:
    assert gates.U3(0, 0.1, 0.2, 0.3) == gates.U3(0, theta=0.1, phi=0.2, lam=0.3)
    assert gates.RX(1, theta=0.5).theta == 0.5
    assert gates.CRX(0, 1, 0.5).controls == (0,) and gates.CRX(0, 1, 0.5).targets == (1,)


def test_controlled_by_adds_controls() -> None:
    gate = gates.RY(2, 0.4).controlled_by(0, 1)
    assert gate.controls == (0, 1) and gate.targets == (2,)
    assert gate.dagger().controls == (0, 1)


@pytest.mark.parametrize("make, message", [
    (lambda: gates.H(-1), "negative"),
    (lambda: gates.H(1.5), "integers"),
    (lambda: gates.H(True), "integers"),
    (lambda: gates.CNOT(1, 1), "repeated"),
    (lambda: gates.RX(0), "missing parameter 'theta'"),
    (lambda: gates.RX(0, phi=1.0), "unexpected parameter 'phi'"),
    (lambda: gates.RX(0, 1.0, theta=1.0), "twice"),
    (lambda: gates.RX(0, float("nan")), "finite"),
    (lambda: gates.RX(0, float("inf")), "finite"),
    (lambda: gates.RX(0, "1"), "real number"),
    (lambda: gates.CNOT(0), "positional"),
    (lambda: gates.H(0).controlled_by(0), "repeated"),
    (lambda: gates.Unitary(np.eye(2), 0, 1), "4x4"),
    (lambda: gates.Unitary([[1, 1], [0, 1]], 0), "not unitary"),
    (lambda: gates.Unitary([[float("nan"), 0], [0, 1]], 0), "NaN"),
    (lambda: gates.Unitary("abc", 0), "not a complex array"),
    (lambda: gates.Unitary([1, 0], 0), "2x2 matrix, got shape"),
    (lambda: gates.M(), "no qubits"),
])
def test_invalid_gates_raise_circuit_error(make: object, message: str) -> None:
    with pytest.raises(CircuitError, match=message):
        make()  # type: ignore[operator]


@given(any_gate(6), st.booleans())
def test_gate_data_round_trip(gate: gates.Gate, via_json: bool) -> None:
    import msgspec

    data = gate.to_data()
    if via_json:
        data = msgspec.json.decode(msgspec.json.encode(data), type=GateData)
    again = from_data(data)
    assert again == gate
    np.testing.assert_allclose(again.matrix(), gate.matrix(), atol=1e-15)


@pytest.mark.parametrize("data, message", [
    (GateData("CNOT", [0]), r"CNOT\(c, q\): takes 2 qubits, got 1"),
    (GateData("RX", [0, 1], {"theta": 1.0}), "takes 1 qubit, got 2"),
    (GateData("I", []), "got no qubits"),
    (GateData("H", [-1]), "negative"),
    (GateData("SWAP", [1, 1]), "repeated"),
    (GateData("RX", [0], {"theta": float("inf")}), "finite"),
    (GateData("RX", [0], {"phi": 1.0}), "unexpected parameter 'phi'"),
    (GateData("U2", [0], {"phi": 1.0}), "missing parameter 'lam'"),
    (GateData("H", [0], matrix=[[(1.0, 0.0)]]), "only Unitary"),
])
def test_invalid_gate_data_raises_circuit_error(data: GateData, message: str) -> None:
    with pytest.raises(CircuitError, match=message):
        from_data(data)


def test_a_gate_reader_checks_every_gate_whatever_it_has_seen() -> None:
    read = GateReader(2).read
    assert read(GateData("RX", (0,), {"theta": 0.5})) == gates.RX(0, 0.5)  # RX on (0,) seen
    for data, message in [
        (GateData("RX", (0,), {"theta": float("inf")}), "finite"),
        (GateData("RX", (0,), {"phi": 0.5}), "unexpected parameter 'phi'"),
        (GateData("RX", (0,), {"theta": 0.5}, controls=(0,)), "repeated"),
        (GateData("RX", (0,), {"theta": 0.5}, controls=(5,)), "out of range"),
        (GateData("RX", (5,), {"theta": 0.5}), "qubit 5 is out of range for a 2-qubit state"),
        (GateData("RX", (0,), {"theta": 0.5}, matrix=[[(1.0, 0.0)]]), "only Unitary"),
    ]:
        with pytest.raises(CircuitError, match=message):
            read(data)
    assert read(GateData("RX", (0,), {"theta": 1})).params == {"theta": 1.0}  # type: ignore
    assert read(GateData("RX", (0,), {"theta": 0.25}, dagger=True)) == gates.RX(0, 0.25).dagger()


@given(st.lists(any_gate(3), max_size=6))
def test_a_gate_reader_reads_what_from_data_reads(many: list[gates.Gate]) -> None:
    read = GateReader(3).read
    for gate in many + many:  # the second time round, every pair has been seen
        assert read(gate.to_data()) == from_data(gate.to_data(), 3) == gate


def test_gate_data_parameters_in_any_order() -> None:
    gate = from_data(GateData("U3", [0], {"lam": 0.3, "theta": 0.1, "phi": 0.2}))
    assert gate == gates.U3(0, 0.1, 0.2, 0.3) and list(gate.params) == ["theta", "phi", "lam"]


def test_unknown_gate_name_lists_known_gates() -> None:
    with pytest.raises(CircuitError, match="unknown gate 'FOO'; known gates: CCZ"):
        from_data(GateData(name="FOO", qubits=[0]))


@given(angles)
def test_rotations_compose(theta: float) -> None:
    np.testing.assert_allclose(gates.RX(0, theta).matrix() @ gates.RX(0, -theta).matrix(),
                               np.eye(2), atol=1e-12)
