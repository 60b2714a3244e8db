"""AerBackend: gates run by Qiskit Aer's statevector method, natively where Qiskit has the gate
with qibo's meaning, as unitaries otherwise.

Qiskit numbers qubits from the least significant bit; qubit q here is Qiskit qubit n-1-q, which
makes Aer's state vector index equal ours. A held state lives in this process as an array;
applying gates to it is one Aer run that starts from it (`set_statevector`) and saves the result.
Density matrices likewise, by Aer's density_matrix method (AerDensityMatrices); noise on
vectors by Aer's own trajectories, every shot in one run (AerBackend.shots).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from qibo_core.circuit import Channel, Circuit, Gate, Operation
from qibo_core.protocol import InitializeOptions, Precision
from qibo_core.server import Backend, Checkpoint, DensityMatrices, density, no_checkpoint
from qibo_core.server.backend import Counts, Work

from . import __version__

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
"""Gates per Aer run: cancellation is checked between runs."""
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


class AerBackend(Backend):
    """States are NumPy arrays; every `apply` is an Aer run from the array."""

    name = "aer"
    version = __version__
    precisions = (Precision.COMPLEX128, Precision.COMPLEX64)
    native_gates = frozenset(_NATIVE) | {"I"}
    baseline_bytes = 96 * 2**20  # measured: 61 MiB

    def __init__(self) -> None:
        super().__init__()
        if importlib.util.find_spec("qiskit_aer") is None:
            raise ImportError("the qiskit-aer package is not installed in this Python "
                              f"({sys.executable}): pip install qiskit-aer")
        self._simulators: dict[str, Any] = {}
        self._natives: dict[str, frozenset[str]] = {}
        """The gates of _NATIVE each method runs (density_matrix has fewer)."""

    def configure(self, options: InitializeOptions) -> None:
        super().configure(options)
        self._simulators, self._natives = {}, {}

    @property
    def devices(self) -> tuple[str, ...]:  # type: ignore[override]
        """What Aer finds here: "CPU", and "GPU" where a CUDA device and Aer's GPU build are."""
        from qiskit_aer import AerSimulator
        return tuple(AerSimulator().available_devices())

    def simulator(self, method: str) -> Any:
        """The AerSimulator of `method` with this session's precision, device and threads."""
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

    @property
    def threads(self) -> int:
        import os
        return self.options.threads or os.cpu_count() or 1

    working = {**Backend.working, Work.GATES: 5.0, Work.READ: 1.0, Work.LOAD: 0.0,
               Work.COPY: 1.0}
    """Measured (docs/decisions.md, "Memory"): an Aer run holds four or five copies of the
    state besides the one it starts from (the instruction's, Aer's own, the saved one, its
    conversion); a state never run is made into an array when it is read or copied."""

    def zero_state(self, nqubits: int) -> _Zero:
        return _Zero(nqubits)

    def from_array(self, amplitudes: np.ndarray) -> np.ndarray:
        return amplitudes

    def apply(self, state: np.ndarray | _Zero, gates: Sequence[Gate],
              checkpoint: Checkpoint = no_checkpoint) -> np.ndarray | _Zero:
        n = state.nqubits if isinstance(state, _Zero) else state.size.bit_length() - 1
        return self.run(STATEVECTOR, state, gates, n, checkpoint)

    def shots(self, circuit: Circuit, start: np.ndarray | _Zero, nshots: int, seed: int | None,
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
        if not isinstance(start, _Zero):
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
        final = np.asarray(result.data()["statevector"], dtype=self.dtype)
        aer.clear()  # see `run`
        outcomes = sorted(counted)
        return final, Counts(np.array(outcomes, dtype=np.int64),
                             np.array([counted[o] for o in outcomes], dtype=np.int64))

    def density_matrices(self) -> AerDensityMatrices:
        return AerDensityMatrices(self)

    def run(self, method: str, state: np.ndarray | _Zero, ops: Sequence[Operation], n: int,
            checkpoint: Checkpoint) -> np.ndarray | _Zero:
        """`ops` applied to `state` (a vector, or a density matrix under DENSITY_MATRIX) by
        Aer runs of `method`, each starting from the state the last one saved."""
        self.simulator(method)  # imports qiskit_aer, which adds the set/save methods
        from qiskit import QuantumCircuit

        channels = any(isinstance(op, Channel) for op in ops)
        for start in range(0, len(ops), CHUNK):
            checkpoint(start, len(ops))
            circuit = QuantumCircuit(n)
            norm = 1.0
            if isinstance(state, _Zero):  # Aer starts from |0...0> by itself
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

    def to_array(self, state: np.ndarray | _Zero) -> np.ndarray:
        if isinstance(state, _Zero):
            zero = np.zeros(2**state.nqubits, dtype=self.dtype)
            zero[0] = 1
            return zero
        return state


class _Zero:
    """|0...0> of `nqubits`, not made into an array until it is read: Aer starts from it."""

    def __init__(self, nqubits: int) -> None:
        self.nqubits = nqubits


class AerDensityMatrices(DensityMatrices):
    """Density matrices as Aer's density_matrix method holds them, channels run by Aer's Kraus
    instruction; between requests rho is a 2**n x 2**n array (Aer's index order equals ours,
    as for vectors)."""

    working = {**DensityMatrices.working, Work.GATES: 5.0}
    """As AerBackend.working: a run holds copies of rho; `matrix` gives rho itself, which Aer
    may have saved in Fortran order (a read copies it), or makes |0...0><0...0|."""

    def __init__(self, backend: AerBackend) -> None:
        self.backend = backend

    def start(self, nqubits: int, initial: np.ndarray | None) -> np.ndarray | _Zero:
        if initial is None:
            return _Zero(nqubits)
        return np.outer(initial, initial.conj()) if initial.ndim == 1 else initial

    def apply(self, rho: np.ndarray | _Zero, ops: Sequence[Operation], nqubits: int,
              checkpoint: Checkpoint) -> np.ndarray | _Zero:
        return self.backend.run(DENSITY_MATRIX, rho, ops, nqubits, checkpoint)

    def matrix(self, rho: np.ndarray | _Zero, nqubits: int) -> np.ndarray:
        if isinstance(rho, _Zero):
            zero = np.zeros((2**nqubits, 2**nqubits), dtype=self.backend.dtype)
            zero[0, 0] = 1
            return zero
        return rho


def _set_density_matrix(rho: np.ndarray, n: int) -> Any:
    """Aer's set_density_matrix instruction without qiskit's validation of rho, an
    eigendecomposition (seconds at 12 qubits) of a matrix the session has checked or Aer made."""
    from qiskit.circuit import Instruction

    return Instruction("set_density_matrix", n, 0, [rho])
