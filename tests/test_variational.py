"""Variational work: Parameters, observables, expectation values of many sets and gradients
on the backend (protocol version 3), the fallback for older backends, and bad input."""

from __future__ import annotations

import logging
from functools import reduce

import numpy as np
import pytest
from rawpipe import Pipe

from qibo_core import (
    Circuit,
    CircuitError,
    Handle,
    Observable,
    Parameter,
    UsageError,
    connect,
    gates,
)
from qibo_core.client import connection as connection_module
from qibo_core.client.discovery import find_backend
from qibo_core.protocol import ErrorCode

PAULI = {"I": np.eye(2), "X": np.array([[0, 1], [1, 0]]), "Y": np.array([[0, -1j], [1j, 0]]),
         "Z": np.diag([1, -1])}


def dense(observable: Observable, n: int) -> np.ndarray:
    """The observable as a 2^n x 2^n matrix: what the code under test never builds."""
    total = np.zeros((2**n, 2**n), dtype=complex)
    for coefficient, pauli in observable.terms:
        letters = dict((q, letter) for letter, q in pauli)
        total += coefficient * reduce(np.kron, [PAULI[letters.get(q, "I")] for q in range(n)])
    return total


def ansatz(n: int, layers: int) -> tuple[Circuit, list[Parameter]]:
    """RY RZ on every qubit and a CZ chain, per layer: the benchmark's hardware-efficient
    ansatz."""
    t = [Parameter(f"t{i}") for i in range(2 * n * layers)]
    circuit = Circuit(n)
    k = 0
    for _ in range(layers):
        for q in range(n):
            circuit.add([gates.RY(q, t[k]), gates.RZ(q, t[k + 1])])
            k += 2
        circuit.add(gates.CZ(q, q + 1) for q in range(n - 1))
    return circuit, t


OBSERVABLE = "Z0 Z1 + 0.5 X2 - 0.25 Y3 Z1 + 0.1"


def test_parameters_are_in_first_use_order_and_bind_by_position_or_name() -> None:
    a, b = Parameter("a"), Parameter("b")
    circuit = Circuit(2)
    circuit.add([gates.RX(0, b), gates.RY(1, a), gates.RZ(0, b), gates.CNOT(0, 1)])
    assert circuit.parameters == [b, a]
    assert circuit.bind([0.1, 0.2]).gates[:3] == [gates.RX(0, 0.1), gates.RY(1, 0.2),
                                                  gates.RZ(0, 0.1)]
    assert circuit.bind({"a": 0.2, "b": 0.1}) == circuit.bind([0.1, 0.2])
    assert circuit.parameters == [b, a]  # binding made a copy
    with pytest.raises(UsageError, match="2 parameters .* shape \\(3,\\)"):
        circuit.bind([1, 2, 3])
    with pytest.raises(UsageError, match="unknown \\['c'\\]; missing \\['b'\\]"):
        circuit.bind({"a": 1, "c": 2})
    with pytest.raises(CircuitError, match="unbound parameters"):
        circuit.to_data()
    with connect("numpy") as h, pytest.raises(UsageError, match="give their values"):
        h.execute(circuit)


def test_observables_are_read_as_written_and_errors_point_at_the_term() -> None:
    parsed = Observable("Z0 Z1 + 0.5 X2 - 0.25*Y3 Z5 - 2")
    assert parsed.terms == ((1.0, (("Z", 0), ("Z", 1))), (0.5, (("X", 2),)),
                            (-0.25, (("Y", 3), ("Z", 5))), (-2.0, ()))
    assert Observable([(1, "Z0 Z1"), (0.5, "X2"), (-0.25, "Y3 Z5"), (-2, "")]) == parsed
    assert Observable("1e-3 X0").terms == ((0.001, (("X", 0),)),)
    for text, message in [("Z0 + Q1", "term 1 \\('Q1'\\): 'Q1' is not a Pauli factor"),
                          ("Z0 Z0", "qubit 0 appears twice"), ("X1 +", "term 1 .*empty"),
                          ("", "empty"), ("Z", "'Z' is not a Pauli factor")]:
        with pytest.raises(CircuitError, match=message):
            Observable(text)
    with pytest.raises(CircuitError, match="term 0: the coefficient must be a finite"):
        Observable([(float("nan"), "Z0")])
    with pytest.raises(CircuitError, match="term 1 \\(X4\\): qubit 4 is outside"):
        Observable("Z0 + X4").check(3)


