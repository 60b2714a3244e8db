"""The handler of `execute`: a circuit run from |0...0> or an initial state, as a state vector
(the backend's `apply`), shot by shot where shots differ (the backend's `shots`, or the shot
engine of shots.py), or as a density matrix (density.py); shots sampled from the final state."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..circuit import Circuit
from ..errors import CircuitError, InvalidParams
from ..protocol import ArrayData, ExecuteParams, ExecuteResult, Feature, Method
from . import density
from .backend import drawn_counts
from .initial import initial_amplitudes
from .registry import handles
from .session import Session
from .shots import as_integers, frequencies, outcomes, run_shots, shot_bits

MAX_SAMPLES = 10**8
"""The most shots answered one by one (a byte per measured qubit each)."""


@handles(Method.EXECUTE)
def execute(session: Session, params: ExecuteParams[Any, Any]) -> ExecuteResult[Any]:
    circuit = checked_circuit(params.circuit)
    qubits = list(circuit.measured_qubits)
    session.check_shots(params.nshots, params.seed)
    if params.nshots and not qubits:
        raise InvalidParams("nshots > 0 but the circuit measures no qubit: add an M gate")
    if params.samples and params.nshots > MAX_SAMPLES:
        raise InvalidParams(f"samples of {params.nshots} shots: at most {MAX_SAMPLES} are "
                            "answered shot by shot; ask for frequencies alone")
    if params.samples and params.samples_segment is not None:
        session.segments.check_room(params.samples_segment, params.nshots * len(qubits))
    if circuit.density_matrix:
        return _execute_density(session, circuit, params)
    session.check_fits(circuit.nqubits)
    start = start_state(session, circuit.nqubits, params.initial_state)
    if circuit.is_stochastic:
        return _execute_shots(session, circuit, start, params)
    backend = session.backend
    native = backend.apply(start, circuit.gates, session.checkpoint)  # type: ignore[arg-type]
    state_id = session.hold(native, circuit.nqubits)
    if not params.nshots:
        return ExecuteResult(state=state_id)
    counts = backend.sample(native, qubits, params.nshots, params.seed)
    return _sampled(session, state_id, counts, len(qubits), params)


def checked_circuit(circuit: Any) -> Circuit:
    """The circuit params carry: from its data (InvalidParams names the first bad gate), or
    as it is (in process, it was checked when it was built)."""
    if isinstance(circuit, Circuit):
        return circuit
    try:
        return Circuit.from_data(circuit)
    except CircuitError as exc:
        raise InvalidParams(f"invalid circuit: {exc}") from None


def start_state(session: Session, nqubits: int, initial: ArrayData | np.ndarray | None) -> Any:
    """A new state: |0...0>, or the amplitudes given (checked)."""
    backend = session.backend
    if initial is None:
        return backend.zero_state(nqubits)
    if Feature.INITIAL_STATE not in backend.features:
        raise InvalidParams(f"the {backend.name} backend takes no initial states")
    return backend.from_array(initial_amplitudes(initial, nqubits, session.segments,
                                                 backend.dtype, keep_mapping=backend.sharable))


def _execute_shots(session: Session, circuit: Circuit, start: Any,
                   params: ExecuteParams[Any, Any]) -> ExecuteResult[Any]:
    """A circuit whose shots differ before the end, run the backend's own way (Backend.shots)
    or by the session's shot engine (shots.py); the state held is one shot's final state (the
    engine's: the last branch walked)."""
    backend = session.backend
    if Feature.MID_CIRCUIT_MEASUREMENT not in backend.features:
        raise InvalidParams(f"the {backend.name} backend cannot copy states (from_array), which "
                            "measurements with collapse=True need")
    ran = backend.shots(circuit, start, params.nshots, params.seed, session.checkpoint)
    final, shots = ran or _engine_shots(session, circuit, start, params.nshots, params.seed)
    state_id = session.hold(final, circuit.nqubits)
    if not params.nshots:
        return ExecuteResult(state=state_id)
    counts = np.bincount(as_integers(shots), minlength=2 ** shots.shape[1])
    result: ExecuteResult[Any] = ExecuteResult(state=state_id,
                                               frequencies=frequencies(counts, shots.shape[1]))
    if params.samples:
        result.samples = reply_array(session, shots, params.samples_segment)
    return result


def _engine_shots(session: Session, circuit: Circuit, start: Any, nshots: int,
                  seed: int | None) -> tuple[Any, np.ndarray]:
    """The shot engine's run: the last branch's final state, and every shot's bits."""
    rng = np.random.default_rng(seed)
    leaves = run_shots(session.backend, circuit, start, nshots, rng, session.checkpoint,
                       session.copy)
    if not nshots:
        return leaves[-1].state, np.zeros((0, len(circuit.measured_qubits)), np.uint8)
    return leaves[-1].state, outcomes(session.backend, circuit, leaves, rng)


def _execute_density(session: Session, circuit: Circuit,
                     params: ExecuteParams[Any, Any]) -> ExecuteResult[Any]:
    """A density-matrix circuit (density.py): channels act exactly, shots are sampled from the
    final matrix's diagonal."""
    backend = session.backend
    if Feature.DENSITY_MATRIX not in backend.features:
        raise InvalidParams(f"the {backend.name} backend holds no density matrices")
    n = circuit.nqubits
    session.check_fits(2 * n)
    initial = None
    if params.initial_state is not None:
        initial = initial_amplitudes(params.initial_state, n, session.segments, backend.dtype,
                                     density=True)
    densities = density.of(backend)
    native = densities.apply(densities.start(n, initial), circuit.gates, n, session.checkpoint)
    state_id = session.hold(native, n, is_density=True)
    qubits = list(circuit.measured_qubits)
    if not params.nshots:
        return ExecuteResult(state=state_id)
    counts = drawn_counts(densities.probabilities(native, n, qubits), params.nshots,
                          params.seed)
    return _sampled(session, state_id, counts, len(qubits), params)


def _sampled(session: Session, state_id: int, counts: np.ndarray, width: int,
             params: ExecuteParams[Any, Any]) -> ExecuteResult[Any]:
    """The reply to an execute whose shots were all drawn from one final state: the counts as
    frequencies, and every shot when asked for."""
    result: ExecuteResult[Any] = ExecuteResult(state=state_id,
                                               frequencies=frequencies(counts, width))
    if params.samples:
        result.samples = reply_array(session, shot_bits(counts, width, params.seed),
                                     params.samples_segment)
    return result


def reply_array(session: Session, array: np.ndarray,
                segment: int | None) -> ArrayData | np.ndarray:
    """`array` as a reply carries it: in the client's segment if it named one, else the array
    itself, which the server encodes as the session agreed (base64, attachment, sealed memfd)."""
    if segment is None:
        return array
    session.segments.write(segment, array)
    return ArrayData(dtype=array.dtype.name, shape=list(array.shape), segment=segment)
