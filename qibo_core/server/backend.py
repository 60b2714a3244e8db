"""The backend interface: what a simulator implements, in this process or behind `serve`.

A backend only simulates. It receives gates already validated (qubits in range, parameters
finite, matrices unitary) and never sees the wire: `Session` does the checking and keeps the
states by id, for the server and for in-process handles alike.
"""

from __future__ import annotations

import enum
import functools
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple, Protocol

import numpy as np

from ..circuit import GATES, Circuit, Gate, Operation
from ..protocol import Feature, InitializeOptions, Precision

# Backends import `marginal` and `marginal_probabilities` from here (`as`: re-exported).
from ..protocol.state_maths import CHUNK_QUBITS
from ..protocol.state_maths import marginal as marginal
from ..protocol.state_maths import marginal_probabilities as marginal_probabilities
from . import sharable

DENSE_OUTCOMES = 2**16
"""Up to this many outcomes, shots are drawn by one multinomial over all of them; above, by one
over blocks of this many outcomes, then one within each block drawn from."""


class Work(enum.Enum):
    """What a backend does with a state, whose memory it declares (Backend.working_bytes)."""

    GATES = "apply"
    """`apply` of any gates: dense matrices of up to 3 qubits with controls, and (on density
    matrices held as vectors) superoperators of up to 6 bits."""
    READ = "to_array"
    LOAD = "from_array"
    """`from_array` of an array the session made (and drops afterwards)."""
    COPY = "copy"
    """`copy`, beyond the copy itself (which counts as a state)."""
    PROBABILITIES = "probabilities"
    """`probabilities` of every qubit, the answer included."""
    SAMPLE = "sample"
    """`sample` of every qubit, the counts not included (the session counts them)."""
    PREPARE = "prepare"
    """`prepare` while it builds (what it keeps is `prepared_bytes`)."""
    EXPECTATIONS = "expectations"
    """`expectations` of one set, its state included."""


class Counts(NamedTuple):
    """Shots by outcome: each outcome drawn at least once (the measured bits as an integer, the
    first most significant), ascending, and how many shots drew it."""

    outcomes: np.ndarray
    """int64, or Python ints (dtype object) when they are wider than 63 bits."""
    counts: np.ndarray
    """int64."""


