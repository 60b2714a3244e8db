"""Attacks from outside: small or full /dev/shm, message limits, fork, leaks, hostile backends,
bad configuration files, async callers. Each test reproduces one attack."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest
from helpers import HANDSHAKE, bell, child_pids, fake_backend, spawned
from rawpipe import Pipe

from qibo_core import (
    BackendCrashed,
    Circuit,
    ConfigError,
    ProtocolError,
    UsageError,
    aconnect,
    connect,
    gates,
)
from qibo_core.client.discovery import find_backend
from qibo_core.client.segments import MIN_BYTES
from qibo_core.client.trace import TRACE_VARIABLE
from qibo_core.protocol import SHM_DIR, SHM_PREFIX, ErrorCode
from qibo_core.server.serve import MAX_CANCELLED, Server
from qibo_core.server.session import Session
from qibo_core.testing import ReferenceBackend

ROOT = os.geteuid() == 0


def run_python(code: str, *, timeout: float = 60, env: dict[str, str] | None = None,
               prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*(prefix or []), sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout, env=env)


# ---- 1. shared memory that is small, full or read-only ------------------------------------

SMALL_SHM_READS = """
    import logging, sys
    import numpy as np
    from qibo_core import Circuit, Handle, gates
    from qibo_core.client.discovery import find_backend
    from qibo_core.client.spawned import ProcessTransport
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
    circuit = Circuit(17)  # 2 MiB of amplitudes; /dev/shm holds 1 MiB
    circuit.add(gates.H(q) for q in range(17))
    # a client that takes no sealed memfds (version 3's): segments, which need /dev/shm
    transport = ProcessTransport([find_backend("numpy")], name="numpy", descriptors=False)
    with Handle(transport) as handle:
        kept = [handle.execute(circuit).state() for _ in range(5)]
        assert all(np.allclose(a, 2 ** -8.5) for a in kept)
        small = Circuit(14)  # 256 KiB: fits, and goes through a segment
        small.add(gates.X(0))
        assert handle.execute(small).state()[2**13] == 1
        print("alive", handle.alive)
