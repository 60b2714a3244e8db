"""Protocol version 4's ways of moving arrays: binary frames (raw bytes after the message) and
sealed memfds (the backend's pages, which nobody can change), both ways; their negotiation, their
limits, and every fallback: no memfd, no /proc, a small or read-only /dev/shm, a backend that
never seals, one that lies about the seals, one that passes nothing or the wrong thing."""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import secrets
import select
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from helpers import alive, spawned
from seccomp import SUPPORTED as SECCOMP
from seccomp import without_memfd

from qibo_core import Circuit, Handle, Parameter, ProtocolError, connect, gates
from qibo_core.client.discovery import find_backend
from qibo_core.client.spawned import ProcessTransport
from qibo_core.protocol import PROTOCOL_VERSION, SHM_DIR, ErrorCode, sealed

ROOT = os.geteuid() == 0
READ_TIMEOUT = 20.0
N = 17  # 2 MiB of complex128: sealed (and a state the NumPy backend keeps in a memfd)


def uniform(n: int) -> np.ndarray:
    return np.full(2**n, 2 ** (-n / 2), dtype=complex)


def random_state(n: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    state = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    return state / np.linalg.norm(state)


def mapping_of(array: np.ndarray, pid: int | str = "self") -> tuple[str, int] | None:
    """The file (name, inode) mapped where `array` lies in process `pid`, or None (anonymous)."""
    address = array.ctypes.data
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if start <= address < end:
                inode = int(fields[4])
                return (fields[5].strip(), inode) if inode else None
    raise AssertionError("the array is not mapped at all")


def maps_inode(pid: int, inode: int) -> bool:
    with open(f"/proc/{pid}/maps") as f:
        return any(int(line.split(maxsplit=5)[4]) == inode for line in f)


# ---- the reference client and backend -------------------------------------------------------

@pytest.fixture
def sealed_memory_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Sealed memory everywhere it can go, as where shared memory has huge pages (this
    machine's has not: see sealed.worthwhile): backends started from here keep their states in
    memfds and seal their copies, this client seals its uploads."""
    with sealed_memory(monkeypatch, "1"):
        yield


@contextlib.contextmanager
def sealed_memory(monkeypatch: pytest.MonkeyPatch, value: str) -> Iterator[None]:
    monkeypatch.setenv(sealed.VARIABLE, value)
    sealed.worthwhile.cache_clear()
    try:
        yield
    finally:
        monkeypatch.undo()
        sealed.worthwhile.cache_clear()


def test_a_version_4_session_agrees_on_both_and_a_large_read_is_the_backends_pages(
        sealed_memory_on: None) -> None:
    """The client's array is a copy-on-write mapping of the very memfd the backend's state
    lives in: zero copy. The backend then writes into that state (gates of every kernel kind)
    and the array handed out stays as it was."""
    initial = random_state(N)
    with connect("numpy") as handle:
        capabilities = handle.info.capabilities
        assert handle.protocol_version == PROTOCOL_VERSION == 4
        assert capabilities.binary_frames and capabilities.descriptors
        assert handle.arrays.segments is None  # sealed memfds make segments unneeded
        state = handle.new_state(N, initial=initial)
        state.apply(gates.H(0))
        first = state.read()
        pid = handle.transport.pid  # type: ignore[attr-defined]
        name, inode = mapping_of(first)  # type: ignore[misc]
        assert name.startswith(f"/memfd:{sealed.NAME}")
        assert maps_inode(pid, inode), "the backend's state is not in the memfd read"
        expected = np.array(first)
        state.apply(gates.Z(N - 1), gates.X(3), gates.RY(5, 0.4), gates.CNOT(2, 9))
        second = state.read()
        np.testing.assert_array_equal(first, expected)  # the backend wrote; ours did not move
        assert not np.allclose(second, first)
        first[0] = 7  # ours to change, copy-on-write: the backend's state is not touched
        np.testing.assert_array_equal(state.read(), second)


def test_where_sealed_memory_does_not_pay_the_client_offers_no_socket(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Shared memory with small pages (QIBO_CORE_SEALED_MEMORY=0, as here by default): no
    descriptor socket is offered; large arrays cross through segments, whose pages are reused,
    and binary frames carry the rest; states stay in NumPy's memory."""
    initial = random_state(N)
    with sealed_memory(monkeypatch, "0"), connect("numpy") as handle:
        capabilities = handle.info.capabilities
        assert capabilities.binary_frames and not capabilities.descriptors
        assert handle.arrays.segments is not None
        array = handle.new_state(N, initial=initial).read()
        assert mapping_of(array) is None and array.flags.owndata
        np.testing.assert_allclose(array, initial, atol=1e-12)
        with open(f"/proc/{handle.transport.pid}/maps") as f:  # type: ignore[attr-defined]
            assert "memfd:" not in f.read()


def test_the_kernel_says_whether_shared_memory_gets_huge_pages(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sealed.VARIABLE, raising=False)
    sealed.worthwhile.cache_clear()
    try:
        policy = sealed.shmem_policy()
        assert sealed.worthwhile() is (policy in ("always", "within_size", "advise", "force"))
    finally:
        sealed.worthwhile.cache_clear()


def test_arrays_outlive_their_state_and_their_backend_and_hold_no_descriptor(
        sealed_memory_on: None) -> None:
    circuit = Circuit(N)
    circuit.add(gates.H(q) for q in range(N))
    before = len(os.listdir("/proc/self/fd"))
    with connect("numpy") as handle:
        pid = handle.transport.pid  # type: ignore[attr-defined]
        arrays = [handle.execute(circuit).state() for _ in range(30)]
        backend_fds = len(os.listdir(f"/proc/{pid}/fd"))
        assert backend_fds < 40, "the backend keeps descriptors of states it freed"
    assert not alive(pid)
    assert len(os.listdir("/proc/self/fd")) == before
    for array in arrays:
        np.testing.assert_allclose(array, uniform(N), atol=1e-12)


@pytest.mark.backends("qulacs")
def test_uploads_go_sealed_and_small_arrays_go_attached(sealed_memory_on: None) -> None:
    initial = random_state(N)
    with connect("numpy") as handle:
        big = handle.new_state(N, initial=initial)
        np.testing.assert_allclose(big.read(), initial, atol=1e-12)
        small = handle.new_state(3, initial=random_state(3))
        np.testing.assert_allclose(small.read(), random_state(3), atol=1e-12)
        assert small.probabilities([0]).sum() == pytest.approx(1)
    values = np.random.default_rng(1).uniform(-1, 1, (5000, 4))  # 160 KiB of parameter sets
    t = [Parameter(f"t{i}") for i in range(4)]
    c = Circuit(2)
    c.add([gates.RX(0, t[0]), gates.RY(1, t[1]), gates.RZ(0, t[2]), gates.RX(1, t[3])])
    with connect("numpy") as handle, connect("qulacs") as other:
        np.testing.assert_allclose(handle.expectation(c, "Z0 + X1", parameters=values),
                                   other.expectation(c, "Z0 + X1", parameters=values),
                                   atol=1e-10)


@pytest.mark.backends("qulacs")
def test_every_backend_reads_sealed_through_a_copy_when_its_memory_is_its_own(
        sealed_memory_on: None) -> None:
    """Qulacs keeps states in its own memory: the session seals a copy of them."""
    circuit = Circuit(N)
    circuit.add(gates.H(q) for q in range(N))
    with connect("qulacs") as handle:
        assert handle.info.capabilities.descriptors
        array = handle.execute(circuit).state()
        name, inode = mapping_of(array)  # type: ignore[misc]
        assert name.startswith(f"/memfd:{sealed.NAME}")
        assert not maps_inode(handle.transport.pid, inode)  # type: ignore[attr-defined]
        np.testing.assert_allclose(array, uniform(N), atol=1e-12)


def test_binary_frames_without_shared_memory() -> None:
    """--no-shm: no segments, no memfds; arrays cross the pipe as raw bytes both ways."""
    initial = random_state(N)
    with spawned("numpy", argv=[find_backend("numpy"), "--no-shm"]) as handle:
        capabilities = handle.info.capabilities
        assert capabilities.binary_frames and not capabilities.descriptors
        state = handle.new_state(N, initial=initial)
        array = state.read()
        assert mapping_of(array) is None and array.flags.writeable
        np.testing.assert_allclose(array, initial, atol=1e-12)
        c = Circuit(12)
        c.add(gates.H(q) for q in range(12))
        c.add(gates.M(*range(12)))
        result = handle.execute(c, nshots=10_000, samples=True, seed=2)
        assert result.samples().shape == (10_000, 12)


def test_a_client_of_version_3_gets_what_version_3_has() -> None:
    with spawned("numpy", binary_frames=False, descriptors=False) as handle:
        capabilities = handle.info.capabilities
        assert not capabilities.binary_frames and not capabilities.descriptors
        assert handle.arrays.segments is not None
        np.testing.assert_allclose(handle.new_state(N, initial=uniform(N)).read(), uniform(N))


# ---- by hand: raw lines, raw bytes, a socket --------------------------------------------------

class Wire:
    """A backend on pipes driven by hand, with a descriptor socket it inherits, reading frames:
    never hangs (each read has READ_TIMEOUT)."""

    def __init__(self, argv: list[str], *, socket_fd: bool = True) -> None:
        self.ours, self.theirs = sealed.socket_pair()
        self.their_fd = self.theirs.fileno()
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE,
                                        pass_fds=(self.their_fd,) if socket_fd else ())
        self.token = secrets.token_hex(16)
        self.ours.send(self.token.encode())
        self._buffer = b""
        self.ids = 0

    def initialize(self, version: int = PROTOCOL_VERSION, **options: Any) -> dict[str, Any]:
        reply = self.call("initialize", {"protocolVersion": version, "options": options})
        return reply["result"]["capabilities"]  # type: ignore[no-any-return]

    def offer(self, token: str | None = None) -> dict[str, Any]:
        return {"fd": self.their_fd, "token": token or self.token}

    def token_untouched(self) -> bool:
        """Whether the token still waits in the backend's end (nobody took the socket)."""
        waiting = self.theirs.recv(64, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        return waiting == self.token.encode()

    def send(self, message: dict[str, Any] | bytes, attachments: list[bytes] = (),
             fds: list[int] = ()) -> None:  # type: ignore[assignment]
        if fds:
            socket.send_fds(self.ours, [b"d"], list(fds))
        line = message if isinstance(message, bytes) else json.dumps(message).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(line + b"\n" + b"".join(attachments))
        self.process.stdin.flush()

    def call(self, method: str, params: Any = None, **envelope: Any) -> dict[str, Any]:
        self.ids += 1
        attachments = envelope.pop("attached", [])
        fds = envelope.pop("fds", [])
        message = {"jsonrpc": "2.0", "id": self.ids, "method": method, **envelope}
        if params is not None:
            message["params"] = params
        self.send(message, attachments, fds)
        return self.receive()

    def _more(self) -> None:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], READ_TIMEOUT)
        assert ready, f"no reply within {READ_TIMEOUT} s"
        chunk = os.read(fd, 1 << 20)
        assert chunk, f"the backend exited with code {self.process.wait()}"
        self._buffer += chunk

    def receive(self) -> dict[str, Any]:
        """The next message; its attachments as `attachments` (bytes), its descriptors as
        `fds`."""
        while b"\n" not in self._buffer:
            self._more()
        line, self._buffer = self._buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        message["attachments"] = [self._take(n) for n in message.get("attachments", [])]
        if message.get("descriptors"):
            _, fds, _, _ = socket.recv_fds(self.ours, 16, 16, socket.MSG_DONTWAIT)
            message["fds"] = fds
        return message

    def _take(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._more()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def close(self) -> int:
        assert self.process.stdin is not None and self.process.stderr is not None
        if not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            return self.process.wait(READ_TIMEOUT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.ours.close()
            self.theirs.close()
            for stream in (self.process.stdout, self.process.stderr):
                if stream:
                    stream.close()


@pytest.fixture
def wire() -> Iterator[Wire]:
    w = Wire([find_backend("numpy")])
    yield w
    assert w.close() == 0


def array(values: np.ndarray, **where: Any) -> dict[str, Any]:
    return {"dtype": values.dtype.name, "shape": list(values.shape), **where}


def test_version_3_sessions_never_see_the_new_fields(wire: Wire) -> None:
    for option in ({"binaryFrames": True}, {"descriptors": wire.offer()}):
        error = wire.call("initialize", {"protocolVersion": 3, "options": option})["error"]
        assert error["code"] == -32602 and "a field of protocol version 4" in error["message"]
    reply = wire.call("initialize", {"protocolVersion": 3})
    capabilities = reply["result"]["capabilities"]
    assert "binaryFrames" not in capabilities and "descriptors" not in capabilities
    state = wire.call("state/new", {"nqubits": 2})["result"]["state"]
    read = wire.call("state/read", {"state": state})["result"]
    assert "data" in read and "attachments" not in read  # base64, as in version 3
    assert wire.token_untouched()


def test_binary_frames_by_hand(wire: Wire) -> None:
    assert wire.initialize(binaryFrames=True)["binaryFrames"] is True
    initial = random_state(4)
    state = wire.call("state/new", {"nqubits": 4, "initial": array(initial, attachment=0)},
                      attachments=[16 * 16], attached=[initial.tobytes()])["result"]["state"]
    reply = wire.call("state/read", {"state": state})
    assert reply["result"] == array(initial, attachment=0)
    assert reply["attachments"] == [initial.tobytes()]
    probabilities = wire.call("state/probabilities", {"state": state, "qubits": [0]})
    assert len(probabilities["attachments"][0]) == 2 * 8
    # a person typing plain JSON lines still gets answers, and arrays never come as base64
    wire.send(b'{"jsonrpc": "2.0", "id": 99, "method": "state/sample", "params": '
              b'{"state": 1, "nshots": 10, "seed": 1}}')
    assert sum(wire.receive()["result"]["frequencies"].values()) == 10


@pytest.mark.parametrize("envelope, message", [
    ({"attachments": "many"}, "envelope is malformed"),
    ({"attachments": [-4]}, "non-negative"),
    ({"attachments": [1] * 65}, "at most 64"),
    ({"descriptors": 1}, "none were"),
    ({"descriptors": 99}, "1 to 16 descriptors"),
])
def test_malformed_envelopes_are_invalid_requests_and_the_backend_serves_on(
        envelope: dict[str, Any], message: str) -> None:
    wire = Wire([find_backend("numpy")])
    try:
        wire.initialize(binaryFrames=True, descriptors=wire.offer())
        attached = [b"x"] * 65 if envelope.get("attachments") == [1] * 65 else []
        reply = wire.call("state/new", {"nqubits": 1}, attached=attached, **envelope)
        assert reply["error"]["code"] == ErrorCode.INVALID_REQUEST
        assert message in reply["error"]["message"] and reply["id"] == wire.ids
        assert wire.call("state/new", {"nqubits": 1})["result"]["state"] == 1
    finally:
        assert wire.close() == 0


def test_attachments_over_the_limit_are_skipped_and_refused() -> None:
    wire = Wire([find_backend("numpy"), "--max-message-bytes", "4096"])
    try:
        wire.initialize(binaryFrames=True)
        big = uniform(9)  # 8 KiB
        reply = wire.call("state/new", {"nqubits": 9, "initial": array(big, attachment=0)},
                          attachments=[big.nbytes], attached=[big.tobytes()])
        assert reply["error"]["code"] == ErrorCode.INVALID_REQUEST
        assert "exceed the maximum of 4096" in reply["error"]["message"]
        assert wire.call("state/new", {"nqubits": 8, "initial": array(uniform(8), attachment=0)},
                         attachments=[4096], attached=[uniform(8).tobytes()])["result"] == \
            {"state": 1}
    finally:
        assert wire.close() == 0


def test_without_binary_frames_attachments_are_an_unknown_field(wire: Wire) -> None:
    """Text framing is what version 3 has: a field it does not know is ignored."""
    wire.initialize()
    assert wire.call("state/new", {"nqubits": 1}, attachments=[3])["result"] == {"state": 1}
    assert wire.call("state/new", {"nqubits": 1}, descriptors=1)["result"] == {"state": 2}


def test_an_attachment_named_but_not_carried_is_invalid_params(wire: Wire) -> None:
    wire.initialize(binaryFrames=True)
    initial = uniform(2)
    reply = wire.call("state/new", {"nqubits": 2, "initial": array(initial, attachment=1)},
                      attachments=[initial.nbytes], attached=[initial.tobytes()])
    assert reply["error"]["code"] == ErrorCode.INVALID_PARAMS
    assert "names attachment 1; the message carries 1" in reply["error"]["message"]
    reply = wire.call("state/new", {"nqubits": 2, "initial": array(initial, attachment=0)},
                      attachments=[8], attached=[b"\0" * 8])
    assert reply["error"]["code"] == ErrorCode.INVALID_PARAMS
    assert "holds 8 bytes" in reply["error"]["message"]


def test_input_ending_inside_an_attachment_ends_the_backend() -> None:
    wire = Wire([find_backend("numpy")])
    wire.initialize(binaryFrames=True)
    wire.send({"jsonrpc": "2.0", "id": 5, "method": "state/new", "params": {"nqubits": 1},
               "attachments": [10**6]}, [b"\0" * 1000])
    assert wire.process.stdin is not None
    wire.process.stdin.close()
    reply = wire.receive()  # at end of input: answered, then gone
    assert reply["error"]["code"] == ErrorCode.INVALID_REQUEST
    assert "ended inside" in reply["error"]["message"]
    assert wire.close() == 0


def test_the_socket_is_taken_only_with_its_token() -> None:
    """A wrong token, a descriptor that is no socket, or the protocol's own: not taken, and
    left as it was (a backend through ssh finds whatever is at that number)."""
    for offer in ({"token": "wrong"}, {"fd": 1}, {"fd": 9999}):
        wire = Wire([find_backend("numpy")])
        try:
            capabilities = wire.initialize(descriptors={**wire.offer(), **offer})
            assert "descriptors" not in capabilities  # false, the default, is left out
            assert wire.token_untouched()
            reply = wire.call("state/read", {"state": wire.call("state/new", {"nqubits": 16})
                                             ["result"]["state"]})
            assert "data" in reply["result"]  # base64: nothing agreed
        finally:
            assert wire.close() == 0


def sealed_memfd(values: np.ndarray, seals: int = sealed.SEALS) -> int:
    fd = sealed.new_memfd(values.nbytes)
    os.pwrite(fd, values.tobytes(), 0)
    if seals:
        import fcntl
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    return fd


def test_a_sealed_upload_is_mapped_not_copied_and_an_unsealed_one_is_copied(
        sealed_memory_on: None) -> None:
    wire = Wire([find_backend("numpy")])
    try:
        uploads(wire)
    finally:
        assert wire.close() == 0


def uploads(wire: Wire) -> None:
    assert wire.initialize(descriptors=wire.offer())["descriptors"] is True
    pid = wire.process.pid
    initial = random_state(N)
    fd = sealed_memfd(initial)
    inode = os.fstat(fd).st_ino
    state = wire.call("state/new", {"nqubits": N, "initial": array(initial, descriptor=0)},
                      descriptors=1, fds=[fd])["result"]["state"]
    os.close(fd)
    assert maps_inode(pid, inode), "the backend copied a sealed upload"
    # an unsealed upload is copied, so its sender changing it later changes nothing
    fd = sealed_memfd(initial, seals=0)
    other = wire.call("state/new", {"nqubits": N, "initial": array(initial, descriptor=0)},
                      descriptors=1, fds=[fd])["result"]["state"]
    assert not maps_inode(pid, os.fstat(fd).st_ino)
    os.pwrite(fd, b"\xff" * initial.nbytes, 0)
    os.close(fd)
    for held in (state, other):
        reply = wire.call("state/read", {"state": held})
        assert reply["result"] == array(initial, descriptor=0)
        (received,) = reply["fds"]
        try:
            assert sealed.is_sealed(received)
            memory = mmap.mmap(received, initial.nbytes, access=mmap.ACCESS_READ)
            np.testing.assert_array_equal(np.frombuffer(memory, complex), initial)
        finally:
            os.close(received)


@pytest.mark.parametrize("what, message", [
    ("short", "holds 1024 bytes, fewer than"),
    ("pipe", "not a regular file"),
    ("index", "names descriptor 3; the message carries 1"),
])
def test_bad_uploaded_descriptors_are_invalid_params(wire: Wire, what: str,
                                                     message: str) -> None:
    wire.initialize(descriptors=wire.offer())
    initial = uniform(10)
    if what == "pipe":
        fd, write_end = os.pipe()
        os.close(write_end)
    else:
        fd = sealed_memfd(initial[:64] if what == "short" else initial)
    where = {"descriptor": 3 if what == "index" else 0}
    reply = wire.call("state/new", {"nqubits": 10, "initial": array(initial, **where)},
                      descriptors=1, fds=[fd])
    os.close(fd)
    assert reply["error"]["code"] == ErrorCode.INVALID_PARAMS
    assert message in reply["error"]["message"]
    assert wire.call("state/new", {"nqubits": 1})["result"]["state"] == 1


# ---- backends that do not seal, lie, or pass the wrong thing ---------------------------------

FAKE_SEALED = """
import fcntl, json, mmap, os, socket, sys, tempfile
import numpy as np
MODE = sys.argv[1]
N = 2**14
VALUES = np.full(N, 2**-7, dtype=complex).tobytes()
sock, kept = None, []

def memfd(seals):
    fd = os.memfd_create("fake", os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, len(VALUES))
    memory = mmap.mmap(fd, len(VALUES))
    memory[:] = VALUES
    kept.append(memory)  # a writable shared mapping, kept to write through later
    if seals:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    return fd

def descriptor():
    if MODE == "unsealed":
        return memfd(0)
    if MODE == "lying":  # every seal but the one that stops writes
        return memfd(fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    if MODE == "sealed":
        fd = memfd(0)
        kept.pop().close()
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK
                    | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
        return fd
    if MODE == "file":  # a plain file: it cannot carry seals
        fd, path = tempfile.mkstemp()
        os.unlink(path)
        os.pwrite(fd, VALUES, 0)
        return fd
    if MODE == "short":
        fd = os.memfd_create("fake", os.MFD_ALLOW_SEALING)
        os.ftruncate(fd, 100)
        return fd
    if MODE == "pipe":
        return os.pipe()[0]

for line in sys.stdin:
    request = json.loads(line)
    method, params = request.get("method"), request.get("params") or {}
    envelope, result = {}, None
    if method == "initialize":
        offer = params["options"].get("descriptors")
        if offer:
            sock = socket.socket(fileno=offer["fd"])
            assert sock.recv(64) == offer["token"].encode()
        result = {"protocolVersion": params["protocolVersion"],
                  "serverInfo": {"name": "fake", "version": "0"},
                  "capabilities": {"gates": [], "nativeGates": [], "maxQubits": 20,
                                   "precisions": ["complex128"], "stateEncodings": ["base64"],
                                   "threads": 1, "descriptors": True}}
    elif method == "state/new":
        result = {"state": 1}
    elif method == "state/read":
        result = {"dtype": "complex128", "shape": [N], "descriptor": 0}
        envelope = {"descriptors": 1}
        if MODE != "missing":
            socket.send_fds(sock, [b"d"], [descriptor()])
    elif method == "state/free":
        for memory in kept:  # after replying, and after the client took its array
            memory[:] = b"\\xff" * len(memory)
    if "id" in request:
        print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result,
                          **envelope}), flush=True)
"""


def fake(mode: str, *, descriptors: bool = True) -> Handle:
    argv = [sys.executable, "-c", FAKE_SEALED, mode]
    return Handle(ProcessTransport(argv, name="fake", descriptors=descriptors))


@pytest.fixture
def offering(sealed_memory_on: None) -> None:
    """The client offers its descriptor socket (here only where told that sealed memory pays)."""


@pytest.mark.parametrize("mode", ["sealed", "unsealed", "lying", "file"])
def test_what_a_backend_writes_after_replying_never_reaches_the_array(
        mode: str, caplog: pytest.LogCaptureFixture, offering: None) -> None:
    """Sealed, the array is the backend's pages, which it cannot write any more; unsealed,
    sealed but writable (a lie), or a plain file, the array is copied out: the backend's later
    writes change nothing either way."""
    with fake(mode) as handle:
        state = handle.new_state(14)
        array = state.read()
        state.free()  # the backend overwrites all the memory it kept, now
        handle.new_state(1)
        np.testing.assert_array_equal(array, uniform(14))
        mapped = mapping_of(array) is not None
        assert mapped is (mode == "sealed")
        warned = any("did not seal" in r.message for r in caplog.records)
        assert warned is (mode != "sealed")


@pytest.mark.parametrize("mode, message", [
    ("short", "holds 100 bytes, fewer than the 262144"),
    ("pipe", "not a regular file"),
    ("missing", "says 1 descriptors were passed, and none were"),
])
def test_a_backend_that_passes_the_wrong_thing_or_nothing(mode: str, message: str,
                                                         offering: None) -> None:
    with fake(mode) as handle:
        with pytest.raises(ProtocolError, match=message):
            handle.new_state(14).read()


def test_a_backend_that_says_descriptors_when_none_were_offered() -> None:
    with pytest.raises(ProtocolError, match="'descriptors' true, which was not asked for"):
        fake("sealed", descriptors=False)


# ---- fallbacks: the kernel or the sandbox refuses --------------------------------------------

READS = """
    import logging, sys
    import numpy as np
    from qibo_core import Circuit, connect, gates
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
    n = int(sys.argv[1])
    circuit = Circuit(n)
    circuit.add(gates.H(q) for q in range(n))
    with connect("numpy", command=sys.argv[2:] or None) as handle:
        capabilities = handle.info.capabilities
        states = [handle.execute(circuit).state() for _ in range(3)]
        assert all(np.allclose(s, 2 ** (-n / 2)) for s in states)
        mapped = [l for l in open("/proc/self/maps") if "memfd:qibo-core" in l]
        print("descriptors", capabilities.descriptors, "segments",
              handle.arrays.segments is not None, "mapped", len(mapped) >= 3)
"""


def run_reads(n: int, *, prefix: list[str] = (), backend: list[str] = ()  # type: ignore[assignment]
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-c", textwrap.dedent(READS), str(n),
                           *backend], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not SECCOMP, reason="the seccomp filter is written for x86-64 Linux")
def test_no_memfd_in_the_backend_falls_back_to_segments(sealed_memory_on: None) -> None:
    """The client offers its socket; the backend cannot seal memory and leaves it."""
    run = run_reads(N, backend=without_memfd([find_backend("numpy")]))
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["descriptors", "False", "segments", "True", "mapped", "False"]


@pytest.mark.skipif(not SECCOMP, reason="the seccomp filter is written for x86-64 Linux")
def test_no_memfd_in_the_client_falls_back_to_segments(sealed_memory_on: None) -> None:
    """The client cannot seal memory, so it offers no socket."""
    run = run_reads(N, prefix=without_memfd([]))
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["descriptors", "False", "segments", "True", "mapped", "False"]


PRIVATE = ["unshare", "--mount", "--propagation", "private", "sh", "-c"]


@pytest.mark.skipif(not ROOT or not shutil.which("unshare"), reason="needs root and unshare(1)")
@pytest.mark.parametrize("mounts, n", [
    (f"mount -t tmpfs -o size=64m tmpfs {SHM_DIR}", 23),  # a 128 MiB state, Docker's /dev/shm
    (f"mount -t tmpfs -o size=1m,ro tmpfs {SHM_DIR}", N),
    ("mount -t tmpfs tmpfs /proc", N),  # no /proc: descriptors never need it
], ids=["64 MiB /dev/shm", "read-only /dev/shm", "no /proc"])
def test_sealed_reads_need_neither_dev_shm_nor_proc(mounts: str, n: int,
                                                  sealed_memory_on: None) -> None:
    script = f"{mounts} && exec \"$@\""
    check = READS.replace('open("/proc/self/maps")', 'open(MAPS)')
    run = subprocess.run([*PRIVATE, script, "sh", sys.executable, "-c",
                          f"MAPS = {'/dev/null' if 'proc' in mounts else '/proc/self/maps'!r}\n"
                          + textwrap.dedent(check), str(n)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    mapped = "False" if "proc" in mounts else "True"  # without /proc there are no maps to see
    assert run.stdout.split() == ["descriptors", "True", "segments", "False", "mapped", mapped]
