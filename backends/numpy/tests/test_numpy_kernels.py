"""The NumPy backend's plan: fusion makes fewer operations, every kernel gives the same state."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from qibo_backend_numpy import NumpyBackend
from qibo_backend_numpy.fusion import Operation, fused
from qibo_backend_numpy.simulator import apply_operation
from qibo_core import Circuit, gates
from qibo_core.testing.reference import final_state
from qibo_core.testing.strategies import any_gate, circuits


@settings(max_examples=80, deadline=None)
@given(circuits(max_qubits=5, max_gates=60))
def test_long_circuits_on_few_qubits_equal_dense_matrices(circuit: Circuit) -> None:
    backend = NumpyBackend(fusion=True)
    state = backend.apply(backend.zero_state(circuit.nqubits), circuit.gates)
    np.testing.assert_allclose(state.data, final_state(circuit), atol=1e-10)


def test_gates_within_a_group_become_one_operation() -> None:
    stream = []
    for k in range(100):
        stream += [gates.RX(0, 0.1 * k), gates.RY(1, -0.2 * k), gates.CNOT(k % 2, 1 - k % 2),
                   gates.SWAP(0, 1), gates.CRX(1, 0, 0.3).dagger()]
    assert len(list(fused(stream, 2))) == 1
    circuit = Circuit(2)
    circuit.add(stream)
    backend = NumpyBackend(fusion=True)
    state = backend.apply(backend.zero_state(2), stream)
    np.testing.assert_allclose(state.data, final_state(circuit), atol=1e-10)


def test_a_gate_across_groups_releases_them() -> None:
    stream = [gates.H(q) for q in range(6)] + [gates.CNOT(2, 3)] + [gates.H(q) for q in range(6)]
    plan = [op for op, _ in fused(stream, 6)]
    assert len(plan) == 5  # both groups, the CNOT, both groups again


@given(any_gate(5))
def test_every_kernel_equals_the_general_one(gate: gates.Gate) -> None:
    """Small states take the general kernel; the specialised ones must agree with it."""
    rng = np.random.default_rng(len(gate.all_qubits))
    amplitudes = rng.normal(size=32) + 1j * rng.normal(size=32)
    op = Operation(gate.targets, gate.controls, gate.matrix())
    results = []
    for small in (0, 2**5):
        state = NumpyBackend().zero_state(5)
        state.data[:] = amplitudes
        apply_operation(state, op, lambda tasks: [task() for task in tasks], small=small)
        results.append(state.data.copy())
    np.testing.assert_allclose(results[0], results[1], atol=1e-12)