def test_expectation_values_equal_the_dense_matrix_on_vectors_and_density_matrices() -> None:
    rng = np.random.default_rng(3)
    observable = Observable("Z0 Y2 + 0.5 X1 X3 - 0.7 Y0 Y1 Z2 X3 + 0.2")
    psi = rng.normal(size=16) + 1j * rng.normal(size=16)
    psi /= np.linalg.norm(psi)
    matrix = dense(observable, 4)
    assert observable.expectation(psi) == pytest.approx(np.vdot(psi, matrix @ psi).real, abs=1e-12)
    a = rng.normal(size=(16, 16)) + 1j * rng.normal(size=(16, 16))
    rho = a @ a.conj().T
    rho /= np.trace(rho)
    assert observable.expectation(rho) == pytest.approx(np.trace(matrix @ rho).real, abs=1e-12)


def test_expectations_of_many_sets_on_the_backend(handle: Handle, reference: Handle) -> None:
    circuit, t = ansatz(4, 2)
    sets = np.random.default_rng(5).uniform(-np.pi, np.pi, (6, len(t)))
    values = handle.expectation(circuit, OBSERVABLE, parameters=sets)
    matrix = dense(Observable(OBSERVABLE), 4)
    for row, value in zip(sets, values, strict=True):
        psi = reference.execute(circuit.bind(row)).state()
        assert value == pytest.approx(np.vdot(psi, matrix @ psi).real, abs=1e-10)
    one = handle.expectation(circuit, OBSERVABLE, parameters=dict(zip([p.name for p in t],
                                                                        sets[2], strict=True)))
    assert isinstance(one, float) and one == pytest.approx(values[2], abs=1e-12)
    assert len(handle.prepared._ids) == 1  # the circuit crossed once
    state = handle.new_state(4).apply(*circuit.bind(sets[0]).gates)
    assert state.expectation(OBSERVABLE) == pytest.approx(values[0], abs=1e-10)


def test_density_matrix_expectations(handle: Handle, reference: Handle) -> None:
    theta = Parameter("theta")
    circuit = Circuit(2, density_matrix=True)
    circuit.add([gates.RY(0, theta), gates.CNOT(0, 1), gates.DepolarizingChannel((1,), 0.2)])
    values = handle.expectation(circuit, "Z0 Z1 + X0", parameters=[[0.3], [1.2]])
    for value, angle in zip(values, (0.3, 1.2), strict=True):
        rho = reference.execute(circuit.bind([angle])).state()
        assert value == pytest.approx(np.trace(dense(Observable("Z0 Z1 + X0"), 2) @ rho).real,
                                      abs=1e-10)


def test_gradients_by_parameter_shift_equal_finite_differences(handle: Handle) -> None:
    circuit, t = ansatz(3, 2)
    shared = Parameter("shared")  # one Parameter in two gates: the chain rule sums both
    circuit.add([gates.RXX(0, 2, shared), gates.RX(1, shared)])
    values = np.random.default_rng(8).uniform(-np.pi, np.pi, len(circuit.parameters))
    grad = handle.gradient(circuit, OBSERVABLE.replace("Y3 ", ""), parameters=values)
    eps = 1e-6
    for k in range(len(values)):
        up, down = values.copy(), values.copy()
        up[k] += eps
        down[k] -= eps
        difference = (handle.expectation(circuit, OBSERVABLE.replace("Y3 ", ""), parameters=up)
                      - handle.expectation(circuit, OBSERVABLE.replace("Y3 ", ""),
                                           parameters=down)) / (2 * eps)
        assert grad[k] == pytest.approx(difference, abs=1e-6)


