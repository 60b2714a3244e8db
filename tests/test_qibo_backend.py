"""qibo.set_backend("qibo_core", platform=...): qibo circuits on our spawned backends."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pytest

qibo = pytest.importorskip("qibo")
from qibo import gates as qibo_gates  # noqa: E402

from qibo_core.circuit.gates import GATES  # noqa: E402
from qibo_core.client import close_shared  # noqa: E402
from qibo_core.errors import CircuitError  # noqa: E402

SHARED_NAMES = sorted(n for n in GATES if hasattr(qibo_gates, n))


@pytest.fixture(params=["numpy", "qulacs"])
def platform(request: pytest.FixtureRequest) -> Iterator[str]:
    qibo.set_backend("qibo_core", platform=request.param)
    yield request.param
    qibo.set_backend("numpy")
    close_shared()


def qibo_gate(name: str, rng: np.random.Generator, nqubits: int) -> object:
    cls = getattr(qibo_gates, name)
    ours = GATES[name]
    size = ours.ncontrols + (ours.ntargets or 2)
    qubits = [int(q) for q in rng.permutation(nqubits)[:size]]
    if name == "Unitary":
        z = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
        return cls(np.linalg.qr(z)[0], *qubits)
    return cls(*qubits, *rng.uniform(-math.pi, math.pi, len(ours.param_names)))


def scrambled(nqubits: int, rng: np.random.Generator) -> object:
    circuit = qibo.Circuit(nqubits)
    for q in range(nqubits):
        circuit.add(qibo_gates.U3(q, *rng.uniform(-math.pi, math.pi, 3)))
    for q in range(nqubits - 1):
        circuit.add(qibo_gates.CNOT(q, q + 1))
    return circuit


def test_every_shared_gate_kind_matches_qibo_numpy(platform: str) -> None:
    assert len(SHARED_NAMES) >= 40
    rng = np.random.default_rng(7)
    reference = qibo.backends.NumpyBackend()
    for seed, name in enumerate(SHARED_NAMES):
        base = qibo_gate(name, np.random.default_rng(seed), 5)
        variants = [base, base.dagger()]
        if not base.control_qubits:
            spare = [q for q in range(5) if q not in base.qubits]
            twin = qibo_gate(name, np.random.default_rng(seed), 5)  # controlled_by changes it
            variants.append(twin.controlled_by(spare[0]))
        for gate in variants:
            circuit = scrambled(5, rng)
            circuit.add(gate)
            ours = np.array(circuit().state())
            theirs = np.array(reference.execute_circuit(circuit).state())
            np.testing.assert_allclose(ours, theirs, atol=1e-10, err_msg=f"{name} on {platform}")


def test_results_are_qibo_objects(platform: str) -> None:
    circuit = qibo.Circuit(2)
    circuit.add([qibo_gates.H(0), qibo_gates.CNOT(0, 1), qibo_gates.M(0, 1, register_name="m")])
    result = circuit(nshots=500)
    assert type(result).__name__ == "CircuitResult"
    frequencies = result.frequencies()
    assert sum(frequencies.values()) == 500 and set(frequencies) <= {"00", "11"}
    plain = qibo.Circuit(1)
    plain.add(qibo_gates.X(0))
    assert type(plain()).__name__ == "QuantumState"
    assert qibo.get_backend().name == "qibo_core"


def test_initial_states_as_qibo_gives_them(platform: str) -> None:
    circuit = qibo.Circuit(2)
    circuit.add([qibo_gates.H(0), qibo_gates.CNOT(0, 1)])
    initial = np.array([0, 1, 1, 0]) / np.sqrt(2)
    theirs = qibo.backends.NumpyBackend().execute_circuit(circuit, initial_state=initial.copy())
    ours = qibo.get_backend().execute_circuit(circuit, initial_state=initial.copy())
    np.testing.assert_allclose(np.array(ours.state()), np.array(theirs.state()), atol=1e-12)


def test_noisy_density_matrices_as_qibo_gives_them(platform: str) -> None:
    circuit = qibo.Circuit(3, density_matrix=True)
    circuit.add([qibo_gates.H(0), qibo_gates.CNOT(0, 1), qibo_gates.RY(2, 0.7)])
    circuit.add([qibo_gates.DepolarizingChannel((1,), 0.2),
                 qibo_gates.AmplitudeDampingChannel(0, 0.3),
                 qibo_gates.PauliNoiseChannel(2, [("X", 0.1), ("Z", 0.05)]),
                 qibo_gates.ResetChannel(1, [0.1, 0.2]), qibo_gates.PhaseDampingChannel(2, 0.2),
                 qibo_gates.ThermalRelaxationChannel(0, [1.0, 1.5, 0.3, 0.2])])
    theirs = np.array(qibo.backends.NumpyBackend().execute_circuit(circuit).state())
    ours = np.array(circuit().state())
    np.testing.assert_allclose(ours, theirs, atol=1e-10)


def seeded_runs(build: Callable[[], object], nshots: int) -> tuple[object, object]:
    """The result of a circuit on qibo's NumPy backend and on ours, both seeded alike (each
    run builds its own: qibo keeps measurement results in the circuit's gates)."""
    reference, ours = qibo.backends.NumpyBackend(), qibo.get_backend()
    reference.set_seed(11)
    theirs = reference.execute_circuit(build(), nshots=nshots)
    ours.set_seed(11)
    return theirs, ours.execute_circuit(build(), nshots=nshots)


