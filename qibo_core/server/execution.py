"""The handlers of `execute` and `execute/many`: a circuit (or a prepared one with a set of
values) run from |0...0> or an initial state, as a state vector (the backend's `apply`), shot by
shot where shots differ (the backend's `shots`, or the shot engine of shots.py), or as a density
matrix (density.py); shots sampled from the final state, which is held, answered, or both."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from ..circuit import Circuit
from ..errors import BackendError, InvalidParams
from ..protocol import (
    RUNS_SINCE,
    ArrayData,
    ExecuteManyParams,
    ExecuteManyResult,
    ExecuteParams,
    ExecuteResult,
    Feature,
    Method,
)
from . import density
from .backend import Checkpoint, Counts, drawn_counts
from .initial import initial_amplitudes
from .known import Known, features_used
from .memory import counts_bytes, reply_bytes, samples_bytes
from .prepared import checked_sets, prepared_circuit
from .registry import handles
from .session import Session
from .shots import Branches, frequencies, run_shots, shot_bits

MAX_SAMPLES = 10**8
"""The most shots answered one by one (a byte per measured qubit each)."""
MAX_RUNS = 2**16
"""The most runs in one `execute/many`."""


@handles(Method.EXECUTE)
def execute(session: Session, params: ExecuteParams[Any, Any]) -> ExecuteResult[Any]:
    _check_version(session, params)
    if params.prepared is not None:
        if params.circuit is not None:
            raise InvalidParams("give 'circuit' or 'prepared', not both")
        session.require([Feature.EXPECTATION], "execute with 'prepared'")
        ready = prepared_circuit(session, params.prepared)
        values = checked_sets(np.array([params.parameters or []]), ready, params.prepared)[0]
        known = Known(ready.circuit, ready=ready, values=values)
    elif params.circuit is None:
        raise InvalidParams("execute needs a 'circuit' (or, from version 4, 'prepared')")
    else:
        known = session.circuits.get(params.circuit)
    result = _execute(session, known, params)
    if params.read:
        result.amplitudes = session.amplitudes(result.state)  # type: ignore[arg-type]
    if not params.keep:
        session.drop(result.state)  # type: ignore[arg-type]
        result.state = None
    return result


@handles(Method.EXECUTE_MANY)
def execute_many(session: Session, params: ExecuteManyParams[Any, Any]) -> ExecuteManyResult[Any]:
    """The runs in order; if one fails, the states the others hold are freed and the error
    names the run (`data.run`)."""
    if len(params.runs) > MAX_RUNS:
        raise InvalidParams(f"{len(params.runs)} runs: at most {MAX_RUNS} a request")
    results: list[ExecuteResult[Any]] = []
    outer = session.checkpoint
    try:
        for k, run in enumerate(params.runs):
            outer(k, len(params.runs))
            session.checkpoint = partial(_runs_done, outer, k, len(params.runs))
            try:
                results.append(execute(session, run))
            except BackendError as exc:
                exc.message = f"run {k}: {exc.message}"
                exc.args = (exc.message,)
                exc.data = {**(exc.data or {}), "run": k}
                raise
    except BaseException:
        for result in results:
            if result.state is not None:
                session.drop(result.state)
        raise
    finally:
        session.checkpoint = outer
    return ExecuteManyResult(results)


def _runs_done(checkpoint: Checkpoint, done: int, total: int, *_: int) -> None:
    """A run's checkpoint inside execute/many: progress counts runs, not a run's gates."""
    checkpoint(done, total)


def _check_version(session: Session, params: ExecuteParams[Any, Any]) -> None:
    """InvalidParams for a field a later version brought, in a session of an older one."""
    if session.version >= RUNS_SINCE:
        return
    later = [name for name, used in (("prepared", params.prepared is not None),
                                     ("parameters", params.parameters is not None),
                                     ("read", params.read), ("keep", not params.keep)) if used]
    if later:
        raise InvalidParams(f"{later[0]!r} is a field of execute from protocol version "
                            f"{RUNS_SINCE}; this session speaks version {session.version}")


def _execute(session: Session, known: Known, params: ExecuteParams[Any, Any]) -> ExecuteResult[Any]:
    circuit = known.circuit
    used = features_used(circuit)
    used |= {Feature.INITIAL_STATE} if params.initial_state is not None else set()
    used |= {Feature.SAMPLES} if params.samples else set()
    session.require(used, "the execute")
    if params.samples_segment is not None and not params.samples:
        raise InvalidParams("samplesSegment without samples: true (it is where every shot "
                            "asked for goes)")
    qubits = list(circuit.measured_qubits)
    session.check_shots(params.nshots, params.seed)
    if params.nshots and not qubits:
        raise InvalidParams("nshots > 0 but the circuit measures no qubit: add an M gate")
    if params.samples and params.nshots > MAX_SAMPLES:
        raise InvalidParams(f"samples of {params.nshots} shots: at most {MAX_SAMPLES} are "
                            "answered shot by shot; ask for frequencies alone")
    if params.samples and params.samples_segment is not None:
        session.segments.check_room(params.samples_segment, params.nshots * len(qubits))
    replies = counts_bytes(params.nshots, len(qubits)) + (samples_bytes(
        params.nshots, len(qubits), inline=params.samples_segment is None)
        if params.samples else 0) + (reply_bytes(session.backend.state_bytes(
            circuit.nqubits * (2 if circuit.density_matrix else 1))) if params.read else 0)
    session.budget.check(replies, lambda: _replies(params, len(qubits)), circuit.nqubits)
    if circuit.density_matrix:
        return _execute_density(session, known, params, replies)
    session.check_fits(circuit.nqubits, initial=params.initial_state is not None,
                       extra=replies)
    if circuit.is_stochastic:
        return _execute_shots(session, circuit, params)
    start = start_state(session, circuit.nqubits, params.initial_state)
    native = session.run(start, known)
    state_id = session.hold(native, circuit.nqubits)
    if not params.nshots:
        return ExecuteResult(state=state_id)
    counts = session.backend.sample(native, qubits, params.nshots, params.seed)
    return _sampled(session, state_id, counts, len(qubits), params)


def _replies(params: ExecuteParams[Any, Any], width: int) -> str:
    what = ["frequencies"] + ["samples"] * params.samples + ["final state"] * params.read
    return f"the reply ({', '.join(what)}) of {params.nshots} shots of {width} bits"


def start_state(session: Session, nqubits: int, initial: ArrayData | np.ndarray | None) -> Any:
    """A new state: |0...0>, or the amplitudes given (checked; the caller made sure the session
    offers initial states)."""
    backend = session.backend
    if initial is None:
        return backend.zero_state(nqubits)
    return backend.from_array(initial_amplitudes(initial, nqubits, session.segments,
                                                 backend.dtype, keep_mapping=backend.sharable))


def _execute_shots(session: Session, circuit: Circuit,
                   params: ExecuteParams[Any, Any]) -> ExecuteResult[Any]:
    """A circuit whose shots differ before the end, run the backend's own way (Backend.shots)
    or by the session's shot engine (shots.py), its copies counted one by one; the state held
    is one shot's final state (the engine's: the last branch walked)."""
    backend = session.backend
    if Feature.MID_CIRCUIT_MEASUREMENT not in backend.features:
        raise InvalidParams(f"the {backend.name} backend cannot copy states (from_array), which "
                            "measurements with collapse=True need")
    n = circuit.nqubits
    branches = Branches(backend, session.budget, n)
    try:
        branches.start = start_state(session, n, params.initial_state)
        ran = backend.shots(circuit, branches.start, params.nshots, params.seed,
                            session.checkpoint, session.budget.room())
        if ran is None:
            rng = np.random.default_rng(params.seed)
            ran = run_shots(backend, circuit, params.nshots, rng, session.checkpoint, branches)
    finally:
        branches.close()
    return _sampled(session, session.hold(ran[0], n), ran[1], len(circuit.measured_qubits),
                    params)


def _execute_density(session: Session, known: Known, params: ExecuteParams[Any, Any],
                     replies: int) -> ExecuteResult[Any]:
    """A density-matrix circuit (density.py): channels act exactly, shots are sampled from the
    final matrix's diagonal."""
    backend, circuit = session.backend, known.circuit
    n = circuit.nqubits
    densities = density.of(backend)
    session.check_fits(n, is_density=True, initial=params.initial_state is not None,
                       extra=max(densities.apply_bytes(circuit.gates, n), replies))
    initial = None
    if params.initial_state is not None:
        initial = initial_amplitudes(params.initial_state, n, session.segments, backend.dtype,
                                     density=True)
    native = densities.apply(densities.start(n, initial), known.gates(), n, session.checkpoint)
    state_id = session.hold(native, n, is_density=True)
    qubits = list(circuit.measured_qubits)
    if not params.nshots:
        return ExecuteResult(state=state_id)
    counts = drawn_counts(densities.probabilities(native, n, qubits), params.nshots,
                          params.seed)
    return _sampled(session, state_id, counts, len(qubits), params)


def _sampled(session: Session, state_id: int, counts: Counts, width: int,
             params: ExecuteParams[Any, Any]) -> ExecuteResult[Any]:
    """The reply to an execute with shots: the counts as frequencies, and every shot when
    asked for."""
    if not params.nshots:
        return ExecuteResult(state=state_id)
    result: ExecuteResult[Any] = ExecuteResult(state=state_id,
                                               frequencies=frequencies(counts, width))
    if params.samples:
        rows = shot_bits(counts, width, np.random.default_rng(params.seed))
        result.samples = reply_array(session, rows, params.samples_segment)
    return result


def reply_array(session: Session, array: np.ndarray,
                segment: int | None) -> ArrayData | np.ndarray:
    """`array` as a reply carries it: in the client's segment if it named one, else the array
    itself, which the server encodes as the session agreed (base64, attachment, sealed memfd)."""
    if segment is None:
        return array
    session.segments.write(segment, array)
    return ArrayData(dtype=array.dtype.name, shape=list(array.shape), segment=segment)
