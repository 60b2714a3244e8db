"""Handle: one API over a backend in this process or in a spawned one.

A Handle speaks to a channel: `ProcessChannel` (JSON-RPC to a child) or `LocalChannel` (the same
Session calls, no serialization). Code that runs circuits never asks which one it has.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from . import __version__
from .backend import Backend
from .client import ProcessChannel
from .discovery import backend_command
from .errors import (
    BackendCrashed, GateFailed, HandleClosed, InvalidArgument, ProtocolError, StateLost,
)
from .gates import Gate
from .protocol import (
    PROTOCOL_VERSION, SUPPORTED_VERSIONS, ApplyParams, ArrayData, ClientInfo, ExecuteParams,
    ExecuteResult, InitializeOptions, InitializeParams, InitializeResult, Method,
    NewStateParams, Precision, ProbabilitiesParams, ReadParams, SampleParams, SampleResult,
    StateRef, shots_problem,
)
from .result import Result
from .session import Session
from .sharedmem import MIN_BYTES, SegmentPool

if TYPE_CHECKING:
    from .circuit import Circuit

T = TypeVar("T")
_tokens = itertools.count(1)
logger = logging.getLogger("qibo_core.handle")

HANDSHAKE_TIMEOUT = 10.0
"""Seconds a spawned backend has to answer `initialize` (it only has to start up)."""
STREAM_BATCH = 1024
"""Streamed gates wait in their state and leave as one message of at most this many, or
earlier, just before any other message: the backend sees them in order, and fuses them."""


class Channel(Protocol):
    """How a Handle reaches its backend."""

    name: str
    shares_memory: bool
    """True when the backend runs on this host, so shared-memory segments can reach it."""

    def request(self, method: str, params: Any, result_type: type[T],
                timeout: float | None = None) -> T: ...
    def request_array(self, method: str, params: Any) -> np.ndarray: ...
    def notify(self, method: str, params: Any) -> None: ...
    def cancel(self) -> None: ...
    def watch(self, token: int | str, callback: Callable[[int, int], None] | None) -> None: ...
    def close(self) -> None: ...
    @property
    def alive(self) -> bool: ...


class LocalChannel:
    """A backend object in this process, reached through the same Session as a server."""

    shares_memory = False  # arrays are handed over directly

    def __init__(self, backend: Backend) -> None:
        self.name = backend.name
        self._session = Session(backend)
        self._lock = threading.Lock()
        self._closed = False

    @property
    def alive(self) -> bool:
        return not self._closed

    def request(self, method: str, params: Any, result_type: type[T],
                timeout: float | None = None) -> T:
        with self._lock:
            return self._session.call(method, params)  # type: ignore[no-any-return]

    def request_array(self, method: str, params: Any) -> np.ndarray:
        with self._lock:
            return self._session.call_array(method, params)

    def notify(self, method: str, params: Any) -> None:
        with self._lock:
            self._session.notify(method, params)

    def cancel(self) -> None:
        """Nothing to do: a call in this process runs on the caller's own thread."""

    def watch(self, token: int | str, callback: Callable[[int, int], None] | None) -> None:
        """Nothing to do: a backend in this process reports no progress."""

    def close(self) -> None:
        self._closed = True
        self._session.backend.close()

    def __repr__(self) -> str:
        return f"<LocalChannel {self.name} {'closed' if self._closed else 'open'}>"


