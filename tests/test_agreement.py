"""Every backend, spawned and in process, agrees with the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
from agreement import (
    assert_same_probabilities,
    assert_same_state,
    gate_variants,
    misfit,
    scrambled,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qibo_core import Circuit, Handle, gates
from qibo_core.circuit.gates import GATES
from qibo_core.testing.strategies import circuits

NQUBITS = 5
slow_ok = settings(max_examples=40, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("name", sorted(GATES))
def test_every_gate_kind(handle: Handle, reference: Handle, name: str) -> None:
    rng = np.random.default_rng(sum(map(ord, name)))
    for _ in range(3):
        for gate in gate_variants(name, NQUBITS, rng):
            circuit = scrambled(NQUBITS, rng)
            circuit.add(gate)
            assert_same_state(handle, reference, circuit)


@slow_ok
@given(circuit=circuits(max_qubits=10, max_gates=20), data=st.data())
def test_random_circuits(handle: Handle, reference: Handle, circuit: Circuit,
                         data: st.DataObject) -> None:
    assert_same_state(handle, reference, circuit)
    qubits = data.draw(st.permutations(range(circuit.nqubits)))
    subset = qubits[:data.draw(st.integers(1, circuit.nqubits))]
    assert_same_probabilities(handle, reference, circuit, subset)


def test_sampling_fits_the_exact_probabilities(handle: Handle, reference: Handle) -> None:
    circuit = scrambled(4, np.random.default_rng(3))
    circuit.add(gates.M(2, 0, 3))
    exact = reference.execute(circuit).probabilities([2, 0, 3])
    result = handle.execute(circuit, nshots=20000, seed=11)
    assert sum(result.frequencies().values()) == 20000
    assert not misfit(result.frequencies(), exact, 20000)
    again = handle.execute(circuit, nshots=20000, seed=11)
    assert again.frequencies() == result.frequencies()
    other = handle.execute(circuit, nshots=20000, seed=12)
    assert other.frequencies() != result.frequencies()


def test_the_sampling_test_rejects_a_wrong_distribution(reference: Handle) -> None:
    circuit = scrambled(3, np.random.default_rng(5))
    circuit.add(gates.M(0, 1, 2))
    frequencies = reference.execute(circuit, nshots=20000, seed=1).frequencies()
    exact = reference.execute(circuit).probabilities()
    assert not misfit(frequencies, exact, 20000)
    assert "where its probability is" in misfit(frequencies, np.roll(exact, 1), 20000)
    assert misfit(frequencies, np.full(8, 1 / 8), 20000)


def test_streamed_gates_equal_execute(handle: Handle) -> None:
    circuit = scrambled(6, np.random.default_rng(8))
    circuit.add([gates.CU3(0, 5, 0.1, 0.2, 0.3), gates.fSim(2, 4, 0.5, 0.6),
                 gates.TOFFOLI(1, 3, 5).controlled_by(0)])
    state = handle.new_state(6)
    for gate in circuit.gates:
        state.apply(gate)
    np.testing.assert_allclose(state.read(), handle.execute(circuit).state(), atol=1e-12)


@pytest.mark.parametrize("nqubits", [16, 17])
def test_large_states_use_every_kernel_and_thread(handle: Handle, reference: Handle,
                                                  nqubits: int) -> None:
    """Big enough for the NumPy backend's threads; every gate kind at once."""
    rng = np.random.default_rng(nqubits)
    circuit = scrambled(nqubits, rng)
    for name in sorted(GATES):
        circuit.add(next(gate_variants(name, nqubits, rng)))
    circuit.add(scrambled(nqubits, rng).gates)
    assert_same_state(handle, reference, circuit)
