"""A backend process on pipes, spoken to in raw JSON lines, every line recorded so that a failed
check shows the exchange; and the helpers checks share (errors, arrays, segments)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..protocol import SHM_DIR, SHM_PREFIX, SUPPORTED_VERSIONS, TIMEOUT, ErrorCode, LineReader
from .profile import Limits, Profile
from .report import CheckFailed, Hung, Skipped
from .statistics import Tally

SHOWN = 300
"""Characters of a line the recorded exchange keeps."""
CAPABILITY_TYPES: tuple[tuple[str, type], ...] = (
    ("gates", list), ("nativeGates", list), ("maxQubits", int), ("precisions", list),
    ("stateEncodings", list), ("threads", int))
"""The capabilities every backend answers (3.1), and their JSON types."""
WIRE_DTYPES = {"complex128": "<c16", "complex64": "<c8", "float64": "<f8", "uint8": "u1"}
"""Each Array dtype's little-endian bytes (2.4)."""


class Exchange:
    """A fresh backend process on pipes, recording every line both ways."""

    def __init__(self, argv: list[str], limits: Limits, profile: Profile | None = None,
                 tally: Tally | None = None) -> None:
        self.argv, self.limits = argv, limits
        self.profile = profile or Profile()
        self.tally = tally or Tally()
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)
        assert self.process.stdout is not None
        self.lines = LineReader(self.process.stdout.fileno())
        self.exchange: list[str] = []
        self.ids = 0
        self.version = 0
        """The protocol version the handshake agreed on."""
        self.capabilities: dict[str, Any] = {}

    @property
    def features(self) -> list[str]:
        return list(self.capabilities.get("features") or [])

    # ---- lines ---------------------------------------------------------------------------

    def send(self, message: dict[str, Any] | bytes) -> None:
        line = message if isinstance(message, bytes) else json.dumps(message).encode()
        self.exchange.append(f"> {line.decode(errors='replace')[:SHOWN]}")
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(line + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise CheckFailed("the backend closed its input (did it exit?)") from None

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def receive(self) -> dict[str, Any]:
        line = self.lines.read_line(self.limits.reply)
        if line is TIMEOUT:
            raise Hung(f"no reply within {self.limits.reply:.0f} s")
        if not isinstance(line, bytes):
            raise CheckFailed("the backend closed its stdout")
        self.exchange.append(f"< {line.decode(errors='replace')[:SHOWN]}")
        try:
            message = json.loads(line)
        except ValueError:
            raise CheckFailed("stdout carried a line that is not JSON") from None
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            raise CheckFailed("stdout carried a line that is not a JSON-RPC message")
        return message

    # ---- requests ------------------------------------------------------------------------

    def call(self, method: str, params: Any = None) -> dict[str, Any]:
        """The reply to a request (an error or a result)."""
        self.ids += 1
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": self.ids, "method": method}
        if params is not None:
            request["params"] = params
        self.send(request)
        reply = self.receive()
        if reply.get("id") != self.ids:
            raise CheckFailed(f"the reply's id is {reply.get('id')!r}, not {self.ids}")
        return reply

    def result(self, method: str, params: Any = None) -> Any:
        reply = self.call(method, params)
        if "error" in reply:
            raise CheckFailed(f"{method} failed: {reply['error']}")
        if "result" not in reply:
            raise CheckFailed(f"the reply to {method} has neither 'result' nor 'error'")
        return reply["result"]

    def object(self, method: str, params: Any = None) -> dict[str, Any]:
        """The result of a request whose result must be an object."""
        result = self.result(method, params)
        if not isinstance(result, dict):
            raise CheckFailed(f"{method} answered {result!r}, not an object")
        return result

    def error(self, method: str, params: Any, code: int, rule: str = "") -> dict[str, Any]:
        """The error a request must get: `code`, or CheckFailed saying which `rule` it
        broke."""
        reply = self.call(method, params)
        expect_error(reply, code, rule)
        return reply

    def state(self, params: dict[str, Any]) -> int:
        """The id of the state an `execute` with `params` holds."""
        state = self.object("execute", params).get("state")
        if not isinstance(state, int):
            raise CheckFailed(f"execute answered the state id {state!r}")
        return state

    def read(self, state: int, shape: Sequence[int]) -> np.ndarray:
        """A held state's amplitudes (or density matrix), complex128, of `shape`."""
        return decoded(self.result("state/read", {"state": state}), "complex128", shape,
                       "state/read")

    # ---- lifecycle -----------------------------------------------------------------------

    def initialize(self, version: int | None = None,
                   options: dict[str, Any] | None = None) -> dict[str, Any]:
        """The handshake at `version` (default: the newest the backend speaks), with `options`;
        its capabilities, checked (3.1)."""
        asked = version or self.profile.newest or max(SUPPORTED_VERSIONS)
        extra = {} if options is None else {"options": options}
        reply = self.call("initialize", {"protocolVersion": asked, **extra})
        if version is None and not self.profile.known:
            asked, reply = self._retry(asked, reply, extra)
        capabilities = handshake(reply, asked)
        self.version, self.capabilities = asked, capabilities
        return capabilities

    def _retry(self, asked: int, reply: dict[str, Any],
               extra: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A refused handshake asked again with the newest version both speak (3.1)."""
        error = reply.get("error")
        if not isinstance(error, dict) or \
                error.get("code") != ErrorCode.UNSUPPORTED_PROTOCOL_VERSION:
            return asked, reply
        data = error.get("data")
        supported = data.get("supported") if isinstance(data, dict) else None
        common = set(supported or []) & set(SUPPORTED_VERSIONS)
        if not isinstance(supported, list) or not common:
            raise CheckFailed(f"§3.1: initialize refused version {asked}, and its data does "
                              f"not list one this kit speaks ({list(SUPPORTED_VERSIONS)}): "
                              f"{error}")
        asked = max(common)
        return asked, self.call("initialize", {"protocolVersion": asked, **extra})

    def needs_gates(self, *names: str) -> None:
        """Skipped unless the backend accepts every gate of `names`."""
        missing = [n for n in names if n not in self.capabilities.get("gates", [])]
        if missing:
            raise Skipped(f"the backend does not offer the gates {missing}")

    @contextmanager
    def another(self) -> Iterator[Exchange]:
        """A second process of the same backend, its lines recorded after this one's."""
        other = Exchange(self.argv, self.limits, self.profile, self.tally)
        try:
            yield other
        finally:
            self.exchange += other.exchange
            other.close()

    def close(self, wait: float | None = None) -> int | None:
        """End of input, then the exit code; None if it had to be killed after `wait` s."""
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.close()
        except OSError:
            pass  # it is gone already
        try:
            return self.process.wait(self.limits.reply if wait is None else wait)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
        finally:
            self.process.stdout.close()


def handshake(reply: dict[str, Any], asked: int) -> dict[str, Any]:
    """The capabilities of a reply to `initialize` for version `asked`, CheckFailed unless it
    answered that version with capabilities of the right types (3.1)."""
    if "result" not in reply or not isinstance(reply["result"], dict):
        raise CheckFailed(f"§3.1: initialize for version {asked} answered {_short(reply)}")
    result = reply["result"]
    if result.get("protocolVersion") != asked:
        raise CheckFailed(f"§3.1: a backend answers the version asked for: protocolVersion is "
                          f"{result.get('protocolVersion')!r}, not the {asked} asked for")
    capabilities = result.get("capabilities")
    if not isinstance(capabilities, dict):
        raise CheckFailed("§3.1: capabilities is missing or not an object")
    for key, kind in CAPABILITY_TYPES:
        value = capabilities.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CheckFailed(f"§3.1: capabilities.{key} is missing or not a {kind.__name__}")
    if "base64" not in capabilities["stateEncodings"]:
        raise CheckFailed("§2.4: stateEncodings lacks 'base64', which every backend must "
                          "support")
    features = capabilities.get("features", [])
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise CheckFailed(f"§3.1: capabilities.features is {features!r}, not a list of names")
    return capabilities


def expect_error(reply: dict[str, Any], code: int, rule: str = "") -> None:
    """CheckFailed unless `reply` is the error `code` with a message, saying which `rule`
    (a section and what it says) was broken."""
    error = reply.get("error")
    why = f"{rule}: " if rule else ""
    if not isinstance(error, dict) or error.get("code") != code:
        raise CheckFailed(f"{why}expected error {code} ({ErrorCode(code).name}), got "
                          f"{_short(reply)}")
    if not isinstance(error.get("message"), str) or not error["message"]:
        raise CheckFailed(f"{why}the error has no message")


def _short(reply: dict[str, Any]) -> str:
    text = json.dumps(reply)
    return text if len(text) <= 400 else text[:400] + "..."


def array(values: Any, dtype: str) -> dict[str, Any]:
    """An Array (2.4) holding `values` inline."""
    data = np.ascontiguousarray(values, dtype=WIRE_DTYPES[dtype])
    return {"dtype": dtype, "shape": list(data.shape),
            "data": base64.b64encode(data.tobytes()).decode()}


def decoded(answer: Any, dtype: str, shape: Sequence[int], what: str) -> np.ndarray:
    """The array an inline Array answer holds, CheckFailed unless it has `dtype` and
    `shape`."""
    wire = WIRE_DTYPES[dtype]
    if not isinstance(answer, dict) or answer.get("dtype") != dtype \
            or answer.get("shape") != list(shape) or not isinstance(answer.get("data"), str):
        shown = _short(answer) if isinstance(answer, dict) else repr(answer)
        raise CheckFailed(f"{what} answered {shown}, not {dtype} of shape {list(shape)}")
    raw = base64.b64decode(answer["data"])
    if len(raw) != int(np.prod(shape)) * np.dtype(wire).itemsize:
        raise CheckFailed(f"{what}: {len(raw)} bytes of data for {dtype} of shape "
                          f"{list(shape)}")
    return np.frombuffer(raw, dtype=wire).reshape(shape).astype(dtype)


def segment_file(size: int, prefix: str = SHM_PREFIX) -> str:
    """A new file of `size` zero bytes in the shared-memory folder, named as a client's
    segment (2.5) unless `prefix` says otherwise."""
    path = os.path.join(SHM_DIR, f"{prefix}{os.getpid()}-{uuid.uuid4().hex}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.ftruncate(fd, size)
    os.close(fd)
    return path


def frequencies(result: dict[str, Any], nshots: int, width: int, what: str) -> dict[str, int]:
    """An execute result's frequencies, CheckFailed unless they are bitstrings of `width`
    counting `nshots` shots (4.1)."""
    counts = result.get("frequencies")
    if not isinstance(counts, dict) or not all(
            isinstance(k, str) and len(k) == width and set(k) <= {"0", "1"}
            and isinstance(v, int) and v > 0 for k, v in counts.items()) \
            or sum(counts.values()) != nshots:
        raise CheckFailed(f"{what}: frequencies {counts!r} are not counts of {width}-bit "
                          f"outcomes over {nshots} shots")
    return counts
