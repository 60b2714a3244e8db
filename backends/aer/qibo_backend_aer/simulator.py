"""AerBackend: Qiskit Aer's statevector and density_matrix methods behind the Backend interface.

A state is a NumPy array in this process (or |0...0> not made yet). In double precision on the
CPU, Aer applies gates to a state vector in place, without a copy (mapped.py: AerState), in
flushes with the request's checkpoint in between. Otherwise, and for density matrices, gates go
by Aer runs from the array (runs.py), several for a long circuit. Noise on vectors runs
as Aer's own trajectories, every shot in Aer runs (AerBackend.shots).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

import numpy as np

from qibo_core.circuit import Circuit, Gate, Operation
from qibo_core.protocol import InitializeOptions, Precision
from qibo_core.server import Backend, Checkpoint, DensityMatrices, no_checkpoint
from qibo_core.server.backend import Counts, Work, marginal

from . import __version__, mapped
from .mapped import Zero
from .runs import DENSITY_MATRIX, STATEVECTOR, Runs

AER_PROBABILITY_QUBITS = 16
"""Probabilities of at most this many qubits are summed by Aer (it answers a list of 2**k
floats); of more, by NumPy from one array of |amplitude|^2."""
AER_SAMPLER_SHOTS = 1024
"""Shots of more than AER_PROBABILITY_QUBITS qubits, at most this many, are drawn by Aer's
sampler (each shot walks 1/1024 of the state); more are drawn from the probabilities."""


class AerBackend(Backend):
    """States are NumPy arrays that Aer updates in place or runs from."""

    name = "aer"
    version = __version__
    precisions = (Precision.COMPLEX128, Precision.COMPLEX64)
    native_gates = mapped.NATIVE
    """Those of the default precision, complex128 (runs.py has its own)."""
    baseline_bytes = 96 * 2**20  # measured: 61 MiB

    def __init__(self) -> None:
        super().__init__()
        if importlib.util.find_spec("qiskit_aer") is None:
            raise ImportError("the qiskit-aer package is not installed in this Python "
                              f"({sys.executable}): pip install qiskit-aer")
        self.runs = Runs(self.options)

    def configure(self, options: InitializeOptions) -> None:
        super().configure(options)
        self.runs = Runs(options)

    @property
    def devices(self) -> tuple[str, ...]:  # type: ignore[override]
        """What Aer finds here: "CPU", and "GPU" where a CUDA device and Aer's GPU build are."""
        from qiskit_aer import AerSimulator
        return tuple(AerSimulator().available_devices())

    @property
    def threads(self) -> int:
        import os
        return self.options.threads or os.cpu_count() or 1

    @property
    def maps(self) -> bool:
        """Whether Aer works on state vectors in place (mapped.py): in double precision on the
        CPU."""
        return (self.options.precision == Precision.COMPLEX128
                and (self.options.device or "CPU") == "CPU")

    @property
    def working(self) -> dict[Work, float]:  # type: ignore[override]
        """Measured (docs/decisions.md, "Memory"): in place, gates take no copy of the state;
        an Aer run holds four or five copies besides the one it starts from (the
        instruction's, Aer's own, the saved one, its conversion). A state never run is made
        into an array when it is read or copied."""
        gates = 0.0 if self.maps else 5.0
        return {**Backend.working, Work.GATES: gates, Work.READ: 1.0, Work.LOAD: 0.0,
                Work.COPY: 1.0}

    def zero_state(self, nqubits: int) -> Zero:
        return Zero(nqubits)

    def from_array(self, amplitudes: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(amplitudes)

    def apply(self, state: np.ndarray | Zero, gates: Sequence[Gate],
              checkpoint: Checkpoint = no_checkpoint) -> np.ndarray | Zero:
        n = state.nqubits if isinstance(state, Zero) else state.size.bit_length() - 1
        if not gates:
            return state
        if self.maps:
            return mapped.evolve(state, gates, n, self.options.threads, checkpoint)
        return self.runs.run(STATEVECTOR, state, gates, n, checkpoint)

    def shots(self, circuit: Circuit, start: np.ndarray | Zero, nshots: int, seed: int | None,
              checkpoint: Checkpoint, memory: int) -> tuple[np.ndarray, Counts] | None:
        return self.runs.shots(circuit, start, nshots, seed, checkpoint, memory)

    def density_matrices(self) -> AerDensityMatrices:
        return AerDensityMatrices(self)

    def to_array(self, state: np.ndarray | Zero) -> np.ndarray:
        if isinstance(state, Zero):
            zero = np.zeros(2**state.nqubits, dtype=self.dtype)
            zero[0] = 1
            return zero
        return state

    def probabilities(self, state: np.ndarray | Zero, qubits: Sequence[int]) -> np.ndarray:
        if self.maps and not isinstance(state, Zero) and len(qubits) <= AER_PROBABILITY_QUBITS:
            return mapped.probabilities(state, qubits, self.options.threads)
        squares: np.ndarray = np.abs(self.to_array(state))
        np.square(squares, out=squares)
        if list(qubits) == list(range(squares.size.bit_length() - 1)):
            return squares.astype(np.float64, copy=False)
        return marginal(squares, qubits)

    def sample(self, state: np.ndarray | Zero, qubits: Sequence[int], nshots: int,
               seed: int | None) -> Counts:
        if (self.maps and not isinstance(state, Zero) and len(qubits) > AER_PROBABILITY_QUBITS
                and nshots <= AER_SAMPLER_SHOTS):
            return mapped.sample(state, qubits, nshots, seed, self.options.threads)
        return super().sample(state, qubits, nshots, seed)


class AerDensityMatrices(DensityMatrices):
    """Density matrices as Aer's density_matrix method holds them, by Aer runs (runs.py):
    gates as Aer's own or unitaries, channels as superoperators; between requests rho is a
    2**n x 2**n array (Aer's index order equals ours, as for vectors)."""

    working = {**DensityMatrices.working, Work.GATES: 5.0}
    """As AerBackend.working: a run holds copies of rho; `matrix` gives rho itself, which Aer
    may have saved in Fortran order (a read copies it), or makes |0...0><0...0|."""

    def __init__(self, backend: AerBackend) -> None:
        self.backend = backend

    def start(self, nqubits: int, initial: np.ndarray | None) -> np.ndarray | Zero:
        if initial is None:
            return Zero(nqubits)
        return np.outer(initial, initial.conj()) if initial.ndim == 1 else initial

    def apply(self, rho: np.ndarray | Zero, ops: Sequence[Operation], nqubits: int,
              checkpoint: Checkpoint) -> np.ndarray | Zero:
        return self.backend.runs.run(DENSITY_MATRIX, rho, ops, nqubits, checkpoint)

    def matrix(self, rho: np.ndarray | Zero, nqubits: int) -> np.ndarray:
        if isinstance(rho, Zero):
            zero = np.zeros((2**nqubits, 2**nqubits), dtype=self.backend.dtype)
            zero[0, 0] = 1
            return zero
        return rho

