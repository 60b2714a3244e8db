"""The handlers of held states: `state/new`, `state/apply` (as a request, or streamed as
notifications whose errors wait on the state), `state/read`, `state/probabilities`,
`state/sample`, `state/expectation`, `state/free`."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from ..circuit import Gate, gate_label, read_gates
from ..errors import (
    BackendError,
    CircuitError,
    GateFailed,
    InvalidGate,
    InvalidParams,
    RequestCancelled,
    UnknownState,
)
from ..protocol import (
    ApplyParams,
    ArrayData,
    Feature,
    Method,
    NewStateParams,
    ProbabilitiesParams,
    ReadParams,
    SampleParams,
    SampleResult,
    StateExpectationParams,
    StateRef,
)
from . import density
from .backend import drawn_counts
from .execution import reply_array, start_state
from .memory import counts_bytes
from .prepared import checked_observable
from .registry import handles
from .session import HeldState, Session
from .shots import frequencies


@handles(Method.STATE_NEW)
def new_state(session: Session, params: NewStateParams[Any]) -> StateRef:
    if params.initial is not None:
        session.require([Feature.INITIAL_STATE], "state/new with 'initial'")
    session.check_fits(params.nqubits, initial=params.initial is not None)
    native = start_state(session, params.nqubits, params.initial)
    return StateRef(session.hold(native, params.nqubits))


@handles(Method.STATE_APPLY)
def apply(session: Session, params: ApplyParams[Any]) -> None:
    held = session.state(params.state)
    try:
        gates = read_gates(params.gates, held.reader)
    except InvalidGate as exc:
        raise InvalidParams(str(exc), {"index": exc.index}) from None
    try:
        session.apply(held, gates)
    except RequestCancelled as exc:
        session.drop(params.state)
        raise RequestCancelled(f"{exc.message}; state {params.state} was part-way through its "
                               "gates and has been freed") from None
    held.streamed += len(gates)


@handles(Method.STATE_APPLY, notification=True)
def stream(session: Session, params: ApplyParams[Any]) -> None:
    """Streamed gates: the valid ones before the first invalid one are applied, in one call
    (the backend fuses them), as U rho U^dagger to a density matrix; the invalid one is the
    state's failure, reported at the next request naming it (protocol.md 4.3)."""
    held = session.states.get(params.state)
    if held is None:
        return  # reported at the next request naming this id
    if held.failure is not None:
        held.dropped += len(params.gates)
        return
    try:
        valid = list(map(held.reader.read, params.gates))
    except CircuitError:
        valid = _until_invalid(held, params)
    session.apply(held, valid)
    held.streamed += len(valid)


def _until_invalid(held: HeldState, params: ApplyParams[Any]) -> list[Gate]:
    """The streamed gates before the first invalid one, which becomes the state's failure
    (read one by one only once a batch is known to hold one)."""
    valid: list[Gate] = []
    for data in params.gates:
        try:
            valid.append(held.reader.read(data))
        except CircuitError as exc:
            index = held.streamed + len(valid)
            gate = data.to_data() if isinstance(data, Gate) else data
            held.failure = GateFailed(
                f"streamed {gate_label(index, gate.name)} of state {params.state} failed: "
                f"{exc}",
                {"state": params.state, "index": index, "gate": msgspec.to_builtins(gate)})
            held.dropped = len(params.gates) - len(valid) - 1
            break
    return valid


def stream_failed(session: Session, state_id: int | None, error: BackendError) -> None:
    """A `state/apply` notification could not be run at all (its params could not be
    decoded): its state reports that at the next request naming it, as it would a streamed gate
    that failed, rather than silently missing the gates."""
    held = session.states.get(state_id) if state_id is not None else None
    if held is None or held.failure is not None:
        return
    held.failure = GateFailed(
        f"streamed gates from gate {held.streamed} on of state {state_id} were lost: "
        f"{error.message}", {"state": state_id, "index": held.streamed})


@handles(Method.STATE_READ)
def read(session: Session, params: ReadParams) -> np.ndarray | ArrayData:
    """The amplitudes (held by the backend: the caller copies or encodes them), or their place
    in the client's segment."""
    array = session.amplitudes(params.state)
    return array if params.segment is None else reply_array(session, array, params.segment)


@handles(Method.STATE_PROBABILITIES)
def probabilities(session: Session, params: ProbabilitiesParams) -> np.ndarray:
    held = session.state(params.state)
    qubits = session.qubits(params.qubits, held.nqubits)
    if held.is_density:
        return density.of(session.backend).probabilities(held.native, held.nqubits, qubits)
    return session.backend.probabilities(held.native, qubits)


@handles(Method.STATE_SAMPLE)
def sample(session: Session, params: SampleParams) -> SampleResult:
    held = session.state(params.state)
    qubits = session.qubits(params.qubits, held.nqubits)
    session.check_shots(params.nshots, params.seed)
    session.budget.check(counts_bytes(params.nshots, len(qubits)),
                         f"the frequencies of {params.nshots} shots", held.nqubits)
    if held.is_density:
        distribution = density.of(session.backend).probabilities(held.native, held.nqubits,
                                                                 qubits)
        counts = drawn_counts(distribution, params.nshots, params.seed)
    else:
        counts = session.backend.sample(held.native, qubits, params.nshots, params.seed)
    return SampleResult(frequencies(counts, len(qubits)))


@handles(Method.STATE_EXPECTATION)
def expectation(session: Session, params: StateExpectationParams) -> float:
    held = session.state(params.state)
    observable = checked_observable(params.observable, held.nqubits)
    return observable.expectation(session.amplitudes(params.state))


@handles(Method.STATE_FREE)
def free(session: Session, params: StateRef) -> None:
    if params.state not in session.states:
        raise UnknownState(f"no state {params.state} is held")
    session.drop(params.state)