"""


@pytest.mark.skipif(not ROOT or not shutil.which("unshare"), reason="needs root and unshare(1)")
@pytest.mark.parametrize("mount", ["size=1m", "size=1m,ro"])
def test_a_small_or_read_only_dev_shm_falls_back_to_base64(mount: str) -> None:
    """In a private mount namespace, /dev/shm is a tmpfs of 1 MiB (read-only in the second
    case): reads too large for it go as base64, once said in the log, and nothing dies."""
    script = f"mount -t tmpfs -o {mount} tmpfs {SHM_DIR} && exec \"$@\""
    run = run_python(SMALL_SHM_READS, prefix=["unshare", "-m", "sh", "-c", script, "sh"])
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("alive True")
    fallbacks = [line for line in run.stdout.splitlines() if "reading as base64" in line]
    assert len(fallbacks) == 1, run.stdout  # said once, not at every read


# ---- 2. limits (of memory: tests/test_memory.py) --------------------------------------------


def test_a_message_longer_than_the_backend_reads_is_refused_by_the_client() -> None:
    with connect("numpy", command=[find_backend("numpy"), "--max-message-bytes",
                                   "20000"]) as handle:
        assert handle.info.capabilities.max_message_bytes == 20000
        big = Circuit(2)
        big.add(gates.RX(0, 0.1 * k) for k in range(1000))
        with pytest.raises(UsageError, match=r"'execute' message is \d+ bytes, more than"):
            handle.execute(big)
        assert handle.execute(bell(), nshots=10).frequencies()  # still there, still usable


def test_cancellations_for_ids_never_sent_do_not_pile_up() -> None:
    with open(os.devnull, "wb") as out:
        server = Server(Session(ReferenceBackend()), out)
        for k in range(3 * MAX_CANCELLED):
            server._take(b'{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":%d}}' % k)
    assert len(server._cancelled) == MAX_CANCELLED
    assert 3 * MAX_CANCELLED - 1 in server._cancelled  # the newest are kept


def test_attached_segments_are_bounded() -> None:
    pipe = Pipe([find_backend("numpy")])
    pipe.initialize()
    paths = []
    try:
        replies = []
        for _ in range(70):
            path = Path(SHM_DIR) / f"{SHM_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
            path.write_bytes(b"\0" * 16)
            paths.append(path)
            replies.append(pipe.call("shm/attach", {"path": str(path), "size": 16}))
        assert all("result" in r for r in replies[:64])
        assert replies[64]["error"]["code"] == ErrorCode.INVALID_PARAMS
        assert "64 segments are attached already" in replies[64]["error"]["message"]
    finally:
        for path in paths:
            path.unlink()
    assert pipe.close() == 0


def test_a_segment_truncated_under_the_backend_is_refused_not_a_sigbus() -> None:
    pipe = Pipe([find_backend("numpy")])
    pipe.initialize()
    path = Path(SHM_DIR) / f"{SHM_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, 16 * 2**14)
        segment = pipe.call("shm/attach", {"path": str(path), "size": 16 * 2**14})["result"]
        os.ftruncate(fd, 100)  # as a third party with the file could
        state = pipe.call("state/new", {"nqubits": 14})["result"]["state"]
        error = pipe.call("state/read", {"state": state, **segment})["error"]
        assert error["code"] == ErrorCode.INVALID_PARAMS and "truncated" in error["message"]
        assert pipe.call("state/read", {"state": state})["result"]["shape"] == [2**14]
    finally:
        os.close(fd)
        path.unlink()
    assert pipe.close() == 0


# ---- 3. fork -----------------------------------------------------------------------------

FORK = """
    import os, sys
    from qibo_core import Circuit, ConnectionFailed, connect, gates
    c = Circuit(1); c.add([gates.X(0), gates.M(0)])
    handle = connect("numpy")
    parent_pid = handle.transport.pid
    c.execute(backend="numpy", nshots=5)  # a shared backend by name, too
    pid = os.fork()
    if pid == 0:
        try:
            handle.execute(c)
            os._exit(3)
        except ConnectionFailed as exc:
            assert "connect again here" in str(exc), exc
        r = c.execute(backend="numpy", nshots=7)  # a fresh shared backend of the child's
        assert r.frequencies() == {"1": 7}
        sys.exit(0)  # a normal exit: atexit handlers run, and must not block
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    assert handle.execute(c, nshots=9).frequencies() == {"1": 9}  # the parent's still works
    assert handle.transport.pid == parent_pid
    handle.close()
    print("ok")
