"""Session: the protocol's methods as Python calls on one backend, with every check they need.

The server decodes a message and calls `call` or `notify`; an in-process handle calls them
directly with the same Structs. So validation is written once, for every backend.
"""

from __future__ import annotations

import mmap
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from . import gates as _gates
from .backend import Backend, Checkpoint, no_checkpoint
from .circuit import Circuit
from .errors import (
    BackendError, CircuitError, GateFailed, InvalidParams, InvalidRequest, MethodNotFound,
    RequestCancelled, ServerNotInitialized, StateTooLarge, UnknownState,
    UnsupportedProtocolVersion,
)
from .gates import Gate
from .protocol import (
    PROTOCOL_VERSION, SHM_DIR, SHM_PREFIX, STATE_ENCODINGS, SUPPORTED_VERSIONS, ApplyParams,
    ArrayData, AttachParams, Capabilities, ExecuteParams, ExecuteResult, InitializeParams,
    InitializeResult, Method, NewStateParams, ProbabilitiesParams, ReadParams, SampleParams,
    SampleResult, SegmentRef, ServerInfo, StateRef, encode_array, shots_problem,
)

SMALL_STATE_BYTES = 2**26
"""States smaller than this are allocated without checking the memory available."""


@dataclass
class _HeldState:
    native: Any
    nqubits: int
    reader: _gates.GateReader
    streamed: int = 0
    """Gates received by state/apply so far: the index a GateFailed error names."""
    failure: GateFailed | None = None
    dropped: int = 0
    """Gates skipped after a failure, until the failure is reported."""


def _open_segment(path: str, size: int) -> int:
    """A descriptor of the segment file `path`, opened only if it is what the protocol means: a
    regular file of ours (same user) of at least `size` bytes, named SHM_PREFIX... directly in
    SHM_DIR, reached without following a link. Nothing else is ever written to."""
    folder, name = os.path.split(path)
    if (not name.startswith(SHM_PREFIX) or not os.path.isabs(path)
            or os.path.realpath(folder) != os.path.realpath(SHM_DIR)):
        raise InvalidParams(f"{path!r} is not a shared-memory segment: segments are files named "
                            f"{SHM_PREFIX}* directly in {SHM_DIR}")
    if size <= 0:
        raise InvalidParams(f"a segment's size must be positive, got {size}")
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidParams(f"cannot open shared memory {path!r}: {exc.strerror} (is the backend "
                            "on another host?); use base64") from None
    info = os.fstat(fd)
    problem = ""
    if not stat.S_ISREG(info.st_mode):
        problem = "it is not a regular file"
    elif info.st_uid != os.geteuid():
        problem = f"it belongs to user {info.st_uid}, not to the backend's user {os.geteuid()}"
    elif info.st_size < size:
        problem = f"it holds {info.st_size} bytes, fewer than the {size} claimed"
    if problem:
        os.close(fd)
        raise InvalidParams(f"refused to attach {path!r}: {problem}")
    return fd


