"""Time limits and cancellation hold for every request, and a backend dies with its client."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import alive, bell, child_pids, eventually
from rawpipe import Pipe

from qibo_core import (
    Circuit,
    Handle,
    Observable,
    Parameter,
    RequestTimeout,
    aconnect,
    connect,
    gates,
)
from qibo_core.client.discovery import find_backend
from qibo_core.client.trace import TRACE_VARIABLE
from qibo_core.protocol import ErrorCode, InitializeOptions, SlotData
from qibo_core.server.prepared import Prepared, prepared

SILENT = """
import json, sys
for line in sys.stdin:
    request = json.loads(line)
    method = request.get("method")
    if method == "initialize" and request["params"]["protocolVersion"] != 3:
        asked = request["params"]["protocolVersion"]
        error = {"code": -32001, "message": f"protocol version {asked} is not supported",
                 "data": {"supported": [3], "requested": asked}}
        print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": error}), flush=True)
    elif method == "initialize":
        result = {"protocolVersion": 3, "serverInfo": {"name": "silent", "version": "0"},
                  "capabilities": {"gates": ["RX"], "nativeGates": [], "maxQubits": 2,
                                   "precisions": ["complex128"], "stateEncodings": ["base64"],
                                   "threads": 1, "features": ["expectation"]}}
        print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}), flush=True)
    elif method == "$/cancelRequest":
        error = {"code": -32006, "message": "cancelled"}
        print(json.dumps({"jsonrpc": "2.0", "id": request["params"]["id"], "error": error}),
              flush=True)
    elif method in ("state/new", "circuit/prepare") and "id" in request:
        result = {"state": 1} if method == "state/new" else {"circuit": 1}
        print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}), flush=True)
"""
"""A version 3 backend that answers state/new and circuit/prepare at once, no other request
ever, and every cancellation with RequestCancelled: only a time limit ends a call to it."""


@pytest.mark.parametrize("call", ["read", "probabilities", "expectation"])
def test_every_request_is_bounded_by_the_handles_timeout(call: str) -> None:
    c = Circuit(1)
    c.add(gates.RX(0, Parameter("t")))
    with connect("silent", command=[sys.executable, "-c", SILENT], timeout=0.3) as handle:
        state = handle.new_state(1)
        with pytest.raises(RequestTimeout, match="the request was cancelled"):
            if call == "read":
                state.read()
            elif call == "probabilities":
                state.probabilities()
            else:
                handle.expectation(c, "Z0", parameters=np.zeros((500, 1)))
        assert handle.alive


def big_circuit(n: int, layers: int) -> dict[str, Any]:
    gates_ = [{"name": "RY", "qubits": [q], "params": {"theta": 0.1 * q}} for q in range(n)]
    gates_ += [{"name": "CZ", "qubits": [q, q + 1]} for q in range(n - 1)]
    return {"nqubits": n, "gates": gates_ * layers}


@pytest.mark.parametrize("backend", ["numpy", "qulacs"])
def test_a_prepare_can_be_cancelled(backend: str) -> None:
    """circuit/prepare of 20,000 gates, cancelled at once: answered RequestCancelled (it checks
    for cancellation while it builds), not prepared and answered seconds later."""
    pipe = Pipe([find_backend(backend)])
    try:
        pipe.call("initialize", {"protocolVersion": 3})
        pipe.send({"jsonrpc": "2.0", "id": 2, "method": "circuit/prepare", "params": {
            "circuit": big_circuit(10, 1000), "slots": [], "parameters": 0}})
        pipe.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 2}})
        reply = pipe.receive()
        assert reply["id"] == 2 and reply["error"]["code"] == ErrorCode.REQUEST_CANCELLED, reply
        assert pipe.call("state/new", {"nqubits": 1}, request_id=3)["result"]["state"] == 1
    finally:
        pipe.close()


@pytest.mark.backends("qulacs")
def test_qulacs_looks_for_cancellation_within_a_set() -> None:
    """Qulacs holds the GIL while it runs: a set of many gates runs in chunks, with the
    checkpoint (where cancellation is noticed) between them, not only between sets."""
    from qibo_backend_qulacs import QulacsBackend
    backend = QulacsBackend()
    backend.configure(InitializeOptions())
    c = Circuit(16)
    for _ in range(40):
        c.add(gates.RX(q, Parameter(f"t{q}")) for q in range(16))
        c.add(gates.CZ(q, q + 1) for q in range(15))
    names = [p.name for p in c.parameters]
    slots = [SlotData(g, "theta", names.index(op.slots["theta"].name))
             for g, op in enumerate(c.gates) if op.slots]
    ready: Prepared = prepared(c.bound({n: 0.0 for n in names}), slots, len(names))
    ready.native = backend.prepare(ready)
    calls: list[int] = []
    backend.expectations(ready, np.zeros((1, len(names))), Observable("Z0"),
                         lambda done=0, total=0: calls.append(done))
    assert len(calls) >= len(c.gates) // 256  # a chunk is 256 gates at 16 qubits


def test_a_backend_started_from_a_thread_outlives_the_thread() -> None:
    """A backend dies with the thread that started it (the kernel sees to it, whatever holds
    its GIL): so every backend is started from one thread that lives as long as the client."""
    started: list[Handle] = []
    thread = threading.Thread(target=lambda: started.append(connect("numpy")))
    thread.start()
    thread.join()
    with started[0] as handle:
        assert sum(handle.execute(bell(), nshots=10).frequencies().values()) == 10


BUSY_CLIENT = """
import sys
import numpy as np
from qibo_core import Circuit, Parameter, connect, gates
handle = connect(sys.argv[1])
print(handle.transport.pid, flush=True)
c = Circuit(22)
for layer in range(400):
    c.add(gates.RX(q, Parameter(f"t{q}")) for q in range(22))
