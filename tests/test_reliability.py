"""Faults the client survives and input the server survives, on both real backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from helpers import alive, bell, eventually, fake_backend, fake_program
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rawpipe import Pipe

from qibo_core import (
    BackendCrashed,
    Circuit,
    Handle,
    ProtocolError,
    RequestCancelled,
    RequestTimeout,
    StateLost,
    connect,
    gates,
)
from qibo_core.client import close_shared, resolve
from qibo_core.client.discovery import find_backend
from qibo_core.client.spawned import ProcessTransport

BACKENDS = ["numpy", "qulacs"]
FUZZ_EXAMPLES = int(os.environ.get("QIBO_FUZZ_EXAMPLES", "150"))
"""Examples per fuzz test: CI's budget; raise it to fuzz longer locally."""


def long_circuit() -> Circuit:
    """Seconds of work on either backend, in many gates: cancellable between them."""
    c = Circuit(22)
    for layer in range(60):
        c.add(gates.RX(q, 0.1 * layer + q) for q in range(22))
        c.add(gates.CNOT(q, q + 1) for q in range(0, 21, 2))
    return c


@pytest.fixture(params=BACKENDS)
def spawned(request: pytest.FixtureRequest) -> Iterator[Handle]:
    with connect(request.param) as handle:
        yield handle


# ---- cancellation and timeouts -----------------------------------------------------------

def test_explicit_cancel_stops_a_long_execute(spawned: Handle) -> None:
    outcome: list[BaseException | str] = []

    def run() -> None:
        try:
            spawned.execute(long_circuit())
            outcome.append("finished")
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.5)
    started = time.monotonic()
    spawned.cancel()
    worker.join(30)
    assert isinstance(outcome[0], RequestCancelled), outcome
    assert time.monotonic() - started < 5
    assert spawned.execute(bell(), nshots=10).frequencies()  # still usable


def test_timeout_cancels_and_the_backend_stays_usable(spawned: Handle) -> None:
    with pytest.raises(RequestTimeout, match="within 0.3 s; the request was cancelled"):
        spawned.execute(long_circuit(), timeout=0.3)
    assert spawned.alive
    assert spawned.execute(bell(), nshots=10).frequencies()


def test_keyboard_interrupt_cancels_and_the_backend_stays_usable(spawned: Handle) -> None:
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(KeyboardInterrupt):
            spawned.execute(long_circuit())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    started = time.monotonic()
    assert spawned.execute(bell(), nshots=10).frequencies()
    assert time.monotonic() - started < 5  # the cancelled execute stopped at a gate boundary


def test_a_hung_backend_is_terminated() -> None:
    handle = fake_backend("""
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(600)
    """)
    process = handle.transport.process  # type: ignore[attr-defined]
    started = time.monotonic()
    with pytest.raises(RequestTimeout, match="is hung and was terminated"):
        handle.execute(bell(), timeout=0.5)
    assert time.monotonic() - started < 10
    assert process.poll() is not None and not handle.alive
    handle.close()


def test_a_backend_speaking_an_old_protocol_version_is_refused() -> None:
    program = fake_program("sys.stdin.readline()\n").replace(
        '"protocolVersion": request["params"]["protocolVersion"]', '"protocolVersion": 0')
    channel = ProcessTransport([sys.executable, "-c", program], name="old")
    with pytest.raises(ProtocolError, match="answered 'initialize' with protocol version 0"):
        Handle(channel)
    assert channel.process.poll() is not None  # closed and reaped


def test_replies_out_of_order_reach_the_right_callers() -> None:
    handle = fake_backend("""
    first, second = (json.loads(sys.stdin.readline()) for _ in range(2))
    for request in (second, first):  # answer the later request first
        n = request["params"]["nqubits"]
        print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {"state": 10 + n}}),
              flush=True)
    sys.stdin.readline()
    """)
    results: dict[int, int] = {}
    threads = [threading.Thread(target=lambda n=n: results.__setitem__(
        n, handle.new_state(n).id)) for n in (1, 2)]
    for t in threads:
        t.start()
        time.sleep(0.2)  # the first request is written before the second
    for t in threads:
        t.join(10)
    assert results == {1: 11, 2: 12}
    handle.close()


def test_a_stderr_flood_never_blocks_either_side() -> None:
    handle = fake_backend("""
    sys.stdin.readline()
    for i in range(100_000):
        print(f"log line {i}: " + "x" * 60, file=sys.stderr)
    print(json.dumps({"jsonrpc": "2.0", "id": 2, "result": {"state": 1}}), flush=True)
    sys.stdin.readline()
    """)
    assert handle.new_state(1).id == 1
    transport = handle.transport  # the drain may still be reading what came before the reply
    assert eventually(lambda: transport.stderr_tail[-1].startswith("log line 99999"), 30)
    handle.close()