def test_noise_on_a_vector_is_drawn_shot_by_shot_as_qibo_draws_it(platform: str) -> None:
    def noisy() -> object:
        circuit = qibo.Circuit(2)
        circuit.add([qibo_gates.H(0), qibo_gates.PauliNoiseChannel(0, [("X", 0.2), ("Z", 0.1)]),
                     qibo_gates.CNOT(0, 1), qibo_gates.M(0, 1)])
        return circuit
    theirs, ours = seeded_runs(noisy, 40)
    np.testing.assert_array_equal(ours.samples(), theirs.samples())
    assert ours.frequencies() == theirs.frequencies()


def test_collapsing_measurements_parametrize_later_gates(platform: str) -> None:
    def collapsing() -> object:
        circuit = qibo.Circuit(2)
        circuit.add(qibo_gates.H(0))
        outcome = circuit.add(qibo_gates.M(0, collapse=True))
        circuit.add([qibo_gates.RX(1, theta=np.pi * outcome.symbols[0]), qibo_gates.M(0, 1)])
        return circuit
    theirs, ours = seeded_runs(collapsing, 30)
    np.testing.assert_array_equal(ours.samples(), theirs.samples())
    assert set(ours.frequencies()) == {"00", "11"}


def test_callbacks_fused_gates_and_final_state_as_qibo_gives_them(platform: str) -> None:
    def run(backend: object) -> tuple[list[float], np.ndarray, np.ndarray]:
        entropy = qibo.callbacks.EntanglementEntropy([0])
        circuit = scrambled(3, np.random.default_rng(5))
        circuit.add(qibo_gates.CallbackGate(entropy))
        circuit.add([qibo_gates.CNOT(2, 0), qibo_gates.CallbackGate(entropy)])
        fused = circuit.fuse()
        backend.execute_circuit(circuit)  # type: ignore[attr-defined]
        state = np.array(circuit.final_state.state())
        return [float(v) for v in entropy.results], state, np.array(
            backend.execute_circuit(fused).state())  # type: ignore[attr-defined]
    theirs, ours = run(qibo.backends.NumpyBackend()), run(qibo.get_backend())
    np.testing.assert_allclose(ours[0], theirs[0], atol=1e-10)
    assert theirs[0][1] > 0.01
    np.testing.assert_allclose(ours[1], theirs[1], atol=1e-10)
    np.testing.assert_allclose(ours[2], theirs[2], atol=1e-10)


def test_a_unitary_channel_on_several_qubit_sets_as_qibo_gives_it(platform: str) -> None:
    circuit = qibo.Circuit(3, density_matrix=True)
    circuit.add([qibo_gates.H(0), qibo_gates.CNOT(0, 2)])
    circuit.add(qibo_gates.UnitaryChannel(
        [(2,), (0, 1)], [(0.2, np.array([[0, 1], [1, 0]])), (0.3, np.eye(4)[[0, 2, 1, 3]])]))
    theirs = np.array(qibo.backends.NumpyBackend().execute_circuit(circuit).state())
    np.testing.assert_allclose(np.array(circuit().state()), theirs, atol=1e-12)


def test_what_is_not_supported_says_so(platform: str) -> None:
    circuit = qibo.Circuit(1)
    circuit.add(qibo_gates.Unitary(np.array([[1, 1], [0, 1]]), 0, check_unitary=False))
    with pytest.raises(CircuitError, match="not unitary"):
        circuit()
    damped = qibo.Circuit(1)
    damped.add([qibo_gates.AmplitudeDampingChannel(0, 0.3), qibo_gates.M(0)])
    with pytest.raises(NotImplementedError, match="AmplitudeDampingChannel on a state vector"):
        damped(nshots=10)
    huge = qibo.Circuit(40)
    huge.add(qibo_gates.H(0))
    with pytest.raises(RuntimeError, match="State does not fit"):
        huge()


@pytest.mark.backends("qulacs")
def test_an_unknown_platform_is_refused_when_set() -> None:
    from qibo_core import BackendNotFound
    with pytest.raises(BackendNotFound, match="installed backends: .*numpy.*qulacs"):
        qibo.set_backend("qibo_core", platform="numpi")
    assert qibo.get_backend().name != "qibo_core"


@pytest.mark.backends("qulacs")
def test_meta_backend_lists_installed_backends() -> None:
    from qibo_core import MetaBackend
    assert {"numpy", "qulacs"} <= set(MetaBackend().list_available())
