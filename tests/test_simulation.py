"""Circuits: plain-data round trips, validation, and simulation against dense matrices."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from qibo_core import Circuit, CircuitError, Handle, connect, gates
from qibo_core.protocol import CircuitData
from qibo_core.testing.reference import final_state
from qibo_core.testing.strategies import circuits


@pytest.fixture(scope="module")
def spawned_numpy() -> Handle:
    with connect("numpy") as handle:
        yield handle


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(circuits(max_qubits=6, max_gates=15))
def test_spawned_numpy_equals_dense_matrices(spawned_numpy: Handle, circuit: Circuit) -> None:
    np.testing.assert_allclose(spawned_numpy.execute(circuit).state(), final_state(circuit),
                               atol=1e-10)


@given(circuits())
def test_circuit_round_trips_through_json(circuit: Circuit) -> None:
    circuit.add(gates.M(0, register_name="out"))
    wire = msgspec.json.encode(circuit.to_data())
    assert Circuit.from_data(msgspec.json.decode(wire, type=CircuitData)) == circuit


def test_complex64_precision() -> None:
    c = Circuit(3)
    c.add([gates.H(0), gates.CNOT(0, 1), gates.RX(2, 0.3)])
    with connect("numpy", precision="complex64") as handle:
        state = handle.execute(c).state()
    assert state.dtype == np.complex64
    np.testing.assert_allclose(state, final_state(c), atol=1e-6)


@pytest.mark.parametrize("build, message", [
    (lambda c: c.add(gates.H(3)), "outside this 3-qubit circuit"),
    (lambda c: c.add(gates.CNOT(0, 1).controlled_by(5)), "outside"),
    (lambda c: [c.add(gates.M(0)), c.add(gates.H(0))], "already measured"),
    (lambda c: [c.add(gates.M(0, register_name="a")), c.add(gates.M(1, register_name="a"))],
     "register 'a' is already used"),
])
def test_invalid_circuits(build: object, message: str) -> None:
    with pytest.raises(CircuitError, match=message):
        build(Circuit(3))  # type: ignore[operator]


@pytest.mark.parametrize("nqubits", [0, -1, 2.5, True])
def test_circuit_needs_positive_qubits(nqubits: object) -> None:
    with pytest.raises(CircuitError, match="positive number of qubits"):
        Circuit(nqubits)  # type: ignore[arg-type]


def test_frequencies_per_register(reference: Handle) -> None:
    c = Circuit(3)
    c.add([gates.X(0), gates.H(2), gates.M(0, 1, register_name="a"), gates.M(2)])
    result = reference.execute(c, nshots=1000, seed=3)
    joint = result.frequencies()
    assert set(joint) <= {"100", "101"} and sum(joint.values()) == 1000
    per_register = result.frequencies(registers=True)
    assert per_register["a"] == {"10": 1000}
    assert set(per_register["register1"]) == {"0", "1"}
    assert result.frequencies(binary=False).keys() <= {4, 5}


def test_execute_without_measurements_has_no_frequencies(reference: Handle) -> None:
    from qibo_core import QiboCoreError
    result = reference.execute(Circuit(1))
    with pytest.raises(QiboCoreError, match="no shots were sampled"):
        result.frequencies()
