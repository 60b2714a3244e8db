"""Simulation depth (protocol version 2): initial states and per-shot samples, on every backend,
and a backend of version 1 kept working for what it supports."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import bell

from qibo_core import Circuit, CircuitError, Handle, InvalidParams, UsageError, gates
from qibo_core.client.spawned import ProcessTransport
from qibo_core.protocol import Feature


def random_state(nqubits: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    state = rng.normal(size=2**nqubits) + 1j * rng.normal(size=2**nqubits)
    return state / np.linalg.norm(state)


def layered(nqubits: int) -> Circuit:
    circuit = Circuit(nqubits)
    circuit.add(gates.RY(q, 0.3 + q) for q in range(nqubits))
    circuit.add(gates.CNOT(q, q + 1) for q in range(nqubits - 1))
    circuit.add(gates.U3(q, 0.1, 0.2 * q, -0.4) for q in range(nqubits))
    return circuit


@pytest.mark.parametrize("nqubits", [3, 14])  # 14 qubits cross through a segment when spawned
def test_circuits_start_from_an_initial_state(handle: Handle, reference: Handle,
                                              nqubits: int) -> None:
    initial = random_state(nqubits, nqubits)
    circuit = layered(nqubits)
    expected = reference.execute(circuit, initial_state=initial).state()
    np.testing.assert_allclose(handle.execute(circuit, initial_state=initial).state(), expected,
                               atol=1e-10)
    state = handle.new_state(nqubits, initial=initial).apply(*circuit.gates)
    np.testing.assert_allclose(state.read(), expected, atol=1e-10)
    assert Feature.INITIAL_STATE in handle.info.capabilities.features


@pytest.mark.parametrize("initial, message", [
    (np.ones(3) / np.sqrt(3), r"has shape \(4,\), not \(3,\)"),
    (np.array([1, 1, 0, 0]), "norm is 1.41421356237, not 1"),
    (np.array([np.nan, 1, 0, 0]), "NaN or infinite"),
])
def test_a_wrong_initial_state_is_refused_by_name(handle: Handle, initial: np.ndarray,
                                                  message: str) -> None:
    with pytest.raises(InvalidParams, match=message):
        handle.execute(bell(), initial_state=initial)
    assert handle.execute(bell(), nshots=5).frequencies()  # still serving


def test_samples_are_every_shot_and_count_to_the_frequencies(handle: Handle) -> None:
    circuit = Circuit(3)
    circuit.add([gates.H(0), gates.CNOT(0, 1), gates.RY(2, 1.0),
                 gates.M(1, 0, register_name="a"), gates.M(2, register_name="b")])
    result = handle.execute(circuit, nshots=2000, seed=5, samples=True)
    shots = result.samples()
    assert isinstance(shots, np.ndarray) and shots.shape == (2000, 3) and shots.dtype == np.uint8
    rows = ["".join(map(str, row)) for row in shots]
    assert {k: rows.count(k) for k in set(rows)} == dict(result.frequencies())
    assert (shots[:, 0] == shots[:, 1]).all()  # the Bell pair, measured as (1, 0)
    per_register = result.samples(registers=True)
    assert isinstance(per_register, dict) and per_register["b"].shape == (2000, 1)
    integers = result.samples(binary=False)
    assert isinstance(integers, np.ndarray) and set(integers) <= {0, 1, 6, 7}
    again = handle.execute(circuit, nshots=2000, seed=5, samples=True).samples()
    assert np.array_equal(again, shots)  # a seed fixes every shot
    with pytest.raises(UsageError, match="samples=True"):
        handle.execute(circuit, nshots=10).samples()


V1_BACKEND = """
import json, sys
refused = json.loads(sys.stdin.readline())
asked = refused["params"]["protocolVersion"]
assert asked > 1
print(json.dumps({"jsonrpc": "2.0", "id": refused["id"], "error": {"code": -32001,
      "message": f"protocol version {asked} is not supported", "data": {"supported": [1],
      "requested": asked}}}), flush=True)
request = json.loads(sys.stdin.readline())
assert request["params"]["protocolVersion"] == 1
print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {
    "protocolVersion": 1, "serverInfo": {"name": "old", "version": "0"},
    "capabilities": {"gates": ["H"], "nativeGates": [], "maxQubits": 2,
                     "precisions": ["complex128"], "stateEncodings": ["base64"],
                     "threads": 1}}}), flush=True)
for line in sys.stdin:
    request = json.loads(line)
    if request.get("method") != "shutdown":
        sys.exit("received " + request.get("method", "?"))  # nothing version 2 may arrive
    print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": None}), flush=True)
