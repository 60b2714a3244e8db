"""Aer runs (AerSimulator.run) from a held state, for what an AerState cannot hold
(mapped.py): state vectors in single precision or on a GPU, and density matrices, whose
channels fuse only as superoperators, which runs take and an AerState does not. Noise on state
vectors also runs here, as Aer's own trajectories.

A run starts from the held array (set_statevector, set_density_matrix: Aer takes it in element
by element, about 160 ns an entry) or from |0...0>, and saves the state at its end. Qiskit
numbers qubits from the least significant bit; qubit q here is Qiskit's n-1-q, which makes Aer's
index equal ours.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from qibo_core.circuit import Channel, Circuit, Gate, Operation
from qibo_core.protocol import InitializeOptions, Precision
from qibo_core.server import Checkpoint, density
from qibo_core.server.backend import Counts

from .mapped import Zero

if TYPE_CHECKING:
    from collections.abc import Sequence

# Qiskit gates with qibo's matrix, sign and global phase, taking (qubits..., *params) in our
# order (controls first, then targets: Qiskit's own order once each is mapped), among those Aer
# runs without transpiling.
_NATIVE: dict[str, str] = {
    "H": "h", "X": "x", "Y": "y", "Z": "z", "S": "s", "SDG": "sdg", "T": "t", "TDG": "tdg",
    "SX": "sx", "SXDG": "sxdg", "RX": "rx", "RY": "ry", "RZ": "rz", "U1": "p", "CNOT": "cx",
    "CY": "cy", "CZ": "cz", "SWAP": "swap", "TOFFOLI": "ccx", "CRX": "crx",
    "CRY": "cry", "CRZ": "crz", "CU1": "cp", "RXX": "rxx", "RYY": "ryy", "RZZ": "rzz",
}
CHUNK = 2000
"""Operations per run: a cancelled request stops after the run under way. Shorter runs would
stop sooner, but each takes the state in again: 24-qubit layered circuits in complex64, in runs
of 256 gates, took 1.20x the CPU time and 2.1 GiB at peak, against 0.48 GiB in one run."""
SHOTS_PER_RUN = 10_000
"""The most shots per Aer run of a noisy circuit: cancellation is checked between runs."""
RUN_STATES = 4
"""States of a noisy Aer run beyond one a shot: with shot branching Aer keeps about a state per
shot whose trajectory has parted from the others (measured: 32 shots of 22 qubits with a
channel on each qubit, 34 states), and the final state is saved and converted."""
RUN_BYTES = 2**27
"""Aer's own memory in a run, beyond its states (measured: about 100 MiB)."""
UNIT_NORM = 1e-12
"""A vector this close to norm 1 is handed to Aer as it is."""
MAX_SHOTS = 10**6
"""The most shots of a noisy circuit run as Aer's trajectories; more go to the session's shot
engine, which draws them by branch (Aer samples each shot: 2**40 would take days)."""
STATEVECTOR, DENSITY_MATRIX = "statevector", "density_matrix"
"""Aer's methods used here, which are also the names of the save instructions and results."""


