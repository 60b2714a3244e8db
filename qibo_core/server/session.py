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
    DEVICES_SINCE,
    FEATURE_VERSIONS,
    METHODS,
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
from .backend import Backend, Checkpoint, drawn_counts, no_checkpoint
from .initial import initial_amplitudes
from .memory import Budget, format_bytes
from .segments import Segments
from .shots import as_integers, frequencies, outcomes, run_shots, shot_bits
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
"""The handler of each method of protocol.METHODS that a session serves."""


def _handles(method: str) -> Callable[[F], F]:
    """Register the handler of `method`: one of the table's, once."""
    spec = METHODS.get(method)
    if spec is None or not spec.session:
        raise LookupError(f"{method!r} is not a method a session serves (protocol.METHODS)")
    if method in _HANDLERS:
        raise LookupError(f"{method!r} has a handler already: {_HANDLERS[method].__name__}")

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
        self.budget = Budget()

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
        since = METHODS[method].since
        if since > self.version:
            raise MethodNotFound(f"{method!r} is a method of protocol version {since}; this "
                                 f"session speaks version {self.version}")
        return handler(self, params)

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
                devices=devices if self.version >= DEVICES_SINCE else None))

    @_handles(Method.SHUTDOWN)
    def shutdown(self, params: None) -> None:
        self._states.clear()
        self._prepared.clear()
        self.budget.promised = 0
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
        if circuit.density_matrix:
            return self._execute_density(circuit, params)
        self._check_fits(circuit.nqubits)
        start = self._start(circuit.nqubits, params.initial_state)
        if circuit.is_stochastic:
            return self._execute_shots(circuit, start, params)
        native = self.backend.apply(start, circuit.gates, self.checkpoint)  # type: ignore[arg-type]
        state_id = self._hold(native, circuit.nqubits)
        if not params.nshots:
            return ExecuteResult(state=state_id)
        counts = self.backend.sample(native, qubits, params.nshots, params.seed)
        return self._sampled(state_id, counts, len(qubits), params)

    def _execute_shots(self, circuit: Circuit, start: Any,
                       params: ExecuteParams[Any, Any]) -> ExecuteResult:
        """A circuit whose shots differ before the end, run the backend's own way
        (Backend.shots) or by the session's shot engine (shots.py); the state held is one shot's
        final state (the engine's: the last branch walked)."""
        if Feature.MID_CIRCUIT_MEASUREMENT not in self.backend.features:
            raise InvalidParams(f"the {self.backend.name} backend cannot copy states "
                                "(from_array), which measurements with collapse=True need")
        ran = self.backend.shots(circuit, start, params.nshots, params.seed, self.checkpoint)
        final, shots = ran or self._engine_shots(circuit, start, params.nshots, params.seed)
        state_id = self._hold(final, circuit.nqubits)
        if not params.nshots:
            return ExecuteResult(state=state_id)
        counts = np.bincount(as_integers(shots), minlength=2 ** shots.shape[1])
        result = ExecuteResult(state=state_id, frequencies=frequencies(counts, shots.shape[1]))
        if params.samples:
            result.samples = self._reply_array(shots, params.samples_segment)
        return result

    def _engine_shots(self, circuit: Circuit, start: Any, nshots: int,
                      seed: int | None) -> tuple[Any, np.ndarray]:
        """The shot engine's run: the last branch's final state, and every shot's bits."""
        rng = np.random.default_rng(seed)
        leaves = run_shots(self.backend, circuit, start, nshots, rng, self.checkpoint, self._copy)
        if not nshots:
            return leaves[-1].state, np.zeros((0, len(circuit.measured_qubits)), np.uint8)
        return leaves[-1].state, outcomes(self.backend, circuit, leaves, rng)

    def _execute_density(self, circuit: Circuit, params: ExecuteParams[Any, Any]) -> ExecuteResult:
        """A density-matrix circuit (density.py): channels act exactly, shots are sampled from
        the final matrix's diagonal."""
        if Feature.DENSITY_MATRIX not in self.backend.features:
            raise InvalidParams(f"the {self.backend.name} backend holds no density matrices")
        n = circuit.nqubits
        self._check_fits(2 * n)
        initial = None
        if params.initial_state is not None:
            initial = initial_amplitudes(params.initial_state, n, self.segments,
                                         self.backend.dtype, density=True)
        densities = density.of(self.backend)
        native = densities.apply(densities.start(n, initial), circuit.gates, n, self.checkpoint)
        state_id = self._hold(native, n, is_density=True)
        qubits = list(circuit.measured_qubits)
        if not params.nshots:
            return ExecuteResult(state=state_id)
        counts = drawn_counts(densities.probabilities(native, n, qubits), params.nshots,
                              params.seed)
        return self._sampled(state_id, counts, len(qubits), params)

    def _copy(self, native: Any) -> Any:
        return self.backend.from_array(np.array(self.backend.to_array(native)))

    @_handles(Method.STATE_NEW)
    def new_state(self, params: NewStateParams[Any]) -> StateRef:
        self._check_fits(params.nqubits)
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

    def _sampled(self, state_id: int, counts: np.ndarray, width: int,
                 params: ExecuteParams[Any, Any]) -> ExecuteResult:
        """The reply to an execute whose shots were all drawn from one final state: the counts
        as frequencies, and every shot when asked for."""
        result = ExecuteResult(state=state_id, frequencies=frequencies(counts, width))
        if params.samples:
            result.samples = self._reply_array(shot_bits(counts, width, params.seed),
                                               params.samples_segment)
        return result

    def _reply_array(self, array: np.ndarray, segment: int | None) -> ArrayData:
        """`array` as a reply carries it: in the client's segment if it named one, else
        inline."""
        if segment is None:
            return encode_array(array)
        self.segments.write(segment, array)
        return ArrayData(dtype=array.dtype.name, shape=list(array.shape), segment=segment)

    @_handles(Method.STATE_READ)
    def read(self, params: ReadParams) -> np.ndarray | ArrayData:
        """The amplitudes (held by the backend: the caller copies or encodes them), or their
        place in the client's segment."""
        array = self._amplitudes(params.state)
        return array if params.segment is None else self._reply_array(array, params.segment)

    def _amplitudes(self, state_id: int) -> np.ndarray:
        held = self._state(state_id)
        if held.is_density:
            return density.of(self.backend).matrix(held.native, held.nqubits)
        return self.backend.to_array(held.native)

    @_handles(Method.STATE_PROBABILITIES)
    def probabilities(self, params: ProbabilitiesParams) -> np.ndarray:
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
        return observable.expectation(self._amplitudes(params.state))

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
        self._check_fits(2 * circuit.nqubits if circuit.density_matrix else circuit.nqubits)
        ready = prepared(circuit, params.slots, params.parameters)
        ready.native = self.backend.prepare(ready, self.checkpoint)
        circuit_id, self._next_circuit = self._next_circuit, self._next_circuit + 1
        self._prepared[circuit_id] = ready
        return CircuitRef(circuit_id)

    @_handles(Method.CIRCUIT_EXPECTATION)
    def expectation(self, params: ExpectationParams[Any]) -> np.ndarray:
        """float64 [sets]: the observable's expectation value after each set."""
        ready = self._circuit(params.circuit)
        sets = checked_sets(params.parameters, ready, params.circuit)
        observable = checked_observable(params.observable, ready.circuit.nqubits)
        n = ready.circuit.nqubits
        self._check_fits(2 * n if ready.circuit.density_matrix else n)
        values = self.backend.expectations(ready, sets, observable, self.checkpoint)
        if values is None:
            values = expectations(self.backend, ready, sets, observable, self.checkpoint)
        return values

    @_handles(Method.CIRCUIT_FREE)
    def free_circuit(self, params: CircuitRef) -> None:
        self._circuit(params.circuit)
        del self._prepared[params.circuit]

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
        reader = density.Unstreamable(nqubits) if is_density else GateReader(nqubits)
        self._states[state_id] = _HeldState(native, nqubits, reader, nbytes, is_density)
        self.budget.promised += nbytes
        return state_id

    def _drop(self, state_id: int) -> None:
        self.budget.promised -= self._states.pop(state_id).nbytes

    def _check_fits(self, nqubits: int) -> None:
        if nqubits <= 0:
            raise InvalidParams(f"nqubits must be positive, got {nqubits}")
        limit = self.backend.max_qubits
        if nqubits > limit:
            size = (format_bytes(2.0**nqubits * self.backend.dtype.itemsize) if nqubits < 1000
                    else "more than any machine has")
            raise StateTooLarge(f"{nqubits} qubits exceed this backend's maximum of {limit}; a "
                                f"{self.backend.dtype.name} state would need {size}",
                                {"nqubits": nqubits, "maxQubits": limit})
        self.budget.check(self.backend.state_bytes(nqubits),
                          f"a {nqubits}-qubit {self.backend.dtype.name} state", nqubits)

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



