"""The handler of `execute`: a circuit run from |0...0> or an initial state, as a state vector
(the backend's `apply`), shot by shot where shots differ (the backend's `shots`, or the shot
engine of shots.py), or as a density matrix (density.py); shots sampled from the final state."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..circuit import Circuit
from ..errors import InvalidParams
from ..protocol import ArrayData, ExecuteParams, ExecuteResult, Feature, Method, encode_array
from . import density
from .backend import Counts, drawn_counts
from .initial import initial_amplitudes
from .memory import counts_bytes, samples_bytes
from .registry import handles
from .session import Session
from .shots import Branches, frequencies, run_shots, shot_bits

MAX_SAMPLES = 10**8
"""The most shots answered one by one (a byte per measured qubit each)."""


@handles(Method.EXECUTE)
def execute(session: Session, params: ExecuteParams[Any, Any]) -> ExecuteResult:
    known = session.circuits.get(params.circuit)
    circuit = known.circuit
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
        if params.samples else 0)
    what = "their frequencies and samples" if params.samples else "their frequencies"
    session.budget.check(replies, f"{params.nshots} shots of {len(qubits)} bits ({what})",
                         circuit.nqubits)
    if circuit.density_matrix:
        return _execute_density(session, circuit, params, replies)
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


def start_state(session: Session, nqubits: int, initial: ArrayData | np.ndarray | None) -> Any:
    """A new state: |0...0>, or the amplitudes given (checked)."""
    backend = session.backend
    if initial is None:
        return backend.zero_state(nqubits)
    if Feature.INITIAL_STATE not in backend.features:
        raise InvalidParams(f"the {backend.name} backend takes no initial states")
    return backend.from_array(initial_amplitudes(initial, nqubits, session.segments,
                                                 backend.dtype))


def _execute_shots(session: Session, circuit: Circuit,
                   params: ExecuteParams[Any, Any]) -> ExecuteResult:
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


def _execute_density(session: Session, circuit: Circuit, params: ExecuteParams[Any, Any],
                     replies: int) -> ExecuteResult:
    """A density-matrix circuit (density.py): channels act exactly, shots are sampled from the
    final matrix's diagonal."""
    backend = session.backend
    if Feature.DENSITY_MATRIX not in backend.features:
        raise InvalidParams(f"the {backend.name} backend holds no density matrices")
    n = circuit.nqubits
    densities = density.of(backend)
    session.check_fits(n, is_density=True, initial=params.initial_state is not None,
                       extra=max(densities.apply_bytes(circuit.gates, n), replies))
    initial = None
    if params.initial_state is not None:
        initial = initial_amplitudes(params.initial_state, n, session.segments, backend.dtype,
                                     density=True)
    native = densities.apply(densities.start(n, initial), circuit.gates, n, session.checkpoint)
    state_id = session.hold(native, n, is_density=True)
    qubits = list(circuit.measured_qubits)
    if not params.nshots:
        return ExecuteResult(state=state_id)
    counts = drawn_counts(densities.probabilities(native, n, qubits), params.nshots,
                          params.seed)
    return _sampled(session, state_id, counts, len(qubits), params)


def _sampled(session: Session, state_id: int, counts: Counts, width: int,
             params: ExecuteParams[Any, Any]) -> ExecuteResult:
    """The reply to an execute with shots: the counts as frequencies, and every shot when
    asked for."""
    if not params.nshots:
        return ExecuteResult(state=state_id)
    result = ExecuteResult(state=state_id, frequencies=frequencies(counts, width))
    if params.samples:
        rows = shot_bits(counts, width, np.random.default_rng(params.seed))
        result.samples = reply_array(session, rows, params.samples_segment)
    return result


def reply_array(session: Session, array: np.ndarray, segment: int | None) -> ArrayData:
    """`array` as a reply carries it: in the client's segment if it named one, else inline."""
    if segment is None:
        return encode_array(array)
    session.segments.write(segment, array)
    return ArrayData(dtype=array.dtype.name, shape=list(array.shape), segment=segment)
