"""The real backend executables, driven through pipes: lifecycle and every bad input."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from rawpipe import Pipe

from qibo_core.client.discovery import find_backend
from qibo_core.protocol import (
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    ArrayData,
    ErrorCode,
    decode_array,
)

BELL = {"nqubits": 2, "gates": [{"name": "H", "qubits": [0]}, {"name": "CNOT", "qubits": [0, 1]}],
        "measurements": [{"qubits": [0, 1]}]}


@pytest.fixture(scope="module", params=["numpy", "qulacs"])
def executable(request: pytest.FixtureRequest) -> str:
    return find_backend(request.param)


@pytest.fixture(scope="module")
def server(executable: str) -> Iterator[Pipe]:
    """One initialized backend process that every bad input in this module is thrown at."""
    pipe = Pipe([executable])
    pipe.initialize()
    yield pipe
    assert pipe.close() == 0


@pytest.fixture
def fresh(executable: str) -> Iterator[Pipe]:
    pipe = Pipe([executable])
    yield pipe
    pipe.close()


def execute(gates: list[dict[str, Any]], nqubits: int = 2, **extra: Any) -> dict[str, Any]:
    return {"circuit": {"nqubits": nqubits, "gates": gates}, **extra}


def assert_still_serving(pipe: Pipe) -> None:
    reply = pipe.call("execute", {"circuit": BELL, "nshots": 10, "seed": 1}, request_id=99)
    assert reply["id"] == 99 and sum(reply["result"]["frequencies"].values()) == 10


def test_bell_session(server: Pipe) -> None:
    reply = server.call("execute", {"circuit": BELL, "nshots": 100, "seed": 5})
    assert reply["jsonrpc"] == "2.0" and reply["id"] == 1
    assert set(reply["result"]["frequencies"]) <= {"00", "11"}
    state = server.call("state/read", {"state": reply["result"]["state"]})["result"]
    assert state["dtype"] == "complex128" and state["shape"] == [4]
    assert server.call("state/free", {"state": reply["result"]["state"]})["result"] is None


BAD_LINES = [
    (b"this is not json", ErrorCode.PARSE_ERROR, "invalid JSON", None),
    (b'{"jsonrpc": "2.0", "id": 3, "method": "execute", "params": {"x": NaN}}',
     ErrorCode.PARSE_ERROR, "NaN and Infinity are not JSON", None),
    (b"[1, 2, 3]", ErrorCode.INVALID_REQUEST, "Expected `object`, got `array`", None),
    (b'{"id": 4, "method": "execute"}', ErrorCode.INVALID_REQUEST, "jsonrpc", 4),
    (b'{"jsonrpc": "1.0", "id": 5, "method": "execute"}', ErrorCode.INVALID_REQUEST,
     "must be \\\"2.0\\\"", 5),
    (b'{"jsonrpc": "2.0", "id": 1.5, "method": "execute"}', ErrorCode.INVALID_REQUEST,
     "$.id", None),
    (b'{"jsonrpc": "2.0", "id": 6, "method": 7}', ErrorCode.INVALID_REQUEST, "$.method", 6),
    (b'{"jsonrpc": "2.0", "id": 7, "method": "teleport"}', ErrorCode.METHOD_NOT_FOUND,
     "unknown method 'teleport'", 7),
    (b'{"jsonrpc": "2.0", "id": 8, "method": "execute", "params": {"circuit": {"nqubits": 1, '
     b'"gates": [{"name": "RX", "qubits": [0], "params": {"theta": 1e999}}]}}}',
     ErrorCode.INVALID_PARAMS, "Number out of range - at `$.circuit.gates[0].params", 8),
]


@pytest.mark.parametrize("line, code, message, request_id", BAD_LINES)
def test_malformed_messages(server: Pipe, line: bytes, code: int, message: str,
                            request_id: int | None) -> None:
    server.send(line)
    reply = server.receive()
    assert reply["error"]["code"] == code
    assert message.replace("\\", "") in reply["error"]["message"]
    assert reply["id"] == request_id
    assert_still_serving(server)


BAD_PARAMS = [
    ("execute", {}, ErrorCode.INVALID_PARAMS, "execute needs a 'circuit'"),
    ("execute", execute([{"name": "H", "qubits": [2]}]), ErrorCode.INVALID_PARAMS,
     "qubit 2, outside this 2-qubit circuit"),
    ("execute", execute([{"name": "CNOT", "qubits": [1, 1]}]), ErrorCode.INVALID_PARAMS,
     "repeated qubits"),
    ("execute", execute([{"name": "H", "qubits": [-1]}]), ErrorCode.INVALID_PARAMS, "negative"),
    ("execute", execute([{"name": "CNOT", "qubits": [0]}]), ErrorCode.INVALID_PARAMS,
     "CNOT(c, q): takes 2 qubits, got 1"),
    ("execute", execute([{"name": "RX", "qubits": [0]}]), ErrorCode.INVALID_PARAMS,
     "missing parameter 'theta'"),
    ("execute", execute([{"name": "RX", "qubits": [0], "params": {"theta": "pi"}}]),
     ErrorCode.INVALID_PARAMS, "Expected `float`, got `str` - at `$.circuit.gates[0].params"),
    ("execute", execute([{"name": "H", "qubits": ["zero"]}]), ErrorCode.INVALID_PARAMS,
     "Expected `int`, got `str` - at `$.circuit.gates[0].qubits[0]`"),
    ("execute", execute([{"name": "Unitary", "qubits": [0],
                          "matrix": [[[1, 0], [1, 0]], [[0, 0], [1, 0]]]}]),
     ErrorCode.INVALID_PARAMS, "not unitary"),
    ("execute", execute([{"name": "Unitary", "qubits": [0, 1],
                          "matrix": [[[1, 0], [0, 0]], [[0, 0], [1, 0]]]}]),
     ErrorCode.INVALID_PARAMS, "needs a 4x4 matrix, got shape (2, 2)"),
    ("execute", execute([{"name": "Warp", "qubits": [0]}]), ErrorCode.INVALID_PARAMS,
     "unknown gate 'Warp'"),
    ("execute", execute([], nqubits=0), ErrorCode.INVALID_PARAMS, "positive number of qubits"),
    ("execute", execute([], nqubits=-3), ErrorCode.INVALID_PARAMS, "positive number of qubits"),
    ("execute", {"circuit": BELL, "nshots": -1}, ErrorCode.INVALID_PARAMS,
     "nshots must be between 0"),
    ("execute", {"circuit": {"nqubits": 1}, "nshots": 5}, ErrorCode.INVALID_PARAMS,
     "measures no qubit"),
    ("execute", {"circuit": BELL, "nshots": 5, "seed": -2}, ErrorCode.INVALID_PARAMS, "seed"),
    ("state/new", {"nqubits": 0}, ErrorCode.INVALID_PARAMS, "nqubits must be positive"),
    ("state/new", {"nqubits": 60}, ErrorCode.STATE_TOO_LARGE, "exceed this backend's maximum"),
    ("state/new", {"nqubits": 34}, ErrorCode.STATE_TOO_LARGE, "34-qubit complex128 state needs"),
    ("state/new", {"nqubits": True}, ErrorCode.INVALID_PARAMS, "Expected `int`, got `bool`"),
    ("state/read", {"state": 12345}, ErrorCode.UNKNOWN_STATE, "no state 12345 is held"),
    ("state/probabilities", {"state": 12345}, ErrorCode.UNKNOWN_STATE, "no state 12345"),
    ("state/free", {"state": 12345}, ErrorCode.UNKNOWN_STATE, "no state 12345"),
    ("shutdown", {"now": True}, ErrorCode.INVALID_PARAMS, "takes no params"),
    ("initialize", {"protocolVersion": 1}, ErrorCode.INVALID_REQUEST, "already received"),
]


@pytest.mark.parametrize("method, params, code, message", BAD_PARAMS,
                         ids=[f"{m}-{msg[:30]}" for m, _, _, msg in BAD_PARAMS])
def test_bad_params(server: Pipe, method: str, params: Any, code: int, message: str) -> None:
    reply = server.call(method, params, request_id=42)
    assert reply["id"] == 42
    assert reply["error"]["code"] == code, reply
    assert message in reply["error"]["message"], reply["error"]["message"]
    assert_still_serving(server)


def test_state_too_large_says_how_much(server: Pipe) -> None:
    error = server.call("state/new", {"nqubits": 34})["error"]
    assert error["data"]["bytesNeeded"] >= 2**34 * 16  # NumPy also counts its scratch array
    assert error["data"]["bytesAvailable"] < error["data"]["bytesNeeded"]


def test_probabilities_of_bad_qubits(server: Pipe) -> None:
    state = server.call("state/new", {"nqubits": 2})["result"]["state"]
    for qubits, message in (([5], "out of range"), ([0, 0], "repeats")):
        reply = server.call("state/probabilities", {"state": state, "qubits": qubits})
        assert reply["error"]["code"] == ErrorCode.INVALID_PARAMS
        assert message in reply["error"]["message"]


def test_streamed_gate_error_names_the_gate(server: Pipe) -> None:
    state = server.call("state/new", {"nqubits": 2})["result"]["state"]
    for gates in ([{"name": "H", "qubits": [0]}], [{"name": "X", "qubits": [7]}],
                  [{"name": "Z", "qubits": [0]}]):
        server.send({"jsonrpc": "2.0", "method": "state/apply",
                     "params": {"state": state, "gates": gates}})
    error = server.call("state/read", {"state": state})["error"]
    assert error["code"] == ErrorCode.GATE_FAILED
    assert f"streamed gate 1 (X) of state {state} failed: qubit 7 is out" in error["message"]
    assert "the 1 gates streamed after it were skipped" in error["message"]
    assert error["data"]["index"] == 1
    read = server.call("state/read", {"state": state})
    assert read["result"]["shape"] == [4]  # reported once; the state holds the gates before it


def test_a_streamed_batch_that_cannot_be_decoded_is_reported(server: Pipe) -> None:
    state = server.call("state/new", {"nqubits": 1})["result"]["state"]
    for gates in ([{"name": "X", "qubits": [0]}], [{"name": "H", "qubits": ["zero"]}],
                  [{"name": "Z", "qubits": [0]}]):
        server.send({"jsonrpc": "2.0", "method": "state/apply",
                     "params": {"state": state, "gates": gates}})
    error = server.call("state/read", {"state": state})["error"]
    assert error["code"] == ErrorCode.GATE_FAILED
    assert f"streamed gates from gate 1 on of state {state} were lost" in error["message"]
    assert "Expected `int`, got `str` - at `$.gates[0].qubits[0]`" in error["message"]
    assert "the 1 gates streamed after it were skipped" in error["message"]
    assert error["data"] == {"state": state, "index": 1}
    read = server.call("state/read", {"state": state})["result"]
    assert decode_array(msgspec.convert(read, ArrayData)).tolist() == [0, 1]  # X; the rest skipped


def test_requests_before_initialize(fresh: Pipe) -> None:
    reply = fresh.call("execute", {"circuit": BELL})
    assert reply["error"]["code"] == ErrorCode.SERVER_NOT_INITIALIZED
    assert "send 'initialize' first" in reply["error"]["message"]
    assert fresh.initialize()["protocolVersion"] == 1


def test_unsupported_protocol_version(fresh: Pipe) -> None:
    error = fresh.call("initialize", {"protocolVersion": 99})["error"]
    assert error["code"] == ErrorCode.UNSUPPORTED_PROTOCOL_VERSION
    assert error["data"] == {"supported": list(SUPPORTED_VERSIONS), "requested": 99}
    assert fresh.initialize()["protocolVersion"] == 1


def test_unknown_precision(fresh: Pipe) -> None:
    error = fresh.call("initialize", {"protocolVersion": 1,
                                      "options": {"precision": "float16"}})["error"]
    assert error["code"] == ErrorCode.INVALID_PARAMS and "float16" in error["message"]


def test_oversized_message(executable: str) -> None:
    pipe = Pipe([executable, "--max-message-bytes", "1000"])
    pipe.send(b'{"jsonrpc": "2.0", "id": 1, "method": "x", "params": "' + b"a" * 5000 + b'"}')
    error = pipe.receive()["error"]
    assert error["code"] == ErrorCode.INVALID_REQUEST
    assert "exceeds the maximum of 1000" in error["message"]
    assert pipe.initialize()["protocolVersion"] == 1
    assert pipe.close() == 0


def test_blank_lines_and_notifications_get_no_reply(server: Pipe) -> None:
    server.send(b"")
    server.send(b"   ")
    server.send({"jsonrpc": "2.0", "method": "some/unknownNotification"})
    server.send({"jsonrpc": "2.0", "method": "state/free", "params": {"state": 99999}})
    assert_still_serving(server)  # the next line read is the reply to this request


def test_pipelined_requests_answer_in_order(server: Pipe) -> None:
    for i in range(50):
        server.send({"jsonrpc": "2.0", "id": f"req-{i}", "method": "state/new",
                     "params": {"nqubits": 1}})
    assert [server.receive()["id"] for _ in range(50)] == [f"req-{i}" for i in range(50)]


def test_exit_codes(executable: str) -> None:
    polite = Pipe([executable])
    polite.initialize()
    assert polite.call("shutdown")["result"] is None
    polite.send({"jsonrpc": "2.0", "method": "exit"})
    assert polite.close() == 0
    abrupt = Pipe([executable])
    abrupt.send({"jsonrpc": "2.0", "method": "exit"})
    assert abrupt.close() == 1  # exit without shutdown, as LSP prescribes
    eof = Pipe([executable])
    eof.initialize()
    assert eof.close() == 0


def test_piped_session_runs_to_the_end(executable: str) -> None:
    """Requests queued before end of input are all answered, then the backend exits."""
    lines = [
        '{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1}}',
        '{"jsonrpc": "2.0", "id": 2, "method": "execute", "params": {"circuit": {"nqubits": 20}}}',
        '{"jsonrpc": "2.0", "id": 3, "method": "state/probabilities", '
        '"params": {"state": 1, "qubits": [0]}}',
    ]
    out = subprocess.run([executable], input="\n".join(lines).encode(), capture_output=True,
                         timeout=60, check=True).stdout.decode().splitlines()
    assert [line.count('"id":') for line in out] == [1, 1, 1]
    assert '"id":3' in out[2] and '"error"' not in out[2]


def test_help_and_version(executable: str) -> None:
    name = Path(executable).name
    version = subprocess.run([executable, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith(f"{name} 0.1.0 (protocol {PROTOCOL_VERSION})")
    usage = subprocess.run([executable, "--help"], capture_output=True, text=True, check=True)
    assert "JSON-RPC 2.0 server on stdin/stdout" in usage.stdout and "initialize" in usage.stdout


def test_stdout_pollution_goes_to_stderr() -> None:
    pipe = Pipe([sys.executable, str(Path(__file__).parent / "backends" / "noisy.py")])
    try:
        pipe.initialize()
        reply = pipe.call("execute", {"circuit": BELL, "nshots": 10})
    finally:
        assert pipe.close() == 0
    assert sum(reply["result"]["frequencies"].values()) == 10
    stderr = pipe.stderr_text
    assert "print() from the simulator" in stderr and "os.write(1) from the simulator" in stderr


def test_a_request_is_not_taken_for_a_cancel_by_its_text(server: Pipe) -> None:
    """The method decides, never a substring: a register named like the cancel method, with a
    `params.id` of a later request, is an ordinary request that cancels nothing."""
    circuit = {**BELL, "measurements": [{"qubits": [0, 1], "register": "$/cancelRequest"}]}
    reply = server.call("execute", {"circuit": circuit, "nshots": 5, "id": 9}, request_id=8)
    assert reply["id"] == 8 and sum(reply["result"]["frequencies"].values()) == 5
    later = server.call("state/new", {"nqubits": 1}, request_id=9)
    assert later["id"] == 9 and "result" in later


def test_a_cancel_sent_as_a_request_is_answered(server: Pipe) -> None:
    assert server.call("$/cancelRequest", {"id": 12345}, request_id=7) == {
        "jsonrpc": "2.0", "id": 7, "result": None}
    error = server.call("$/cancelRequest", {"id": [1]}, request_id=8)["error"]
    assert error["code"] == ErrorCode.INVALID_PARAMS and "$/cancelRequest" in error["message"]
    assert_still_serving(server)