"""


def test_a_forked_child_cannot_use_its_parents_handles_and_exits_cleanly() -> None:
    run = run_python(FORK, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


# ---- 4. leaks ----------------------------------------------------------------------------

def test_segments_left_by_a_killed_client_are_removed_by_the_next() -> None:
    leftover = run_python(f"""
        import os
        path = "{SHM_DIR}/{SHM_PREFIX}%d-{uuid.uuid4().hex}" % os.getpid()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(fd, 2**20)
        print(path)
        os._exit(0)  # gone before it could unlink: as a client killed while attaching
    """).stdout.strip()
    assert os.path.exists(leftover)
    with spawned("numpy", descriptors=False) as handle:  # a client that uses segments
        state = handle.new_state(14)
        assert state.read()[0] == 1  # the first read makes a pool, which cleans up
    assert not os.path.exists(leftover)


def test_an_unwritable_trace_is_a_config_error_and_starts_no_backend(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRACE_VARIABLE, str(tmp_path / "missing" / "trace.log"))
    before = child_pids()
    with pytest.raises(ConfigError, match=TRACE_VARIABLE):
        connect("numpy")
    assert child_pids() == before


def test_trace_files_are_private_and_links_are_not_followed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trace = tmp_path / "trace.log"
    monkeypatch.setenv(TRACE_VARIABLE, str(trace))
    with connect("numpy") as handle:
        handle.execute(bell())
    assert stat.S_IMODE(trace.stat().st_mode) == 0o600
    victim = tmp_path / "victim"
    victim.write_text("keep")
    planted = tmp_path / "planted.log"
    planted.symlink_to(victim)
    monkeypatch.setenv(TRACE_VARIABLE, str(planted))
    with pytest.raises(ConfigError):
        connect("numpy")
    assert victim.read_text() == "keep"


def test_a_backend_that_closes_stdout_but_runs_on_is_terminated() -> None:
    handle = fake_backend("""
    os.close(1)
    time.sleep(600)
    """)
    process = handle.transport.process  # type: ignore[attr-defined]
    with pytest.raises(BackendCrashed, match="closed its stdout but kept running; it was term"):
        handle.execute(bell())
    assert process.returncode is not None
    handle.close()


# ---- 5. a hostile backend, seen from the client ------------------------------------------

def array_backend(reply: dict[str, object]) -> str:
    """A fake backend answering state/new, then state/read with `reply`."""
    return f"""
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("method") == "state/new":
            result = {{"state": 1}}
        elif request.get("method") == "state/read":
            result = {json.dumps(reply)}
        else:
            result = None
        if "id" in request:
            print(json.dumps({{"jsonrpc": "2.0", "id": request["id"], "result": result}}),
                  flush=True)
    """


@pytest.mark.parametrize("reply, message", [
    ({"dtype": "complex128", "shape": [2**40, 2**40], "data": ""}, "more than"),
    ({"dtype": "O", "shape": [2], "data": ""}, "unsupported dtype 'O'"),
    ({"dtype": "nonsense", "shape": [2], "data": ""}, "unsupported dtype"),
    ({"dtype": "complex128", "shape": [2], "data": "AAAA"}, "holds 3 bytes"),
    ({"dtype": "complex128", "shape": [-2], "data": ""}, "not a list of non-negative"),
    ({"dtype": "complex128", "shape": [2], "data": "!!!!"}, "not base64"),
    ({"dtype": "complex64", "shape": [2], "data": "A" * 24}, "'complex64' where 'complex128'"),
])
def test_malformed_arrays_are_protocol_errors(reply: dict[str, object], message: str) -> None:
    with fake_backend(array_backend(reply)) as handle:
        state = handle.new_state(1)
        with pytest.raises(ProtocolError, match=message):
            state.read()


SEGMENT_BACKEND = """
import json, os, sys
ONE = bytes(6) + b"\\xf0\\x3f" + bytes(8)  # 1 + 0j as complex128
fd = None
for line in sys.stdin:
    request = json.loads(line)
    method, params = request.get("method"), request.get("params") or {}
    result = None
    if method == "initialize":
        result = {"protocolVersion": params["protocolVersion"],
                  "serverInfo": {"name": "hostile", "version": "0"},
                  "capabilities": {"gates": [], "nativeGates": [], "maxQubits": 20,
                                   "precisions": ["complex128"],
                                   "stateEncodings": ["base64", "shm"], "threads": 1}}
    elif method == "shm/attach":
        fd = os.open(params["path"], os.O_RDWR)
        result = {"segment": 1}
    elif method == "state/new":
        result = {"state": 1}
    elif method == "state/read":
        n = 2**14
        os.pwrite(fd, ONE + b"\\0" * (16 * n - len(ONE)), 0)  # |0...0>
        if MODE == "truncate":
            os.ftruncate(fd, 100)
        result = {"dtype": "complex128", "shape": [n], "segment": 1}
    elif method == "state/free":
        os.pwrite(fd, b"\\x01" * (16 * 2**14), 0)  # rewrites what was read, later
    if "id" in request:
        print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}), flush=True)
