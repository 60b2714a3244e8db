"""Protocol checks: raw JSON lines to a fresh backend process, so a failure shows the exchange.

Each request has REPLY_TIMEOUT seconds; a backend that does not answer in time is hung (Hung),
and a conformance run stops its protocol checks there.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from ..protocol import (
    PROTOCOL_VERSION,
    SHM_DIR,
    SHM_PREFIX,
    SUPPORTED_VERSIONS,
    TIMEOUT,
    ErrorCode,
    LineReader,
)
from .report import CheckFailed, Hung

REPLY_TIMEOUT = 10.0
"""Seconds a backend has to answer one request of a check; one that does not is hung, and the
checks after it are not run."""


class Exchange:
    """A fresh backend process on pipes, recording every line both ways."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)
        assert self.process.stdout is not None
        self.lines = LineReader(self.process.stdout.fileno())
        self.exchange: list[str] = []
        self.ids = 0
        self.version = PROTOCOL_VERSION
        """The protocol version the handshake agreed on."""

    def send(self, message: dict[str, Any] | bytes) -> None:
        line = message if isinstance(message, bytes) else json.dumps(message).encode()
        self.exchange.append(f"> {line.decode(errors='replace')[:300]}")
        assert self.process.stdin is not None
        self.process.stdin.write(line + b"\n")
        self.process.stdin.flush()

    def receive(self) -> dict[str, Any]:
        line = self.lines.read_line(REPLY_TIMEOUT)
        if line is TIMEOUT:
            raise Hung(f"no reply within {REPLY_TIMEOUT} s")
        if not isinstance(line, bytes):
            raise CheckFailed("the backend closed its stdout")
        self.exchange.append(f"< {line.decode(errors='replace')[:300]}")
        try:
            message = json.loads(line)
        except ValueError:
            raise CheckFailed("stdout carried a line that is not JSON") from None
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            raise CheckFailed("stdout carried a line that is not a JSON-RPC message")
        return message

    def call(self, method: str, params: Any = None) -> dict[str, Any]:
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

    def error(self, method: str, params: Any, code: int) -> None:
        _expect_error(self.call(method, params), code)

    def close(self, wait: float = REPLY_TIMEOUT) -> int | None:
        """End of input, then the exit code; None if it had to be killed after `wait` s."""
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.close()
        except OSError:
            pass  # it is gone already
        try:
            return self.process.wait(wait)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
        finally:
            self.process.stdout.close()


def _expect_error(reply: dict[str, Any], code: int) -> None:
    error = reply.get("error")
    if not isinstance(error, dict) or error.get("code") != code:
        raise CheckFailed(f"expected error {code} ({ErrorCode(code).name}), got {reply}")
    if not isinstance(error.get("message"), str) or not error["message"]:
        raise CheckFailed("the error has no message")


BELL_GATES = [{"name": "H", "qubits": [0]}, {"name": "CNOT", "qubits": [0, 1]}]
BELL = {"nqubits": 2, "gates": BELL_GATES, "measurements": [{"qubits": [0, 1]}]}