class Handle:
    """A backend to run circuits on. Use as a context manager, or call `close()`.

    `timeout` (seconds, default none) bounds every request; one that runs out is cancelled, and
    a backend that ignores the cancellation too is terminated. `origin` is the backend name a
    spawned handle came from, used to start a fresh one after a crash.
    """

    def __init__(self, channel: Channel, *, precision: str = Precision.COMPLEX128,
                 threads: int | None = None, timeout: float | None = None,
                 origin: str | None = None) -> None:
        self._channel = channel
        self.timeout = timeout
        self.origin = origin
        self._unreferenced: collections.deque[int] = collections.deque()
        self._unsent: dict[int, State] = {}
        """States holding streamed gates not sent yet."""
        self._send_lock = threading.Lock()
        self._closed = False
        self.precision = precision
        try:
            self.info: InitializeResult = channel.request(
                Method.INITIALIZE,
                InitializeParams(PROTOCOL_VERSION, ClientInfo("qibo-core", __version__),
                                 InitializeOptions(precision, threads)),
                InitializeResult, timeout=HANDSHAKE_TIMEOUT)
        except BaseException:
            channel.close()
            raise
        if self.info.protocol_version not in SUPPORTED_VERSIONS:
            channel.close()
            raise ProtocolError(
                f"backend {channel.name!r} answered 'initialize' with protocol version "
                f"{self.info.protocol_version}; this client speaks {list(SUPPORTED_VERSIONS)}: "
                f"{self.info!r}")
        self._segments: SegmentPool | None = None
        if channel.shares_memory and "shm" in self.info.capabilities.state_encodings:
            self._segments = SegmentPool(channel.request, channel.notify)

    @property
    def name(self) -> str:
        return self.info.server_info.name

    @property
    def alive(self) -> bool:
        return not self._closed and self._channel.alive

    @property
    def closed(self) -> bool:
        """True once `close()` was called."""
        return self._closed

    def check_open(self, what: str) -> None:
        """HandleClosed, saying what to do instead, once the handle is closed."""
        if self._closed:
            raise HandleClosed(f"{what}: the handle to backend {self.name!r} was closed, and its "
                               "states with it; read what you need before closing the handle "
                               "(or keep it open), or replay a state on another handle")

    @property
    def channel(self) -> Channel:
        return self._channel

    def execute(self, circuit: Circuit, *, nshots: int = 0, seed: int | None = None,
                timeout: float | None = None,
                progress: Callable[[int, int], None] | None = None) -> Result:
        """Run `circuit` from |0...0>; sample `nshots` shots of its measurements.

        `progress(done, total)` is called now and then while a spawned backend works (from
        whichever thread reads its replies), if the backend reports progress."""
        _check_arguments(nshots, seed, timeout)
        token = f"execute-{next(_tokens)}" if progress else None
        if token is not None:
            self._channel.watch(token, progress)
        try:
            reply = self._request(Method.EXECUTE,
                                  ExecuteParams(circuit.to_data(), nshots, seed, token),
                                  ExecuteResult, timeout)
        finally:
            if token is not None:
                self._channel.watch(token, None)
        state = State(self, reply.state, circuit.nqubits)
        return Result(state, reply.frequencies, circuit.registers, nshots)

    def cancel(self) -> None:
        """Cancel every request in flight on this handle (from another thread): each caller
        gets RequestCancelled. A backend in this process cannot be interrupted."""
        self._channel.cancel()

    def new_state(self, nqubits: int) -> State:
        """A state |0...0> held by the backend, to stream gates into."""
        return State(self, self._request(Method.STATE_NEW, NewStateParams(nqubits), StateRef).state,
                     nqubits)

    def close(self) -> None:
        """Close the backend (a spawned one is shut down and reaped). Safe to call twice."""
        self._closed = True
        self._channel.close()
        if self._segments is not None:
            self._segments.close()

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Handle {self._channel!r}>"

    def _request(self, method: str, params: Any, result_type: type[T],
                 timeout: float | None = None) -> T:
        self.check_open(f"cannot send {method!r}")
        self._send_pending()
        return self._channel.request(method, params, result_type, timeout or self.timeout)

    def _request_array(self, method: str, params: Any) -> np.ndarray:
        self.check_open(f"cannot send {method!r}")
        self._send_pending()
        return self._channel.request_array(method, params)

    def _send_pending(self) -> None:
        """Streamed gates, then frees of collected states: before any other message."""
        with self._send_lock:
            while self._unsent:
                self._unsent.popitem()[1]._send_unsent()
        self._free_unreferenced()

    def _read(self, state_id: int, nqubits: int) -> np.ndarray:
        """A state's amplitudes: through a shared-memory segment when one can be had."""
        self.check_open(f"cannot read state {state_id}")
        nbytes = 2**nqubits * np.dtype(self.precision).itemsize
        segment = None
        if self._segments is not None and nbytes >= MIN_BYTES:
            self._send_pending()
            segment = self._segments.acquire(nbytes)
        if segment is None:
            return self._request_array(Method.STATE_READ, ReadParams(state_id))
        try:
            data = self._channel.request(Method.STATE_READ, ReadParams(state_id, segment.id),
                                         ArrayData, self.timeout)
        except BaseException:
            self._segments.release(segment)  # type: ignore[union-attr]
            raise
        return self._segments.view(segment, data)  # type: ignore[union-attr]

    def _forget(self, state_id: int) -> None:
        # Called by the garbage collector, maybe inside a send: only queue the free.
        self._unreferenced.append(state_id)

    def _free_unreferenced(self) -> None:
        while self._unreferenced and self._channel.alive:
            try:
                state_id = self._unreferenced.popleft()
            except IndexError:  # another thread took the last one
                return
            self._channel.notify(Method.STATE_FREE, StateRef(state_id))


