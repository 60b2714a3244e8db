"""Benchmark target 11: small circuits, where most real programs live, against the simulator in
its own process and a line's round trip to a child process (all measured in the same run).

The anchors are Qulacs used directly (a QuantumCircuit built once, run on a fresh state) and
qibo's own NumPy backend; "round trips" is how many echo round trips to a child process the
spawned call costs above Qulacs in its own process.
"""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
from call_breakdown import call_breakdown
from circuits import qft
from timing import Row, measure, measure_pair, row

from qibo_backend_numpy import NumpyBackend
from qibo_backend_qulacs import QulacsBackend
from qibo_core import Circuit, Handle, connect, gates

TARGET = "11 small circuits"
ECHO = "import sys\nfor line in sys.stdin:\n    sys.stdout.write(line)\n    sys.stdout.flush()"


def echo_round_trip(repeats: int) -> list[float]:
    """Seconds of one line to a Python child process and back."""
    child = subprocess.Popen([sys.executable, "-c", ECHO], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None
    stdin, stdout = child.stdin, child.stdout

    def once() -> None:
        stdin.write(b"x\n")
        stdin.flush()
        stdout.readline()

    try:
        return measure(once, repeats)
    finally:
        stdin.close()
        child.wait()
        stdout.close()


def qulacs_qft(n: int) -> Any:
    """qibo's QFT as a Qulacs circuit (Qulacs' qubit n-1-q is our q)."""
    import qulacs  # after bench.py chose how OpenMP threads wait
    circuit = qulacs.QuantumCircuit(n)
    for i in range(n):
        circuit.add_gate(qulacs.gate.H(n - 1 - i))
        for j in range(i + 1, n):
            angle = math.pi / 2 ** (j - i)
            phase = qulacs.gate.DenseMatrix([n - 1 - i], np.diag([1, np.exp(1j * angle)]))
            phase.add_control_qubit(n - 1 - j, 1)
            circuit.add_gate(phase)
    for i in range(n // 2):
        circuit.add_gate(qulacs.gate.SWAP(n - 1 - i, i))
    return circuit


def qulacs_state(circuit: Any, n: int) -> Callable[[], np.ndarray]:
    import qulacs

    def run() -> np.ndarray:
        state = qulacs.QuantumState(n)
        circuit.update_quantum_state(state)
        return state.get_vector()
    return run


def qulacs_shots(circuit: Any, n: int, nshots: int) -> Callable[[], Counter[int]]:
    """Shots counted by outcome, as a Qulacs user counts them (integers, no bitstrings)."""
    import qulacs

    def run() -> Counter[int]:
        state = qulacs.QuantumState(n)
        circuit.update_quantum_state(state)
        return Counter(state.sampling(nshots))
    return run


def per_call(n: int, repeats: int, echo: float) -> list[Row]:
    """QFT on n qubits: execute and state(), and 1000 shots and frequencies()."""
    circuit, measured = qft(n), qft(n)
    measured.add(gates.M(*range(n)))
    anchor_state = qulacs_state(qulacs_qft(n), n)
    anchor_shots = qulacs_shots(qulacs_qft(n), n, 1000)
    rows = []
    handles = {"qulacs in process": connect(QulacsBackend()),
               "numpy in process": connect(NumpyBackend()),
               "qulacs spawned": connect("qulacs"), "numpy spawned": connect("numpy")}
    try:
        for name, handle in handles.items():
            for what, run, anchor in (
                    ("state()", lambda h=handle: h.execute(circuit).state(), anchor_state),
                    ("1000 shots", lambda h=handle: h.execute(measured, nshots=1000)
                     .frequencies(), anchor_shots)):
                times, anchors = measure_pair(run, anchor, repeats)
                above = statistics.median(times) - statistics.median(anchors)
                rows.append(row(TARGET, f"QFT {n}q {what}, {name}", times,
                                "Qulacs in its own process", anchors,
                                note=f"{above * 1e3:.3f} ms above: {above / echo:.1f} round "
                                     "trips"))
    finally:
        for handle in handles.values():
            handle.close()
    return rows


def random_circuit(n: int, ngates: int, rng: np.random.Generator) -> Circuit:
    """`ngates` random one- and two-qubit gates of the common kinds, then every qubit
    measured."""
    c = Circuit(n)
    for _ in range(ngates):
        a, b = (int(q) for q in rng.choice(n, 2, replace=False))
        kind = rng.integers(6)
        c.add([gates.H(a), gates.RX(a, rng.uniform(-3, 3)), gates.RZ(a, rng.uniform(-3, 3)),
               gates.U3(a, *rng.uniform(-3, 3, 3)), gates.CNOT(a, b),
               gates.CZ(a, b)][kind])
    c.add(gates.M(*range(n)))
    return c


def qulacs_of(circuit: Circuit) -> Any:
    """The same circuit built with Qulacs' own gates, as a Qulacs user would."""
    import qulacs
    n = circuit.nqubits
    q = qulacs.QuantumCircuit(n)
    for gate in circuit.gates:
        target = [n - 1 - t for t in gate.qubits]
        if gate.name == "H":
            q.add_gate(qulacs.gate.H(*target))
        elif gate.name in ("RX", "RZ"):
            q.add_gate(getattr(qulacs.gate, f"Rot{gate.name[1]}")(*target, gate.params["theta"]))
        elif gate.name == "CNOT":
            q.add_gate(qulacs.gate.CNOT(*target))
        elif gate.name == "CZ":
            q.add_gate(qulacs.gate.CZ(*target))
        else:
            q.add_gate(qulacs.gate.DenseMatrix(target, gate.matrix()))
    return q


def many_circuits(count: int, n: int, ngates: int, repeats: int) -> list[Row]:
    """`count` different circuits with 1000 shots each: built and run by Qulacs in its own
    process, against qibo-core on one spawned Qulacs handle."""
    rng = np.random.default_rng(11)
    circuits = [random_circuit(n, ngates, rng) for _ in range(count)]

    def anchor() -> list[Counter[int]]:
        return [qulacs_shots(qulacs_of(c), n, 1000)() for c in circuits]

    rows = []
    with connect("qulacs") as handle:
        def loop(h: Handle = handle) -> list[Any]:
            return [h.execute(c, nshots=1000).frequencies() for c in circuits]

        def many(h: Handle = handle) -> list[Any]:
            return [r.frequencies() for r in h.execute_many(circuits, nshots=1000)]

        for what, run in (("a loop of execute", loop), ("one execute_many", many)):
            times, anchors = measure_pair(run, anchor, repeats)
            rows.append(row(TARGET, f"{count} different {n}q circuits of {ngates} gates, 1000 "
                            f"shots each, {what} on one spawned qulacs handle", times,
                            "Qulacs in its own process, the same loop", anchors))
    return rows


def qibo_vqe(n: int, repeats: int) -> list[Row]:
    """A qibo user's variational loop: set the parameters of a hardware-efficient ansatz, run
    it, take an XXZ Hamiltonian's expectation on the state; on qibo's NumPy backend, and on
    qibo-core's spawned through the backend `qibo.set_backend("qibo_core", platform=...)` makes
    (each run on its backend object, so that both alternate in one process)."""
    import qibo
    from qibo import hamiltonians
    from qibo.backends import construct_backend

    rng = np.random.default_rng(3)
    circuit = qibo.Circuit(n)
    for _ in range(2):
        circuit.add(qibo.gates.RY(q, theta=0.0) for q in range(n))
        circuit.add(qibo.gates.RZ(q, theta=0.0) for q in range(n))
        circuit.add(qibo.gates.CZ(q, q + 1) for q in range(n - 1))
    nparams = len(circuit.get_parameters())
    numpy = construct_backend("numpy")
    hamiltonian = hamiltonians.XXZ(n, backend=numpy)  # dense, as qibo makes it by default

    def evaluation(backend: Any) -> Callable[[], float]:
        def run() -> float:
            circuit.set_parameters(rng.uniform(-math.pi, math.pi, nparams))
            state = backend.execute_circuit(circuit).state()
            return float(hamiltonian.expectation_from_state(state))
        return run

    rows = []
    for platform in ("qulacs", "numpy"):
        ours = construct_backend("qibo_core", platform=platform)
        times, anchors = measure_pair(evaluation(ours), evaluation(numpy), repeats)
        rows.append(row(TARGET, f"qibo VQE {n}q evaluation, qibo_core {platform} spawned",
                        times, "qibo's NumPy backend", anchors))
    return rows


def small_circuits(quick: bool, repeats: int) -> list[Row]:
    echo = statistics.median(echo_round_trip(repeats * 50))
    rows = [row(TARGET, "a line to a child process and back (the round trip)", [echo])]
    calls = repeats * (10 if quick else 100)
    for n in (6,) if quick else (6, 10):
        rows += per_call(n, calls, echo)
    rows += call_breakdown(6, calls)
    rows += many_circuits(10 if quick else 100, 8, 50, repeats)
    for n in (6,) if quick else (6, 12):
        rows += qibo_vqe(n, calls)
    return rows
