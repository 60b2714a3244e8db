"""Handle: a backend to run circuits on, in this process or in a spawned one.

A Handle is a Connection (connection.py: the handshake, requests, shared memory) that runs
circuits, makes states and computes expectation values. It speaks to a Transport
(ProcessTransport: JSON-RPC to a child; LocalTransport: the same Session calls, no
serialization): code that runs circuits never asks which one it has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..circuit import Circuit
from ..circuit.observable import ObservableLike
from ..errors import CircuitError, ProtocolError, UsageError
from ..protocol import ExecuteParams, Feature, Method, Precision
from . import replies
from .connection import Connection
from .prepared import PreparedCircuits
from .result import Result
from .state import State, checked_shots, uploading
from .transport import Transport


class Handle(Connection):
    """A backend to run circuits on. Use as a context manager, or call `close()`.

    `timeout` (seconds, default none) bounds every request; one that runs out is cancelled, and
    a backend that ignores the cancellation too is terminated. `reopen` gives a working handle
    on the same backend after this one's died (by name: the shared one, restarted): the default
    of `State.replay()`.
    """

    def __init__(self, transport: Transport, *, precision: str = Precision.COMPLEX128,
                 threads: int | None = None, timeout: float | None = None,
                 device: str | None = None,
                 reopen: Callable[[], Connection] | None = None) -> None:
        super().__init__(transport, precision=precision, threads=threads, timeout=timeout,
                         device=device, reopen=reopen)
        self.prepared = PreparedCircuits(self, lambda circuit: self.execute(circuit).state())
        """The circuits the backend keeps prepared for `expectation` and `gradient`."""

    def execute(self, circuit: Circuit, *, nshots: int = 0, seed: int | None = None,
                timeout: float | None = None, initial_state: np.ndarray | None = None,
                samples: bool = False, parameters: Any = None,
                progress: Callable[[int, int], None] | None = None) -> Result:
        """Run `circuit` from |0...0> (or from `initial_state`); sample `nshots` shots of its
        measurements, and keep every shot's outcome if `samples` (`Result.samples()`).
        `parameters` values its Parameters (one set: in `circuit.parameters` order, or a dict by
        name); the bound circuit is sent.

        `progress(done, total)` is called now and then while a spawned backend works (from
        whichever thread reads its replies), if the backend reports progress."""
        nshots, seed = checked_shots(nshots, seed, timeout)
        circuit = circuit.frozen()  # what it derives is kept while it is unchanged
        if parameters is not None or circuit.parameters:
            circuit = _bound(circuit, parameters)
        if samples:
            self.require(Feature.SAMPLES, "samples")
        for feature, what in _needs(circuit):
            self.require(feature, what)
        width = len(circuit.measured_qubits)
        segment = self.arrays.reply_segment(nshots * width) if samples else None
        try:
            with self.watching(progress) as token, uploading(self, initial_state) as initial:
                reply = self.request(Method.EXECUTE, ExecuteParams(
                    circuit, nshots, seed, token, initial, samples,
                    None if segment is None else segment.id), timeout=timeout)
        except BaseException:
            self.arrays.release(segment)
            raise
        state = State(self, reply.state, circuit.nqubits, density=circuit.density_matrix)
        shots = None
        if samples and nshots:
            if reply.samples is None:
                self.arrays.release(segment)
                raise ProtocolError(f"backend {self.name!r} answered no 'samples' for "
                                    f"{nshots} shots, which were asked for")
            shots = replies.checked_samples(self.arrays.received(reply.samples, "uint8", segment),
                                            self.name, nshots, width)
        else:
            self.arrays.release(segment)
        frequencies = replies.checked_frequencies(reply.frequencies, self.name, nshots, width)
        return Result(state, frequencies, circuit.registers, nshots, samples=shots)

    def expectation(self, circuit: Circuit, observable: ObservableLike, *,
                    parameters: Any = None,
                    progress: Callable[[int, int], None] | None = None) -> Any:
        """The expectation value of `observable` ("Z0 Z1 + 0.5 X2", terms, or an Observable)
        on `circuit`'s final state, computed by the backend: a float for one set of
        `parameters` (or none), an array of one value per row of a 2-D array of sets (all in
        one request; the circuit is sent once per handle and kept by the backend).
        `progress(sets done, sets)` as for `execute`."""
        values, single = self.prepared.expectations(circuit, observable, parameters,
                                                    progress=progress)
        return float(values[0]) if single else values

    def gradient(self, circuit: Circuit, observable: ObservableLike, *,
                 parameters: Any) -> np.ndarray:
        """d<observable>/d(each of `circuit.parameters`) at one set of values, by the
        parameter-shift rule, in one request."""
        return self.prepared.gradient(circuit, observable, parameters)

    def release(self, circuit: Circuit) -> None:
        """Free now what the backend keeps for `circuit` (the prepared circuit `expectation`
        and `gradient` made); it is otherwise freed when the circuit is garbage collected."""
        self.prepared.release(circuit)
        if self.alive:
            self.outbox.flush()

    def new_state(self, nqubits: int, *, initial: np.ndarray | None = None) -> State:
        """A state held by the backend, to stream gates into: |0...0>, or the amplitudes
        `initial` (qubit 0 the most significant bit)."""
        return State.new(self, nqubits, initial)

    def __enter__(self) -> Handle:
        return self


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