# ---- crashes -----------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["SIGKILL", "SIGSEGV", "exit"])
def test_a_crash_during_execute_fails_the_call_quickly(how: str) -> None:
    with connect("numpy") as handle:
        pid = handle.transport.pid  # type: ignore[attr-defined]
        caught: list[BaseException] = []
        worker = threading.Thread(target=lambda: _run_catching(handle, caught))
        worker.start()
        time.sleep(0.5)
        started = time.monotonic()
        if how == "exit":
            os.kill(pid, signal.SIGTERM)
        else:
            os.kill(pid, getattr(signal, how))
        worker.join(10)
        assert time.monotonic() - started < 1.0
        assert isinstance(caught[0], BackendCrashed)
        expected = {"SIGKILL": "killed by SIGKILL", "SIGSEGV": "killed by SIGSEGV",
                    "exit": "killed by SIGTERM"}[how]
        assert expected in str(caught[0])
        assert not handle.alive


def _run_catching(handle: Handle, caught: list[BaseException]) -> None:
    try:
        handle.execute(long_circuit())
    except BaseException as exc:
        caught.append(exc)


@pytest.mark.backends("qulacs")
def test_a_lost_state_can_be_replayed() -> None:
    close_shared()
    handle = resolve("qulacs")
    state = handle.new_state(4).apply(gates.H(0), gates.CNOT(0, 1), gates.RY(3, 0.7))
    expected = state.read()
    handle.transport.kill()  # type: ignore[attr-defined]
    with pytest.raises(StateLost, match=r"3 gates streamed\) is lost with it: state.replay\(\)"):
        state.read()
    again = state.replay()
    np.testing.assert_allclose(again.read(), expected, atol=1e-12)
    assert again.handle is not handle
    close_shared()


# ---- parent death ------------------------------------------------------------------------

