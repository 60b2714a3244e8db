"""Prepared circuits (protocol version 3) and their handlers (`circuit/prepare`,
`circuit/expectation`, `circuit/free`): a circuit kept under an id with slots for parameter
values, run with many sets of them, each reduced to an observable's expectation value on the
backend, so that neither the circuit nor the state crosses the wire per set.

The generic path here serves every backend: each set binds the slotted gates and runs the
circuit from |0...0>. A backend may do better through Backend.prepare and
Backend.expectations (Qulacs keeps one parametric circuit and sets its angles)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..circuit import Circuit, Gate
from ..circuit.observable import Observable
from ..errors import CircuitError, InvalidParams
from ..protocol import (
    MAX_SETS,
    ArrayData,
    CircuitRef,
    ExpectationParams,
    Method,
    PrepareParams,
    SlotData,
    TermData,
    decode_array,
)
from . import density
from .backend import Backend, Checkpoint, Work, no_checkpoint
from .known import checked_circuit, features_used
from .memory import OBSERVABLE_COPIES, PREPARED_GATE_BYTES
from .registry import handles
from .session import Session

MAX_PREPARED = 4096
"""The most circuits a session keeps prepared at once."""


@dataclass
class Prepared:
    """A circuit and where each set's values go: `slots[g]` lists (param name, value index)
    for gate g."""

    circuit: Circuit
    nparameters: int
    slots: dict[int, list[tuple[str, int]]] = field(default_factory=dict)
    native: Any = None
    """What the backend built from it, if it builds anything (Backend.prepare)."""

    def gates(self, values: np.ndarray) -> list[Any]:
        """The circuit's operations with one set of `values` in their slots."""
        ops: list[Any] = list(self.circuit.gates)
        for g, pairs in self.slots.items():
            gate = copy.copy(ops[g])
            gate.params = {**gate.params, **{name: float(values[i]) for name, i in pairs}}
            ops[g] = gate
        return ops


def prepared(circuit: Circuit, slots: Sequence[SlotData], nparameters: int) -> Prepared:
    """`circuit` with its slots checked: each names a gate, one of its parameters and a value
    index below `nparameters`, once."""
    if circuit.is_stochastic:
        raise InvalidParams("a circuit whose shots differ midway (collapsing measurements, "
                            "resets, noise on a state vector) has no single expectation value: "
                            "prepare a density-matrix circuit instead")
    if nparameters < 0:
        raise InvalidParams(f"parameters must be at least 0, got {nparameters}")
    result = Prepared(circuit, nparameters)
    for k, slot in enumerate(slots):
        where = f"slot {k} (gate {slot.gate}, {slot.param!r})"
        if not 0 <= slot.gate < len(circuit.gates) or not isinstance(circuit.gates[slot.gate],
                                                                       Gate):
            raise InvalidParams(f"{where}: the circuit has no gate {slot.gate}")
        gate = circuit.gates[slot.gate]
        if slot.param not in gate.params:  # type: ignore[union-attr]
            raise InvalidParams(f"{where}: {gate!r} has no parameter {slot.param!r}")
        if not 0 <= slot.parameter < nparameters:
            raise InvalidParams(f"{where}: value index {slot.parameter} is outside the "
                                f"{nparameters} values of a set")
        pairs = result.slots.setdefault(slot.gate, [])
        if any(name == slot.param for name, _ in pairs):
            raise InvalidParams(f"{where}: that parameter has a slot already")
        pairs.append((slot.param, slot.parameter))
    return result


def checked_sets(sets: ArrayData | np.ndarray, ready: Prepared, circuit_id: int) -> np.ndarray:
    """The sets of values a request carries, as float64 [sets, values], once checked."""
    if isinstance(sets, ArrayData):
        try:
            sets = decode_array(sets, "float64")
        except ValueError as exc:
            raise InvalidParams(f"invalid parameters: {exc}") from None
    sets = np.asarray(sets, dtype=float)
    if sets.ndim == 2 and len(sets) > MAX_SETS:
        raise InvalidParams(f"{len(sets)} sets of values: at most {MAX_SETS} a request")
    if sets.ndim != 2 or sets.shape[1] != ready.nparameters:
        raise InvalidParams(f"parameters of shape {list(sets.shape)}: circuit {circuit_id} "
                            f"takes sets of {ready.nparameters} values, shape [sets, "
                            f"{ready.nparameters}]")
    if not np.isfinite(sets).all():
        raise InvalidParams("parameter values must be finite")
    return sets


def checked_observable(terms: list[TermData], nqubits: int) -> Observable:
    """The observable a request carries, its terms and qubits checked (factors apart by
    spaces alone: other whitespace is no separator a backend in another language would
    know)."""
    for index, term in enumerate(terms):
        if any(c.isspace() and c != " " for c in term.pauli):
            raise InvalidParams(f"invalid observable: term {index} ({term.pauli!r}): factors "
                                "are separated by spaces (U+0020) alone")
    try:
        observable = Observable.from_data(terms)
        observable.check(nqubits)
    except CircuitError as exc:
        raise InvalidParams(f"invalid observable: {exc}") from None
    return observable