def available_memory() -> int:
    """Bytes of memory that a new allocation may take (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"


class Session:
    """One backend's states by id, and the protocol's methods on them."""

    def __init__(self, backend: Backend, *, shared_memory: bool = True) -> None:
        self.backend = backend
        self.shared_memory = shared_memory
        """Whether `shm/attach` is served (a backend started with --no-shm refuses it)."""
        self.checkpoint: Checkpoint = no_checkpoint
        """Handed to the backend to call between gates; the server's raises RequestCancelled."""
        self.initialized = False
        self._states: dict[int, _HeldState] = {}
        self._next_id = 1
        self._segments: dict[int, mmap.mmap] = {}
        self._next_segment = 1
        self._handlers: dict[str, Callable[[Any], Any]] = {
            Method.INITIALIZE: self.initialize,
            Method.SHUTDOWN: self.shutdown,
            Method.EXECUTE: self.execute,
            Method.STATE_NEW: self.new_state,
            Method.STATE_APPLY: self.apply,
            Method.STATE_READ: self.read,
            Method.STATE_PROBABILITIES: self.probabilities,
            Method.STATE_SAMPLE: self.sample,
            Method.STATE_FREE: self.free,
            Method.SHM_ATTACH: self.attach,
            Method.SHM_DETACH: self.detach,
        }
        self._array_handlers: dict[str, Callable[[Any], Any]] = {
            Method.STATE_READ: self.read_array,
            Method.STATE_PROBABILITIES: self.probabilities_array,
        }

    def call(self, method: str, params: Any) -> Any:
        """Run a request; BackendError subclasses carry what the caller must be told."""
        return self._handler(method, self._handlers)(params)

    def call_array(self, method: str, params: Any) -> np.ndarray:
        """`state/read` or `state/probabilities` for in-process callers: an array of their own,
        not its wire encoding."""
        return np.array(self._handler(method, self._array_handlers)(params))

    def _handler(self, method: str,
                 handlers: dict[str, Callable[[Any], Any]]) -> Callable[[Any], Any]:
        handler = handlers.get(method)
        if handler is None:
            raise MethodNotFound(f"unknown method {method!r}; methods: "
                                 f"{', '.join(sorted(handlers))}")
        if not self.initialized and method != Method.INITIALIZE:
            raise ServerNotInitialized(f"{method!r} before 'initialize': send 'initialize' first")
        return handler

    def notify(self, method: str, params: Any) -> None:
        """Run a notification: no reply, so a streamed gate's error waits on its state."""
        if method == Method.STATE_APPLY and self.initialized:
            self._stream(params)
        else:
            self.call(method, params)

    # ---- lifecycle ---------------------------------------------------------------------

    def initialize(self, params: InitializeParams) -> InitializeResult:
        if self.initialized:
            raise InvalidRequest("'initialize' was already received")
        if params.protocol_version not in SUPPORTED_VERSIONS:
            raise UnsupportedProtocolVersion(
                f"protocol version {params.protocol_version} is not supported; this backend "
                f"speaks {list(SUPPORTED_VERSIONS)}",
                {"supported": list(SUPPORTED_VERSIONS), "requested": params.protocol_version})
        options = params.options
        if options.precision not in self.backend.precisions:
            raise InvalidParams(f"precision {options.precision!r} is not offered; choose one of "
                                f"{list(self.backend.precisions)}")
        if options.threads is not None and options.threads < 1:
            raise InvalidParams(f"threads must be at least 1, got {options.threads}")
        self.backend.configure(options)
        self.initialized = True
        return InitializeResult(
            protocol_version=PROTOCOL_VERSION,
            server_info=ServerInfo(name=self.backend.name, version=self.backend.version),
            capabilities=Capabilities(
                gates=self.backend.gates, native_gates=sorted(self.backend.native_gates),
                max_qubits=self.backend.max_qubits, precisions=list(self.backend.precisions),
                state_encodings=[e for e in STATE_ENCODINGS if e != "shm" or self.shared_memory],
                threads=self.backend.threads))

    def shutdown(self, params: None) -> None:
        self._states.clear()
        for segment in self._segments.values():
            segment.close()
        self._segments.clear()

    # ---- execution ---------------------------------------------------------------------

    def execute(self, params: ExecuteParams) -> ExecuteResult:
        try:
            circuit = Circuit.from_data(params.circuit)
        except CircuitError as exc:
            raise InvalidParams(f"invalid circuit: {exc}") from None
        qubits = list(circuit.measured_qubits)
        self._check_shots(params.nshots, params.seed)
        if params.nshots and not qubits:
            raise InvalidParams("nshots > 0 but the circuit measures no qubit: add an M gate")
        self._check_fits(circuit.nqubits)
        native = self.backend.apply(self.backend.zero_state(circuit.nqubits), circuit.gates,
                                    self.checkpoint)
        state_id = self._hold(native, circuit.nqubits)
        frequencies = None
        if params.nshots:
            frequencies = self._frequencies(self._states[state_id], qubits, params.nshots,
                                            params.seed)
        return ExecuteResult(state=state_id, frequencies=frequencies)

    def new_state(self, params: NewStateParams) -> StateRef:
        self._check_fits(params.nqubits)
        return StateRef(self._hold(self.backend.zero_state(params.nqubits), params.nqubits))

    def apply(self, params: ApplyParams) -> None:
        held = self._state(params.state)
        gates = self._checked_gates(params.gates, held.reader)
        try:
            held.native = self.backend.apply(held.native, gates, self.checkpoint)
        except RequestCancelled as exc:
            del self._states[params.state]
            raise RequestCancelled(f"{exc.message}; state {params.state} was part-way through "
                                   "its gates and has been freed") from None
        held.streamed += len(gates)

    def _stream(self, params: ApplyParams) -> None:
        held = self._states.get(params.state)
        if held is None:
            return  # reported at the next request naming this id
        if held.failure is not None:
            held.dropped += len(params.gates)
            return
        try:
            valid = list(map(held.reader.read, params.gates))
        except CircuitError:
            valid = self._until_invalid(held, params)
        held.native = self.backend.apply(held.native, valid, self.checkpoint)  # one call: fused
        held.streamed += len(valid)

    @staticmethod
    def _until_invalid(held: _HeldState, params: ApplyParams) -> list[Gate]:
        """The streamed gates before the first invalid one, which becomes the state's failure
        (read one by one only once a batch is known to hold one)."""
        valid: list[Gate] = []
        for data in params.gates:
            try:
                valid.append(held.reader.read(data))
            except CircuitError as exc:
                index = held.streamed + len(valid)
                held.failure = GateFailed(
                    f"streamed gate {index} ({data.name} on {list(data.qubits)}) of state "
                    f"{params.state} failed: {exc}",
                    {"state": params.state, "index": index, "gate": msgspec.to_builtins(data)})
                held.dropped = len(params.gates) - len(valid) - 1
                break
        return valid

    def stream_failed(self, state_id: int | None, error: BackendError) -> None:
        """A `state/apply` notification could not be run at all (its params could not be
        decoded): its state reports that at the next request naming it, as it would a streamed
        gate that failed, rather than silently missing the gates."""
        held = self._states.get(state_id) if state_id is not None else None
        if held is None or held.failure is not None:
            return
        held.failure = GateFailed(
            f"streamed gates from gate {held.streamed} on of state {state_id} were lost: "
            f"{error.message}", {"state": state_id, "index": held.streamed})

    # ---- reading states ----------------------------------------------------------------

    def read(self, params: ReadParams) -> ArrayData:
        array = self.read_array(params)
        if params.segment is None:
            return encode_array(array)
        segment = self._segment(params.segment)
        if array.nbytes > len(segment):
            raise InvalidParams(f"the state takes {array.nbytes} bytes; segment "
                                f"{params.segment} holds {len(segment)}")
        np.copyto(np.frombuffer(segment, array.dtype, array.size), array.reshape(-1))
        return ArrayData(dtype=array.dtype.name, shape=list(array.shape), segment=params.segment)

    def read_array(self, params: ReadParams) -> np.ndarray:
        return self.backend.to_array(self._state(params.state).native)

    # ---- shared memory -----------------------------------------------------------------

    def attach(self, params: AttachParams) -> SegmentRef:
        if not self.shared_memory:
            raise InvalidParams("shared memory is off in this backend (--no-shm); use base64")
        fd = _open_segment(params.path, params.size)
        try:
            segment = mmap.mmap(fd, params.size)
        finally:
            os.close(fd)
        segment_id, self._next_segment = self._next_segment, self._next_segment + 1
        self._segments[segment_id] = segment
        return SegmentRef(segment_id)

    def detach(self, params: SegmentRef) -> None:
        self._segment(params.segment)
        self._segments.pop(params.segment).close()

    def _segment(self, segment_id: int) -> mmap.mmap:
        segment = self._segments.get(segment_id)
        if segment is None:
            raise InvalidParams(f"no shared-memory segment {segment_id} is attached")
        return segment

    def probabilities(self, params: ProbabilitiesParams) -> ArrayData:
        return encode_array(self.probabilities_array(params))

    def probabilities_array(self, params: ProbabilitiesParams) -> np.ndarray:
        held = self._state(params.state)
        return self.backend.probabilities(held.native, self._qubits(params.qubits, held.nqubits))

    def sample(self, params: SampleParams) -> SampleResult:
        held = self._state(params.state)
        qubits = self._qubits(params.qubits, held.nqubits)
        self._check_shots(params.nshots, params.seed)
        return SampleResult(self._frequencies(held, qubits, params.nshots, params.seed))

    def free(self, params: StateRef) -> None:
        if self._states.pop(params.state, None) is None:
            raise UnknownState(f"no state {params.state} is held")

    # ---- checks ------------------------------------------------------------------------

    def _state(self, state_id: int) -> _HeldState:
        held = self._states.get(state_id)
        if held is None:
            raise UnknownState(f"no state {state_id} is held (never created, or freed); "
                               f"held states: {sorted(self._states) or 'none'}")
        if held.failure is not None:
            failure, held.failure = held.failure, None
            if held.dropped:
                failure.message += f"; the {held.dropped} gates streamed after it were skipped"
                failure.args = (failure.message,)
                held.dropped = 0
            raise failure
        return held

    def _hold(self, native: Any, nqubits: int) -> int:
        state_id, self._next_id = self._next_id, self._next_id + 1
        self._states[state_id] = _HeldState(native, nqubits, _gates.GateReader(nqubits))
        return state_id

    def _check_fits(self, nqubits: int) -> None:
        if nqubits <= 0:
            raise InvalidParams(f"nqubits must be positive, got {nqubits}")
        limit = self.backend.max_qubits
        if nqubits > limit:
            size = (_bytes(2.0**nqubits * self.backend.dtype.itemsize) if nqubits < 1000
                    else "more than any machine has")
            raise StateTooLarge(f"{nqubits} qubits exceed this backend's maximum of {limit}; a "
                                f"{self.backend.dtype.name} state would need {size}",
                                {"nqubits": nqubits, "maxQubits": limit})
        need = self.backend.state_bytes(nqubits)
        if need < SMALL_STATE_BYTES:
            return  # reading /proc/meminfo would cost more than the state
        have = available_memory()
        if need > have:
            raise StateTooLarge(f"a {nqubits}-qubit {self.backend.dtype.name} state needs "
                                f"{_bytes(need)}; only {_bytes(have)} of memory is available",
                                {"nqubits": nqubits, "bytesNeeded": need, "bytesAvailable": have})

    @staticmethod
    def _check_shots(nshots: int, seed: int | None) -> None:
        problem = shots_problem(nshots, seed)
        if problem:
            raise InvalidParams(problem)

    @staticmethod
    def _qubits(qubits: Sequence[int] | None, nqubits: int) -> list[int]:
        if qubits is None:
            return list(range(nqubits))
        bad = [q for q in qubits if not 0 <= q < nqubits]
        if bad:
            raise InvalidParams(f"qubit {bad[0]} is out of range for a {nqubits}-qubit state")
        if len(set(qubits)) != len(qubits):
            raise InvalidParams(f"qubits {list(qubits)} has repeats")
        return list(qubits)

    @staticmethod
    def _checked_gates(gates: Sequence[Any], reader: _gates.GateReader) -> list[Gate]:
        checked = []
        for index, data in enumerate(gates):
            try:
                checked.append(reader.read(data))
            except CircuitError as exc:
                raise InvalidParams(f"gate {index}: {exc}", {"index": index}) from None
        return checked

    def _frequencies(self, held: _HeldState, qubits: list[int], nshots: int,
                     seed: int | None) -> dict[str, int]:
        counts = self.backend.sample(held.native, qubits, nshots, seed)
        width = len(qubits)
        return {format(int(k), f"0{width}b"): int(counts[k]) for k in np.flatnonzero(counts)}

