"""qibo.set_backend("qibo_core", platform=...): qibo circuits on our spawned backends."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

qibo = pytest.importorskip("qibo")
from qibo import gates as qibo_gates  # noqa: E402

from qibo_core.circuit.gates import GATES  # noqa: E402
from qibo_core.client import close_shared  # noqa: E402

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
                 qibo_gates.ResetChannel(1, [0.1, 0.2]), qibo_gates.PhaseDampingChannel(2, 0.2)])
    theirs = np.array(qibo.backends.NumpyBackend().execute_circuit(circuit).state())
    ours = np.array(circuit().state())
    np.testing.assert_allclose(ours, theirs, atol=1e-10)


def test_what_is_not_supported_says_so(platform: str) -> None:
    noisy = qibo.Circuit(1)
    noisy.add([qibo_gates.H(0), qibo_gates.PauliNoiseChannel(0, [("X", 0.1)]), qibo_gates.M(0)])
    with pytest.raises(NotImplementedError, match="noise on a state vector"):
        noisy(nshots=10)


def test_collapsing_measurements_are_refused_not_ignored(platform: str) -> None:
    circuit = qibo.Circuit(1)
    circuit.add([qibo_gates.H(0), qibo_gates.M(0, collapse=True), qibo_gates.H(0)])
    with pytest.raises(NotImplementedError, match=r"M\(collapse=True\) on qubits \[0\] is not"):
        circuit(nshots=10)


def test_an_unknown_platform_is_refused_when_set() -> None:
    from qibo_core import BackendNotFound
    with pytest.raises(BackendNotFound, match="installed backends: .*numpy.*qulacs"):
        qibo.set_backend("qibo_core", platform="numpi")
    assert qibo.get_backend().name != "qibo_core"


def test_meta_backend_lists_installed_backends() -> None:
    from qibo_core import MetaBackend
    assert {"numpy", "qulacs"} <= set(MetaBackend().list_available())
