"""qibo-backend-aer on its own: qibo's conventions over Qiskit's little-endian order, both
precisions, and the conformance kit."""

from __future__ import annotations

import numpy as np
import pytest

from qibo_backend_aer import AerBackend
from qibo_backend_aer.simulator import _NATIVE, AerDensityMatrices
from qibo_core import Circuit, RequestCancelled, connect, gates
from qibo_core.circuit import GATES
from qibo_core.client.discovery import find_backend
from qibo_core.server import density, no_checkpoint
from qibo_core.testing import Report
from qibo_core.testing.agreement import labelled_variants, scrambled_density
from qibo_core.testing.reference import final_state


def test_qubit_0_is_the_most_significant_bit() -> None:
    circuit = Circuit(3)
    circuit.add(gates.X(0))
    state = circuit.execute(backend=AerBackend()).state()
    assert np.argmax(np.abs(state)) == 0b100


def test_every_native_gate_keeps_qibos_matrix_and_qubit_order() -> None:
    """Each gate Aer runs natively, on qubits in an order that tells them apart."""
    rng = np.random.default_rng(3)
    for name in _NATIVE:
        cls = GATES[name]
        size = cls.ncontrols + cls.ntargets
        qubits = [3, 0, 2][:size]
        gate = cls(*qubits, *rng.uniform(-3, 3, len(cls.param_names)))
        circuit = Circuit(4)
        circuit.add([gates.U3(q, *rng.uniform(-3, 3, 3)) for q in range(4)])
        circuit.add(gate)
        np.testing.assert_allclose(circuit.execute(backend=AerBackend()).state(),
                                   final_state(circuit), atol=1e-12, err_msg=name)


def test_density_matrices_are_aers_own_with_every_gate_and_channel() -> None:
    """Aer's density_matrix method holds rho (2**n x 2**n, not the session's vector of 2n
    qubits); gates it lacks there (CRX, ...) go as unitaries, channels as its superoperators,
    and every result equals the generic path's on the same backend."""
    backend = AerBackend()
    densities = backend.density_matrices()
    assert isinstance(densities, AerDensityMatrices)
    generic = density.Vectorized(backend)
    rng = np.random.default_rng(5)
    for name in GATES:
        circuit = scrambled_density(4, rng)
        circuit.add(gate for _, gate in labelled_variants(name, 4, rng))
        rho = densities.apply(densities.start(4, None), circuit.gates, 4, no_checkpoint)
        assert rho.shape == (16, 16), name
        expected = generic.matrix(generic.apply(generic.start(4, None), circuit.gates, 4,
                                                no_checkpoint), 4)
        np.testing.assert_allclose(rho, expected, atol=1e-12, err_msg=name)


def noisy(nqubits: int, *, density_matrix: bool, p: float) -> Circuit:
    """Layers of rotations and CNOTs, a depolarizing channel after every gate."""
    circuit = Circuit(nqubits, density_matrix=density_matrix)
    for q in range(nqubits):
        circuit.add([gates.RY(q, 0.3 + q), gates.DepolarizingChannel(q, p)])
    for q in range(nqubits - 1):
        circuit.add([gates.CNOT(q, q + 1), gates.DepolarizingChannel((q, q + 1), p)])
    return circuit


def test_wide_noisy_density_matrices_where_aer_fuses() -> None:
    """Above Aer's fusion threshold (7 qubits for density matrices), where Aer 0.18.2 fails to
    fuse these channels (qiskit-aer issue 2455): the run is repeated unfused."""
    backend = AerBackend()
    circuit = noisy(10, density_matrix=True, p=0.01)
    densities, generic = backend.density_matrices(), density.Vectorized(backend)
    rho = densities.apply(densities.start(10, None), circuit.gates, 10, no_checkpoint)
    expected = generic.matrix(generic.apply(generic.start(10, None), circuit.gates, 10,
                                            no_checkpoint), 10)
    np.testing.assert_allclose(rho, expected, atol=1e-12)