def expectations(backend: Backend, prepared: Prepared, sets: np.ndarray, observable: Observable,
                 checkpoint: Checkpoint) -> np.ndarray:
    """The generic path: each set bound and run from |0...0>, the observable evaluated on the
    final state (a vector or a density matrix) with bit flips and signs."""
    n = prepared.circuit.nqubits
    densities = density.of(backend) if prepared.circuit.density_matrix else None
    values = np.empty(len(sets))
    for k, row in enumerate(sets):
        checkpoint(k, len(sets))
        gates = prepared.gates(row)
        if densities is not None:
            state = densities.matrix(densities.apply(densities.start(n, None), gates, n,
                                                     no_checkpoint), n)
        else:
            state = backend.to_array(backend.apply(backend.zero_state(n), gates))
        values[k] = observable.expectation(state)
    checkpoint(len(sets), len(sets))
    return values


@handles(Method.CIRCUIT_PREPARE)
def prepare(session: Session, params: PrepareParams[Any]) -> CircuitRef:
    if len(session.prepared) >= MAX_PREPARED:
        raise InvalidParams(f"{MAX_PREPARED} circuits are prepared already: free some "
                            "(circuit/free)")
    circuit = checked_circuit(params.circuit)
    session.require(features_used(circuit), "circuit/prepare's circuit")
    session.check_fits(circuit.nqubits, is_density=circuit.density_matrix)
    ready = prepared(circuit, params.slots, params.parameters)
    session.budget.check(session.backend.working_bytes(Work.PREPARE, circuit.nqubits),
                         f"preparing a {circuit.nqubits}-qubit circuit", circuit.nqubits)
    ready.native = session.backend.prepare(ready, session.checkpoint)
    session.budget.hold(prepared_bytes(session.backend, ready))
    circuit_id = session.next_id("circuit")
    session.prepared[circuit_id] = ready
    return CircuitRef(circuit_id)


@handles(Method.CIRCUIT_EXPECTATION)
def expectation(session: Session, params: ExpectationParams[Any]) -> np.ndarray:
    """float64 [sets]: the observable's expectation value after each set."""
    ready = prepared_circuit(session, params.circuit)
    sets = checked_sets(params.parameters, ready, params.circuit)
    observable = checked_observable(params.observable, ready.circuit.nqubits)
    n = ready.circuit.nqubits
    session.check_fits(n, is_density=ready.circuit.density_matrix)
    session.budget.check(expectations_bytes(session.backend, ready),
                         f"expectation values of a {n}-qubit circuit", n)
    values = session.backend.expectations(ready, sets, observable, session.checkpoint)
    if values is None:
        values = expectations(session.backend, ready, sets, observable, session.checkpoint)
    return values


@handles(Method.CIRCUIT_FREE)
def free(session: Session, params: CircuitRef) -> None:
    prepared_circuit(session, params.circuit)
    session.budget.release(prepared_bytes(session.backend, session.prepared.pop(params.circuit)))


def prepared_circuit(session: Session, circuit_id: int) -> Prepared:
    ready: Prepared | None = session.prepared.get(circuit_id)
    if ready is None:
        raise InvalidParams(f"no circuit {circuit_id} is prepared (never, or freed); "
                            f"prepared: {sorted(session.prepared) or 'none'}")
    return ready


def prepared_bytes(backend: Backend, ready: Prepared) -> int:
    """What a prepared circuit keeps: its gates (their matrices and Kraus operators), and what
    the backend built."""
    kept = 0
    for op in ready.circuit.gates:
        arrays = [*getattr(op, "kraus", ()),
                  *(a for a in vars(op).values() if isinstance(a, np.ndarray))]
        kept += PREPARED_GATE_BYTES + sum(a.nbytes for a in arrays)
    return kept + backend.prepared_bytes(ready.native)


def expectations_bytes(backend: Backend, ready: Prepared) -> int:
    """What evaluating one set of a prepared circuit takes: the backend's own way, or (the
    generic path) a state run from |0...0>, read, and an observable's copies."""
    circuit = ready.circuit
    n = circuit.nqubits
    if ready.native is not None:
        return backend.working_bytes(Work.EXPECTATIONS, n)
    if circuit.density_matrix:
        densities = density.of(backend)
        return backend.state_bytes(2 * n) + max(
            densities.apply_bytes(circuit.gates, n),
            densities.working_bytes(Work.READ, n) + OBSERVABLE_COPIES * (16 << 2 * n))
    return backend.state_bytes(n) + max(
        backend.working_bytes(Work.GATES, n),
        backend.working_bytes(Work.READ, n) + OBSERVABLE_COPIES * (backend.dtype.itemsize << n))