def test_gradients_refuse_gates_the_shift_rule_does_not_hold_for() -> None:
    theta = Parameter("theta")
    for gate in (gates.CRX(0, 1, theta), gates.U3(0, theta, 0.1, 0.2),
                 gates.RX(0, theta).controlled_by(1)):
        circuit = Circuit(2)
        circuit.add(gate)
        with connect("numpy") as h, pytest.raises(UsageError, match="parameter-shift rule"):
            h.gradient(circuit, "Z0", parameters=[0.3])


def test_an_older_backend_gets_bound_circuits_and_the_client_says_so_once(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        reference: Handle) -> None:
    monkeypatch.setattr(connection_module, "PROTOCOL_VERSION", 2)
    circuit, t = ansatz(3, 1)
    sets = np.random.default_rng(2).uniform(-1, 1, (3, len(t)))
    with connect("numpy") as h, caplog.at_level(logging.WARNING, "qibo_core.client"):
        assert h.protocol_version == 2 and "expectation" not in h.info.capabilities.features
        values = h.expectation(circuit, "Z0 X2", parameters=sets)
        h.expectation(circuit, "Z0 X2", parameters=sets[0])
        assert h.new_state(3).apply(gates.H(2)).expectation("X2") == pytest.approx(1)
    assert sum("does not compute expectation values" in r.message for r in caplog.records) == 1
    for row, value in zip(sets, values, strict=True):
        psi = reference.execute(circuit.bind(row)).state()
        assert value == pytest.approx(np.vdot(psi, dense(Observable("Z0 X2"), 3) @ psi).real)


def test_bad_prepared_circuits_get_errors_and_the_backend_keeps_serving() -> None:
    pipe = Pipe([find_backend("numpy")])
    assert pipe.call("initialize", {"protocolVersion": 3})["result"]["protocolVersion"] == 3
    circuit = {"nqubits": 2, "gates": [{"name": "RX", "qubits": [0], "params": {"theta": 0}},
                                       {"name": "CNOT", "qubits": [0, 1]}]}
    slot = {"gate": 0, "param": "theta", "parameter": 0}
    for bad, message in [({**slot, "gate": 5}, "no gate 5"), ({**slot, "param": "phi"},
                         "has no parameter 'phi'"), ({**slot, "parameter": 1}, "value index 1")]:
        error = pipe.call("circuit/prepare", {"circuit": circuit, "slots": [bad],
                                              "parameters": 1})["error"]
        assert error["code"] == ErrorCode.INVALID_PARAMS and message in error["message"]
    ref = pipe.call("circuit/prepare", {"circuit": circuit, "slots": [slot],
                                        "parameters": 1})["result"]
    sets = {"dtype": "float64", "shape": [1, 2], "data": "AAAAAAAAAAAAAAAAAAAAAA=="}
    for params, message in [({"parameters": sets}, "sets of 1 values"),
                            ({"observable": [{"coefficient": 1, "pauli": "Z7"}]}, "qubit 7"),
                            ({"circuit": 9}, "no circuit 9 is prepared")]:
        request = {"circuit": ref["circuit"], "observable": [{"coefficient": 1, "pauli": "Z0"}],
                   "parameters": {"dtype": "float64", "shape": [1, 1],
                                  "data": "AAAAAAAAAAA="}, **params}
        error = pipe.call("circuit/expectation", request)["error"]
        assert error["code"] == ErrorCode.INVALID_PARAMS and message in error["message"]
    assert pipe.call("circuit/free", {"circuit": ref["circuit"]})["result"] is None
    assert "error" in pipe.call("circuit/free", {"circuit": ref["circuit"]})
    assert pipe.close() == 0


