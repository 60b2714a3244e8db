"""qibo-backend-aer on its own: qibo's conventions over Qiskit's little-endian order, both
precisions, and the conformance kit."""

from __future__ import annotations

import numpy as np
import pytest

from qibo_backend_aer import AerBackend, mapped
from qibo_backend_aer.simulator import AerDensityMatrices
from qibo_core import Circuit, RequestCancelled, connect, gates
from qibo_core.circuit import GATES, Gate
from qibo_core.client.discovery import find_backend
from qibo_core.protocol import InitializeOptions
from qibo_core.server import density, no_checkpoint
from qibo_core.testing import Report
from qibo_core.testing.agreement import labelled_variants, scrambled, scrambled_density
from qibo_core.testing.reference import ReferenceBackend, final_state


def evolved(psi: np.ndarray, gates: list[Gate]) -> np.ndarray:
    """The reference simulator's `gates` applied to `psi`."""
    reference = ReferenceBackend()
    return reference.to_array(reference.apply(reference.from_array(psi.copy()), gates))


def test_qubit_0_is_the_most_significant_bit() -> None:
    circuit = Circuit(3)
    circuit.add(gates.X(0))
    state = circuit.execute(backend=AerBackend()).state()
    assert np.argmax(np.abs(state)) == 0b100


@pytest.mark.parametrize("precision", ["complex128", "complex64"])
def test_every_gate_keeps_qibos_matrix_phase_and_qubit_order(precision: str) -> None:
    """Every gate, daggered and with extra controls, on qubits in an order that tells them
    apart: in place in double precision (mapped.py), by Aer runs in single (runs.py)."""
    backend = AerBackend()
    backend.configure(InitializeOptions(precision=precision))
    rng = np.random.default_rng(3)
    for name in GATES:
        for label, gate in labelled_variants(name, 5, rng):
            circuit = scrambled(5, rng)
            circuit.add(gate)
            state = backend.apply(backend.zero_state(5), circuit.gates)
            np.testing.assert_allclose(state, final_state(circuit),
                                       atol=1e-12 if precision == "complex128" else 2e-6,
                                       err_msg=f"{name}, {label}")


def test_aer_works_on_the_held_array_in_place() -> None:
    """No copy in or out: the array held is the one Aer updated, and Aer keeps no hold on it
    after the request."""
    from qiskit_aer.quantum_info.states.aer_state import AerState

    backend = AerBackend()
    psi = final_state(scrambled(16, np.random.default_rng(1)))
    held = backend.from_array(psi.copy())
    after = backend.apply(held, [gates.H(3), gates.CNOT(3, 9), gates.RZ(15, 0.3)])
    assert after is held
    expected = Circuit(16)
    expected.add([gates.H(3), gates.CNOT(3, 9), gates.RZ(15, 0.3)])
    np.testing.assert_allclose(after, evolved(psi, expected.gates), atol=1e-12)
    assert not AerState._data_in_use