"""


def test_a_version_1_backend_is_spoken_to_in_version_1() -> None:
    with Handle(ProcessTransport([sys.executable, "-c", V1_BACKEND],
                               name="old")) as handle:
        assert handle.protocol_version == 1 and handle.info.capabilities.features == []
        with pytest.raises(UsageError, match=r"protocol version 1\) does not offer"):
            handle.execute(bell(), initial_state=np.array([1, 0, 0, 0]))
        with pytest.raises(UsageError, match="'samples'"):
            handle.execute(bell(), nshots=10, samples=True)
        assert handle.alive  # nothing was sent


def test_a_version_3_backend_answers_version_1_and_2_clients() -> None:
    from rawpipe import Pipe

    from qibo_core.client.discovery import find_backend
    pipe = Pipe([find_backend("numpy")])
    result = pipe.call("initialize", {"protocolVersion": 1})["result"]
    assert result["protocolVersion"] == 1 and "features" not in result["capabilities"]
    assert pipe.close() == 0
    pipe = Pipe([find_backend("numpy")])
    result = pipe.call("initialize", {"protocolVersion": 2})["result"]
    assert result["protocolVersion"] == 2
    assert set(result["capabilities"]["features"]) == {
        "channels", "densityMatrix", "initialState", "midCircuitMeasurement", "samples"}
    assert pipe.close() == 0


# ---- mid-circuit measurement ---------------------------------------------------------------

def test_a_collapse_acts_on_the_state_and_later_gates_see_it(handle: Handle) -> None:
    """H, measure with collapse, CNOT copies the outcome: q1 always equals q0's record."""
    circuit = Circuit(2)
    circuit.add([gates.H(0), gates.M(0, collapse=True, register_name="mid"), gates.CNOT(0, 1),
                 gates.M(1, register_name="end")])
    result = handle.execute(circuit, nshots=4000, seed=3, samples=True)
    counts = result.frequencies()
    assert set(counts) == {"00", "11"} and abs(counts["00"] - 2000) < 200
    shots = result.samples()
    assert (shots[:, 0] == shots[:, 1]).all()
    state = result.state()  # the last branch's final state: |00> or |11>
    assert np.isclose(abs(state[0]) + abs(state[3]), 1)


def test_shots_share_the_prefix_and_branches(handle: Handle) -> None:
    """Three collapses on a 3-qubit superposition: 8 branches, not 10000 simulations; the
    statistics are those of independent shots."""
    circuit = Circuit(3)
    circuit.add([gates.RY(q, 1.0 + q) for q in range(3)])
    circuit.add(gates.M(q, collapse=True) for q in range(3))
    circuit.add([gates.RX(q, 0.5) for q in range(3)])
    circuit.add(gates.M(0, 1, 2))
    counts = handle.execute(circuit, nshots=10000, seed=11).frequencies()
    first = {k[:3]: 0 for k in counts}
    for key, n in counts.items():
        first[key[:3]] += n
    p1 = np.sin((1.0 + np.arange(3)) / 2) ** 2  # P(qubit q reads 1) after RY(1 + q)
    for bits, n in first.items():
        expected = np.prod([p1[q] if b == "1" else 1 - p1[q] for q, b in enumerate(bits)])
        assert abs(n / 10000 - expected) < 0.02


def test_reset_and_a_conditioned_gate(handle: Handle) -> None:
    circuit = Circuit(2)
    circuit.add([gates.H(0), gates.M(0, collapse=True, register_name="m"),
                 gates.X(1).c_if("m", 1), gates.Reset(0), gates.M(0, 1, register_name="end")])
    counts = handle.execute(circuit, nshots=1000, seed=1).frequencies(registers=True)
    assert set(counts["end"]) == {"00", "01"}  # q0 reset; q1 flipped exactly when m read 1
    joint = handle.execute(circuit, nshots=1000, seed=1).frequencies()
    assert set(joint) == {"000", "101"}


def test_a_collapse_without_shots_gives_one_shots_state(handle: Handle) -> None:
    circuit = Circuit(1)
    circuit.add([gates.H(0), gates.M(0, collapse=True), gates.H(0)])
    state = handle.execute(circuit, seed=4).state()
    assert np.allclose(np.abs(state), 2**-0.5)  # |+> or |->, never |0> or |1>


def test_mid_circuit_measurements_through_qasm() -> None:
    program = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg m[1];