def test_a_version_2_session_does_not_serve_version_3_methods() -> None:
    pipe = Pipe([find_backend("numpy")])
    answer = pipe.call("initialize", {"protocolVersion": 2})["result"]
    assert "expectation" not in answer["capabilities"]["features"]
    error = pipe.call("circuit/free", {"circuit": 1})["error"]
    assert error["code"] == ErrorCode.METHOD_NOT_FOUND and "protocol version 3" in error["message"]
    assert pipe.close() == 0


def random_parametrized(rng: np.random.Generator, n: int, size: int) -> Circuit:
    """Gates of many kinds (fixed, diagonal, controlled, daggered), some angles Parameters,
    some Parameters used twice."""
    t = [Parameter(f"p{i}") for i in range(6)]
    circuit = Circuit(n)
    for _ in range(size):
        a, b, c = (int(q) for q in rng.permutation(n)[:3])
        angle = t[int(rng.integers(6))] if rng.random() < 0.6 else float(rng.uniform(-3, 3))
        choice = int(rng.integers(11))
        gate = [gates.RX(a, angle), gates.RY(a, angle), gates.RZ(a, angle), gates.H(a),
                gates.CNOT(a, b), gates.CZ(a, b), gates.CRX(a, b, angle),
                gates.U3(a, angle, 0.3, float(rng.uniform())), gates.RZZ(a, b, angle),
                gates.T(a).dagger(), gates.RY(a, angle).controlled_by(c)][choice]
        circuit.add(gate.dagger() if rng.random() < 0.2 else gate)
    return circuit


def test_random_parametrized_circuits_agree_with_the_reference(handle: Handle,
                                                               reference: Handle) -> None:
    """Whatever path a backend takes (the NumPy plan, Qulacs' parametric circuit, the generic
    one), its values equal the reference's."""
    rng = np.random.default_rng(11)
    for _ in range(12):
        circuit = random_parametrized(rng, 5, 30)
        sets = rng.uniform(-np.pi, np.pi, (3, len(circuit.parameters)))
        ours = handle.expectation(circuit, "Z0 X1 + 0.3 Y2 Z4 - X3", parameters=sets)
        theirs = reference.expectation(circuit, "Z0 X1 + 0.3 Y2 Z4 - X3", parameters=sets)
        np.testing.assert_allclose(ours, theirs, atol=1e-10, err_msg=repr(circuit.gates))
    rotations, _ = ansatz(5, 2)  # every slot an RX/RY/RZ angle: Qulacs' parametric circuit
    sets = rng.uniform(-np.pi, np.pi, (3, len(rotations.parameters)))
    np.testing.assert_allclose(handle.expectation(rotations, "Y0 X3", parameters=sets),
                               reference.expectation(rotations, "Y0 X3", parameters=sets),
                               atol=1e-10)


def test_circuit_expectation_uses_the_shared_backend_and_reports_progress(
        reference: Handle) -> None:
    circuit, t = ansatz(12, 4)
    values = np.random.default_rng(4).uniform(-np.pi, np.pi, len(t))
    expected = reference.expectation(circuit, "Z0 Z11", parameters=values)
    assert circuit.expectation("Z0 Z11", backend="numpy", parameters=values) == pytest.approx(
        expected, abs=1e-10)
    reports: list[tuple[int, int]] = []
    sets = np.tile(values, (3000, 1))
    with connect("numpy") as h:
        swept = h.expectation(circuit, "Z0 Z11", parameters=sets,
                              progress=lambda done, total: reports.append((done, total)))
    np.testing.assert_allclose(swept, expected, atol=1e-10)
    assert reports and all(total == 3000 and 0 <= done <= 3000 for done, total in reports)


def test_a_prepared_circuit_is_freed_with_its_circuit() -> None:
    import gc
    circuit, t = ansatz(3, 1)
    with connect("numpy") as h:
        h.expectation(circuit, "Z0", parameters=np.zeros(len(t)))
        assert len(h.prepared._ids) == 1
        del circuit
        gc.collect()
        assert h.prepared._ids == {}
        assert [method for method, _ in h.outbox._frees] == ["circuit/free"]
