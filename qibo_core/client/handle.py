"""Handle: a backend to run circuits on, in this process or in a spawned one.

A Handle is a Connection (connection.py: the handshake, requests, shared memory) that runs
circuits, makes states and computes expectation values. It speaks to a Transport
(ProcessTransport: JSON-RPC to a child; LocalTransport: the same Session calls, no
serialization): code that runs circuits never asks which one it has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..circuit import Circuit
from ..circuit.observable import ObservableLike
from ..errors import ProtocolError
from ..protocol import RUNS_SINCE, ExecuteManyParams, Method, Precision
from .connection import Connection
from .prepared import PreparedCircuits
from .result import Result
from .runs import Run
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
        run = Run(self, self.prepared, circuit, nshots, seed, samples=samples,
                  parameters=parameters)
        try:
            with self.watching(progress) as token, uploading(self, initial_state) as initial:
                run.params.work_done_token, run.params.initial_state = token, initial
                reply = self.request(Method.EXECUTE, run.params, timeout=timeout)
        except BaseException:
            run.release()
            raise
        return run.result(reply)

    def execute_many(self, circuits: Iterable[Circuit], *, nshots: int = 0,
                     seed: int | None = None, timeout: float | None = None,
                     progress: Callable[[int, int], None] | None = None) -> list[Result]:
        """Run each circuit as `execute` does, all in one request (protocol version 4; one
        request each with an older backend). Results hold no state on the backend: a small
        final state comes back with them (`state()`), and with shots, their frequencies. A
        `seed` seeds the runs' own seeds. `progress(runs done, runs)` as for `execute`."""
        nshots, seed = checked_shots(nshots, seed, timeout)
        circuits = list(circuits)
        seeds: list[int | None] = [None] * len(circuits) if seed is None else [
            int(s) for s in np.random.SeedSequence(seed).generate_state(len(circuits))]
        if self.protocol_version < RUNS_SINCE:
            return [self.execute(c, nshots=nshots, seed=s, timeout=timeout)
                    for c, s in zip(circuits, seeds, strict=True)]
        runs = [Run(self, self.prepared, c, nshots, s, keep=False)
                for c, s in zip(circuits, seeds, strict=True)]
        with self.watching(progress) as token:
            reply = self.request(Method.EXECUTE_MANY, ExecuteManyParams(
                [run.params for run in runs], token), timeout=timeout)
        if len(reply.results) != len(runs):
            raise ProtocolError(f"backend {self.name!r} answered {len(reply.results)} results "
                                f"for {len(runs)} runs")
        return [run.result(one) for run, one in zip(runs, reply.results, strict=True)]

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