CLIENT = """
import sys
from qibo_core import Circuit, connect, gates
handle = connect(sys.argv[1])
print(handle.transport.pid, flush=True)
if sys.argv[2] == "busy":
    c = Circuit(22)
    for layer in range(400):
        c.add(gates.RX(q, 0.1 * layer) for q in range(22))
    handle.execute(c)
else:
    sys.stdin.readline()
"""


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("state", ["idle", "busy"])
def test_backends_exit_when_the_client_is_killed(backend: str, state: str) -> None:
    client = subprocess.Popen([sys.executable, "-c", CLIENT, backend, state],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert client.stdout is not None
    pid = int(client.stdout.readline())
    time.sleep(1.0 if state == "busy" else 0.2)
    client.kill()
    client.wait()
    client.stdout.close()
    assert client.stdin is not None
    client.stdin.close()
    assert eventually(lambda: not alive(pid), 5), f"backend {pid} outlived its client"


# ---- load --------------------------------------------------------------------------------

def resources(pid: int) -> tuple[int, int, int]:
    """Open file descriptors, threads and resident kB of a process."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    return fds, int(status["Threads"]), int(status["VmRSS"].split()[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_ten_thousand_executes_leak_nothing(backend: str) -> None:
    circuit = Circuit(3)
    circuit.add([gates.H(0), gates.CNOT(0, 1), gates.RX(2, 0.4), gates.M(0, 1, 2)])
    with connect(backend) as handle:
        child = handle.transport.pid  # type: ignore[attr-defined]
        for _ in range(500):  # warm up caches and allocators
            handle.execute(circuit, nshots=10).state()
        before = resources(child), resources(os.getpid())
        for _ in range(10_000):
            handle.execute(circuit, nshots=10).state()
        after = resources(child), resources(os.getpid())
    for (fds0, threads0, rss0), (fds1, threads1, rss1) in zip(before, after, strict=True):
        assert fds1 == fds0 and threads1 == threads0
        assert rss1 - rss0 < 20_000, f"resident memory grew by {rss1 - rss0} kB"


@pytest.mark.backends("qulacs")
def test_many_backends_at_once() -> None:
    handles = [connect(name) for name in BACKENDS * 3]
    try:
        results: dict[int, Any] = {}
        threads = [threading.Thread(target=lambda i=i, h=h: results.__setitem__(
            i, h.execute(bell(), nshots=200, seed=i).frequencies())) for i, h in enumerate(handles)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == len(handles)
        assert all(sum(f.values()) == 200 and set(f) <= {"00", "11"} for f in results.values())
    finally:
        for h in handles:
            h.close()


# ---- hostile input -----------------------------------------------------------------------

@pytest.fixture(scope="module", params=BACKENDS)
def target(request: pytest.FixtureRequest) -> Iterator[Pipe]:
    pipe = Pipe([find_backend(request.param), "--max-message-bytes", str(2**20)])
    pipe.initialize()
    yield pipe
    assert pipe.close() == 0


def assert_answered(pipe: Pipe, expect_reply: bool = True) -> None:
    """The backend answered what it was sent (if a reply was due) and is still serving."""
    if expect_reply:
        reply = pipe.receive()
        assert ("result" in reply) != ("error" in reply), reply
        if "error" in reply:
            assert isinstance(reply["error"]["code"], int) and reply["error"]["message"]
    pipe.send({"jsonrpc": "2.0", "id": "ping", "method": "state/new", "params": {"nqubits": 1}})
    pong = pipe.receive()
    assert pong["id"] == "ping" and "result" in pong, pong
    pipe.send({"jsonrpc": "2.0", "method": "state/free", "params": pong["result"]})


fuzz = settings(max_examples=FUZZ_EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20)


@fuzz
@given(st.binary(min_size=1, max_size=200).filter(lambda b: b"\n" not in b and b.strip()))
def test_random_bytes(target: Pipe, line: bytes) -> None:
    target.send(line)
    assert_answered(target)


@fuzz
@given(json_values)
def test_random_json(target: Pipe, value: Any) -> None:
    assume(not (isinstance(value, dict) and value.get("method") == "exit"))
    target.send(json.dumps(value))
    assert_answered(target, expect_reply=not (isinstance(value, dict) and "id" not in value
                                              and isinstance(value.get("method"), str)
                                              and value.get("jsonrpc") == "2.0"))


hostile_numbers = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=False,
                                                                   allow_infinity=False),
                            st.sampled_from([0, -1, 2**31, 2**63, 10**30, 1e308]))
hostile_gates = st.fixed_dictionaries({
    "name": st.sampled_from(["H", "RX", "CNOT", "Unitary", "fSim", "M", "", "x" * 1000]),
    "qubits": st.lists(hostile_numbers, max_size=4),
}, optional={
    "params": st.dictionaries(st.sampled_from(["theta", "phi", "lam", "zeta"]), hostile_numbers),
    "controls": st.lists(hostile_numbers, max_size=3),
    "dagger": st.booleans(),
    "matrix": st.lists(st.lists(st.tuples(hostile_numbers, hostile_numbers), max_size=4),
                       max_size=4),
})
hostile_params = st.one_of(
    st.fixed_dictionaries({"circuit": st.fixed_dictionaries({
        "nqubits": hostile_numbers, "gates": st.lists(hostile_gates, max_size=4)}),
        "nshots": hostile_numbers, "seed": hostile_numbers}),
    st.fixed_dictionaries({"nqubits": hostile_numbers}),
    st.fixed_dictionaries({"state": hostile_numbers, "gates": st.lists(hostile_gates, max_size=4)}),
    st.fixed_dictionaries({"state": hostile_numbers, "qubits": st.lists(hostile_numbers),
                           "nshots": hostile_numbers}),
    json_values,
)


@fuzz
@given(st.sampled_from(["execute", "state/new", "state/apply", "state/read",
                        "state/probabilities", "state/sample", "state/free", "shm/attach",
                        "shm/detach", "initialize", "shutdown"]),
       hostile_params)
def test_structurally_valid_requests_with_hostile_values(target: Pipe, method: str,
                                                         params: Any) -> None:
    if method == "shutdown":
        method = "state/free"  # a shutdown would end the session the other examples share
    target.send({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    assert_answered(target)


def test_huge_lines(target: Pipe) -> None:
    target.send(b'{"jsonrpc": "2.0", "id": 1, "method": "execute", "params": "'
                + b"z" * 30 * 2**20 + b'"}')
    error = target.receive()["error"]
    assert "exceeds the maximum" in error["message"]
    target.send(b"[" * 500_000 + b"]" * 500_000)
    assert_answered(target)
    target.send(b'{"a": ' * 200_000 + b"1" + b"}" * 200_000)
    assert_answered(target)


@pytest.mark.parametrize("backend", BACKENDS)
def test_long_executes_report_progress(backend: str) -> None:
    circuit = Circuit(21)
    for layer in range(15):
        circuit.add(gates.RX(q, 0.1 * layer + q) for q in range(21))
        circuit.add(gates.CNOT(q, q + 1) for q in range(0, 20, 2))
    seen: list[tuple[int, int]] = []
    with connect(backend) as handle:
        handle.execute(circuit, progress=lambda done, total: seen.append((done, total)))
        assert handle.execute(bell(), nshots=10).frequencies()  # the watch ended cleanly
    assert len(seen) >= 2, seen
    assert {total for _, total in seen} == {len(circuit.gates)}
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
