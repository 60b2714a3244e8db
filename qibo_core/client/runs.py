"""Run: one execution of a circuit, as `execute` and `execute/many` send it and read its reply.

What a run asks for follows what its caller will read, so that the common case is one round
trip: a small final state comes back inline with the reply (protocol version 4, `read`), and a
circuit with Parameters runs as the backend's prepared circuit with one set of values
(`prepared`, `parameters`) rather than bound and sent again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..circuit import Circuit
from ..circuit.parameter import parameter_sets
from ..errors import CircuitError, ProtocolError, UsageError
from ..protocol import RUNS_SINCE, ArrayData, ExecuteParams, ExecuteResult, Feature
from . import replies
from .connection import Connection
from .prepared import PreparedCircuits
from .result import Result
from .segments import Segment
from .state import State

INLINE_READ_BYTES = 2**16
"""Final states up to this size (12 qubits in complex128) come back with the reply of a run
without shots: the caller of `execute` reads them, and encoding them costs less than a
request."""


class Run:
    """One execution's params, and the Result its reply makes."""

    def __init__(self, connection: Connection, prepared: PreparedCircuits, circuit: Circuit,
                 nshots: int, seed: int | None, *, samples: bool = False,
                 parameters: Any = None, keep: bool = True) -> None:
        self.connection = connection
        original, circuit = circuit, circuit.frozen()  # derived facts are kept while unchanged
        v4 = connection.protocol_version >= RUNS_SINCE
        features = connection.info.capabilities.features
        prepared_id = values = None
        if parameters is not None or circuit.parameters:
            if v4 and Feature.EXPECTATION in features and circuit.parameters:
                values = _one_set(circuit, parameters)
                prepared_id = prepared.id(original, "")
            else:
                circuit = _bound(circuit, parameters)
        if samples:
            connection.require(Feature.SAMPLES, "samples")
        for feature, what in _needs(circuit):
            connection.require(feature, what)
        self.circuit = circuit
        self.nshots = nshots
        self.samples = samples
        self.width = len(circuit.measured_qubits)
        size = 2 ** (2 * circuit.nqubits if circuit.density_matrix else circuit.nqubits)
        self.read = v4 and not nshots and size * np.dtype(
            connection.precision).itemsize <= INLINE_READ_BYTES
        self.keep = keep or not (self.read or nshots)
        self.segment: Segment | None = (connection.arrays.reply_segment(nshots * self.width)
                                        if samples else None)
        self.params: ExecuteParams[Any, Any] = ExecuteParams(
            None if prepared_id is not None else circuit, nshots, seed, samples=samples,
            samples_segment=None if self.segment is None else self.segment.id,
            prepared=prepared_id, parameters=values, read=self.read,
            keep=self.keep if v4 else True)

    def release(self) -> None:
        """Give back the samples' segment of a run that got no reply."""
        self.connection.arrays.release(self.segment)
        self.segment = None

    def result(self, reply: ExecuteResult[ArrayData]) -> Result:
        connection, circuit, name = self.connection, self.circuit, self.connection.name
        state = None
        if self.params.keep:
            if reply.state is None:
                self.release()
                raise ProtocolError(f"backend {name!r} answered no 'state' for an execution "
                                    "whose final state it was asked to keep")
            state = State(connection, reply.state, circuit.nqubits,
                          density=circuit.density_matrix)
        amplitudes = None
        if self.read:
            if reply.amplitudes is None:
                self.release()
                raise ProtocolError(f"backend {name!r} answered no 'amplitudes', which were "
                                    "asked for ('read')")
            amplitudes = replies.checked_state(
                connection.arrays.received(reply.amplitudes, connection.precision), name,
                circuit.nqubits, circuit.density_matrix)
        shots = None
        if self.samples and self.nshots:
            if reply.samples is None:
                self.release()
                raise ProtocolError(f"backend {name!r} answered no 'samples' for "
                                    f"{self.nshots} shots, which were asked for")
            shots = replies.checked_samples(
                connection.arrays.received(reply.samples, "uint8", self.segment), name,
                self.nshots, self.width)
            self.segment = None
        self.release()
        frequencies = replies.checked_frequencies(reply.frequencies, name, self.nshots,
                                                  self.width)
        return Result(state, frequencies, circuit.registers, self.nshots, amplitudes,
                      samples=shots)


def _one_set(circuit: Circuit, parameters: Any) -> list[float]:
    try:
        sets, single = parameter_sets(circuit.parameters, parameters)
    except CircuitError as exc:
        raise UsageError(str(exc)) from None
    if not single:
        raise UsageError("execute takes one set of values; run many sets with "
                         "Handle.expectation(..., parameters=sets)")
    return [float(v) for v in sets[0]]


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
    if circuit.has_channels:
        needs.append((Feature.CHANNELS, "a noise channel"))
    if circuit.has_mid_circuit_measurements:
        needs.append((Feature.MID_CIRCUIT_MEASUREMENT, "a mid-circuit measurement"))
    return needs
