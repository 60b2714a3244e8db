"""Conformance checks of protocol version 4's ways of moving arrays (docs/protocol.md 1.5 and
2.6), for a backend that offers them: binary frames (raw bytes after the message, both ways, text
lines still answered) and sealed memfds (passed on the socket the client leaves open in it, sealed
against writing and shrinking, taken only with the client's token). A backend that offers
neither passes: it keeps to the paths of version 3, which the other checks cover.

Each check starts a backend of its own, with a descriptor socket, and records its exchange in the
one the conformance run gave it, so that a failure shows what crossed.
"""

from __future__ import annotations

import base64
import json
import math
import os
import secrets
import select
import subprocess
from typing import Any

import numpy as np

from ..protocol import TRANSFER_SINCE, ErrorCode, sealed
from .checks import kit_check
from .exchange import Exchange
from .report import CheckFailed, Hung, Skipped

N = 13
"""Qubits of the states moved (128 KiB of complex128, above the size that goes sealed), or the
backend's maxQubits if fewer."""


class _Wire:
    """A fresh backend with a descriptor socket, spoken to in frames (attachments after a line,
    descriptors before it), every line recorded in `exchange`."""

    def __init__(self, argv: list[str], exchange: list[str], reply_timeout: float) -> None:
        self.exchange = exchange
        self.reply_timeout = reply_timeout
        self.ours, theirs = sealed.socket_pair()
        self.their_fd = theirs.fileno()
        try:
            self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=subprocess.DEVNULL, pass_fds=(self.their_fd,))
        finally:
            theirs.close()
        self.token = secrets.token_hex(16)
        self.ours.send(self.token.encode())
        self._buffer = b""
        self.ids = 0

    def initialize(self, **options: Any) -> dict[str, Any]:
        """The handshake in version 4 asking for `options`; the capabilities ({} when the
        backend does not speak version 4)."""
        reply = self.call("initialize", {"protocolVersion": TRANSFER_SINCE, "options": options})
        if "error" in reply:
            if reply["error"].get("code") == ErrorCode.UNSUPPORTED_PROTOCOL_VERSION:
                return {}
            raise CheckFailed(f"initialize answered {reply['error']}")
        capabilities = reply.get("result", {}).get("capabilities")
        if not isinstance(capabilities, dict):
            raise CheckFailed(f"initialize answered {reply}")
        return capabilities

    def offer(self, token: str | None = None) -> dict[str, Any]:
        return {"fd": self.their_fd, "token": token or self.token}

    def call(self, method: str, params: Any = None, *, attached: list[bytes] = (),  # type: ignore[assignment]
             fds: list[int] = (), **envelope: Any) -> dict[str, Any]:  # type: ignore[assignment]
        """A request with its attachments and descriptors; the reply, its attachments as
        `attachments` (bytes) and its descriptors as `fds`."""
        self.ids += 1
        message = {"jsonrpc": "2.0", "id": self.ids, "method": method, **envelope}
        if params is not None:
            message["params"] = params
        line = json.dumps(message).encode()
        self.exchange.append(f"> {line.decode()[:300]}")
        if fds and not sealed.send(self.ours, list(fds)):
            raise CheckFailed("the backend's descriptor socket takes no descriptors")
        assert self.process.stdin is not None
        self.process.stdin.write(line + b"\n" + b"".join(attached))
        self.process.stdin.flush()
        reply = self.receive()
        if reply.get("id") != self.ids:
            raise CheckFailed(f"the reply's id is {reply.get('id')!r}, not {self.ids}")
        return reply

    def receive(self) -> dict[str, Any]:
        line = self._line()
        self.exchange.append(f"< {line.decode(errors='replace')[:300]}")
        try:
            message: dict[str, Any] = json.loads(line)
        except ValueError:
            raise CheckFailed("stdout carried a line that is not JSON") from None
        sizes = message.get("attachments", [])
        if not isinstance(sizes, list) or not all(isinstance(n, int) and n >= 0 for n in sizes):
            raise CheckFailed(f"'attachments' is not a list of sizes: {sizes!r}")
        message["attachments"] = [self._bytes(n) for n in sizes]
        count = message.get("descriptors", 0)
        message["fds"] = []
        if count:
            try:
                message["fds"] = [d.take() for d in sealed.receive(self.ours, count)]
            except ValueError as exc:
                raise CheckFailed(str(exc)) from None
        return message

    def _line(self) -> bytes:
        while b"\n" not in self._buffer:
            self._more()
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def _bytes(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._more()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _more(self) -> None:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        if not select.select([fd], [], [], self.reply_timeout)[0]:
            raise Hung(f"no reply within {self.reply_timeout} s")
        chunk = os.read(fd, 2**20)
        if not chunk:
            raise CheckFailed("the backend closed its stdout")
        self._buffer += chunk

    def close(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.close()
        except OSError:
            pass  # it is gone already
        try:
            self.process.wait(self.reply_timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self.ours.close()


def _wire(session: Exchange) -> _Wire:
    """A backend of the check's own, in place of the one the run started (it has no socket)."""
    session.close(wait=0)
    return _Wire(session.argv, session.exchange, session.limits.reply)


def _qubits(capabilities: dict[str, Any]) -> int:
    """N, or as many qubits as the backend holds."""
    most = capabilities.get("maxQubits")
    return min(N, most) if isinstance(most, int) and most > 0 else N


def _state(n: int) -> np.ndarray:
    amplitudes = np.arange(1, 2**n + 1, dtype="<c16") * (1 - 1j)
    return amplitudes / np.linalg.norm(amplitudes)


def _array(values: np.ndarray, **where: Any) -> dict[str, Any]:
    return {"dtype": values.dtype.name, "shape": list(values.shape), **where}


def _result(reply: dict[str, Any], method: str) -> Any:
    if "result" not in reply:
        raise CheckFailed(f"{method} failed: {reply.get('error')}")
    return reply["result"]


def _error(reply: dict[str, Any], code: int, what: str) -> None:
    error = reply.get("error")
    if not isinstance(error, dict) or error.get("code") != code:
        raise CheckFailed(f"{what}: expected error {code} ({ErrorCode(code).name}), got {reply}")


def _read_back(wire: _Wire, reply: dict[str, Any], dtype: str, shape: list[int]) -> np.ndarray:
    """The array a reply carries, however it came: inline, attached or sealed (then checked
    sealed against writing and shrinking, and as large as the array)."""
    array = _result(reply, "state/read")
    if not isinstance(array, dict) or array.get("dtype") != dtype or array.get("shape") != shape:
        raise CheckFailed(f"an array of {dtype} {shape} came as {array}")
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if array.get("attachment") is not None:
        data = reply["attachments"][array["attachment"]]
    elif array.get("descriptor") is not None:
        fd = reply["fds"][array["descriptor"]]
        try:
            if not sealed.is_sealed(fd):
                raise CheckFailed("an array came in a memfd not sealed against writing and "
                                  "shrinking (F_SEAL_WRITE, F_SEAL_SHRINK)")
            data = os.pread(fd, nbytes, 0)
        finally:
            os.close(fd)
    elif "data" in array:
        data = base64.b64decode(array["data"])
    else:
        raise CheckFailed(f"an array came with no data: {array}")
    if len(data) != nbytes:
        raise CheckFailed(f"an array of {nbytes} bytes came with {len(data)}")
    return np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<"))


@kit_check("1.5", "binary frames carry arrays both ways, when agreed", since=TRANSFER_SINCE,
           features=("initialState",))
def _binary_frames(session: Exchange) -> None:
    """Binary frames, when the backend agrees to them: an initial state attached and read back
    attached (never base64), a plain line still answered, a malformed envelope refused with the
    backend serving on."""
    wire = _wire(session)
    try:
        capabilities = wire.initialize(binaryFrames=True)
        if not capabilities.get("binaryFrames"):
            raise Skipped("the backend does not offer binary frames")
        n = _qubits(capabilities)
        initial = _state(n)
        new = wire.call("state/new", {"nqubits": n, "initial": _array(initial, attachment=0)},
                        attached=[initial.tobytes()], attachments=[initial.nbytes])
        state = _result(new, "state/new")["state"]
        reply = wire.call("state/read", {"state": state})
        if "data" in _result(reply, "state/read"):
            raise CheckFailed("with binary frames agreed, an array still came as base64")
        if not np.array_equal(_read_back(wire, reply, "complex128", [2**n]), initial):
            raise CheckFailed("the state read back is not the one attached")
        _result(wire.call("state/sample", {"state": state, "nshots": 10, "seed": 1}),
                "state/sample")
        _error(wire.call("state/new", {"nqubits": 1}, attachments=[-1]),
               ErrorCode.INVALID_REQUEST, "a negative attachment size")
        _error(wire.call("state/new", {"nqubits": 1, "initial": _array(_state(1), attachment=2)},
                         attached=[_state(1).tobytes()], attachments=[32]),
               ErrorCode.INVALID_PARAMS, "an array naming an attachment the message lacks")
        _result(wire.call("state/new", {"nqubits": 1}), "state/new")
    finally:
        wire.close()


@kit_check("2.6", "sealed memfds cross both ways, only with the client's token",
           since=TRANSFER_SINCE, features=("initialState",))
def _sealed_memory(session: Exchange) -> None:
    """Sealed memfds, when the backend takes the socket: only with the client's token; a
    sealed upload read back right (sealed, if it comes as a memfd); an unsealed upload copied, so
    that writing to it afterwards changes nothing; descriptors announced but not passed refused."""
    wire = _wire(session)
    try:
        if wire.initialize(descriptors=wire.offer("not the token")).get("descriptors"):
            raise CheckFailed("the backend took the descriptor socket with the wrong token")
    finally:
        wire.close()
    wire = _wire(session)
    try:
        capabilities = wire.initialize(descriptors=wire.offer())
        if not capabilities.get("descriptors"):
            raise Skipped("the backend does not take a descriptor socket")
        n = _qubits(capabilities)
        initial = _state(n)
        held = []
        for seals in (sealed.SEALS, 0):
            fd = sealed.new_memfd(initial.nbytes)
            try:
                os.pwrite(fd, initial.tobytes(), 0)
                if seals:
                    sealed.seal(fd)
                new = wire.call("state/new", {"nqubits": n, "initial": _array(initial,
                                                                              descriptor=0)},
                                fds=[fd], descriptors=1)
                held.append(_result(new, "state/new")["state"])
                if not seals:  # the client writes to its own unsealed memfd after the reply
                    os.pwrite(fd, b"\xff" * initial.nbytes, 0)
            finally:
                os.close(fd)
        for state in held:
            reply = wire.call("state/read", {"state": state})
            if not np.array_equal(_read_back(wire, reply, "complex128", [2**n]), initial):
                raise CheckFailed("a state uploaded as a memfd read back changed (an unsealed "
                                  "upload must be copied, not mapped)")
        _error(wire.call("state/new", {"nqubits": 1}, descriptors=1),
               ErrorCode.INVALID_REQUEST, "descriptors announced and not passed")
        _result(wire.call("state/new", {"nqubits": 1}), "state/new")
    finally:
        wire.close()


@kit_check("2.6", "a version 3 session refuses frames and descriptors, and uses neither",
           since=TRANSFER_SINCE)
def _version_3_sees_none(session: Exchange) -> None:
    """A session of version 3 asking for either is refused (fields of a later version, 3.1);
    one that does not ask is answered neither, and its arrays come as version 3's."""
    wire = _wire(session)
    try:
        for option in ({"binaryFrames": True}, {"descriptors": wire.offer()}):
            reply = wire.call("initialize", {"protocolVersion": 3, "options": option})
            if reply.get("error", {}).get("code") == ErrorCode.UNSUPPORTED_PROTOCOL_VERSION:
                return  # a backend of version 4 alone: no session of version 3 to look at
            _error(reply, ErrorCode.INVALID_PARAMS, f"§3.1 options.{next(iter(option))} in a "
                   "session of version 3 (a field of version 4)")
        reply = wire.call("initialize", {"protocolVersion": 3})
        capabilities = _result(reply, "initialize").get("capabilities", {})
        if "binaryFrames" in capabilities or "descriptors" in capabilities:
            raise CheckFailed(f"a version 3 session was answered version 4's fields: "
                              f"{capabilities}")
        n = _qubits(capabilities)
        state = _result(wire.call("state/new", {"nqubits": n}), "state/new")["state"]
        read = wire.call("state/read", {"state": state})
        if read["attachments"] or read["fds"] or "data" not in _result(read, "state/read"):
            raise CheckFailed("a version 3 session got an array in a way version 3 lacks")
    finally:
        wire.close()