def test_flushes_of_a_few_gates_fuse_and_end_in_diagonals_safely(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """16 qubits (Aer fuses above 14) in flushes of two groups of gates, many ending in
    diagonal gates (RZ, CZ, CU1), where Aer 0.18.2's diagonal fusion reads past the end of a
    flush: these circuits crashed the process (one time in four or five) before every flush
    ended in an identity."""
    monkeypatch.setattr(mapped, "GROUP_WORK", 2 * 2**16)
    rng = np.random.default_rng(0)
    layered = Circuit(16)
    for _ in range(10):
        for q in range(16):
            layered.add([gates.RX(q, rng.uniform(0, 6)), gates.RY(q, rng.uniform(0, 6)),
                         gates.RZ(q, rng.uniform(0, 6))])
        layered.add(gates.CZ(q, q + 1) for q in range(15))
    qft = Circuit(16)
    for i in range(16):
        qft.add(gates.H(i))
        qft.add(gates.CU1(j, i, np.pi / 2 ** (j - i)) for j in range(i + 1, 16))
    for circuit in (layered, qft) * 4:  # what lies past the end differs from run to run
        assert len(mapped.flushes(circuit.gates, 16)) > 10
        state = AerBackend().apply(AerBackend().zero_state(16), circuit.gates)
        np.testing.assert_allclose(state, final_state(circuit), atol=1e-12)


def test_probabilities_and_samples_come_from_aer_in_qibos_qubit_order() -> None:
    """Aer sums the probabilities of up to 16 qubits, and draws few shots of more qubits
    (mapped.py): outcomes in the order asked, the first qubit most significant."""
    from qibo_backend_aer.simulator import AER_PROBABILITY_QUBITS, AER_SAMPLER_SHOTS

    backend = AerBackend()
    rng = np.random.default_rng(4)
    psi = final_state(scrambled(18, rng))
    state = backend.from_array(psi.copy())
    reference = ReferenceBackend()
    for qubits in ([5], [17, 0, 9], list(rng.permutation(18)[:AER_PROBABILITY_QUBITS])):
        np.testing.assert_allclose(backend.probabilities(state, qubits),
                                   reference.probabilities(psi, qubits), atol=1e-12)

    basis = np.zeros(2**18, dtype=complex)  # |x>: every shot reads x
    x = int(rng.integers(2**18))
    basis[x] = 1
    qubits = [int(q) for q in rng.permutation(18)[:17]]
    expected = int("".join(str((x >> (17 - q)) & 1) for q in qubits), 2)
    drawn = backend.sample(backend.from_array(basis), qubits, AER_SAMPLER_SHOTS, seed=2)
    assert drawn.outcomes.tolist() == [expected] and drawn.counts.tolist() == [AER_SAMPLER_SHOTS]

    half = AerBackend().apply(backend.zero_state(18), [gates.H(0), *(gates.CNOT(0, q)
                                                                     for q in range(1, 18))])
    drawn = backend.sample(half, list(range(18)), 1000, seed=7)
    assert drawn.outcomes.tolist() == [0, 2**18 - 1] and drawn.counts.sum() == 1000
    assert 350 < drawn.counts[0] < 650
    assert (backend.sample(half, list(range(18)), 1000, seed=7).counts == drawn.counts).all()
    assert (backend.sample(half, list(range(18)), 1000, seed=8).counts != drawn.counts).any()


def test_a_cancelled_run_stops_at_the_next_flush_and_lets_the_array_go() -> None:
    """24 qubits: four groups of gates on five qubits a flush (mapped.flushes: 20 rotations),
    a checkpoint between flushes. The run stops at the checkpoint that raises, and Aer hands
    the array back (AerState keeps none)."""
    from qiskit_aer.quantum_info.states.aer_state import AerState

    backend = AerBackend()
    long = [gates.RX(q % 24, 0.1 * q) for q in range(3000)]
    assert mapped.flushes(long, 24)[:4] == [0, 20, 40, 60]
    seen: list[int] = []

    def checkpoint(done: int = 0, total: int = 0) -> None:
        seen.append(done)
        if len(seen) == 3:
            raise RequestCancelled("cancelled")
    with pytest.raises(RequestCancelled):
        backend.apply(backend.zero_state(24), long, checkpoint)
    assert seen == [0, 20, 40]
    assert not AerState._data_in_use
    small = backend.apply(backend.zero_state(2), [gates.H(0), gates.CNOT(0, 1)])
    np.testing.assert_allclose(small, [2**-0.5, 0, 0, 2**-0.5], atol=1e-12)


def test_a_long_spawned_run_cancelled_stops_within_a_few_flushes() -> None:
    """22 qubits, 60 flushes of 80 rotations (16 groups of 5): cancelled at its first progress
    report, the run reports no progress past a few flushes more (the bound leaves room for a
    slow client), and the same handle answers the next request."""
    n, size = 22, 80
    circuit = Circuit(n)
    circuit.add(gates.RY(k % n, 0.01 * k) for k in range(60 * size))
    assert mapped.flushes(circuit.gates, n)[:3] == [0, size, 2 * size]
    reports: list[int] = []
    with connect("aer") as handle:
        def progress(done: int, total: int) -> None:
            reports.append(done)
            if len(reports) == 1:
                handle.cancel()  # from the thread that reads the replies: at once
        with pytest.raises(RequestCancelled):
            handle.execute(circuit, progress=progress)
        assert reports and max(reports) - reports[0] <= 10 * size  # of 60 flushes
        bell = Circuit(2)
        bell.add([gates.H(0), gates.CNOT(0, 1), gates.M(0, 1)])
        frequencies = handle.execute(bell, nshots=10).frequencies()
        assert sum(frequencies.values()) == 10 and set(frequencies) <= {"00", "11"}


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
    from qibo_backend_aer.runs import SHOTS_PER_RUN

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
