"""Session: the protocol's methods as Python calls on one backend, with every check they need.

The server decodes a message and calls `call` or `notify`; an in-process handle calls them
directly with the same Structs (holding Gate and Circuit objects instead of their data). So
validation is written once, for every backend. The methods a session serves are the ones its
handlers register, and nothing else lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from ..circuit import Circuit, GateReader, read_gates
from ..errors import (
    BackendError,
    CircuitError,
    GateFailed,
    InvalidGate,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    RequestCancelled,
    ServerNotInitialized,
    StateTooLarge,
    UnknownState,
    UnsupportedProtocolVersion,
)
from ..protocol import (
    FEATURE_VERSIONS,
    METHOD_VERSIONS,
    PROTOCOL_VERSION,
    STATE_ENCODINGS,
    SUPPORTED_VERSIONS,
    ApplyParams,
    ArrayData,
    AttachParams,
    Capabilities,
    CircuitRef,
    ExecuteParams,
    ExecuteResult,
    ExpectationParams,
    Feature,
    InitializeParams,
    InitializeResult,
    Method,
    NewStateParams,
    PrepareParams,
    ProbabilitiesParams,
    ReadParams,
    SampleParams,
    SampleResult,
    SegmentRef,
    ServerInfo,
    StateExpectationParams,
    StateRef,
    encode_array,
    shots_problem,
)
from . import density
from .backend import Backend, Checkpoint, Counts, Work, drawn_counts, no_checkpoint
from .initial import initial_amplitudes
from .memory import (
    Budget,
    counts_bytes,
    expectations_bytes,
    format_bytes,
    prepared_bytes,
    request_bytes,
    samples_bytes,
)
from .segments import Segments
from .shots import Branches, frequencies, run_shots, shot_bits
from .streaming import until_invalid
from .variational import (
    Prepared,
    checked_observable,
    checked_sets,
    expectations,
    prepared,
)

MAX_SAMPLES = 10**8
"""The most shots answered one by one (a byte per measured qubit each)."""

MAX_PREPARED = 4096
"""The most circuits a session keeps prepared at once."""

F = TypeVar("F", bound=Callable[..., Any])
_HANDLERS: dict[str, Callable[[Session, Any], Any]] = {}
"""Every method a session serves, with its handler: the one list of them."""


def _handles(method: str) -> Callable[[F], F]:
    def register(handler: F) -> F:
        _HANDLERS[method] = handler
        return handler
    return register


def method_not_found(method: str) -> MethodNotFound:
    return MethodNotFound(f"unknown method {method!r}; methods: {', '.join(sorted(_HANDLERS))}")


@dataclass
class _HeldState:
    native: Any
    nqubits: int
    reader: GateReader | density.Unstreamable
    nbytes: int = 0
    """What the backend promised this state (it may not have touched it all yet)."""
    reserve: int = 0
    """The most a request on it takes beyond what is held (memory.request_bytes)."""
    is_density: bool = False
    """A density matrix of `nqubits`, held as density.of(backend) holds them."""
    streamed: int = 0
    """Gates received by state/apply so far: the index a GateFailed error names."""
    failure: GateFailed | None = None
    dropped: int = 0
    """Gates skipped after a failure, until the failure is reported."""


class Session:
    """One backend's states by id, and the protocol's methods on them."""

    def __init__(self, backend: Backend, *, shared_memory: bool = True,
                 max_message_bytes: int | None = None) -> None:
        self.backend = backend
        self.max_message_bytes = max_message_bytes
        self.checkpoint: Checkpoint = no_checkpoint
        """Handed to the backend to call between gates; the server's raises RequestCancelled."""
        self.initialized = False
        self.version = PROTOCOL_VERSION
        """The protocol version `initialize` agreed on."""
        self.segments = Segments(enabled=shared_memory)
        self._states: dict[int, _HeldState] = {}
        self._next_id = 1
        self._prepared: dict[int, Prepared] = {}
        self._next_circuit = 1
        self.budget = Budget(backend.baseline_bytes)

    @staticmethod
    def serves(method: str) -> bool:
        return method in _HANDLERS

    def call(self, method: str, params: Any) -> Any:
        """Run a request; BackendError subclasses carry what the caller must be told."""
        handler = _HANDLERS.get(method)
        if handler is None:
            raise method_not_found(method)
        if not self.initialized and method != Method.INITIALIZE:
            raise ServerNotInitialized(f"{method!r} before 'initialize': send 'initialize' first")
        if METHOD_VERSIONS.get(method, 1) > self.version:
            raise MethodNotFound(f"{method!r} is a method of protocol version "
                                 f"{METHOD_VERSIONS[method]}; this session speaks version "
                                 f"{self.version}")
        return handler(self, params)

    def call_array(self, method: str, params: Any) -> np.ndarray:
        """`state/read` or `state/probabilities` for in-process callers: an array of their own,
        not its wire encoding."""
        if not self.initialized:
            raise ServerNotInitialized(f"{method!r} before 'initialize': send 'initialize' first")
        if method == Method.STATE_READ:
            return np.array(self.read_array(params))
        if method == Method.STATE_PROBABILITIES:
            return self.probabilities_array(params)
        if method == Method.CIRCUIT_EXPECTATION:
            return self.expectation_array(params)
        raise MethodNotFound(f"{method!r} does not answer an array")

    def notify(self, method: str, params: Any) -> None:
        """Run a notification: no reply, so a streamed gate's error waits on its state."""
        if method == Method.STATE_APPLY and self.initialized:
            self._stream(params)
        else:
            self.call(method, params)

    # ---- lifecycle ---------------------------------------------------------------------

    @_handles(Method.INITIALIZE)
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
        devices = list(self.backend.devices)
        if options.device is not None and options.device not in devices:
            raise InvalidParams(f"device {options.device!r} is not available here; this "
                                f"backend offers {devices}")
        self.backend.configure(options)
        self.initialized = True
        self.version = params.protocol_version
        encodings = [e for e in STATE_ENCODINGS if e != "shm" or self.segments.enabled]
        return InitializeResult(
            protocol_version=self.version,
            server_info=ServerInfo(name=self.backend.name, version=self.backend.version),
            capabilities=Capabilities(
                gates=self.backend.gates, native_gates=sorted(self.backend.native_gates),
                max_qubits=self.backend.max_qubits, precisions=list(self.backend.precisions),
                state_encodings=encodings, threads=self.backend.threads,
                max_message_bytes=self.max_message_bytes,
                features=[f for f in self.backend.features
                          if FEATURE_VERSIONS[f] <= self.version],
                devices=devices if self.version >= 3 else None))

    @_handles(Method.SHUTDOWN)
    def shutdown(self, params: None) -> None:
        self._states.clear()
        self._prepared.clear()
        self.budget.clear()
        self.segments.close()

    # ---- execution ---------------------------------------------------------------------

    @_handles(Method.EXECUTE)
    def execute(self, params: ExecuteParams[Any, Any]) -> ExecuteResult:
        circuit = params.circuit
        if not isinstance(circuit, Circuit):  # in process, it was checked when it was built
            try:
                circuit = Circuit.from_data(circuit)
            except CircuitError as exc:
                raise InvalidParams(f"invalid circuit: {exc}") from None
        qubits = list(circuit.measured_qubits)
        self._check_shots(params.nshots, params.seed)
        if params.nshots and not qubits:
            raise InvalidParams("nshots > 0 but the circuit measures no qubit: add an M gate")
        if params.samples and params.nshots > MAX_SAMPLES:
            raise InvalidParams(f"samples of {params.nshots} shots: at most {MAX_SAMPLES} are "
                                "answered shot by shot; ask for frequencies alone")
        if params.samples and params.samples_segment is not None:
            self.segments.check_room(params.samples_segment, params.nshots * len(qubits))
        replies = counts_bytes(params.nshots, len(qubits)) + (samples_bytes(
            params.nshots, len(qubits), inline=params.samples_segment is None)
            if params.samples else 0)
        what = "their frequencies and samples" if params.samples else "their frequencies"
        self.budget.check(replies, f"{params.nshots} shots of {len(qubits)} bits ({what})",
                          circuit.nqubits)
        if circuit.density_matrix:
            return self._execute_density(circuit, params, replies)
        self._check_fits(circuit.nqubits, initial=params.initial_state is not None,
                         extra=replies)
        if circuit.is_stochastic:
            return self._execute_shots(circuit, params)
        start = self._start(circuit.nqubits, params.initial_state)
        native = self.backend.apply(start, circuit.gates, self.checkpoint)  # type: ignore[arg-type]
        state_id = self._hold(native, circuit.nqubits)
        if not params.nshots:
            return ExecuteResult(state=state_id)
        counts = self.backend.sample(native, qubits, params.nshots, params.seed)
        return self._sampled(state_id, counts, len(qubits), params)

    def _execute_shots(self, circuit: Circuit, params: ExecuteParams[Any, Any]) -> ExecuteResult:
        """A circuit whose shots differ before the end, run the backend's own way
        (Backend.shots) or by the session's shot engine (shots.py); the state held is one shot's
        final state (the engine's: the last branch walked)."""
        if Feature.MID_CIRCUIT_MEASUREMENT not in self.backend.features:
            raise InvalidParams(f"the {self.backend.name} backend cannot copy states "
                                "(from_array), which measurements with collapse=True need")
        n = circuit.nqubits
        branches = Branches(self.backend, self.budget, n)
        try:
            branches.start = self._start(n, params.initial_state)
            ran = self.backend.shots(circuit, branches.start, params.nshots, params.seed,
                                     self.checkpoint, self.budget.room())
            if ran is None:  # the engine's copies are checked one by one
                rng = np.random.default_rng(params.seed)
                ran = run_shots(self.backend, circuit, params.nshots, rng, self.checkpoint,
                                branches)
        finally:
            branches.close()
        return self._sampled(self._hold(ran[0], n), ran[1], len(circuit.measured_qubits),
                             params)

    def _execute_density(self, circuit: Circuit, params: ExecuteParams[Any, Any],
                         replies: int) -> ExecuteResult:
        """A density-matrix circuit (density.py): channels act exactly, shots are sampled from
        the final matrix's diagonal."""
        if Feature.DENSITY_MATRIX not in self.backend.features:
            raise InvalidParams(f"the {self.backend.name} backend holds no density matrices")
        n = circuit.nqubits
        densities = density.of(self.backend)
        self._check_fits(n, is_density=True, initial=params.initial_state is not None,
                         extra=max(densities.apply_bytes(circuit.gates, n), replies))
        initial = None
        if params.initial_state is not None:
            initial = initial_amplitudes(params.initial_state, n, self.segments,
                                         self.backend.dtype, density=True)
        native = densities.apply(densities.start(n, initial), circuit.gates, n, self.checkpoint)
        state_id = self._hold(native, n, is_density=True)
        qubits = list(circuit.measured_qubits)
        if not params.nshots:
            return ExecuteResult(state=state_id)
        counts = drawn_counts(densities.probabilities(native, n, qubits), params.nshots,
                              params.seed)
        return self._sampled(state_id, counts, len(qubits), params)

    @_handles(Method.STATE_NEW)
    def new_state(self, params: NewStateParams[Any]) -> StateRef:
        self._check_fits(params.nqubits, initial=params.initial is not None)
        return StateRef(self._hold(self._start(params.nqubits, params.initial), params.nqubits))

    def _start(self, nqubits: int, initial: ArrayData | np.ndarray | None) -> Any:
        """A new state: |0...0>, or the amplitudes given (checked)."""
        if initial is None:
            return self.backend.zero_state(nqubits)
        if Feature.INITIAL_STATE not in self.backend.features:
            raise InvalidParams(f"the {self.backend.name} backend takes no initial states")
        return self.backend.from_array(
            initial_amplitudes(initial, nqubits, self.segments, self.backend.dtype))

    @_handles(Method.STATE_APPLY)
    def apply(self, params: ApplyParams[Any]) -> None:
        held = self._state(params.state)
        try:
            gates = read_gates(params.gates, held.reader)
        except InvalidGate as exc:
            raise InvalidParams(str(exc), {"index": exc.index}) from None
        try:
            held.native = self.backend.apply(held.native, gates, self.checkpoint)
        except RequestCancelled as exc:
            self._drop(params.state)
            raise RequestCancelled(f"{exc.message}; state {params.state} was part-way through "
                                   "its gates and has been freed") from None
        held.streamed += len(gates)

    def _stream(self, params: ApplyParams[Any]) -> None:
        held = self._states.get(params.state)
        if held is None:
            return  # reported at the next request naming this id
        if held.failure is not None:
            held.dropped += len(params.gates)
            return
        try:
            valid = list(map(held.reader.read, params.gates))
        except CircuitError:
            valid = until_invalid(held, params)
        held.native = self.backend.apply(held.native, valid, self.checkpoint)  # one call: fused
        held.streamed += len(valid)

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

    def _sampled(self, state_id: int, counts: Counts, width: int,
                 params: ExecuteParams[Any, Any]) -> ExecuteResult:
        """The reply to an execute with shots: the counts as frequencies, and every shot when
        asked for."""
        if not params.nshots:
            return ExecuteResult(state=state_id)
        result = ExecuteResult(state=state_id, frequencies=frequencies(counts, width))
        if params.samples:
            rows = shot_bits(counts, width, np.random.default_rng(params.seed))
            result.samples = self._reply_array(rows, params.samples_segment)
        return result

    def _reply_array(self, array: np.ndarray, segment: int | None) -> ArrayData:
        """`array` as a reply carries it: in the client's segment if it named one, else
        inline."""
        if segment is None:
            return encode_array(array)
        self.segments.write(segment, array)
        return ArrayData(dtype=array.dtype.name, shape=list(array.shape), segment=segment)

    @_handles(Method.STATE_READ)
    def read(self, params: ReadParams) -> ArrayData:
        return self._reply_array(self.read_array(params), params.segment)

    def read_array(self, params: ReadParams) -> np.ndarray:
        held = self._state(params.state)
        if held.is_density:
            return density.of(self.backend).matrix(held.native, held.nqubits)
        return self.backend.to_array(held.native)

    @_handles(Method.STATE_PROBABILITIES)
    def probabilities(self, params: ProbabilitiesParams) -> ArrayData:
        return encode_array(self.probabilities_array(params))

    def probabilities_array(self, params: ProbabilitiesParams) -> np.ndarray:
        held = self._state(params.state)
        qubits = self._qubits(params.qubits, held.nqubits)
        if held.is_density:
            return density.of(self.backend).probabilities(held.native, held.nqubits, qubits)
        return self.backend.probabilities(held.native, qubits)

    @_handles(Method.STATE_SAMPLE)
    def sample(self, params: SampleParams) -> SampleResult:
        held = self._state(params.state)
        qubits = self._qubits(params.qubits, held.nqubits)
        self._check_shots(params.nshots, params.seed)
        self.budget.check(counts_bytes(params.nshots, len(qubits)),
                          f"the frequencies of {params.nshots} shots", held.nqubits)
        if held.is_density:
            probabilities = density.of(self.backend).probabilities(held.native, held.nqubits,
                                                                   qubits)
            counts = drawn_counts(probabilities, params.nshots, params.seed)
        else:
            counts = self.backend.sample(held.native, qubits, params.nshots, params.seed)
        return SampleResult(frequencies(counts, len(qubits)))

    @_handles(Method.STATE_EXPECTATION)
    def state_expectation(self, params: StateExpectationParams) -> float:
        held = self._state(params.state)
        observable = checked_observable(params.observable, held.nqubits)
        return observable.expectation(self.read_array(ReadParams(params.state)))

    @_handles(Method.STATE_FREE)
    def free(self, params: StateRef) -> None:
        if params.state not in self._states:
            raise UnknownState(f"no state {params.state} is held")
        self._drop(params.state)

    # ---- prepared circuits (version 3) -------------------------------------------------

    @_handles(Method.CIRCUIT_PREPARE)
    def prepare(self, params: PrepareParams[Any]) -> CircuitRef:
        if len(self._prepared) >= MAX_PREPARED:
            raise InvalidParams(f"{MAX_PREPARED} circuits are prepared already: free some "
                                "(circuit/free)")
        circuit = params.circuit
        if not isinstance(circuit, Circuit):
            try:
                circuit = Circuit.from_data(circuit)
            except CircuitError as exc:
                raise InvalidParams(f"invalid circuit: {exc}") from None
        self._check_fits(circuit.nqubits, is_density=circuit.density_matrix)
        ready = prepared(circuit, params.slots, params.parameters)
        self.budget.check(self.backend.working_bytes(Work.PREPARE, circuit.nqubits),
                          f"preparing a {circuit.nqubits}-qubit circuit", circuit.nqubits)
        ready.native = self.backend.prepare(ready)
        self.budget.hold(prepared_bytes(self.backend, ready))
        circuit_id, self._next_circuit = self._next_circuit, self._next_circuit + 1
        self._prepared[circuit_id] = ready
        return CircuitRef(circuit_id)

    @_handles(Method.CIRCUIT_EXPECTATION)
    def expectation(self, params: ExpectationParams[Any]) -> ArrayData:
        """float64 [sets]: the observable's expectation value after each set."""
        return encode_array(self.expectation_array(params))

    def expectation_array(self, params: ExpectationParams[Any]) -> np.ndarray:
        ready = self._circuit(params.circuit)
        sets = checked_sets(params.parameters, ready, params.circuit)
        observable = checked_observable(params.observable, ready.circuit.nqubits)
        n = ready.circuit.nqubits
        self._check_fits(n, is_density=ready.circuit.density_matrix)
        self.budget.check(expectations_bytes(self.backend, ready),
                          f"expectation values of a {n}-qubit circuit", n)
        values = self.backend.expectations(ready, sets, observable, self.checkpoint)
        if values is None:
            values = expectations(self.backend, ready, sets, observable, self.checkpoint)
        return values

    @_handles(Method.CIRCUIT_FREE)
    def free_circuit(self, params: CircuitRef) -> None:
        self._circuit(params.circuit)
        self.budget.release(prepared_bytes(self.backend, self._prepared.pop(params.circuit)))

    def _circuit(self, circuit_id: int) -> Prepared:
        ready = self._prepared.get(circuit_id)
        if ready is None:
            raise InvalidParams(f"no circuit {circuit_id} is prepared (never, or freed); "
                                f"prepared: {sorted(self._prepared) or 'none'}")
        return ready

    # ---- shared memory -----------------------------------------------------------------

    @_handles(Method.SHM_ATTACH)
    def attach(self, params: AttachParams) -> SegmentRef:
        return SegmentRef(self.segments.attach(params.path, params.size))

    @_handles(Method.SHM_DETACH)
    def detach(self, params: SegmentRef) -> None:
        self.segments.detach(params.segment)

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

    def _hold(self, native: Any, nqubits: int, *, is_density: bool = False) -> int:
        state_id, self._next_id = self._next_id, self._next_id + 1
        nbytes = self.backend.state_bytes(2 * nqubits if is_density else nqubits)
        reserve = request_bytes(self.backend, nqubits, is_density=is_density)
        reader = density.Unstreamable(nqubits) if is_density else GateReader(nqubits)
        self._states[state_id] = _HeldState(native, nqubits, reader, nbytes, reserve,
                                            is_density)
        self.budget.hold(nbytes, reserve)
        return state_id

    def _drop(self, state_id: int) -> None:
        held = self._states.pop(state_id)
        self.budget.release(held.nbytes, held.reserve)

    def _check_fits(self, nqubits: int, *, is_density: bool = False, initial: bool = False,
                    extra: int = 0) -> None:
        """StateTooLarge unless a state of `nqubits` (a density matrix: 2n as a vector) can be
        held with room for the largest of: any request on it (memory.request_bytes), taking an
        `initial` state in (the array read and from_array's work; on a density matrix also
        |psi><psi| and its reordered copy), and `extra` bytes (this request's own work)."""
        if nqubits <= 0:
            raise InvalidParams(f"nqubits must be positive, got {nqubits}")
        bits = 2 * nqubits if is_density else nqubits
        limit = self.backend.max_qubits
        if bits > limit:
            size = (format_bytes(2.0**bits * self.backend.dtype.itemsize) if bits < 1000
                    else "more than any machine has")
            raise StateTooLarge(f"{bits} qubits exceed this backend's maximum of {limit}; a "
                                f"{self.backend.dtype.name} state would need {size}",
                                {"nqubits": bits, "maxQubits": limit})
        if initial:
            array = self.backend.dtype.itemsize << bits
            extra = max(extra, (2 if is_density else 1) * array
                        + self.backend.working_bytes(Work.LOAD, bits))
        what = (f"a {nqubits}-qubit {self.backend.dtype.name} "
                f"{'density matrix' if is_density else 'state'}")
        self.budget.check_hold(
            self.backend.state_bytes(bits),
            max(request_bytes(self.backend, nqubits, is_density=is_density), extra), what,
            nqubits)

    @staticmethod
    def _check_shots(nshots: int, seed: int | None) -> None:
        problem = shots_problem(nshots, seed)
        if problem:
            raise InvalidParams(problem)

    @staticmethod
    def _qubits(qubits: Sequence[int] | None, nqubits: int) -> list[int]:
        if qubits is None:
            return list(range(nqubits))
        if not qubits:
            raise InvalidParams("qubits is empty: name at least one, or leave it out for all")
        bad = [q for q in qubits if not 0 <= q < nqubits]
        if bad:
            raise InvalidParams(f"qubit {bad[0]} is out of range for a {nqubits}-qubit state")
        if len(set(qubits)) != len(qubits):
            raise InvalidParams(f"qubits {list(qubits)} has repeats")
        return list(qubits)



