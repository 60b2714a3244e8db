"""Checks of version 1's core: the lifecycle, malformed lines, errors, execute and the state
methods, streamed gates; each on a fresh process, raw JSON lines both ways."""

from __future__ import annotations

import numpy as np

from ..protocol import ErrorCode
from .checks import kit_check
from .exchange import Exchange, decoded, expect_error, frequencies
from .report import CheckFailed

BELL_GATES = [{"name": "H", "qubits": [0]}, {"name": "CNOT", "qubits": [0, 1]}]
BELL = {"nqubits": 2, "gates": BELL_GATES, "measurements": [{"qubits": [0, 1]}]}


@kit_check("3.1", "requests before initialize, and a version not spoken, are refused")
def _before_initialize(s: Exchange) -> None:
    s.error("execute", {"circuit": BELL}, ErrorCode.SERVER_NOT_INITIALIZED,
            "§3.1 before a successful initialize every request gets ServerNotInitialized")
    s.error("initialize", {"protocolVersion": 999}, ErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
            "§3.1 a version the backend does not speak")
    s.initialize()


@kit_check("1.4", "malformed lines get ParseError, InvalidRequest, MethodNotFound")
def _malformed(s: Exchange) -> None:
    s.initialize()
    s.send(b"this is not json")
    expect_error(s.receive(), ErrorCode.PARSE_ERROR, "§1.4 a line that is not JSON")
    s.send(b"[1, 2]")
    expect_error(s.receive(), ErrorCode.INVALID_REQUEST, "§1.3 a batch (an array)")
    s.error("no/such/method", None, ErrorCode.METHOD_NOT_FOUND, "§1.4 an unknown method")
    s.notify("no/such/notification", {})  # no reply to this
    s.result("state/new", {"nqubits": 1})


@kit_check("1.4", "invalid params get InvalidParams, StateTooLarge, UnknownState")
def _bad_params(s: Exchange) -> None:
    capabilities = s.initialize()
    skewed = [[[1, 0], [1, 0]], [[0, 0], [1, 0]]]
    for params, rule in (
            ({"circuit": {"nqubits": 2, "gates": [{"name": "H", "qubits": [5]}]}},
             "§1.4 a qubit outside the circuit"),
            ({"circuit": {"nqubits": 2, "gates": [{"name": "CNOT", "qubits": [1, 1]}]}},
             "§2.2 repeated qubits"),
            ({"circuit": {"nqubits": 1, "gates": [{"name": "Unitary", "qubits": [0],
                                                   "matrix": skewed}]}},
             "§1.4 a matrix that is not unitary"),
            ({"circuit": {"nqubits": 1, "gates": [{"name": "RX", "qubits": [0]}]}},
             "§2.2 a parameter missing"),
            ({"circuit": {"nqubits": 1, "gates": [{"name": "NOPE", "qubits": [0]}]}},
             "§2.2 an unknown gate"),
            ({"circuit": {"nqubits": 0}}, "§4.1 a circuit of no qubits"),
            ({"circuit": BELL, "nshots": -1}, "§4.1 negative shots"),
            ({"circuit": {"nqubits": 1}, "nshots": 5}, "§4.1 shots without a measurement")):
        s.error("execute", params, ErrorCode.INVALID_PARAMS, rule)
    too_many = capabilities["maxQubits"] + 1
    for nqubits in (too_many, 10_000):
        s.error("state/new", {"nqubits": nqubits}, ErrorCode.STATE_TOO_LARGE,
                f"§1.4 {nqubits} qubits, past maxQubits ({capabilities['maxQubits']})")
    s.error("state/read", {"state": 987654}, ErrorCode.UNKNOWN_STATE, "§1.4 no such state")


@kit_check("4.1", "execute, state/read, state/probabilities, state/sample, state/free")
def _execute_and_read(s: Exchange) -> None:
    s.initialize()
    result = s.object("execute", {"circuit": BELL, "nshots": 1000, "seed": 3})
    counts = frequencies(result, 1000, 2, "§4.1 a Bell pair, 1000 shots")
    if not set(counts) <= {"00", "11"}:
        raise CheckFailed(f"§4.1: a Bell pair gave frequencies {counts}")
    state = result["state"]
    amplitudes = s.read(state, [4])
    if not np.allclose(amplitudes, [2**-0.5, 0, 0, 2**-0.5], atol=1e-10):
        raise CheckFailed(f"§4.4: the Bell state read back as {amplitudes}")
    answer = s.result("state/probabilities", {"state": state, "qubits": [1]})
    p = decoded(answer, "float64", [2], "§4.5 state/probabilities")
    if not np.allclose(p, [0.5, 0.5], atol=1e-10):
        raise CheckFailed(f"§4.5: P(q1) of a Bell pair is {p}")
    sampled = s.object("state/sample", {"state": state, "nshots": 100, "seed": 1})
    if not set(frequencies(sampled, 100, 2, "§4.6 state/sample")) <= {"00", "11"}:
        raise CheckFailed(f"§4.6: sampling a Bell pair gave {sampled}")
    s.result("state/free", {"state": state})
    s.error("state/read", {"state": state}, ErrorCode.UNKNOWN_STATE, "§4.7 a freed state")


@kit_check("4.3", "a failed streamed gate, or undecodable batch, surfaces at the next request")
def _streaming(s: Exchange) -> None:
    s.initialize()
    state = s.object("state/new", {"nqubits": 2})["state"]
    for gate in ({"name": "H", "qubits": [0]}, {"name": "X", "qubits": [9]}):
        s.notify("state/apply", {"state": state, "gates": [gate]})
    s.error("state/read", {"state": state}, ErrorCode.GATE_FAILED,
            "§4.3 the next request naming the state reports the failed gate")
    amplitudes = s.read(state, [4])
    if not np.allclose(amplitudes, [2**-0.5, 0, 2**-0.5, 0], atol=1e-10):
        raise CheckFailed(f"§4.3: the state keeps the gates before the failed one: H(0) gives "
                          f"{amplitudes}")
    s.notify("state/apply", {"state": state, "gates": [{"name": "H", "qubits": ["zero"]}]})
    s.error("state/read", {"state": state}, ErrorCode.GATE_FAILED,
            "§4.3 a streamed batch that cannot be decoded")
    s.result("state/read", {"state": state})


@kit_check("3.2", "shutdown then exit ends the process with code 0")
def _shutdown(s: Exchange) -> None:
    s.initialize()
    if s.result("shutdown") is not None:
        raise CheckFailed("§3.2: shutdown must answer null")
    s.notify("exit", None)
    code = s.close()
    if code != 0:
        raise CheckFailed(f"§3.2: after shutdown and exit the backend ended with {code}, not 0")


@kit_check("3.2", "end of input ends the process")
def _end_of_input(s: Exchange) -> None:
    s.initialize()
    if s.close() is None:
        raise CheckFailed(f"§3.2: the backend did not exit within {s.limits.reply:.0f} s of "
                          "end of input")
