"""The backend interface: what a simulator implements, in this process or behind `serve`.

A backend only simulates. It receives gates already validated (qubits in range, parameters
finite, matrices unitary) and never sees the wire: `Session` does the checking and keeps the
states by id, for the server and for in-process handles alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

import numpy as np

from ..circuit import GATES, Circuit, Gate, Operation
from ..protocol import Feature, InitializeOptions, Precision
from . import sharable


def marginal(probabilities: np.ndarray, qubits: Sequence[int]) -> np.ndarray:
    """The probabilities of the outcomes of `qubits` (in that order, the first most
    significant), from those of every outcome."""
    n = probabilities.size.bit_length() - 1
    tensor = probabilities.reshape((2,) * n)
    others = tuple(q for q in range(n) if q not in qubits)
    summed = tensor.sum(axis=others) if others else tensor
    kept = sorted(qubits)
    ordered = np.transpose(summed, [kept.index(q) for q in qubits])
    return ordered.reshape(-1).astype(np.float64)


def marginal_probabilities(amplitudes: np.ndarray, qubits: Sequence[int]) -> np.ndarray:
    """Probabilities of the outcomes of `qubits` (in that order, the first most significant)."""
    return marginal(np.abs(amplitudes) ** 2, qubits)


def drawn_counts(probabilities: np.ndarray, nshots: int, seed: int | None) -> np.ndarray:
    """Counts of each outcome over `nshots` shots drawn from `probabilities` (renormalised)."""
    return np.random.default_rng(seed).multinomial(nshots, probabilities / probabilities.sum())


class Checkpoint(Protocol):
    """What a backend calls between gates: `done` of `total` gates applied so far."""

    def __call__(self, done: int = 0, total: int = 0) -> None: ...


def no_checkpoint(done: int = 0, total: int = 0) -> None:
    """The checkpoint of a request nobody can cancel or watch."""


class DensityMatrices(ABC):
    """A backend's own density matrices (Backend.density_matrices). Without them, the session
    holds rho of n qubits as a vector of 2n qubits that the backend's `apply` evolves
    (server/density.py)."""

    @abstractmethod
    def start(self, nqubits: int, initial: np.ndarray | None) -> Any:
        """rho = |0...0><0...0|, or `initial`: a vector psi (rho = |psi><psi|) or a density
        matrix, already checked (Hermitian, trace 1, of the backend's dtype)."""

    @abstractmethod
    def apply(self, rho: Any, ops: Sequence[Operation], nqubits: int,
              checkpoint: Checkpoint) -> Any:
        """Gates (U rho U^dagger) and channels (sum_i K_i rho K_i^dagger) in order; the
        checkpoint as in Backend.apply."""

    @abstractmethod
    def matrix(self, rho: Any, nqubits: int) -> np.ndarray:
        """rho as a 2**n x 2**n array, qubit 0 the most significant bit of rows and columns."""

    def probabilities(self, rho: Any, nqubits: int, qubits: Sequence[int]) -> np.ndarray:
        """The outcome probabilities of `qubits` (in that order), from rho's diagonal."""
        return marginal(np.real(np.diagonal(self.matrix(rho, nqubits))).clip(min=0), qubits)


class Backend(ABC):
    """A state-vector simulator. States are whatever object the simulator likes."""

    name: ClassVar[str]
    version: ClassVar[str] = "unknown"
    """The backend's own version (its distribution's), shown by `qibo-core backends`."""
    native_gates: ClassVar[frozenset[str]] = frozenset()
    """Gates run by a kernel of their own; the others become dense matrices with controls."""
    precisions: ClassVar[tuple[str, ...]] = (Precision.COMPLEX128, Precision.COMPLEX64)
    devices: tuple[str, ...] = ("CPU",)
    """The devices it simulates on, the default first (a backend may find them at start)."""
    max_qubits: ClassVar[int] = 34

    def __init__(self) -> None:
        self.options = InitializeOptions()
        self.sharable = False
        """Set by the session once its client takes arrays as sealed memory (protocol version
        4): `new_amplitudes` then gives memory whose pages a read can hand over."""

    def configure(self, options: InitializeOptions) -> None:
        """Take the options of `initialize`; already checked against `precisions` and
        `devices`."""
        self.options = options

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.options.precision)

    @property
    def threads(self) -> int:
        """How many threads the simulator uses."""
        return 1

    @property
    def gates(self) -> list[str]:
        """Every gate this backend accepts: by default the whole gate set."""
        return sorted(GATES)

    def close(self) -> None:  # noqa: B027 - optional: most backends hold nothing to release
        """Release what the backend holds beyond its states (threads, pools). Safe twice."""

    def new_amplitudes(self, count: int, dtype: np.dtype | None = None) -> np.ndarray:
        """`count` zeros of `dtype` (default: the backend's) for a state: allocate states with
        this rather than np.zeros, and a client that reads them gets these pages themselves,
        not a copy (server/sharable.py)."""
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        return sharable.zeros(count, dtype) if self.sharable else np.zeros(count, dtype=dtype)

    @staticmethod
    def handed_over(array: np.ndarray) -> bool:
        """Whether a read handed `array`'s pages (from new_amplitudes) to the client: a buffer
        the backend would write all over is better taken anew then (the next read of it is
        then zero-copy again, where writing here would copy page by page)."""
        return sharable.handed_over(array)

    def state_bytes(self, nqubits: int) -> int:
        """The memory a state of `nqubits` takes: checked before one is allocated."""
        return int(2**nqubits * self.dtype.itemsize)

    @abstractmethod
    def zero_state(self, nqubits: int) -> Any:
        """A new state |0...0>."""

    @abstractmethod
    def apply(self, state: Any, gates: Sequence[Gate],
              checkpoint: Checkpoint = no_checkpoint) -> Any:
        """Apply `gates` in order; return the state (the same object, or a new one).

        Call `checkpoint(done, total)` between gates, every few milliseconds of work: it raises
        RequestCancelled when the client cancelled the request (the state may be left
        part-way; the session discards it), lets the server notice other input meanwhile, and
        reports progress to a client that asked for it.
        """

    def from_array(self, amplitudes: np.ndarray) -> Any:
        """A state holding `amplitudes` (already checked: 2**n of them, of the backend's dtype,
        normalized), for circuits that do not start from |0...0>. Optional: a backend that
        defines it offers the feature "initialState"."""
        raise NotImplementedError(f"the {self.name} backend takes no initial states")

    @property
    def features(self) -> list[str]:
        """The optional features this backend offers (a session leaves out those of a later
        protocol version than it speaks)."""
        offered = [Feature.SAMPLES,  # the session draws shots from `sample` for every backend
                   Feature.EXPECTATION]  # and runs prepared circuits with `apply`
        if type(self).from_array is not Backend.from_array:  # the shot engine copies states
            offered += [Feature.INITIAL_STATE, Feature.MID_CIRCUIT_MEASUREMENT,
                        Feature.DENSITY_MATRIX, Feature.CHANNELS]
        return sorted(offered)

    def density_matrices(self) -> DensityMatrices | None:
        """Optional: density matrices held this backend's own way; None (the default) lets the
        session hold them as vectors of twice the qubits, evolved by `apply`."""
        return None

    def shots(self, circuit: Circuit, start: Any, nshots: int, seed: int | None,
              checkpoint: Checkpoint) -> tuple[Any, np.ndarray] | None:
        """Optional: a circuit whose shots differ midway (circuit.is_stochastic: channels on a
        state vector, collapsing measurements, resets), run from `start` this backend's own
        way: one shot's final state, and every shot's measured bits (uint8 [nshots, measured
        qubits], in measurement order; the shots in random order). None (the default) lets the
        session's shot engine run it (server/shots.py)."""
        return None

    def prepare(self, prepared: Any, checkpoint: Checkpoint = no_checkpoint) -> Any:
        """Optional: what this backend builds once for a prepared circuit (a
        server.prepared.Prepared), kept as its `native`; None builds nothing. Call
        `checkpoint()` every few milliseconds of building, as `apply` does."""
        return None

    def expectations(self, prepared: Any, sets: np.ndarray, observable: Any,
                     checkpoint: Checkpoint) -> np.ndarray | None:
        """Optional: the observable's expectation value after each row of `sets` (a Prepared,
        float64 [sets, values], an Observable), computed this backend's own way; None lets the
        session bind each set, run it and evaluate the final state."""
        return None

    @abstractmethod
    def to_array(self, state: Any) -> np.ndarray:
        """The amplitudes as a flat array, qubit 0 the most significant bit."""

    def probabilities(self, state: Any, qubits: Sequence[int]) -> np.ndarray:
        """Probabilities of the outcomes of `qubits` (in that order, the first most significant)."""
        return marginal_probabilities(self.to_array(state), qubits)

    def sample(self, state: Any, qubits: Sequence[int], nshots: int,
               seed: int | None) -> np.ndarray:
        """Counts of each outcome of `qubits` over `nshots` shots (length 2**len(qubits))."""
        return drawn_counts(self.probabilities(state, qubits), nshots, seed)