class Runs:
    """AerSimulators of the session's precision, device and threads, one per method."""

    def __init__(self, options: InitializeOptions) -> None:
        self.options = options
        self._simulators: dict[str, Any] = {}
        self._natives: dict[str, frozenset[str]] = {}
        """The gates of _NATIVE each method runs (density_matrix has fewer)."""

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.options.precision)

    def simulator(self, method: str) -> Any:
        """The AerSimulator of `method`."""
        if method not in self._simulators:
            from qiskit_aer import AerSimulator
            single = self.options.precision == Precision.COMPLEX64
            simulator = AerSimulator(method=method, precision="single" if single else "double",
                                     device=self.options.device or "CPU",
                                     max_parallel_threads=self.options.threads or 0)
            # Aer also logs each failed run; a failure that stands is raised by result.data().
            logging.getLogger("qiskit_aer.backends.aerbackend").setLevel(logging.ERROR)
            basis = set(simulator.configuration().basis_gates)
            self._simulators[method] = simulator
            self._natives[method] = frozenset(ours for ours, theirs in _NATIVE.items()
                                              if theirs in basis)
        return self._simulators[method]

    def run(self, method: str, state: np.ndarray | Zero, ops: Sequence[Operation], n: int,
            checkpoint: Checkpoint) -> np.ndarray | Zero:
        """`ops` applied to `state` (a vector, or a density matrix under DENSITY_MATRIX) by
        Aer runs of `method`, each starting from the state the last one saved."""
        self.simulator(method)  # imports qiskit_aer, which adds the set/save methods
        from qiskit import QuantumCircuit

        channels = any(isinstance(op, Channel) for op in ops)
        for start in range(0, len(ops), CHUNK):
            checkpoint(start, len(ops))
            circuit = QuantumCircuit(n)
            norm = 1.0
            if isinstance(state, Zero):  # Aer starts from |0...0> by itself
                pass
            elif method == DENSITY_MATRIX:
                circuit.append(_set_density_matrix(state, n), circuit.qubits)
            else:
                # Aer takes only unit vectors; the session also applies Kraus operators and
                # projections: every operator is linear, so the norm is taken out here and put
                # back after.
                norm = float(np.linalg.norm(state))
                if norm == 0:
                    return state
                if abs(norm - 1) < UNIT_NORM:
                    norm = 1.0  # no copy divided by it
                circuit.set_statevector(state if norm == 1.0 else state / norm)
            for op in ops[start:start + CHUNK]:
                self._add(circuit, op, n, method)
            getattr(circuit, f"save_{method}")()
            result = self._result(method, circuit, channels=channels, shots=1)
            circuit.clear()  # a QuantumCircuit is in a reference cycle: its copy of the state
            # would wait for the garbage collector (a state more per request, measured)
            state = np.asarray(result.data()[method], dtype=self.dtype)
            if norm != 1.0:
                state *= norm
        return state

    def shots(self, circuit: Circuit, start: np.ndarray | Zero, nshots: int, seed: int | None,
              checkpoint: Checkpoint, memory: int) -> tuple[np.ndarray, Counts] | None:
        """Channels on a state vector as Aer's own trajectories: its Kraus instruction picks an
        operator in each shot. Collapsing measurements, resets and conditioned gates are left
        to the session's shot engine, as are more than MAX_SHOTS shots, and circuits whose runs
        of SHOTS_PER_RUN shots (or all of them) would need more than `memory`."""
        total = max(nshots, 1)
        per_run = min(total, SHOTS_PER_RUN)
        states = per_run + RUN_STATES
        if (nshots > MAX_SHOTS or states * (self.dtype.itemsize << circuit.nqubits) + RUN_BYTES
                > memory or not all(
                    isinstance(op, Channel) or (isinstance(op, Gate) and op.condition is None)
                    for op in circuit.gates)):
            return None
        self.simulator(STATEVECTOR)  # imports qiskit_aer, which adds the set/save methods
        from qiskit import QuantumCircuit

        n, measured = circuit.nqubits, circuit.measured_qubits
        aer = QuantumCircuit(n, len(measured))
        if not isinstance(start, Zero):
            aer.set_statevector(start / np.linalg.norm(start))
        del start
        for op in circuit.gates:
            self._add(aer, op, n, STATEVECTOR)
        aer.save_statevector()  # the state of one shot
        for i, q in enumerate(measured):  # clbit 0 is the last character of an outcome's key
            aer.measure(n - 1 - q, len(measured) - 1 - i)
        rng = np.random.default_rng(seed)
        counted: dict[int, int] = {}
        for done in range(0, total, per_run):
            checkpoint(done, total)
            count = min(per_run, total - done)
            # Shot branching: shots share the state until a Kraus operator sets them apart.
            result = self._result(STATEVECTOR, aer, channels=True, shots=count,
                                  seed_simulator=int(rng.integers(2**63)),
                                  shot_branching_enable=True)
            if nshots:
                for key, times in result.get_counts().items():
                    outcome = int(key, 2)
                    counted[outcome] = counted.get(outcome, 0) + times
        final = np.ascontiguousarray(result.data()["statevector"], dtype=self.dtype)
        aer.clear()  # see `run`
        outcomes = sorted(counted)
        return final, Counts(np.array(outcomes, dtype=np.int64),
                             np.array([counted[o] for o in outcomes], dtype=np.int64))

    def _result(self, method: str, circuit: Any, *, channels: bool, **options: Any) -> Any:
        """The result of an Aer run of `circuit`. Aer 0.18.2 may fail to fuse channels
        (qiskit-aer issue 2455: "heevx ... check that input matrix is really hermitian"), in
        its first step: a run with channels that fails runs again without fusion."""
        result = self.simulator(method).run(circuit, **options).result()
        if channels and not result.success:
            result = self.simulator(method).run(circuit, fusion_enable=False, **options).result()
        return result

    def _add(self, circuit: Any, op: Operation, n: int, method: str) -> None:
        """`op` appended to `circuit` for a run of `method` (qubit q is Qiskit's n-1-q)."""
        if isinstance(op, Channel):
            # Aer's own instructions, the qubits reversed as for unitaries: a superoperator on
            # a density matrix (Aer fused it where it failed to fuse the same Kraus
            # operators), Kraus operators that each shot picks from on a vector. Built
            # directly: qiskit's Kraus and SuperOp would check again what Channel checked,
            # a quarter of a noisy 10-qubit density matrix's time.
            from qiskit.circuit import Instruction
            qubits = [n - 1 - q for q in reversed(op.qubits)]
            if method == DENSITY_MATRIX:
                d = len(op.kraus[0])  # qiskit's superoperator: sum conj(K) (x) K, ours swapped
                ours = density.superoperator(op.kraus).reshape(d, d, d, d)
                matrix = np.ascontiguousarray(ours.transpose(1, 0, 3, 2)).reshape(d * d, d * d)
                circuit.append(Instruction("superop", len(qubits), 0, [matrix]), qubits)
            else:
                kraus = [np.array(k, order="C") for k in op.kraus]
                circuit.append(Instruction("kraus", len(qubits), 0, kraus), qubits)
            return
        gate = op
        assert isinstance(gate, Gate)
        if gate.name == "I" and not gate.controls:
            return
        if gate.name in self._natives[method] and not gate.extra_controls and not gate.is_dagger:
            getattr(circuit, _NATIVE[gate.name])(*gate.params.values(),
                                                 *(n - 1 - q for q in gate.qubits))
            return
        from qiskit.circuit.library import UnitaryGate

        # The matrix on controls and targets (the controls most significant, the identity
        # unless all are 1: Aer runs no controlled unitary), and UnitaryGate takes its first
        # qubit as the least significant: the qubits go reversed.
        matrix = gate.matrix()
        qubits = [*gate.controls, *gate.targets]
        if gate.controls:
            full = np.eye(2 ** len(qubits), dtype=complex)
            full[-len(matrix):, -len(matrix):] = matrix
            matrix = full
        # An array of its own: given a C-ordered view of a transposed array (as Unitary's matrix
        # may be), Aer read the memory under it and applied the transpose.
        own = np.array(matrix, dtype=complex, order="C", copy=True)
        circuit.append(UnitaryGate(own, check_input=False),
                       [n - 1 - q for q in reversed(qubits)])


def _set_density_matrix(rho: np.ndarray, n: int) -> Any:
    """Aer's set_density_matrix instruction without qiskit's validation of rho, an
    eigendecomposition (seconds at 12 qubits) of a matrix the session has checked or Aer made."""
    from qiskit.circuit import Instruction

    return Instruction("set_density_matrix", n, 0, [rho])