creg c[2];
h q[0];
measure q[0] -> m[0];
if(m==1) x q[1];
reset q[0];
measure q -> c;
"""
    circuit = Circuit.from_qasm(program)
    assert [type(op).__name__ for op in circuit.gates] == ["H", "M", "X", "Reset"]
    again = Circuit.from_qasm(circuit.to_qasm())
    assert again == circuit
    counts = circuit.execute(backend="numpy", nshots=500, seed=2).frequencies()
    assert set(counts) == {"000", "101"}


def test_what_a_stream_cannot_do_is_refused(handle: Handle) -> None:
    circuit = Circuit(2)
    circuit.add([gates.M(0, collapse=True, register_name="m"), gates.X(1).c_if("m")])
    state = handle.new_state(2)
    state.apply(circuit.gates[1])  # type: ignore[arg-type]
    with pytest.raises(Exception, match="a gate with a condition needs the measurement"):
        state.read()
    bad = Circuit(1)
    with pytest.raises(Exception, match="no register 'nope' was measured"):
        bad.add(gates.X(0).c_if("nope"))
    closed = Circuit(2)
    closed.add(gates.M(1))
    with pytest.raises(Exception, match="add the closing measurements last"):
        closed.add(gates.M(0, collapse=True))


# ---- density matrices and noise ------------------------------------------------------------

def exact_density(circuit: Circuit, rho: np.ndarray) -> np.ndarray:
    """rho after `circuit`, with full 2^n x 2^n operators: the plainest way there is."""
    from qibo_core.circuit import Channel
    from qibo_core.testing.reference import operator
    n = circuit.nqubits
    for op in circuit.gates:
        if isinstance(op, Channel):
            full = [_embed(k, op.qubits, n) for k in op.kraus]
            rho = sum(f @ rho @ f.conj().T for f in full)
        else:
            u = operator(op, n)
            rho = u @ rho @ u.conj().T
    return rho


def _embed(k: np.ndarray, qubits: tuple[int, ...], n: int) -> np.ndarray:
    """k on `qubits` as a 2^n x 2^n matrix (the first qubit most significant)."""
    full = np.zeros((2**n, 2**n), dtype=complex)
    m = len(qubits)
    for col in range(2**n):
        bits = [(col >> (n - 1 - q)) & 1 for q in range(n)]
        sub_in = sum(bits[q] << (m - 1 - i) for i, q in enumerate(qubits))
        for sub_out in range(2**m):
            out = list(bits)
            for i, q in enumerate(qubits):
                out[q] = (sub_out >> (m - 1 - i)) & 1
            full[sum(b << (n - 1 - q) for q, b in enumerate(out)), col] += k[sub_out, sub_in]
    return full


def noisy(nqubits: int, density_matrix: bool) -> Circuit:
    circuit = Circuit(nqubits, density_matrix=density_matrix)
    for q in range(nqubits):
        circuit.add([gates.RY(q, 0.4 + q), gates.DepolarizingChannel(q, 0.1)])
    circuit.add(gates.CNOT(0, 1))
    circuit.add([gates.AmplitudeDampingChannel(0, 0.3), gates.PhaseDampingChannel(1, 0.2),
                 gates.PauliNoiseChannel(2, [("X", 0.1), ("Z", 0.05)]),
                 gates.ResetChannel(1, [0.1, 0.2]),
                 gates.ThermalRelaxationChannel(2, [1.0, 0.5, 0.1, 0.2]),
                 gates.DepolarizingChannel((0, 2), 0.2), gates.CRX(2, 0, 0.7)])
    return circuit


def test_a_noisy_density_matrix_is_exact(handle: Handle) -> None:
    circuit = noisy(3, density_matrix=True)
    rho0 = np.zeros((8, 8), dtype=complex)
    rho0[0, 0] = 1
    expected = exact_density(circuit, rho0)
    result = handle.execute(circuit)
    np.testing.assert_allclose(result.state(), expected, atol=1e-10)
    np.testing.assert_allclose(result.probabilities([2, 0]),
                               np.diag(expected).real.reshape(2, 2, 2).sum(axis=1).T.reshape(-1),
                               atol=1e-10)


def test_channels_follow_qibo() -> None:
    """Each channel against qibo's NumPy backend, on a qubit of a 3-qubit density matrix (the
    thermal relaxation on a 1-qubit one: qibo's own result for it on qubit 2 of 3 departs from
    its Kraus operators, which ours equal)."""
    qibo = pytest.importorskip("qibo")
    backend = qibo.backends.NumpyBackend()
    cases = [
        (lambda: gates.DepolarizingChannel((0, 2), 0.2),
         lambda: qibo.gates.DepolarizingChannel((0, 2), 0.2)),
        (lambda: gates.AmplitudeDampingChannel(1, 0.3),
         lambda: qibo.gates.AmplitudeDampingChannel(1, 0.3)),
        (lambda: gates.PhaseDampingChannel(2, 0.2), lambda: qibo.gates.PhaseDampingChannel(2, 0.2)),
        (lambda: gates.PauliNoiseChannel(2, [("X", 0.1), ("Z", 0.05)]),
         lambda: qibo.gates.PauliNoiseChannel(2, [("X", 0.1), ("Z", 0.05)])),
        (lambda: gates.ResetChannel(1, [0.1, 0.2]), lambda: qibo.gates.ResetChannel(1, [0.1, 0.2])),
    ]
    for ours_channel, their_channel in cases:
        ours, theirs = Circuit(3, density_matrix=True), qibo.Circuit(3, density_matrix=True)
        for q in range(3):
            ours.add([gates.RY(q, 0.4 + q), gates.RZ(q, 0.3 * q)])
            theirs.add([qibo.gates.RY(q, 0.4 + q), qibo.gates.RZ(q, 0.3 * q)])
        ours.add([gates.CNOT(0, 1), ours_channel()])
        theirs.add([qibo.gates.CNOT(0, 1), their_channel()])
        expected = np.array(backend.execute_circuit(theirs).state())
        np.testing.assert_allclose(ours.execute(backend="numpy").state(), expected, atol=1e-10)
    for parameters in ([1.0, 0.5, 0.1, 0.2], [1.0, 1.5, 0.3, 0.2], [2.0, 4.0, 0.5]):
        thermal = Circuit(1, density_matrix=True)
        thermal.add([gates.RY(0, 1.1), gates.ThermalRelaxationChannel(0, parameters)])
        their_thermal = qibo.Circuit(1, density_matrix=True)
        their_thermal.add([qibo.gates.RY(0, 1.1),
                           qibo.gates.ThermalRelaxationChannel(0, parameters)])
        np.testing.assert_allclose(thermal.execute(backend="numpy").state(),
                                   np.array(backend.execute_circuit(their_thermal).state()),
                                   atol=1e-10, err_msg=str(parameters))
    with pytest.raises(CircuitError, match="not a physical channel"):
        gates.ThermalRelaxationChannel(0, [1.0, 2.5, 0.1])


def test_noise_on_state_vectors_runs_as_trajectories(handle: Handle, reference: Handle) -> None:
    """Sampled trajectories give the density matrix's statistics."""
    circuit = noisy(3, density_matrix=False)
    circuit.add(gates.M(0, 1, 2))
    exact = reference.execute(noisy(3, density_matrix=True)).probabilities([0, 1, 2])
    counts = handle.execute(circuit, nshots=20000, seed=7).frequencies()
    from qibo_core.testing.statistics import misfit
    assert not misfit(dict(counts), exact, 20000)


