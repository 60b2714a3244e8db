"""Prepared circuits on a handle: expectation values of sets of parameter values and their
parameter-shift gradients, each one request to a backend that keeps the circuit prepared
(protocol version 3, feature "expectation"); a backend without it runs bound circuits and the
expectation is computed here, which is said once per handle."""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from ..circuit import Circuit, Gate, Observable, Parameter
from ..circuit.observable import ObservableLike
from ..circuit.parameter import parameter_sets
from ..errors import UsageError
from ..protocol import (
    CircuitRef,
    ExpectationParams,
    Feature,
    Method,
    PrepareParams,
    SlotData,
)
from . import replies
from .connection import Connection

logger = logging.getLogger("qibo_core.client")

SHIFT = math.pi / 2


class PreparedCircuits:
    """The circuits a backend keeps prepared, by the circuit object they came from: prepared on
    first use, again when its content changed (gates replaced, added or edited: `frozen()`),
    freed by `release` or when the circuit is garbage collected (queued, like a state's free).
    Against a backend without the feature, `final_state` runs each bound circuit instead."""

    def __init__(self, connection: Connection,
                 final_state: Callable[[Circuit], np.ndarray]) -> None:
        self._connection = connection
        self._final_state = final_state
        self._said_fallback = False
        self._ids: dict[tuple[int, str], tuple[weakref.ref[Circuit], Circuit, int]] = {}

    def expectations(self, circuit: Circuit, observable: ObservableLike, parameters: Any, *,
                     key: str = "", build: Callable[[Circuit], Circuit] | None = None,
                     progress: Callable[[int, int], None] | None = None
                     ) -> tuple[np.ndarray, bool]:
        """The observable's value after each set of `parameters`, and whether one set was
        given; `progress(sets done, sets)` is called now and then if the backend reports it.
        `build` makes the circuit prepared under `key` from `circuit`."""
        connection = self._connection
        source = build(circuit) if build is not None else circuit
        observable = Observable(observable)
        observable.check(circuit.nqubits)
        sets, single = parameter_sets(source.parameters, parameters)
        if Feature.EXPECTATION not in connection.info.capabilities.features:
            return self._here(source, observable, sets), single
        prepared = self.id(circuit, key, source)
        with connection.watching(progress) as token:
            reply = connection.request(Method.CIRCUIT_EXPECTATION, ExpectationParams(
                prepared, sets, observable.to_data(), token))
        values = connection.arrays.received(reply, "float64")
        return replies.checked_expectations(values, connection.name, observable,
                                            len(sets)), single

    def gradient(self, circuit: Circuit, observable: ObservableLike,
                 parameters: Any) -> np.ndarray:
        """d<O>/d(each Parameter) at one set of values, by the parameter-shift rule: every use
        of a Parameter shifted by +-pi/2 in turn, all those sets evaluated in one request."""
        names = [p.name for p in circuit.parameters]
        values, single = parameter_sets(circuit.parameters, parameters)
        if not single:
            raise UsageError("gradient takes one set of values")
        uses = _uses(circuit)
        base = np.array([values[0][names.index(p.name)] for _, _, p in uses])
        shifted = np.repeat(base[None, :], 2 * len(uses), axis=0)
        for k in range(len(uses)):
            shifted[2 * k, k] += SHIFT
            shifted[2 * k + 1, k] -= SHIFT
        results, _ = self.expectations(circuit, observable, shifted, key="uses",
                                       build=_one_parameter_per_use)
        per_use = (results[0::2] - results[1::2]) / 2
        grad = np.zeros(len(names))
        for (_, _, p), d in zip(uses, per_use, strict=True):
            grad[names.index(p.name)] += d
        return grad

    def id(self, circuit: Circuit, key: str, source: Circuit | None = None) -> int:
        """The backend's id for `circuit` (or for `source`, a circuit made from it, under
        another `key`)."""
        content = circuit.frozen()  # the same object while the circuit is unchanged
        entry = self._ids.get((id(circuit), key))
        if entry is not None and entry[0]() is circuit and entry[1] is content:
            return entry[2]
        if entry is not None:
            self._free(entry[2])
        source = circuit if source is None else source
        parameters = source.parameters
        index = {p: i for i, p in enumerate(parameters)}
        slots = [SlotData(g, name, index[p]) for g, op in enumerate(source.gates)
                 if isinstance(op, Gate) for name, p in op.slots.items()]
        placeholder = source.bound({p.name: 0.0 for p in parameters})
        ref: CircuitRef = self._connection.request(
            Method.CIRCUIT_PREPARE, PrepareParams(placeholder, slots, len(parameters)))
        circuit_id = id(circuit)  # the callback must not hold the circuit itself
        forget = weakref.ref(circuit, lambda _: self._forget(circuit_id, key))
        self._ids[circuit_id, key] = (forget, content, ref.circuit)
        return ref.circuit

    def release(self, circuit: Circuit) -> None:
        """Free now what the backend keeps prepared for `circuit` (nothing if it keeps none)."""
        for circuit_id, key in [k for k in self._ids if k[0] == id(circuit)]:
            if self._ids[circuit_id, key][0]() is circuit:
                self._forget(circuit_id, key)

    def _forget(self, circuit: int, key: str) -> None:
        entry = self._ids.pop((circuit, key), None)
        if entry is not None:
            self._free(entry[2])

    def _free(self, prepared: int) -> None:
        self._connection.outbox.free_later(Method.CIRCUIT_FREE, CircuitRef(prepared))

    def _here(self, circuit: Circuit, observable: Observable, sets: np.ndarray) -> np.ndarray:
        """The fallback: each set bound, run, its state read back and evaluated here."""
        if not self._said_fallback:
            self._said_fallback = True
            logger.warning("backend %s does not compute expectation values (protocol version "
                           "%s): running bound circuits and reading their states back",
                           self._connection.name, self._connection.protocol_version)
        names = [p.name for p in circuit.parameters]
        values = np.empty(len(sets))
        for k, row in enumerate(sets):
            bound = circuit.bound(dict(zip(names, row.tolist(), strict=True)))
            values[k] = observable.expectation(self._final_state(bound))
        return values


def _uses(circuit: Circuit) -> list[tuple[int, str, Parameter]]:
    """Every (gate index, parameter name, Parameter) slot, refusing gates the two-term shift
    rule does not hold for."""
    uses = []
    for g, op in enumerate(circuit.gates):
        if not isinstance(op, Gate):
            continue
        for name, p in op.slots.items():
            if name not in op.shifted or op.controls:
                raise UsageError(f"gate {g} ({op!r}): the parameter-shift rule does not hold "
                                 f"for its {name!r}; gradients take Parameters in rotations "
                                 "(RX, RY, RZ, U1, PRX theta, RXX, RYY, RZZ, RZX) without "
                                 "controls")
            uses.append((g, name, p))
    return uses


def _one_parameter_per_use(circuit: Circuit) -> Circuit:
    """The circuit with a Parameter of its own for every use of one (`name#k`)."""
    other = circuit.bound({})
    count = 0
    for g, op in enumerate(other.gates):
        if isinstance(op, Gate) and op.slots:
            renamed = op.bound({})
            renamed.slots = {}
            for name, p in op.slots.items():
                renamed.slots[name] = Parameter(f"{p.name}#{count}")
                count += 1
            other.gates[g] = renamed
    return other