"""


def segment_backend(mode: str) -> list[str]:
    return [sys.executable, "-c", f"MODE = {mode!r}\n" + SEGMENT_BACKEND]


def test_a_backend_that_truncates_our_segment_is_a_protocol_error_not_a_crash() -> None:
    assert 2**14 * 16 >= MIN_BYTES
    with connect("hostile", command=segment_backend("truncate")) as handle:
        with pytest.raises(ProtocolError, match="truncated"):
            handle.new_state(14).read()


def test_a_state_read_cannot_be_changed_by_the_backend_afterwards() -> None:
    with connect("hostile", command=segment_backend("rewrite")) as handle:
        state = handle.new_state(14)
        array = state.read()
        state.free()  # the backend writes into the segment now
        handle.new_state(1)
        assert array[0] == 1 and not array[1:].any()


def test_a_huge_reply_line_is_refused_as_it_arrives() -> None:
    handle = connect("fake", command=[sys.executable, "-c", HANDSHAKE + textwrap.dedent("""
        request = json.loads(sys.stdin.readline())
        sys.stdout.write('{"jsonrpc": "2.0", "id": %d, "result": "' % request["id"])
        sys.stdout.write("x" * 3 * 2**20 + '"}\\n')
        sys.stdout.flush()
        time.sleep(60)
    """)], max_reply_bytes=2**20)
    with pytest.raises(ProtocolError, match="more than the 1048576 this client takes"):
        handle.new_state(1)
    handle.close()


def test_a_stderr_line_without_end_stays_bounded() -> None:
    handle = fake_backend("""
    for k in range(200000):
        sys.stderr.write("\\rprogress %d%% " % (k % 100) + "#" * 90)
    sys.stderr.flush()
    sys.exit(4)
    """)
    with pytest.raises(BackendCrashed) as info:
        handle.new_state(1)
    tail = info.value.stderr_tail
    assert tail and all(len(line) <= 1000 for line in tail)
    assert len(handle.transport.stderr_tail) <= 50  # type: ignore[attr-defined]
    handle.close()


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe{}", "is not UTF-8 text"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    (b"{oops", "expected"),
])
def test_a_bad_config_file_is_a_config_error_and_installed_backends_still_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, message: str) -> None:
    config = tmp_path / "backends.json"
    config.write_bytes(content)
    monkeypatch.setenv("QIBO_CORE_CONFIG", str(config))
    from qibo_core.client.discovery import configured_backends
    with pytest.raises(ConfigError, match=message):
        configured_backends()
    with connect("numpy") as handle:
        assert handle.execute(bell(), nshots=5).frequencies()


def test_a_fifo_as_config_file_does_not_hang(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fifo = tmp_path / "backends.json"
    os.mkfifo(fifo)
    monkeypatch.setenv("QIBO_CORE_CONFIG", str(fifo))
    from qibo_core.client.discovery import configured_backends
    with pytest.raises(ConfigError, match="not a regular file"):
        configured_backends()


def test_requests_that_were_never_answered_are() -> None:
    pipe = Pipe([find_backend("numpy")])
    pipe.initialize()
    pipe.send(b'{"jsonrpc": "2.0", "id": 5, "method": "execute", "params": {"circuit": '
              b'{"nqubits": 1, "measurements": [{"qubits": [0], "register": "\xff"}]}}}')
    error = pipe.receive()["error"]
    assert error["code"] == ErrorCode.PARSE_ERROR and "not valid JSON" in error["message"]
    unitary = {"name": "Unitary", "qubits": list(range(20000)), "matrix": [[[1, 0]]]}
    reply = pipe.call("execute", {"circuit": {"nqubits": 2, "gates": [unitary]}})
    assert "at most 14 are supported" in reply["error"]["message"]
    assert pipe.call("exit", None, request_id=9) == {"jsonrpc": "2.0", "id": 9, "result": None}
    assert pipe.close() == 1  # exit without shutdown


# ---- 6. async callers --------------------------------------------------------------------

def long_circuit() -> Circuit:
    circuit = Circuit(20)
    for layer in range(20):
        circuit.add(gates.RX(q, 0.1 * layer + q) for q in range(20))
        circuit.add(gates.CNOT(q, q + 1) for q in range(19))
    return circuit


def test_async_calls_leave_the_event_loop_free() -> None:
    async def main() -> tuple[int, np.ndarray]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        async with await aconnect("numpy") as handle:
            result = await handle.execute(long_circuit())
            state = await result.probabilities([0])
        task.cancel()
        return ticks, state

    ticks, probabilities = asyncio.run(main())
    assert ticks > 10 and probabilities.sum() == pytest.approx(1)


def test_cancelling_the_task_cancels_the_request_on_the_backend() -> None:
    async def main() -> int:
        async with await aconnect("numpy") as handle:
            task = asyncio.create_task(handle.execute(long_circuit()))
            await asyncio.sleep(0.3)  # well into it
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            result = await handle.execute(bell(), nshots=10)
            assert sum(result.frequencies().values()) == 10
            assert result.result.final_state is not None
            return result.result.final_state.id

    # A cancelled execute holds no state: had the long circuit run to its end, it would hold
    # state 1 and the Bell pair state 2.
    assert asyncio.run(main()) == 1