def test_density_matrix_initial_states_and_bad_channels(handle: Handle) -> None:
    circuit = Circuit(1, density_matrix=True)
    circuit.add(gates.X(0))
    rho = np.array([[0.75, 0.25], [0.25, 0.25]])
    np.testing.assert_allclose(handle.execute(circuit, initial_state=rho).state(),
                               [[0.25, 0.25], [0.25, 0.75]], atol=1e-12)
    with pytest.raises(InvalidParams, match="trace is 2"):
        handle.execute(circuit, initial_state=2 * rho)
    with pytest.raises(Exception, match="not trace-preserving"):
        gates.KrausChannel(0, [np.eye(2), np.eye(2)])
    with pytest.raises(Exception, match="probability in"):
        gates.AmplitudeDampingChannel(0, 1.5)
    with pytest.raises(Exception, match="sum to 1.2"):
        gates.PauliNoiseChannel(0, [("X", 0.6), ("Y", 0.6)])
    with pytest.raises(Exception, match="a density-matrix circuit has no shots to collapse"):
        circuit.add(gates.M(0, collapse=True))
    with pytest.raises(Exception, match="outside this 1-qubit circuit"):
        circuit.add(gates.DepolarizingChannel(3, 0.1))
    assert handle.execute(bell(), nshots=5).frequencies()  # still serving


def test_a_noise_model_puts_channels_after_the_gates_it_names(reference: Handle) -> None:
    circuit = Circuit(2, density_matrix=True)
    circuit.add([gates.H(0), gates.CNOT(0, 1), gates.RX(1, 0.3), gates.M(0, 1)])
    noise = gates.NoiseModel().add(lambda q: gates.DepolarizingChannel(q, 0.1),
                                   gates=["CNOT", "RX"])
    noisy = noise.apply(circuit)
    assert [type(op).__name__ for op in noisy.gates] == [
        "H", "CNOT", "DepolarizingChannel", "RX", "DepolarizingChannel"]
    assert noisy.gates[2].qubits == (0, 1) and noisy.measurements == circuit.measurements
    by_hand = Circuit(2, density_matrix=True)
    by_hand.add([gates.H(0), gates.CNOT(0, 1), gates.DepolarizingChannel((0, 1), 0.1),
                 gates.RX(1, 0.3), gates.DepolarizingChannel(1, 0.1)])
    np.testing.assert_allclose(reference.execute(noisy).state(),
                               reference.execute(by_hand).state(), atol=1e-12)