def _initialize(s: Exchange, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The handshake in the newest version both speak (a backend of an older version refuses
    ours, listing its own, and stays uninitialized), with `options`; the capabilities,
    checked."""
    version = PROTOCOL_VERSION
    extra = {} if options is None else {"options": options}
    reply = s.call("initialize", {"protocolVersion": version, **extra})
    error = reply.get("error")
    if isinstance(error, dict) and error.get("code") == ErrorCode.UNSUPPORTED_PROTOCOL_VERSION:
        data = error.get("data")
        supported = data.get("supported") if isinstance(data, dict) else None
        common = set(supported or []) & set(SUPPORTED_VERSIONS)
        if not isinstance(supported, list) or not common:
            raise CheckFailed(f"initialize refused version {version}, and its data does not "
                              f"list one this kit speaks ({list(SUPPORTED_VERSIONS)}): {error}")
        version = max(common)
        reply = s.call("initialize", {"protocolVersion": version, **extra})
    if "result" not in reply or not isinstance(reply["result"], dict):
        raise CheckFailed(f"initialize answered {reply}")
    result = reply["result"]
    if result.get("protocolVersion") != version:
        raise CheckFailed(f"protocolVersion is {result.get('protocolVersion')!r}, not the "
                          f"{version} asked for")
    s.version = version
    capabilities = result.get("capabilities")
    if not isinstance(capabilities, dict):
        raise CheckFailed("capabilities is missing or not an object")
    for key, kind in (("gates", list), ("nativeGates", list), ("maxQubits", int),
                      ("precisions", list), ("stateEncodings", list), ("threads", int)):
        if not isinstance(capabilities.get(key), kind):
            raise CheckFailed(f"capabilities.{key} is missing or not a {kind.__name__}")
    if "base64" not in capabilities["stateEncodings"]:
        raise CheckFailed("stateEncodings lacks 'base64', which every backend must support")
    return capabilities


def _before_initialize(s: Exchange) -> None:
    s.error("execute", {"circuit": BELL}, ErrorCode.SERVER_NOT_INITIALIZED)
    s.error("initialize", {"protocolVersion": 999}, ErrorCode.UNSUPPORTED_PROTOCOL_VERSION)
    _initialize(s)


def _malformed(s: Exchange) -> None:
    _initialize(s)
    s.send(b"this is not json")
    _expect_error(s.receive(), ErrorCode.PARSE_ERROR)
    s.send(b"[1, 2]")
    _expect_error(s.receive(), ErrorCode.INVALID_REQUEST)
    s.error("no/such/method", None, ErrorCode.METHOD_NOT_FOUND)
    s.send({"jsonrpc": "2.0", "method": "no/such/notification"})  # no reply to this
    s.result("state/new", {"nqubits": 1})


def _bad_params(s: Exchange) -> None:
    _initialize(s)
    for params in ({"circuit": {"nqubits": 2, "gates": [{"name": "H", "qubits": [5]}]}},
                   {"circuit": {"nqubits": 1, "gates": [{"name": "Unitary", "qubits": [0],
                                                         "matrix": [[[1, 0], [1, 0]],
                                                                    [[0, 0], [1, 0]]]}]}},
                   {"circuit": {"nqubits": 1, "gates": [{"name": "RX", "qubits": [0]}]}},
                   {"circuit": {"nqubits": 0}},
                   {"circuit": BELL, "nshots": -1}):
        s.error("execute", params, ErrorCode.INVALID_PARAMS)
    s.error("state/new", {"nqubits": 10_000}, ErrorCode.STATE_TOO_LARGE)
    s.error("state/read", {"state": 987654}, ErrorCode.UNKNOWN_STATE)


def _execute_and_read(s: Exchange) -> None:
    _initialize(s)
    result = s.object("execute", {"circuit": BELL, "nshots": 1000, "seed": 3})
    counts = result.get("frequencies", {})
    if sum(counts.values()) != 1000 or not set(counts) <= {"00", "11"}:
        raise CheckFailed(f"a Bell pair gave frequencies {counts}")
    state = s.object("state/read", {"state": result["state"]})
    amplitudes = np.frombuffer(base64.b64decode(state["data"]), dtype="<c16")
    if state.get("shape") != [4] or not np.allclose(amplitudes, [2**-0.5, 0, 0, 2**-0.5]):
        raise CheckFailed(f"the Bell state read back as {amplitudes}")
    probabilities = s.object("state/probabilities", {"state": result["state"], "qubits": [1]})
    p = np.frombuffer(base64.b64decode(probabilities["data"]), dtype="<f8")
    if not np.allclose(p, [0.5, 0.5]):
        raise CheckFailed(f"P(q1) of a Bell pair is {p}")
    s.result("state/free", {"state": result["state"]})
    s.error("state/read", {"state": result["state"]}, ErrorCode.UNKNOWN_STATE)


def _streaming(s: Exchange) -> None:
    _initialize(s)
    state = s.object("state/new", {"nqubits": 2})["state"]
    for gate in ({"name": "H", "qubits": [0]}, {"name": "X", "qubits": [9]}):
        s.send({"jsonrpc": "2.0", "method": "state/apply",
                "params": {"state": state, "gates": [gate]}})
    s.error("state/read", {"state": state}, ErrorCode.GATE_FAILED)
    s.result("state/read", {"state": state})
    s.send({"jsonrpc": "2.0", "method": "state/apply",  # a batch that cannot be decoded
            "params": {"state": state, "gates": [{"name": "H", "qubits": ["zero"]}]}})
    s.error("state/read", {"state": state}, ErrorCode.GATE_FAILED)
    s.result("state/read", {"state": state})


def _initial_states(s: Exchange) -> None:
    """Version 2, feature "initialState": a circuit starts from the amplitudes given, which are
    checked."""
    features = _initialize(s).get("features", [])
    if s.version < 2 or "initialState" not in features:
        return
    one = base64.b64encode(np.array([0, 1], dtype="<c16").tobytes()).decode()
    start = {"dtype": "complex128", "shape": [2], "data": one}
    circuit = {"nqubits": 1, "gates": [{"name": "H", "qubits": [0]}]}
    result = s.object("execute", {"circuit": circuit, "initialState": start})
    state = s.object("state/read", {"state": result["state"]})
    amplitudes = np.frombuffer(base64.b64decode(state["data"]), dtype="<c16")
    if not np.allclose(amplitudes, [2**-0.5, -(2**-0.5)]):
        raise CheckFailed(f"H on the initial state |1> gave {amplitudes}")
    twice = base64.b64encode(np.array([0, 2], dtype="<c16").tobytes()).decode()
    for bad in ({**start, "data": twice}, {**start, "shape": [4]}):
        s.error("execute", {"circuit": circuit, "initialState": bad}, ErrorCode.INVALID_PARAMS)
    new = s.object("state/new", {"nqubits": 1, "initial": start})
    read = s.object("state/read", {"state": new["state"]})
    if read.get("data") != one:
        raise CheckFailed(f"state/new with an initial state read back as {read}")


def _samples(s: Exchange) -> None:
    """Version 2, feature "samples": every shot, uint8 bits in measurement order, counting to
    exactly the frequencies; inline, and into a segment when the backend offers "shm"."""
    capabilities = _initialize(s)
    if s.version < 2 or "samples" not in capabilities.get("features", []):
        return
    circuit = {**BELL, "gates": [*BELL_GATES, {"name": "X", "qubits": [1]}]}
    result = s.object("execute", {"circuit": circuit, "nshots": 50, "seed": 2, "samples": True})
    data = result.get("samples")
    if not isinstance(data, dict) or data.get("dtype") != "uint8" or data.get("shape") != [50, 2]:
        raise CheckFailed(f"samples of 50 shots of 2 qubits came as {data}")
    _check_bits(base64.b64decode(data["data"]), result)
    if "shm" not in capabilities["stateEncodings"]:
        return
    small, large = _segment_file(8), _segment_file(100)
    fd = os.open(large, os.O_RDONLY)
    try:
        small_ref = s.object("shm/attach", {"path": small, "size": 8})
        large_ref = s.object("shm/attach", {"path": large, "size": 100})
        os.unlink(small)
        os.unlink(large)
        asked = {"circuit": circuit, "nshots": 50, "seed": 2, "samples": True}
        s.error("execute", {**asked, "samplesSegment": small_ref["segment"]},
                ErrorCode.INVALID_PARAMS)
        result = s.object("execute", {**asked, "samplesSegment": large_ref["segment"]})
        data = result.get("samples")
        if not isinstance(data, dict) or data.get("segment") != large_ref["segment"] \
                or data.get("data") is not None or data.get("shape") != [50, 2]:
            raise CheckFailed(f"samples into segment {large_ref['segment']} came as {data}")
        _check_bits(os.pread(fd, 100, 0), result)
    finally:
        os.close(fd)
        for path in (small, large):
            if os.path.exists(path):
                os.unlink(path)


def _check_bits(raw: bytes, result: dict[str, Any]) -> None:
    bits = np.frombuffer(raw, dtype=np.uint8).reshape(50, 2)
    rows = ["".join(map(str, row)) for row in bits]
    counted = {k: rows.count(k) for k in set(rows)}
    if counted != result.get("frequencies") or not set(counted) <= {"01", "10"}:
        raise CheckFailed(f"samples {counted} do not match the frequencies "
                          f"{result.get('frequencies')} of X(1) after a Bell pair")


def _shared_memory(s: Exchange) -> None:
    """A segment of the client's is attached and written, and refused once truncated; any other
    path is refused untouched."""
    if "shm" not in _initialize(s)["stateEncodings"]:
        return  # base64 only: nothing to check
    with tempfile.TemporaryDirectory() as folder:
        stranger = os.path.join(folder, "not-a-segment")
        content = b"a file that is not a segment\n" * 8
        with open(stranger, "wb") as f:
            f.write(content)
        segment = _segment_file(64)
        link, small, unprefixed = _segment_file(0), _segment_file(8), _segment_file(64, prefix="x-")
        os.unlink(link)
        os.symlink(stranger, link)
        try:
            for path, size in ((stranger, 64), (link, 64), (small, 64), (unprefixed, 64),
                               (segment, 0)):
                s.error("shm/attach", {"path": path, "size": size}, ErrorCode.INVALID_PARAMS)
            with open(stranger, "rb") as f:
                if f.read() != content:
                    raise CheckFailed("a refused path was written to")
            ref = s.object("shm/attach", {"path": segment, "size": 64})
            shrink = os.open(segment, os.O_RDWR)
        finally:
            for path in (segment, link, small, unprefixed):
                os.unlink(path)
        state = s.object("state/new", {"nqubits": 2})["state"]
        read = s.object("state/read", {"state": state, "segment": ref["segment"]})
        if read.get("segment") != ref["segment"] or read.get("data") is not None:
            raise CheckFailed(f"state/read into a segment answered {read}")
        os.ftruncate(shrink, 8)  # a client that truncates: refused, not a SIGBUS
        os.close(shrink)
        s.error("state/read", {"state": state, "segment": ref["segment"]},
                ErrorCode.INVALID_PARAMS)
        s.object("state/new", {"nqubits": 1})
        s.result("shm/detach", {"segment": ref["segment"]})
        s.error("state/read", {"state": state, "segment": ref["segment"]},
                ErrorCode.INVALID_PARAMS)


def _segment_file(size: int, prefix: str = SHM_PREFIX) -> str:
    """A new file of `size` zero bytes in the shared-memory folder."""
    path = os.path.join(SHM_DIR, f"{prefix}{os.getpid()}-{uuid.uuid4().hex}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.ftruncate(fd, size)
    os.close(fd)
    return path


def _expectation(s: Exchange) -> None:
    """Version 3, feature "expectation": a prepared circuit's expectation values, one per set,
    equal the reference's; the observable applies to a held state too; bad slots, shapes and
    observables are refused; the backend serves on, and frees the circuit once."""
    capabilities = _initialize(s)
    if s.version < 3 or "expectation" not in capabilities.get("features", []):
        return
    gates = [{"name": "RY", "qubits": [0], "params": {"theta": 0.0}},
             {"name": "CNOT", "qubits": [0, 1]},
             {"name": "RX", "qubits": [1], "params": {"theta": 0.0}}]
    slots = [{"gate": 0, "param": "theta", "parameter": 0},
             {"gate": 2, "param": "theta", "parameter": 1}]
    circuit = {"nqubits": 2, "gates": gates}
    for bad in ({**slots[0], "gate": 7}, {**slots[0], "param": "phi"},
                {**slots[0], "parameter": 2}):
        s.error("circuit/prepare", {"circuit": circuit, "slots": [bad], "parameters": 2},
                ErrorCode.INVALID_PARAMS)
    prepared = s.object("circuit/prepare", {"circuit": circuit, "slots": slots,
                                            "parameters": 2})["circuit"]
    sets = np.array([[0.3, 0.5], [1.1, -0.4], [-2.0, 2.5]])
    terms = [{"coefficient": 1.0, "pauli": "Z0 Z1"}, {"coefficient": 0.5, "pauli": "X1"},
             {"coefficient": -0.3, "pauli": "Y0 Y1"}, {"coefficient": -0.2, "pauli": ""}]
    answer = s.result("circuit/expectation", {"circuit": prepared, "parameters": _array(sets),
                                              "observable": terms})
    values = _float64(answer, [len(sets)], "circuit/expectation")
    expected = [_reference_expectation(row, terms) for row in sets]
    if not np.allclose(values, expected, atol=1e-8):
        raise CheckFailed(f"expectation values {values.tolist()}, expected {expected}")
    for bad_params in ({"parameters": _array(sets[:, :1])},
                       {"observable": [{"coefficient": 1.0, "pauli": "Z5"}]},
                       {"observable": [{"coefficient": 1.0, "pauli": "Q0"}]},
                       {"circuit": prepared + 1000}):
        s.error("circuit/expectation", {"circuit": prepared, "parameters": _array(sets),
                                        "observable": terms, **bad_params},
                ErrorCode.INVALID_PARAMS)
    state = s.object("state/new", {"nqubits": 2})["state"]
    value = s.result("state/expectation", {"state": state, "observable": terms})
    if not isinstance(value, (int, float)) or abs(value - 0.8) > 1e-8:
        raise CheckFailed(f"state/expectation on |00> answered {value!r}, not 0.8")
    s.result("circuit/free", {"circuit": prepared})
    s.error("circuit/free", {"circuit": prepared}, ErrorCode.INVALID_PARAMS)


def _array(values: np.ndarray) -> dict[str, Any]:
    data = np.ascontiguousarray(values, dtype="<f8")
    return {"dtype": "float64", "shape": list(data.shape),
            "data": base64.b64encode(data.tobytes()).decode()}


def _float64(answer: Any, shape: list[int], method: str) -> np.ndarray:
    if not isinstance(answer, dict) or answer.get("dtype") != "float64" \
            or answer.get("shape") != shape or not isinstance(answer.get("data"), str):
        raise CheckFailed(f"{method} answered {answer!r}, not float64 of shape {shape}")
    return np.frombuffer(base64.b64decode(answer["data"]), dtype="<f8")


def _reference_expectation(angles: np.ndarray, terms: list[dict[str, Any]]) -> float:
    """RY(a) on qubit 0, CNOT, RX(b) on qubit 1 from |00>, by dense matrices."""
    a, b = angles
    ry = np.array([[np.cos(a / 2), -np.sin(a / 2)], [np.sin(a / 2), np.cos(a / 2)]])
    rx = np.array([[np.cos(b / 2), -1j * np.sin(b / 2)], [-1j * np.sin(b / 2), np.cos(b / 2)]])
    cnot = np.eye(4)[[0, 1, 3, 2]]
    psi = np.kron(np.eye(2), rx) @ cnot @ np.kron(ry, np.eye(2)) @ np.array([1, 0, 0, 0])
    pauli = {"X": np.array([[0, 1], [1, 0]]), "Y": np.array([[0, -1j], [1j, 0]]),
             "Z": np.diag([1, -1]), "I": np.eye(2)}
    total = 0.0
    for term in terms:
        letters = {int(f[1:]): f[0] for f in term["pauli"].split()}
        matrix = np.kron(pauli[letters.get(0, "I")], pauli[letters.get(1, "I")])
        total += term["coefficient"] * float(np.vdot(psi, matrix @ psi).real)
    return total


def _shutdown(s: Exchange) -> None:
    _initialize(s)
    if s.result("shutdown") is not None:
        raise CheckFailed("shutdown must answer null")
    s.send({"jsonrpc": "2.0", "method": "exit"})
    code = s.close()
    if code != 0:
        raise CheckFailed(f"after shutdown and exit the backend ended with {code}, not 0")


def _end_of_input(s: Exchange) -> None:
    _initialize(s)
    if s.close() is None:
        raise CheckFailed("the backend did not exit within 10 s of end of input")


PROTOCOL_CHECKS: list[tuple[str, Callable[[Exchange], object]]] = [
    ("initialize answers version, server info and capabilities", _initialize),
    ("requests before initialize, and a wrong version, are refused", _before_initialize),
    ("malformed lines get parse / invalid request / method errors", _malformed),
    ("invalid params are refused with InvalidParams, StateTooLarge, UnknownState", _bad_params),
    ("execute, state/read, state/probabilities, state/free", _execute_and_read),
    ("a failed streamed gate, or undecodable batch, surfaces at the next request", _streaming),
    ("shm/attach takes a segment of the client's and refuses any other path", _shared_memory),
    ("version 2: a circuit starts from an initial state, which is checked", _initial_states),
    ("version 2: samples are every shot, count to the frequencies, cross by segment",
     _samples),
    ("version 3: prepared circuits' expectation values, per set and on a held state",
     _expectation),
    ("shutdown then exit ends the process with code 0", _shutdown),
    ("end of input ends the process", _end_of_input),
]
