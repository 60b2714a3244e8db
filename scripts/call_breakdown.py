"""Where a small call goes: `execute(qft(6)).state()` on Qulacs timed layer by layer in one run,
each layer with everything under it, so that the differences are the layers' own costs
(docs/decisions.md quotes them)."""

from __future__ import annotations

import statistics
from collections.abc import Callable

from circuits import qft
from timing import Row, measure, row

from qibo_backend_qulacs import QulacsBackend
from qibo_core import Handle, connect
from qibo_core.protocol import ExecuteParams, Method, Request, encoder
from qibo_core.server import Session
from qibo_core.server.serve import Server
from qibo_core.testing.memory import MemoryTransport, _Discard

TARGET = "11 small circuits"


def call_breakdown(n: int, repeats: int) -> list[Row]:
    circuit = qft(n).frozen()
    backend = QulacsBackend()
    program = backend.compile_gates(circuit.gates, n)

    (_, [(_, compiled)]) = program  # one Qulacs QuantumCircuit

    def simulator() -> object:
        state = backend.zero_state(n)
        compiled.update_quantum_state(state)
        vector = state.get_vector()
        backend.free(state)
        return vector

    def in_backend() -> object:
        state = backend.run_compiled(backend.zero_state(n), program)
        vector = backend.to_array(state)
        backend.free(state)
        return vector

    session = Session(QulacsBackend())
    session.call(Method.INITIALIZE, _initialize())
    params = ExecuteParams(circuit, read=True, keep=False)

    server = Server(Session(QulacsBackend()), _Discard())  # type: ignore[arg-type]
    server.handle(server.decode(encoder.encode(Request(method=Method.INITIALIZE, id=1,
                                                       params=_initialize()))))  # type: ignore[arg-type]
    line = encoder.encode(Request(method=Method.EXECUTE, id=2, params=ExecuteParams(
        circuit, read=True)))

    def server_line() -> object:
        response = server.handle(server.decode(line))  # type: ignore[arg-type]
        server.session.drop(response.result.state)  # type: ignore[union-attr]
        return encoder.encode(response)

    layers: list[tuple[str, Callable[[], object]]] = [
        ("the simulator (Qulacs' update of a compiled circuit, get_vector)", simulator),
        ("+ the backend (QulacsBackend: zero_state, run_compiled, to_array)", in_backend),
        ("+ the session (Session.call, in process: checks, budget, held state)",
         lambda: session.call(Method.EXECUTE, params)),
        ("+ the server loop (decode the line, the session, encode the reply)", server_line),
    ]
    handles: list[tuple[str, Handle]] = [
        ("+ the client, in process (Handle over LocalTransport)", connect(QulacsBackend())),
        ("+ encoding both ways (Handle over MemoryTransport: no pipe)",
         Handle(MemoryTransport(QulacsBackend()))),
        ("+ the pipe and two processes (spawned qulacs)", connect("qulacs")),
    ]
    rows = []
    try:
        for what, run in [*layers, *((w, lambda h=h: h.execute(circuit).state())
                                     for w, h in handles)]:
            times = measure(run, repeats)
            rows.append(row(TARGET, f"QFT {n}q execute + state(), {what}", times,
                            note=f"{statistics.median(times) * 1e6:.0f} us"))
    finally:
        for _, handle in handles:
            handle.close()
    return rows


def _initialize() -> object:
    from qibo_core.protocol import PROTOCOL_VERSION, InitializeParams
    return InitializeParams(PROTOCOL_VERSION)