def test_noise_on_state_vectors_runs_as_aers_own_trajectories() -> None:
    """Channels only: one Aer run of all the shots (the shot engine's statistics are checked
    for every backend in tests/test_depth.py); collapses, and runs needing more memory than
    offered, are left to the engine; seeds repeat; an initial state is where the shots start;
    15 qubits, above Aer's fusion threshold."""
    backend = AerBackend()
    circuit = noisy(3, density_matrix=False, p=0.1)
    circuit.add(gates.M(0, 1, 2))
    ran = backend.shots(circuit, backend.zero_state(3), 500, 7, no_checkpoint, 2**30)
    assert ran is not None
    final, counts = ran
    assert counts.counts.sum() == 500 and (np.diff(counts.outcomes) > 0).all()
    assert abs(np.linalg.norm(final) - 1) < 1e-12
    again = backend.shots(circuit, backend.zero_state(3), 500, 7, no_checkpoint, 2**30)
    assert again is not None and (again[1].counts == counts.counts).all()
    other = backend.shots(circuit, backend.zero_state(3), 500, 8, no_checkpoint, 2**30)
    assert other is not None and (other[1].counts != counts.counts).any()
    assert backend.shots(circuit, backend.zero_state(3), 500, 7, no_checkpoint, 2**20) is None

    collapsing = Circuit(2)
    collapsing.add([gates.H(0), gates.M(0, collapse=True), gates.DepolarizingChannel(1, 0.1)])
    assert backend.shots(collapsing, backend.zero_state(2), 10, 1, no_checkpoint, 2**30) is None

    flip = Circuit(2)
    flip.add([gates.PauliNoiseChannel(1, [("X", 1.0)]), gates.M(0, 1)])
    with connect(AerBackend()) as handle:
        result = handle.execute(flip, nshots=50, initial_state=np.array([0, 1, 0, 0.0]))
        assert result.frequencies() == {"00": 50}
        np.testing.assert_allclose(result.state(), [1, 0, 0, 0], atol=1e-12)

        wide = noisy(15, density_matrix=False, p=0.001)
        wide.add(gates.M(*range(15)))
        assert sum(handle.execute(wide, nshots=100, seed=1).frequencies().values()) == 100


def test_trajectories_can_be_cancelled_between_runs() -> None:
    from qibo_backend_aer.simulator import SHOTS_PER_RUN

    backend = AerBackend()
    circuit = noisy(2, density_matrix=False, p=0.1)
    circuit.add(gates.M(0, 1))

    def checkpoint(done: int = 0, total: int = 0) -> None:
        if done:
            raise RequestCancelled("cancelled")
    with pytest.raises(RequestCancelled):
        backend.shots(circuit, backend.zero_state(2), 2 * SHOTS_PER_RUN, 1, checkpoint, 2**30)


def test_density_matrices_in_single_precision_from_an_initial_state() -> None:
    circuit = Circuit(2, density_matrix=True)
    circuit.add([gates.H(0), gates.CNOT(0, 1), gates.PhaseDampingChannel(1, 0.4)])
    psi = np.array([0, 1, 0, 0], dtype=complex)  # |01>, then (|01> + |10>) / sqrt(2)
    with connect("aer", precision="complex64") as handle:
        rho = handle.execute(circuit, initial_state=psi).state()
    assert rho.dtype == np.complex64
    expected = np.zeros((4, 4))
    expected[[1, 1, 2, 2], [1, 2, 1, 2]] = [0.5, 0.5 * np.sqrt(0.6), 0.5 * np.sqrt(0.6), 0.5]
    np.testing.assert_allclose(rho, expected, atol=1e-6)


def test_a_long_density_matrix_run_can_be_cancelled() -> None:
    """Cancellation is checked between Aer runs of CHUNK operations."""
    backend = AerBackend()
    densities = backend.density_matrices()
    ops = [gates.RX(0, 0.1) for _ in range(5000)]

    def checkpoint(done: int = 0, total: int = 0) -> None:
        if done:
            raise RequestCancelled("cancelled")
    with pytest.raises(RequestCancelled):
        densities.apply(densities.start(2, None), ops, 2, checkpoint)
    rho = densities.apply(densities.start(2, None), ops, 2, no_checkpoint)
    assert abs(rho[0, 0] - np.cos(250) ** 2) < 1e-9


def test_single_precision_is_complex64() -> None:
    circuit = Circuit(2)
    circuit.add([gates.H(0), gates.CNOT(0, 1), gates.RY(1, 0.3)])
    with connect("aer", precision="complex64") as handle:
        state = handle.execute(circuit).state()
    assert state.dtype == np.complex64
    np.testing.assert_allclose(state, final_state(circuit), atol=1e-6)


def test_devices_are_what_aer_finds_and_others_are_refused() -> None:
    from qibo_core import InvalidParams

    with connect("aer", device="CPU") as handle:
        assert handle.info.capabilities.devices[0] == "CPU"
        offered = handle.info.capabilities.devices
        assert handle.execute(Circuit(1)).state().tolist() == [1, 0]
    if "GPU" not in offered:  # this machine: no CUDA device
        with pytest.raises(InvalidParams, match=r"device 'GPU' is not available here; .*'CPU'"):
            connect("aer", device="GPU")


def test_the_conformance_kit_passes(conformance) -> None:  # type: ignore[no-untyped-def]
    report: Report = conformance([find_backend("aer")])
    assert report.passed, report.text()


def test_a_missing_qiskit_aer_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "qiskit_aer" else real(name, *a))
    with pytest.raises(ImportError, match="pip install qiskit-aer"):
        AerBackend()