handle.expectation(c, "Z0", parameters=np.zeros(22))
"""


@pytest.mark.backends("qulacs")
def test_a_backend_in_one_long_set_exits_when_its_client_is_killed() -> None:
    """Qulacs runs a set of a prepared circuit holding the GIL, for a minute here: the backend
    cannot watch its parent meanwhile, and the kernel ends it."""
    client = subprocess.Popen([sys.executable, "-c", BUSY_CLIENT, "qulacs"],
                              stdout=subprocess.PIPE)
    assert client.stdout is not None
    pid = int(client.stdout.readline())
    client.stdout.close()
    eventually(lambda: False, 1.5)  # into the set
    client.kill()
    client.wait()
    assert eventually(lambda: not alive(pid), 3), f"backend {pid} outlived its client"


def test_a_cancelled_aconnect_closes_the_backend_it_started() -> None:
    before = child_pids()

    async def main() -> None:
        task = asyncio.create_task(aconnect("numpy"))
        await asyncio.sleep(0.02)  # spawning, not yet connected
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert eventually(lambda: child_pids() <= before, 5), "the backend was left running"


def test_a_progress_callback_that_raises_cancels_its_request(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    trace = tmp_path / "trace.log"
    monkeypatch.setenv(TRACE_VARIABLE, str(trace))
    c = Circuit(20)
    for layer in range(100):
        c.add(gates.RX(q, 0.1 * layer) for q in range(20))
        c.add(gates.CNOT(q, q + 1) for q in range(19))

    def progress(done: int, total: int) -> None:
        raise KeyError("the caller's own mistake")

    with connect("numpy") as handle:
        with pytest.raises(KeyError, match="the caller's own mistake"):
            handle.execute(c, progress=progress)
        assert sum(handle.execute(bell(), nshots=10).frequencies().values()) == 10
    lines = [json.loads(line.split(" ", 3)[3]) for line in trace.read_text().splitlines()
             if len(line) < 1000]  # the trace shortens the circuit's
    cancelled = [m["params"]["id"] for m in lines if m.get("method") == "$/cancelRequest"]
    assert cancelled, "no $/cancelRequest was sent"
    answer = next(m for m in lines if m.get("id") == cancelled[0] and "method" not in m)
    assert answer["error"]["code"] == ErrorCode.REQUEST_CANCELLED