class State:
    """A state held by a backend. Freed with `free()`, or when garbage collected.

    The gates streamed into it are kept here too: if the backend dies, `replay()` rebuilds the
    state on a fresh one.
    """

    def __init__(self, handle: Handle, state_id: int, nqubits: int) -> None:
        self.handle = handle
        self.id = state_id
        self.nqubits = nqubits
        self.history: list[Gate] = []
        self._sent = 0
        """How many gates of `history` have been sent."""
        self._finalizer = weakref.finalize(self, handle._forget, state_id)

    def apply(self, *gates: Gate) -> State:
        """Stream gates into the state without waiting; an error surfaces at the next read."""
        self.handle.check_open(f"cannot apply gates to state {self.id}")
        self.history += gates
        self.handle._unsent[self.id] = self
        if len(self.history) - self._sent >= STREAM_BATCH:
            self._call(self.handle._send_pending)
        return self

    def _send_unsent(self) -> None:
        """Send the gates applied since the last call, in batches (the handle holds its send
        lock)."""
        end = len(self.history)
        for start in range(self._sent, end, STREAM_BATCH):
            batch = self.history[start:min(start + STREAM_BATCH, end)]
            self.handle.channel.notify(Method.STATE_APPLY,
                                       ApplyParams(self.id, [g.to_data() for g in batch]))
        self._sent = end

    def read(self) -> np.ndarray:
        """The amplitudes, qubit 0 the most significant bit."""
        return self._call(self.handle._read, self.id, self.nqubits)

    def probabilities(self, qubits: list[int] | None = None) -> np.ndarray:
        """Outcome probabilities of `qubits` (default: all), the first the most significant."""
        return self._call(self.handle._request_array, Method.STATE_PROBABILITIES,
                          ProbabilitiesParams(self.id, qubits))

    def sample(self, nshots: int, *, qubits: list[int] | None = None,
               seed: int | None = None) -> dict[str, int]:
        """Counts of each outcome bitstring of `qubits` (default: all) over `nshots` shots."""
        _check_arguments(nshots, seed, None)
        return self._call(self.handle._request, Method.STATE_SAMPLE,
                          SampleParams(self.id, nshots, qubits, seed), SampleResult).frequencies

    def free(self) -> None:
        """Release the backend's memory for this state now."""
        if self._finalizer.detach() is not None and self.handle.alive:
            self.handle._request(Method.STATE_FREE, StateRef(self.id), type(None))

    def replay(self, handle: Handle | None = None) -> State:
        """A new state with every gate streamed into this one, on `handle` (default: the shared
        backend of the same name, restarted if it died)."""
        if handle is None:
            if self.handle.origin is None:
                raise ValueError("an in-process state has no backend to restart: pass a handle")
            handle = resolve(self.handle.origin)
        return handle.new_state(self.nqubits).apply(*self.history)

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


def _check_arguments(nshots: object, seed: object, timeout: object) -> None:
    """InvalidArgument, in words, before anything is sent."""
    problem = shots_problem(nshots, seed)
    if not problem and timeout is not None and not (
            isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0):
        problem = f"timeout must be a positive number of seconds or None, got {timeout!r}"
    if problem:
        raise InvalidArgument(problem)


def connect(backend: str | Backend, *, precision: str = Precision.COMPLEX128,
            threads: int | None = None, timeout: float | None = None,
            command: list[str] | None = None) -> Handle:
    """A handle on `backend`: a name spawns its configured command or qibo-backend-<name>
    (or `command`: anything whose stdin/stdout speak the protocol, such as
    ["ssh", "host", "qibo-backend-qulacs"]); a Backend object runs here."""
    if isinstance(backend, Backend):
        return Handle(LocalChannel(backend), precision=precision, threads=threads,
                      timeout=timeout)
    channel = ProcessChannel(command or backend_command(backend), name=backend)
    return Handle(channel, precision=precision, threads=threads, timeout=timeout,
                  origin=backend)


_shared: dict[str, Handle] = {}
_shared_lock = threading.Lock()


def resolve(backend: str | Backend | Handle, spawn: str | None = None,
            threads: int | None = None) -> Handle:
    """The handle `Circuit.execute` uses: by name, one spawned process reused until it dies.

    `spawn` names the backend to start when `backend` is only a key for a shared process (the
    workers of `execute_many` are "numpy#0", "numpy#1"...)."""
    if isinstance(backend, Handle):
        return backend
    if isinstance(backend, Backend):
        return connect(backend)
    with _shared_lock:
        handle = _shared.get(backend)
        if handle is None or not handle.alive:
            handle = _shared[backend] = connect(spawn or backend, threads=threads)
        return handle


def execute(circuit: Circuit, backend: str | Backend | Handle, *, nshots: int = 0,
            seed: int | None = None, timeout: float | None = None) -> Result:
    """`Circuit.execute`: by name, a backend that crashed is restarted and the circuit run
    again (it is idempotent), at most RESTARTS times in RESTART_WINDOW seconds."""
    while True:
        handle = resolve(backend)
        try:
            return handle.execute(circuit, nshots=nshots, seed=seed, timeout=timeout)
        except BackendCrashed as exc:
            if not isinstance(backend, str) or not _may_restart(backend):
                raise
            logger.warning("backend %s crashed (%s); restarting it and running again", backend,
                           str(exc).splitlines()[0])


RESTARTS = 5
RESTART_WINDOW = 180.0
"""At most RESTARTS automatic restarts in RESTART_WINDOW seconds, as editors do for language
servers: a backend that keeps crashing on a circuit is left dead and its error raised."""
_restarts: dict[str, list[float]] = {}


def _may_restart(name: str) -> bool:
    now = time.monotonic()
    recent = [t for t in _restarts.get(name, []) if now - t < RESTART_WINDOW]
    _restarts[name] = recent
    if len(recent) >= RESTARTS:
        return False
    recent.append(now)
    return True


@atexit.register
def close_shared() -> None:
    """Shut down every backend spawned for `execute(backend=name)`."""
    with _shared_lock:
        handles = list(_shared.values())
        _shared.clear()
    for handle in handles:
        handle.close()