def drawn_counts(probabilities: np.ndarray, nshots: int, seed: int | None) -> Counts:
    """The outcomes of `nshots` shots drawn from `probabilities` (renormalised), counted: no
    array of the outcomes' number is made beyond `probabilities` and the counts drawn."""
    rng = np.random.default_rng(seed)
    if probabilities.size <= DENSE_OUTCOMES:
        counts = rng.multinomial(nshots, probabilities / probabilities.sum())
        outcomes = np.flatnonzero(counts)
        return Counts(outcomes, counts[outcomes])
    blocks = probabilities.reshape(-1, DENSE_OUTCOMES)
    sums = blocks.sum(axis=1)
    per_block = rng.multinomial(nshots, sums / sums.sum())
    found, counted = [], []
    for b in np.flatnonzero(per_block):
        counts = rng.multinomial(per_block[b], blocks[b] / sums[b])
        within = np.flatnonzero(counts)
        found.append(within + b * DENSE_OUTCOMES)
        counted.append(counts[within])
    if not found:
        return Counts(np.zeros(0, np.int64), np.zeros(0, np.int64))
    return Counts(np.concatenate(found), np.concatenate(counted))


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

    working: ClassVar[Mapping[Work, float]] = {
        Work.GATES: 1.0, Work.READ: 1.0, Work.PROBABILITIES: 1.0, Work.SAMPLE: 1.0}
    """As Backend.working, in matrices of 2**n x 2**n complex128: by default one copy each
    (`matrix` may copy, and `probabilities` reads it)."""

    def working_bytes(self, work: Work, nqubits: int) -> int:
        """As Backend.working_bytes, on a density matrix of `nqubits`."""
        return int(self.working[work] * (16 << 2 * nqubits))

    def apply_bytes(self, ops: Sequence[Operation], nqubits: int) -> int:
        """The memory `apply` of `ops` takes beyond rho: its gates' work, and by default every
        channel's superoperator (a 4**k x 4**k matrix, built with a reordered copy)."""
        superoperators = sum(32 << 4 * len(op.qubits) for op in ops
                             if not isinstance(op, Gate))
        return self.working_bytes(Work.GATES, nqubits) + superoperators


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
    baseline_bytes: ClassVar[int] = 2**26
    """The memory the simulator takes holding nothing (its libraries, compiled kernels), kept
    out of the budget for states: measured for ours."""

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
        return _dtype(self.options.precision)

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
        """The memory a state of `nqubits` takes while it is held: checked before one is
        allocated."""
        return int(2**nqubits * self.dtype.itemsize)

    working: ClassVar[Mapping[Work, float]] = {
        Work.GATES: 1.0, Work.READ: 1.0, Work.LOAD: 1.0, Work.COPY: 2.0, Work.PREPARE: 0.0,
        Work.EXPECTATIONS: 4.0}
    """The most memory each kind of work takes beyond the states held, in arrays of the
    amplitudes of the state worked on (2**n of the precision's items). A backend states its own
    (measured); these defaults assume a copy where one may be made (`apply` may return a new
    state, `to_array` and `from_array` may copy, `copy` makes two by default), the default
    `prepare` builds nothing, and `expectations` (when a backend has it) takes a state, its copy
    and room to work."""

    def working_bytes(self, work: Work, nqubits: int) -> int:
        """The memory `work` on a state of `nqubits` takes beyond the states held, checked
        before it starts: from `working`, and for this class's own `probabilities` and
        `sample`, a read and two float64 arrays of the outcomes (a backend that replaces them
        says what they take)."""
        amplitudes = (1 << nqubits) * self.dtype.itemsize
        if work in (Work.PROBABILITIES, Work.SAMPLE):
            chunk = (4 << min(nqubits, CHUNK_QUBITS)) * self.dtype.itemsize
            return self.working_bytes(Work.READ, nqubits) + (16 << nqubits) + chunk
        return int(self.working[work] * amplitudes)

    def prepared_bytes(self, native: Any) -> int:
        """The memory what `prepare` built takes while its circuit is prepared (counted until
        circuit/free)."""
        return 0

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

    def compile_gates(self, gates: Sequence[Gate], nqubits: int) -> Any:
        """Optional: `gates` made ready to run on states of `nqubits` (the simulator's own
        circuit), which the session keeps, by the gates' content, for circuits run again, and
        hands to `run`. The default keeps the gates, and `run` applies them."""
        return list(gates)

    def run_compiled(self, state: Any, program: Any, checkpoint: Checkpoint = no_checkpoint) -> Any:
        """Apply what `compile_gates` made to `state`, calling `checkpoint` as `apply` does; return
        the state (the same object, or a new one)."""
        return self.apply(state, program, checkpoint)

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
              checkpoint: Checkpoint, memory: int) -> tuple[Any, Counts] | None:
        """Optional: a circuit whose shots differ midway (circuit.is_stochastic: channels on a
        state vector, collapsing measurements, resets), run from `start` this backend's own
        way, in at most `memory` bytes beyond `start`: one shot's final state, and the shots'
        outcomes of the measured qubits (in measurement order), counted. None (the default,
        and the answer when `memory` is too little) lets the session's shot engine run it
        (server/shots.py)."""
        return None

    def prepare(self, prepared: Any, checkpoint: Checkpoint = no_checkpoint) -> Any:
        """Optional: what this backend builds once for a prepared circuit (a
        server.prepared.Prepared), kept as its `native`; None builds nothing. Call
        `checkpoint()` every few milliseconds of building, as `apply` does."""
        return None

    def run_prepared(self, prepared: Any, values: np.ndarray, start: Any,
                     checkpoint: Checkpoint) -> Any:
        """Optional: `start` run through a prepared circuit (a Prepared) with `values` in its
        slots, this backend's own way (from what `prepare` built); None lets the session bind
        the values and apply the gates."""
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

    def free(self, state: Any) -> None:  # noqa: B027 - optional: most states are garbage
        """A state the session holds no more: a backend may keep it to hand out again from
        `zero_state`, if its `to_array` copies (a reply may still hold the array it gave)."""

    def copy(self, state: Any) -> Any:
        """A state of its own with the same amplitudes (the shot engine's branches)."""
        return self.from_array(np.array(self.to_array(state)))

    def probabilities(self, state: Any, qubits: Sequence[int]) -> np.ndarray:
        """Probabilities of the outcomes of `qubits` (in that order, the first most significant)."""
        return marginal_probabilities(self.to_array(state), qubits)

    def sample(self, state: Any, qubits: Sequence[int], nshots: int,
               seed: int | None) -> Counts:
        """The outcomes of `qubits` over `nshots` shots, counted."""
        return drawn_counts(self.probabilities(state, qubits), nshots, seed)


@functools.cache
def _dtype(precision: str) -> np.dtype:
    return np.dtype(precision)
