"""Handle, State and Result: one API over a backend in this process or in a spawned one.

A Handle speaks to a Channel (ProcessChannel: JSON-RPC to a child; LocalChannel: the same
Session calls, no serialization). Code that runs circuits never asks which one it has.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import numpy as np

from ..circuit import Circuit, Gate, M, Observable, Reset
from ..circuit.channels import Channel as NoiseChannel
from ..circuit.observable import ObservableLike
from ..errors import (
    BackendCrashed,
    CircuitError,
    GateFailed,
    HandleClosed,
    ProtocolError,
    StateLost,
    UnsupportedProtocolVersion,
    UsageError,
)
from ..protocol import (
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    ApplyParams,
    ArrayData,
    ClientInfo,
    ExecuteParams,
    Feature,
    InitializeOptions,
    InitializeParams,
    InitializeResult,
    Method,
    NewStateParams,
    Precision,
    ProbabilitiesParams,
    ReadParams,
    SampleParams,
    SampleResult,
    StateExpectationParams,
    StateRef,
    decode_array,
    shots_problem,
)
from ..version import __version__
from . import replies, variational
from .channel import Channel
from .result import Result
from .sharedmem import MIN_BYTES, Segment, SegmentPool
from .variational import PreparedCircuits

T = TypeVar("T")
_tokens = itertools.count(1)

HANDSHAKE_TIMEOUT = 10.0
"""Seconds a spawned backend has to answer `initialize` (it only has to start up)."""
STREAM_BATCH = 1024
"""Streamed gates wait in their state and leave as one message of at most this many, or
earlier, just before any other message: the backend sees them in order, and fuses them."""


class Handle:
    """A backend to run circuits on. Use as a context manager, or call `close()`.

    `timeout` (seconds, default none) bounds every request; one that runs out is cancelled, and
    a backend that ignores the cancellation too is terminated. `reopen` gives a working handle
    on the same backend after this one's died (by name: the shared one, restarted): the default
    of `State.replay()`.
    """

    def __init__(self, channel: Channel, *, precision: str = Precision.COMPLEX128,
                 threads: int | None = None, timeout: float | None = None,
                 device: str | None = None,
                 reopen: Callable[[], Handle] | None = None) -> None:
        self._channel = channel
        self.timeout = timeout
        self.reopen = reopen
        self._unreferenced: collections.deque[tuple[str, Any]] = collections.deque()
        """Frees to send (method, params) for what the garbage collector took."""
        self._unsent: dict[int, State] = {}
        """States holding streamed gates not sent yet."""
        self._send_lock = threading.Lock()
        self._closed = False
        self.precision = precision
        self._prepared = PreparedCircuits(self)
        self.said_fallback = False
        """Whether the fallback for expectation values was logged (once per handle)."""
        try:
            self.info: InitializeResult = _initialize(channel, precision, threads, device)
        except BaseException:
            channel.close()
            raise
        channel.max_request_bytes = self.info.capabilities.max_message_bytes
        self._segments: SegmentPool | None = None
        if channel.shares_memory and "shm" in self.info.capabilities.state_encodings:
            self._segments = SegmentPool(channel.request, channel.notify)

    @property
    def name(self) -> str:
        return self.info.server_info.name

    @property
    def protocol_version(self) -> int:
        """The protocol version agreed with the backend."""
        return self.info.protocol_version

    def require(self, feature: str, what: str) -> None:
        """UsageError, before anything is sent, unless the backend offers `feature`."""
        if feature not in self.info.capabilities.features:
            raise UsageError(f"{what}: backend {self.name!r} (protocol version "
                             f"{self.protocol_version}) does not offer {feature!r}; it offers "
                             f"{self.info.capabilities.features or 'no optional features'}")

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
                timeout: float | None = None, initial_state: np.ndarray | None = None,
                samples: bool = False, parameters: Any = None,
                progress: Callable[[int, int], None] | None = None) -> Result:
        """Run `circuit` from |0...0> (or from `initial_state`); sample `nshots` shots of its
        measurements, and keep every shot's outcome if `samples` (`Result.samples()`).
        `parameters` values its Parameters (one set: in `circuit.parameters` order, or a dict by
        name); the bound circuit is sent.

        `progress(done, total)` is called now and then while a spawned backend works (from
        whichever thread reads its replies), if the backend reports progress."""
        nshots, seed = _checked_shots(nshots, seed, timeout)
        if parameters is not None or circuit.parameters:
            circuit = _bound(circuit, parameters)
        if samples:
            self.require(Feature.SAMPLES, "samples")
        for feature, what in _needs(circuit):
            self.require(feature, what)
        segment = self._reply_segment(nshots * len(circuit.measured_qubits)) if samples else None
        try:
            with self._watching(progress) as token, \
                    self._array_param(initial_state, "an initial state") as initial:
                reply = self._request(Method.EXECUTE, ExecuteParams(
                    circuit, nshots, seed, token, initial, samples,
                    None if segment is None else segment.id), timeout)
        except BaseException:
            if segment is not None:
                self._segments.release(segment)  # type: ignore[union-attr]
            raise
        state = State(self, reply.state, circuit.nqubits, density=circuit.density_matrix)
        width = len(circuit.measured_qubits)
        shots = None
        if samples and nshots:
            if reply.samples is None:
                if segment is not None:
                    self._segments.release(segment)  # type: ignore[union-attr]
                raise ProtocolError(f"backend {self.name!r} answered no 'samples' for "
                                    f"{nshots} shots, which were asked for")
            shots = replies.checked_samples(self._array_reply(reply.samples, "uint8", segment),
                                            self.name, nshots, width)
        elif segment is not None:
            self._segments.release(segment)  # type: ignore[union-attr]
        frequencies = replies.checked_frequencies(reply.frequencies, self.name, nshots, width)
        return Result(state, frequencies, circuit.registers, nshots, samples=shots)

    def expectation(self, circuit: Circuit, observable: ObservableLike, *,
                    parameters: Any = None,
                    progress: Callable[[int, int], None] | None = None) -> Any:
        """The expectation value of `observable` ("Z0 Z1 + 0.5 X2", terms, or an Observable)
        on `circuit`'s final state, computed by the backend: a float for one set of
        `parameters` (or none), an array of one value per row of a 2-D array of sets (all in
        one request; the circuit is sent once per handle and kept by the backend).
        `progress(sets done, sets)` as for `execute`."""
        values, single = variational.expectations(self, circuit, observable, parameters,
                                                   progress=progress)
        return float(values[0]) if single else values

    def gradient(self, circuit: Circuit, observable: ObservableLike, *,
                 parameters: Any) -> np.ndarray:
        """d<observable>/d(each of `circuit.parameters`) at one set of values, by the
        parameter-shift rule, in one request."""
        return variational.gradient(self, circuit, observable, parameters)

    def release(self, circuit: Circuit) -> None:
        """Free now what the backend keeps for `circuit` (the prepared circuit `expectation`
        and `gradient` made); it is otherwise freed when the circuit is garbage collected."""
        self._prepared.release(circuit)
        if self.alive:
            self._send_pending()

    def cancel(self) -> None:
        """Cancel every request in flight on this handle (from another thread): each caller
        gets RequestCancelled. A backend in this process cannot be interrupted."""
        self._channel.cancel()

    def new_state(self, nqubits: int, *, initial: np.ndarray | None = None) -> State:
        """A state held by the backend, to stream gates into: |0...0>, or the amplitudes
        `initial` (qubit 0 the most significant bit)."""
        with self._array_param(initial, "an initial state") as data:
            reply = self._request(Method.STATE_NEW, NewStateParams(nqubits, data))
        return State(self, reply.state, nqubits)

    @contextlib.contextmanager
    def _watching(self, progress: Callable[[int, int], None] | None) -> Iterator[str | None]:
        """A workDoneToken whose `$/progress` reports go to `progress` while the block runs
        (None when there is no `progress`)."""
        if progress is None:
            yield None
            return
        token = f"work-{next(_tokens)}"
        self._channel.watch(token, progress)
        try:
            yield token
        finally:
            self._channel.watch(token, None)

    @contextlib.contextmanager
    def _array_param(self, array: np.ndarray | None, what: str) -> Iterator[Any]:
        """`array` as params carry it: through a shared-memory segment while the request runs,
        when one can be had; else the array itself (base64 on the wire, as is in process)."""
        if array is None:
            yield None
            return
        self.require(Feature.INITIAL_STATE, what)
        array = np.asarray(array)
        if array.dtype.kind != "c":
            array = array.astype(self.precision)
        segment = None
        if self._segments is not None and array.nbytes >= MIN_BYTES:
            self._send_pending()
            segment = self._segments.acquire(array.nbytes)
        if segment is None:
            yield array
            return
        try:
            yield self._segments.copy_in(segment, array)  # type: ignore[union-attr]
        finally:
            self._segments.release(segment)  # type: ignore[union-attr]

    def _decoded(self, data: ArrayData, dtype: str) -> np.ndarray:
        try:
            return decode_array(data, dtype)
        except ValueError as exc:
            raise ProtocolError(f"backend {self.name!r} answered a malformed array: "
                                f"{exc}") from None

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

    def _request(self, method: str, params: Any, timeout: float | None = None) -> Any:
        self.check_open(f"cannot send {method!r}")
        self._send_pending()
        return self._channel.request(method, params, timeout or self.timeout)

    def _request_array(self, method: str, params: Any, dtype: str) -> np.ndarray:
        self.check_open(f"cannot send {method!r}")
        self._send_pending()
        return self._channel.request_array(method, params, dtype, self.timeout)

    def _send_pending(self) -> None:
        """Streamed gates, then frees of collected states: before any other message."""
        with self._send_lock:
            while self._unsent:
                self._unsent.popitem()[1]._send_unsent()
        self._free_unreferenced()

    def _read(self, state_id: int, nqubits: int, density: bool = False) -> np.ndarray:
        """A state's amplitudes (or density matrix): through a shared-memory segment when one
        can be had."""
        self.check_open(f"cannot read state {state_id}")
        nbytes = 2 ** (2 * nqubits if density else nqubits) * np.dtype(self.precision).itemsize
        segment = self._reply_segment(nbytes)
        if segment is None:
            array = self._request_array(Method.STATE_READ, ReadParams(state_id), self.precision)
        else:
            try:
                data = self._channel.request(Method.STATE_READ, ReadParams(state_id, segment.id),
                                             self.timeout)
            except BaseException:
                self._segments.release(segment)  # type: ignore[union-attr]
                raise
            array = self._array_reply(data, self.precision, segment)
        return replies.checked_state(array, self.name, nqubits, density)

    def _reply_segment(self, nbytes: int) -> Segment | None:
        """A segment for the backend to write an answered array of `nbytes` into, when one can
        be had (large arrays, shared memory on)."""
        if self._segments is None or nbytes < MIN_BYTES:
            return None
        self._send_pending()
        return self._segments.acquire(nbytes)

    def _array_reply(self, data: ArrayData, dtype: str, segment: Segment | None) -> np.ndarray:
        """An answered array, from `segment` (which goes back to the pool) or inline."""
        if segment is None:
            return self._decoded(data, dtype)
        return self._segments.copy_out(segment, data, np.dtype(dtype))  # type: ignore[union-attr]

    def _forget(self, state_id: int) -> None:
        # Called by the garbage collector, maybe inside a send: only queue the free.
        self._unreferenced.append((Method.STATE_FREE, StateRef(state_id)))

    def _free_unreferenced(self) -> None:
        while self._unreferenced and self._channel.alive:
            try:
                method, params = self._unreferenced.popleft()
            except IndexError:  # another thread took the last one
                return
            self._channel.notify(method, params)


class State:
    """A state held by a backend. Freed with `free()`, or when garbage collected.

    The gates streamed into it are kept here too: if the backend dies, `replay()` rebuilds the
    state on a fresh one.
    """

    def __init__(self, handle: Handle, state_id: int, nqubits: int, *,
                 density: bool = False) -> None:
        self.handle = handle
        self.id = state_id
        self.nqubits = nqubits
        self.density = density
        """A density matrix: `read()` gives a 2^n x 2^n matrix."""
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
            self.handle.channel.notify(Method.STATE_APPLY, ApplyParams(self.id, batch))
        self._sent = end

    def read(self) -> np.ndarray:
        """The amplitudes (a density matrix's entries, 2^n x 2^n), qubit 0 the most significant
        bit."""
        return self._call(self.handle._read, self.id, self.nqubits, self.density)

    def probabilities(self, qubits: list[int] | None = None) -> np.ndarray:
        """Outcome probabilities of `qubits` (default: all), the first the most significant."""
        qubits = _qubit_list(qubits)
        array = self._call(self.handle._request_array, Method.STATE_PROBABILITIES,
                           ProbabilitiesParams(self.id, qubits), "float64")
        return replies.checked_probabilities(array, self.handle.name, self.nqubits, qubits)

    def sample(self, nshots: int, *, qubits: list[int] | None = None,
               seed: int | None = None) -> dict[str, int]:
        """Counts of each outcome bitstring of `qubits` (default: all) over `nshots` shots."""
        nshots, seed = _checked_shots(nshots, seed)
        qubits = _qubit_list(qubits)
        reply: SampleResult = self._call(self.handle._request, Method.STATE_SAMPLE,
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
        value = self._call(self.handle._request, Method.STATE_EXPECTATION,
                           StateExpectationParams(self.id, observable.to_data()))
        return float(replies.checked_expectations(value, self.handle.name, observable))

    def free(self) -> None:
        """Release the backend's memory for this state now."""
        if self._finalizer.detach() is not None and self.handle.alive:
            self.handle._request(Method.STATE_FREE, StateRef(self.id))

    def replay(self, handle: Handle | None = None) -> State:
        """A new state with every gate streamed into this one, on `handle` (default: the shared
        backend of the same name, restarted if it died)."""
        if handle is None:
            if self.handle.reopen is None:
                raise UsageError("this state's backend has no name to restart it by (it was "
                                 "given as an object): pass a handle to replay it on")
            handle = self.handle.reopen()
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


def _bound(circuit: Circuit, parameters: Any) -> Circuit:
    try:
        return circuit.bind(parameters)
    except CircuitError as exc:
        raise UsageError(str(exc)) from None


def _needs(circuit: Circuit) -> list[tuple[str, str]]:
    """The optional features a circuit needs of a backend, with what in it needs them."""
    needs = []
    if circuit.density_matrix:
        needs.append((Feature.DENSITY_MATRIX, "a density-matrix circuit"))
    if any(isinstance(op, NoiseChannel) for op in circuit.gates):
        needs.append((Feature.CHANNELS, "a noise channel"))
    if any(isinstance(op, (M, Reset)) or (isinstance(op, Gate) and op.condition is not None)
           for op in circuit.gates):
        needs.append((Feature.MID_CIRCUIT_MEASUREMENT, "a mid-circuit measurement"))
    return needs


def _initialize(channel: Channel, precision: str, threads: int | None,
                device: str | None = None) -> InitializeResult:
    """The handshake, in the newest version both ends speak: a backend of an older version
    refuses ours and says which it speaks (the protocol leaves it uninitialized); an answer is
    checked against what was asked."""
    options = InitializeOptions(precision, threads, device)
    client = ClientInfo("qibo-core", __version__)
    version = PROTOCOL_VERSION
    try:
        info = channel.request(Method.INITIALIZE, InitializeParams(version, client, options),
                               timeout=HANDSHAKE_TIMEOUT)
    except UnsupportedProtocolVersion as exc:
        supported = exc.data.get("supported", []) if isinstance(exc.data, dict) else []
        common = sorted(set(supported) & set(SUPPORTED_VERSIONS))
        if not common:
            raise
        version = common[-1]
        info = channel.request(Method.INITIALIZE, InitializeParams(version, client, options),
                               timeout=HANDSHAKE_TIMEOUT)
    return replies.checked_initialize(info, channel.name, version, precision)


def _checked_shots(nshots: Any, seed: Any, timeout: object = None) -> tuple[int, int | None]:
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


def _qubit_list(qubits: Any) -> list[int] | None:
    """`qubits` (any iterable of integers, NumPy's too) as a list of ints; UsageError for
    anything else. The backend checks their range."""
    if qubits is None:
        return None
    listed: list[Any] = list(qubits) if isinstance(qubits, Iterable) else [None]
    if any(isinstance(q, bool) or not isinstance(q, (int, np.integer)) for q in listed):
        raise UsageError(f"qubits must be a list of integers, got {qubits!r}")
    return [int(q) for q in listed]
