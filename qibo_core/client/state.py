"""State: a state a backend holds, to stream gates into and read."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import numpy as np

from ..circuit import Gate, Observable
from ..circuit.observable import ObservableLike
from ..errors import BackendCrashed, GateFailed, StateLost, UsageError
from ..protocol import (
    ApplyParams,
    Feature,
    Method,
    NewStateParams,
    ProbabilitiesParams,
    ReadParams,
    SampleParams,
    SampleResult,
    StateExpectationParams,
    StateRef,
    shots_problem,
)
from . import replies
from .connection import Connection
from .transport import Transport

T = TypeVar("T")

STREAM_BATCH = 1024
"""Streamed gates wait in their state and leave as one message of at most this many, or
earlier, just before any other message: the backend sees them in order, and fuses them."""


class State:
    """A state held by a backend. Freed with `free()`, or when garbage collected.

    The gates streamed into it are kept here too: if the backend dies, `replay()` rebuilds the
    state on a fresh one.
    """

    def __init__(self, handle: Connection, state_id: int, nqubits: int, *,
                 density: bool = False) -> None:
        self.handle = handle
        self.id = state_id
        self.nqubits = nqubits
        self.density = density
        """A density matrix: `read()` gives a 2^n x 2^n matrix."""
        self.history: list[Gate] = []
        self._sent = 0
        """How many gates of `history` have been sent."""
        self._finalizer = weakref.finalize(self, handle.outbox.free_later, Method.STATE_FREE,
                                           StateRef(state_id))

    @classmethod
    def new(cls, handle: Connection, nqubits: int, initial: Any = None) -> State:
        """A state made by the backend (`state/new`): |0...0>, or the amplitudes `initial`."""
        with uploading(handle, initial) as data:
            reply = handle.request(Method.STATE_NEW, NewStateParams(nqubits, data))
        return cls(handle, reply.state, nqubits)

    def apply(self, *gates: Gate) -> State:
        """Stream gates into the state without waiting; an error surfaces at the next read."""
        handle = self.handle
        if handle.closed:
            handle.check_open(f"cannot apply gates to state {self.id}")
        self.history += gates
        handle.outbox.stream(self.id, self._send_unsent)
        if len(self.history) - self._sent >= STREAM_BATCH:  # a full batch leaves at once
            self._call(handle.outbox.flush)
        return self

    def _send_unsent(self, transport: Transport, now: bool) -> None:
        """Send the gates applied since the last send, in batches (the outbox calls this,
        before any other message)."""
        end = len(self.history)
        for start in range(self._sent, end, STREAM_BATCH):
            batch = self.history[start:min(start + STREAM_BATCH, end)]
            transport.notify(Method.STATE_APPLY, ApplyParams(self.id, batch), now=now)
        self._sent = end

    def read(self) -> np.ndarray:
        """The amplitudes (a density matrix's entries, 2^n x 2^n), qubit 0 the most significant
        bit: through a shared-memory segment when one can be had."""
        return self._call(self._read)

    def _read(self) -> np.ndarray:
        handle = self.handle
        handle.check_open(f"cannot read state {self.id}")
        size = 2 ** (2 * self.nqubits if self.density else self.nqubits)
        segment = handle.arrays.reply_segment(size * np.dtype(handle.precision).itemsize)
        try:
            reply = handle.request(Method.STATE_READ,
                                   ReadParams(self.id, None if segment is None else segment.id))
        except BaseException:
            handle.arrays.release(segment)
            raise
        array = handle.arrays.received(reply, handle.precision, segment)
        return replies.checked_state(array, handle.name, self.nqubits, self.density)

    def probabilities(self, qubits: list[int] | None = None) -> np.ndarray:
        """Outcome probabilities of `qubits` (default: all), the first the most significant."""
        qubits = qubit_list(qubits)
        reply = self._call(self.handle.request, Method.STATE_PROBABILITIES,
                           ProbabilitiesParams(self.id, qubits))
        array = self.handle.arrays.received(reply, "float64")
        return replies.checked_probabilities(array, self.handle.name, self.nqubits, qubits)

    def sample(self, nshots: int, *, qubits: list[int] | None = None,
               seed: int | None = None) -> dict[str, int]:
        """Counts of each outcome bitstring of `qubits` (default: all) over `nshots` shots."""
        nshots, seed = checked_shots(nshots, seed)
        qubits = qubit_list(qubits)
        reply: SampleResult = self._call(self.handle.request, Method.STATE_SAMPLE,
                                         SampleParams(self.id, nshots, qubits, seed))
        width = self.nqubits if qubits is None else len(qubits)
        replies.checked_frequencies(reply.frequencies, self.handle.name, nshots, width)
        return reply.frequencies

    def expectation(self, observable: ObservableLike) -> float:
        """The expectation value of `observable` on this state, computed by the backend (or
        here, from the state read back, by one of protocol version 2 or older)."""
        observable = Observable(observable)
        observable.check(self.nqubits)
        if Feature.EXPECTATION not in self.handle.info.capabilities.features:
            return observable.expectation(self.read())
        value = self._call(self.handle.request, Method.STATE_EXPECTATION,
                           StateExpectationParams(self.id, observable.to_data()))
        return float(replies.checked_expectations(value, self.handle.name, observable))

    def free(self) -> None:
        """Release the backend's memory for this state now."""
        if self._finalizer.detach() is not None and self.handle.alive:
            self.handle.request(Method.STATE_FREE, StateRef(self.id))

    def replay(self, handle: Connection | None = None) -> State:
        """A new state with every gate streamed into this one, on `handle` (default: the shared
        backend of the same name, restarted if it died)."""
        if handle is None:
            if self.handle.reopen is None:
                raise UsageError("this state's backend has no name to restart it by (it was "
                                 "given as an object): pass a handle to replay it on")
            handle = self.handle.reopen()
        return State.new(handle, self.nqubits).apply(*self.history)

    def _call(self, method: Callable[..., T], *args: Any) -> T:
        try:
            return method(*args)
        except BackendCrashed as exc:
            raise StateLost.after(exc, self) from exc
        except GateFailed as exc:
            self._rewind(exc)
            raise

    def _rewind(self, failure: GateFailed) -> None:
        """Drop from `history` the streamed gates the backend did not apply: the failed one and
        those sent after it (it skipped them), so that history is what the state holds."""
        data = failure.data if isinstance(failure.data, dict) else {}
        index = data.get("index")
        if data.get("state") == self.id and isinstance(index, int) and 0 <= index <= self._sent:
            del self.history[index:self._sent]
            self._sent = index

    def __repr__(self) -> str:
        return f"<State {self.id} of {self.nqubits} qubits on {self.handle.name}>"


@contextlib.contextmanager
def uploading(connection: Connection, initial: Any) -> Iterator[Any]:
    """An initial state as params carry it (ArrayTransfer.sending), once the backend is known
    to take one; None for none."""
    if initial is None:
        yield None
        return
    connection.require(Feature.INITIAL_STATE, "an initial state")
    array = np.asarray(initial)
    if array.dtype.kind != "c":
        array = array.astype(connection.precision)
    connection.outbox.flush()  # before a segment's shm/attach
    with connection.arrays.sending(array) as data:
        yield data


def checked_shots(nshots: Any, seed: Any, timeout: object = None) -> tuple[int, int | None]:
    """`nshots` and `seed` as plain integers (NumPy's are welcome); UsageError, in words,
    before anything is sent."""
    problem = shots_problem(nshots, seed)
    if not problem and timeout is not None and not (
            isinstance(timeout, (int, float, np.integer)) and not isinstance(timeout, bool)
            and timeout > 0):
        problem = f"timeout must be a positive number of seconds or None, got {timeout!r}"
    if problem:
        raise UsageError(problem)
    return int(nshots), None if seed is None else int(seed)


def qubit_list(qubits: Any) -> list[int] | None:
    """`qubits` (any iterable of integers, NumPy's too) as a list of ints; UsageError for
    anything else. The backend checks their range."""
    if qubits is None:
        return None
    iterable = isinstance(qubits, Iterable) and not isinstance(qubits, (str, bytes))
    listed: list[Any] = list(qubits) if iterable else [None]
    if any(isinstance(q, bool) or not isinstance(q, (int, np.integer)) for q in listed):
        raise UsageError(f"qubits must be a list of integers, got {qubits!r}")
    return [int(q) for q in listed]
