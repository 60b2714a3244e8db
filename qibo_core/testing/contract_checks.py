"""Contract checks: the MUSTs of docs/protocol.md beyond the happy path (ids, lifecycle and exit
codes, cancellation, progress, precision, sampling qubits, a failed gate's data, orphans), each
on a fresh backend process through the same Exchange as the protocol checks."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..protocol import ErrorCode
from .protocol_checks import BELL, Exchange, _expect_error, _initialize
from .report import CheckFailed

ORPHAN_SECONDS = 10.0
"""How long a backend whose parent died may take to exit."""


def _ids(s: Exchange) -> None:
    """String ids are echoed; `"id": null` is InvalidRequest with id null; pipelined requests
    are each answered once, matched by id in whatever order."""
    _initialize(s)
    s.send({"jsonrpc": "2.0", "id": "run-a", "method": "state/new", "params": {"nqubits": 1}})
    reply = s.receive()
    if reply.get("id") != "run-a" or "result" not in reply:
        raise CheckFailed(f"a request with the string id 'run-a' was answered {reply}")
    s.send({"jsonrpc": "2.0", "id": None, "method": "state/new", "params": {"nqubits": 1}})
    reply = s.receive()
    _expect_error(reply, ErrorCode.INVALID_REQUEST)
    if reply.get("id", "absent") is not None:
        raise CheckFailed(f"the reply to a request with id null has id {reply.get('id')!r}")
    ids: list[Any] = ["p-1", 70, "p-3"]
    for request_id in ids:
        s.send({"jsonrpc": "2.0", "id": request_id, "method": "state/new",
                "params": {"nqubits": 1}})
    answered = [s.receive().get("id") for _ in ids]
    if sorted(map(str, answered)) != sorted(map(str, ids)):
        raise CheckFailed(f"pipelined requests {ids} were answered with ids {answered}")


def _second_initialize(s: Exchange) -> None:
    _initialize(s)
    s.error("initialize", {"protocolVersion": s.version}, ErrorCode.INVALID_REQUEST)
    s.object("state/new", {"nqubits": 1})


def _devices(s: Exchange) -> None:
    """Version 3: `options.device` names one of `capabilities.devices`; another is refused with
    InvalidParams, leaving the backend uninitialized."""
    s.ids += 1
    s.send({"jsonrpc": "2.0", "id": s.ids, "method": "initialize",
            "params": {"protocolVersion": 3, "options": {"device": "quantum-toaster"}}})
    reply = s.receive()
    error = reply.get("error") or {}
    if error.get("code") == ErrorCode.UNSUPPORTED_PROTOCOL_VERSION:
        return  # an older backend: no devices
    _expect_error(reply, ErrorCode.INVALID_PARAMS)
    capabilities = _initialize(s)
    devices = capabilities.get("devices", ["CPU"])
    if not isinstance(devices, list) or not devices or \
            not all(isinstance(d, str) for d in devices):
        raise CheckFailed(f"capabilities.devices is {devices!r}, not a list of names")


def _gate_fields(s: Exchange) -> None:
    """An unknown field of a gate is ignored; an unknown parameter name, or `matrix` on a gate
    other than Unitary, is InvalidParams; a text that merely contains `$/cancelRequest` (a
    register's name) is not a cancellation."""
    _initialize(s)
    labelled = {"nqubits": 1, "gates": [{"name": "X", "qubits": [0], "label": "mine"}],
                "measurements": [{"qubits": [0], "register": "$/cancelRequest"}]}
    result = s.object("execute", {"circuit": labelled, "nshots": 5})
    if result.get("frequencies") != {"1": 5}:
        raise CheckFailed(f"X with an unknown field, measured 5 times, gave {result}")
    for gate in ({"name": "H", "qubits": [0], "params": {"theta": 0.5}},
                 {"name": "H", "qubits": [0], "matrix": [[[1, 0], [0, 0]], [[0, 0], [1, 0]]]}):
        s.error("execute", {"circuit": {"nqubits": 1, "gates": [gate]}},
                ErrorCode.INVALID_PARAMS)


def _numbers(s: Exchange) -> None:
    """1.0 and true are not integers; a non-unitary Unitary and a channel that does not
    preserve the trace are refused; 64-bit seeds are read exactly, not rounded to a double."""
    capabilities = _initialize(s)
    for nshots in (1.0, True):
        s.error("execute", {"circuit": BELL, "nshots": nshots}, ErrorCode.INVALID_PARAMS)
    skewed = [[[1, 0], [1, 0]], [[0, 0], [1, 0]]]
    s.error("execute", {"circuit": {"nqubits": 1, "gates": [
        {"name": "Unitary", "qubits": [0], "matrix": skewed}]}}, ErrorCode.INVALID_PARAMS)
    if "channels" in capabilities.get("features", []) and \
            "densityMatrix" in capabilities.get("features", []):
        lossy = {"name": "KrausChannel", "qubits": [0],
                 "kraus": [[[[0.5, 0], [0, 0]], [[0, 0], [0.5, 0]]]]}
        s.error("execute", {"circuit": {"nqubits": 1, "densityMatrix": True,
                                        "gates": [lossy]}}, ErrorCode.INVALID_PARAMS)
    spread = {"nqubits": 3, "gates": [{"name": "H", "qubits": [q]} for q in range(3)],
              "measurements": [{"qubits": [0, 1, 2]}]}
    seed = 2**60 + 1  # 2**60 + 1 and + 2 are one double: a rounding backend repeats itself
    first, second = (s.object("execute", {"circuit": spread, "nshots": 2000, "seed": k})
                     for k in (seed, seed + 1))
    if first.get("frequencies") == second.get("frequencies"):
        raise CheckFailed(f"seeds {seed} and {seed + 1} gave the same 2000 shots: are seeds "
                          "rounded to doubles?")


def _sample_qubits(s: Exchange) -> None:
    """state/sample counts the qubits asked for, in their order; all without `qubits`."""
    _initialize(s)
    state = s.object("state/new", {"nqubits": 3})["state"]
    s.result("state/apply", {"state": state, "gates": [{"name": "X", "qubits": [0]}]})
    for qubits, expected in ((None, {"100": 20}), ([2, 0], {"01": 20}), ([1], {"0": 20}),
                             ([0, 2, 1], {"100": 20})):
        params: dict[str, Any] = {"state": state, "nshots": 20, "seed": 1}
        if qubits is not None:
            params["qubits"] = qubits
        answer = s.object("state/sample", params)
        if answer.get("frequencies") != expected:
            raise CheckFailed(f"state/sample of X(0)|000> with qubits {qubits} answered "
                              f"{answer}, not {{'frequencies': {expected}}}")
    for qubits in ([], [3], [0, 0]):
        s.error("state/sample", {"state": state, "nshots": 5, "qubits": qubits},
                ErrorCode.INVALID_PARAMS)


def _gate_failed_data(s: Exchange) -> None:
    """GateFailed's data names the state, the index among the gates state/apply applied to it
    (not those of the execute that made it), and the gate."""
    _initialize(s)
    state = s.object("execute", {"circuit": {"nqubits": 2, "gates": [
        {"name": "H", "qubits": [0]}, {"name": "H", "qubits": [1]}]}})["state"]
    bad = {"name": "X", "qubits": [9]}
    for gates in ([{"name": "X", "qubits": [0]}, {"name": "Z", "qubits": [1]}],
                  [{"name": "Y", "qubits": [0]}, bad, {"name": "X", "qubits": [1]}]):
        s.send({"jsonrpc": "2.0", "method": "state/apply",
                "params": {"state": state, "gates": gates}})
    reply = s.call("state/read", {"state": state})
    _expect_error(reply, ErrorCode.GATE_FAILED)
    data = reply["error"].get("data")
    if not isinstance(data, dict) or data.get("state") != state or data.get("index") != 3 \
            or not isinstance(data.get("gate"), dict) or data["gate"].get("qubits") != [9]:
        raise CheckFailed(f"GateFailed data is {data!r}, not {{'state': {state}, 'index': 3, "
                          f"'gate': {bad}}} (3 gates streamed before it)")
    s.result("state/read", {"state": state})


def _cancellation(s: Exchange) -> None:
    """A running request and a queued one, cancelled: each answered RequestCancelled (the
    running one may finish first), and the backend serves on."""
    capabilities = _initialize(s)
    n = min(20, capabilities["maxQubits"])
    long = {"nqubits": n, "gates": [{"name": "H", "qubits": [k % n]} for k in range(20000)]}
    first, second = s.ids + 1, s.ids + 2
    s.ids += 2
    for request_id in (first, second):
        s.send({"jsonrpc": "2.0", "id": request_id, "method": "execute",
                "params": {"circuit": long}})
    s.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": second}})
    time.sleep(0.3)
    s.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": first}})
    replies = {reply.get("id"): reply for reply in (s.receive(), s.receive())}
    if set(replies) != {first, second}:
        raise CheckFailed(f"two cancelled requests were answered with ids {list(replies)}")
    _expect_error(replies[second], ErrorCode.REQUEST_CANCELLED)
    if "result" not in replies[first]:
        _expect_error(replies[first], ErrorCode.REQUEST_CANCELLED)
    s.object("state/new", {"nqubits": 1})


def _progress(s: Exchange) -> None:
    """`$/progress` (which a backend may not send) carries the request's token and done <=
    total, and never follows the response."""
    capabilities = _initialize(s)
    n = min(18, capabilities["maxQubits"])
    circuit = {"nqubits": n, "gates": [{"name": "H", "qubits": [k % n]} for k in range(3000)]}
    s.ids += 1
    s.send({"jsonrpc": "2.0", "id": s.ids, "method": "execute",
            "params": {"circuit": circuit, "workDoneToken": "sweep-7"}})
    while True:
        message = s.receive()
        if message.get("method") != "$/progress":
            break
        params = message.get("params") or {}
        value = params.get("value") or {}
        if params.get("token") != "sweep-7" or not 0 <= value.get("done", -1) <= \
                value.get("total", -1):
            raise CheckFailed(f"a $/progress notification carried {params}")
    if message.get("id") != s.ids or "result" not in message:
        raise CheckFailed(f"the execute was answered {message}")
    s.object("state/new", {"nqubits": 1})  # the next line must be this reply, not progress


def _complex64(s: Exchange) -> None:
    """A backend that offers complex64 answers states in it: 8 bytes an amplitude, right to
    single precision."""
    s.ids += 1
    s.send({"jsonrpc": "2.0", "id": s.ids, "method": "initialize", "params": {
        "protocolVersion": 1}})
    offered = s.receive().get("result", {}).get("capabilities", {}).get("precisions", [])
    if "complex64" not in offered:
        return
    s.close()
    fresh = Exchange(s.argv)
    try:
        _initialize(fresh, {"precision": "complex64"})
        gates = [{"name": "RY", "qubits": [0], "params": {"theta": 0.3}},
                 {"name": "RZ", "qubits": [1], "params": {"theta": 1.1}}]
        state = fresh.object("execute", {"circuit": {"nqubits": 2, "gates": gates}})["state"]
        read = fresh.object("state/read", {"state": state})
        if read.get("dtype") != "complex64" or read.get("shape") != [4]:
            raise CheckFailed(f"a complex64 session read a state as {read}")
        amplitudes = np.frombuffer(base64.b64decode(read["data"]), dtype="<c8")
        if amplitudes.size != 4:
            raise CheckFailed(f"4 complex64 amplitudes took {len(base64.b64decode(read['data']))}"
                              " bytes, not 32")
        z = np.exp(-0.55j)  # RY(0.3) on qubit 0, RZ(1.1) on qubit 1 (still |0>)
        expected = np.array([np.cos(0.15) * z, 0, np.sin(0.15) * z, 0])
        if not np.allclose(amplitudes, expected, atol=1e-6):
            raise CheckFailed(f"complex64 amplitudes {amplitudes} differ from {expected}")
    finally:
        s.exchange += fresh.exchange
        fresh.close()


def _lifecycle(s: Exchange) -> None:
    """After shutdown every request is InvalidRequest; exit without shutdown ends with code 1."""
    _initialize(s)
    s.result("shutdown")
    s.error("state/new", {"nqubits": 1}, ErrorCode.INVALID_REQUEST)
    s.close()
    alone = Exchange(s.argv)
    try:
        _initialize(alone)
        alone.send({"jsonrpc": "2.0", "method": "exit"})
        code = alone.close()
        if code != 1:
            raise CheckFailed(f"after exit without shutdown the backend ended with {code}, "
                              "not 1")
    finally:
        s.exchange += alone.exchange


_SPAWN_AND_LEAVE = """
import subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdin=0, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
child.stdout.readline()  # its reply to the kit's initialize: it is up and serving
print(child.pid, flush=True)
"""


def _orphan(s: Exchange) -> None:
    """A backend whose parent dies once it serves exits, though its input stays open."""
    s.close()
    read_end, write_end = os.pipe()
    os.write(write_end, b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", '
                        b'"params": {"protocolVersion": 1}}\n')
    try:
        parent = subprocess.run([sys.executable, "-c", _SPAWN_AND_LEAVE, *s.argv],
                                stdin=read_end, capture_output=True, text=True, timeout=30)
        pid = int(parent.stdout.split()[0])
        deadline = time.monotonic() + ORPHAN_SECONDS
        while _running(pid):
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                raise CheckFailed(f"the backend (pid {pid}) was still running {ORPHAN_SECONDS:g}"
                                  " s after its parent died, its input still open")
            time.sleep(0.1)
    finally:
        os.close(read_end)
        os.close(write_end)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


CONTRACT_CHECKS: list[tuple[str, Callable[[Exchange], object]]] = [
    ("ids: strings echoed, null refused, pipelined requests each answered once", _ids),
    ("a second initialize is InvalidRequest", _second_initialize),
    ("version 3: a device not offered is refused at initialize", _devices),
    ("unknown gate fields ignored, unknown parameters and stray matrices refused", _gate_fields),
    ("numbers: no 1.0 or true for integers, unitaries and channels checked, seeds exact",
     _numbers),
    ("state/sample counts the qubits asked for, in their order", _sample_qubits),
    ("GateFailed's data: the state, the index among streamed gates, the gate", _gate_failed_data),
    ("cancelled requests, running and queued, answer RequestCancelled", _cancellation),
    ("$/progress carries the token and never follows the response", _progress),
    ("a complex64 session answers complex64 states", _complex64),
    ("after shutdown requests are refused; exit alone ends with code 1", _lifecycle),
    ("a backend whose parent dies exits", _orphan),
]
