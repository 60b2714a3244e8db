"""Contract checks: the MUSTs of docs/protocol.md beyond the happy path (ids, lifecycle and exit
codes, cancellation, progress, precision, sampling qubits, a failed gate's data, orphans), each
on a fresh backend process. The rules version 3 tightened are checks of their own (`since=3`),
so that a backend of an older version is held to the rules of the versions it speaks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import numpy as np

from ..protocol import DEVICES_SINCE, ErrorCode
from .base_checks import BELL
from .checks import kit_check
from .exchange import Exchange, decoded, expect_error
from .report import CheckFailed, Skipped


@kit_check("1.3", "ids: strings echoed, pipelined requests each answered once")
def _ids(s: Exchange) -> None:
    s.initialize()
    s.send({"jsonrpc": "2.0", "id": "run-a", "method": "state/new", "params": {"nqubits": 1}})
    reply = s.receive()
    if reply.get("id") != "run-a" or "result" not in reply:
        raise CheckFailed(f"§1.3: a request with the string id 'run-a' was answered {reply}")
    ids: list[Any] = ["p-1", 70, "p-3"]
    for request_id in ids:
        s.send({"jsonrpc": "2.0", "id": request_id, "method": "state/new",
                "params": {"nqubits": 1}})
    answered = [s.receive().get("id") for _ in ids]
    if sorted(map(str, answered)) != sorted(map(str, ids)):
        raise CheckFailed(f"§1.3: pipelined requests {ids} were answered with ids {answered}")


@kit_check("1.3", "a request with id null is InvalidRequest, answered with id null", since=3)
def _null_id(s: Exchange) -> None:
    s.initialize()
    s.send({"jsonrpc": "2.0", "id": None, "method": "state/new", "params": {"nqubits": 1}})
    reply = s.receive()
    expect_error(reply, ErrorCode.INVALID_REQUEST, "§1.3 \"id\": null is not a request id")
    if reply.get("id", "absent") is not None:
        raise CheckFailed(f"§1.3: the reply to a request with id null has id "
                          f"{reply.get('id')!r}")


@kit_check("3.1", "a second initialize is InvalidRequest")
def _second_initialize(s: Exchange) -> None:
    s.initialize()
    s.error("initialize", {"protocolVersion": s.version}, ErrorCode.INVALID_REQUEST,
            "§3.1 a second initialize")
    s.object("state/new", {"nqubits": 1})


@kit_check("3.1", "a device not offered is refused at initialize", since=DEVICES_SINCE)
def _devices(s: Exchange) -> None:
    version = s.profile.newest or DEVICES_SINCE
    s.error("initialize", {"protocolVersion": version,
                           "options": {"device": "quantum-toaster"}}, ErrorCode.INVALID_PARAMS,
            "§3.1 a device not in capabilities.devices")
    capabilities = s.initialize()
    devices = capabilities.get("devices", ["CPU"])
    if not isinstance(devices, list) or not devices or \
            not all(isinstance(d, str) for d in devices):
        raise CheckFailed(f"§3.1: capabilities.devices is {devices!r}, not a list of names")


@kit_check("1.3", "unknown gate fields are ignored; a register may be named $/cancelRequest")
def _unknown_fields(s: Exchange) -> None:
    s.initialize()
    labelled = {"nqubits": 1, "gates": [{"name": "X", "qubits": [0], "label": "mine"}],
                "measurements": [{"qubits": [0], "register": "$/cancelRequest"}]}
    result = s.object("execute", {"circuit": labelled, "nshots": 5})
    if result.get("frequencies") != {"1": 5}:
        raise CheckFailed(f"§1.3: X with an unknown field, measured 5 times, gave {result}")


@kit_check("1.3", "a parameter a gate does not take, or a stray matrix, is InvalidParams",
           since=3)
def _gate_params(s: Exchange) -> None:
    s.initialize()
    for gate in ({"name": "H", "qubits": [0], "params": {"theta": 0.5}},
                 {"name": "H", "qubits": [0], "matrix": [[[1, 0], [0, 0]], [[0, 0], [1, 0]]]}):
        s.error("execute", {"circuit": {"nqubits": 1, "gates": [gate]}},
                ErrorCode.INVALID_PARAMS, f"§1.3 the gate {gate}")


@kit_check("2.1", "no 1.0 or true for integers, no huge qubit indices, seeds read exactly",
           since=3)
def _numbers(s: Exchange) -> None:
    s.initialize()
    for nshots in (1.0, True):
        s.error("execute", {"circuit": BELL, "nshots": nshots}, ErrorCode.INVALID_PARAMS,
                f"§2.1 nshots {nshots!r} is not an integer")
    for qubit in (2**31, 2**63, 10**30):
        s.error("execute", {"circuit": {"nqubits": 2, "gates": [{"name": "X", "qubits": [qubit]}]}},
                ErrorCode.INVALID_PARAMS, f"§2.2 qubit {qubit}")
    spread = {"nqubits": 3, "gates": [{"name": "H", "qubits": [q]} for q in range(3)],
              "measurements": [{"qubits": [0, 1, 2]}]}
    seed = 2**60 + 1  # 2**60 + 1 and + 2 are one double: a rounding backend repeats itself
    first, second = (s.object("execute", {"circuit": spread, "nshots": 2000, "seed": k})
                     for k in (seed, seed + 1))
    if first.get("frequencies") == second.get("frequencies"):
        raise CheckFailed(f"§2.1: seeds {seed} and {seed + 1} gave the same 2000 shots: are "
                          "seeds rounded to doubles?")


@kit_check("4.6", "state/sample counts the qubits asked for, in their order")
def _sample_qubits(s: Exchange) -> None:
    s.initialize()
    state = s.object("state/new", {"nqubits": 3})["state"]
    s.result("state/apply", {"state": state, "gates": [{"name": "X", "qubits": [0]}]})
    for qubits, expected in ((None, {"100": 20}), ([2, 0], {"01": 20}), ([1], {"0": 20}),
                             ([0, 2, 1], {"100": 20})):
        params: dict[str, Any] = {"state": state, "nshots": 20, "seed": 1}
        if qubits is not None:
            params["qubits"] = qubits
        answer = s.object("state/sample", params)
        if answer.get("frequencies") != expected:
            raise CheckFailed(f"§4.6: state/sample of X(0)|000> with qubits {qubits} answered "
                              f"{answer}, not {{'frequencies': {expected}}}")
    for qubits in ([3], [0, 0]):
        s.error("state/sample", {"state": state, "nshots": 5, "qubits": qubits},
                ErrorCode.INVALID_PARAMS, f"§4.6 qubits {qubits}")


@kit_check("2.2", "an empty list of qubits is InvalidParams", since=3)
def _empty_qubits(s: Exchange) -> None:
    s.initialize()
    state = s.object("state/new", {"nqubits": 2})["state"]
    s.error("state/sample", {"state": state, "nshots": 5, "qubits": []},
            ErrorCode.INVALID_PARAMS, "§2.2 state/sample with qubits []")
    s.error("state/probabilities", {"state": state, "qubits": []},
            ErrorCode.INVALID_PARAMS, "§2.2 state/probabilities with qubits []")
    s.error("execute", {"circuit": {"nqubits": 2, "measurements": [{"qubits": []}]}},
            ErrorCode.INVALID_PARAMS, "§2.2 a measurement of no qubit")


@kit_check("4.3", "GateFailed's data: the state, the index among streamed gates, the gate",
           since=3)
def _gate_failed_data(s: Exchange) -> None:
    s.initialize()
    state = s.object("execute", {"circuit": {"nqubits": 2, "gates": [
        {"name": "H", "qubits": [0]}, {"name": "H", "qubits": [1]}]}})["state"]
    bad = {"name": "X", "qubits": [9]}
    for gates in ([{"name": "X", "qubits": [0]}, {"name": "Z", "qubits": [1]}],
                  [{"name": "Y", "qubits": [0]}, bad, {"name": "X", "qubits": [1]}]):
        s.notify("state/apply", {"state": state, "gates": gates})
    reply = s.call("state/read", {"state": state})
    expect_error(reply, ErrorCode.GATE_FAILED, "§4.3 a streamed gate on qubit 9 of 2")
    data = reply["error"].get("data")
    if not isinstance(data, dict) or data.get("state") != state or data.get("index") != 3 \
            or not isinstance(data.get("gate"), dict) or data["gate"].get("qubits") != [9]:
        raise CheckFailed(f"§4.3: GateFailed data is {data!r}, not {{'state': {state}, "
                          f"'index': 3, 'gate': {bad}}} (3 gates streamed before it)")
    s.result("state/read", {"state": state})


@kit_check("4.9", "cancelled requests, running and queued, answer RequestCancelled")
def _cancellation(s: Exchange) -> None:
    capabilities = s.initialize()
    n = min(20, capabilities["maxQubits"])
    long = {"nqubits": n, "gates": [{"name": "H", "qubits": [k % n]} for k in range(20000)]}
    first, second = s.ids + 1, s.ids + 2
    s.ids += 2
    for request_id in (first, second):
        s.send({"jsonrpc": "2.0", "id": request_id, "method": "execute",
                "params": {"circuit": long}})
    s.notify("$/cancelRequest", {"id": second})
    time.sleep(0.3)
    s.notify("$/cancelRequest", {"id": first})
    replies = {reply.get("id"): reply for reply in (s.receive(), s.receive())}
    if set(replies) != {first, second}:
        raise CheckFailed(f"§4.9: two cancelled requests were answered with ids "
                          f"{list(replies)}")
    expect_error(replies[second], ErrorCode.REQUEST_CANCELLED, "§4.9 a queued request")
    if "result" not in replies[first]:
        expect_error(replies[first], ErrorCode.REQUEST_CANCELLED, "§4.9 a running request")
    s.object("state/new", {"nqubits": 1})


@kit_check("4.10", "$/progress carries the token and never follows the response")
def _progress(s: Exchange) -> None:
    capabilities = s.initialize()
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
            raise CheckFailed(f"§4.10: a $/progress notification carried {params}")
    if message.get("id") != s.ids or "result" not in message:
        raise CheckFailed(f"§4.10: the execute was answered {message}")
    s.object("state/new", {"nqubits": 1})  # the next line must be this reply, not progress


@kit_check("3.1", "a complex64 session answers complex64 states")
def _complex64(s: Exchange) -> None:
    if "complex64" not in s.initialize()["precisions"]:
        raise Skipped("the backend does not offer complex64")
    with s.another() as other:
        other.initialize(options={"precision": "complex64"})
        gates = [{"name": "RY", "qubits": [0], "params": {"theta": 0.3}},
                 {"name": "RZ", "qubits": [1], "params": {"theta": 1.1}}]
        state = other.object("execute", {"circuit": {"nqubits": 2, "gates": gates}})["state"]
        amplitudes = decoded(other.result("state/read", {"state": state}), "complex64", [4],
                             "§3.1 state/read in a complex64 session")
        z = np.exp(-0.55j)  # RY(0.3) on qubit 0, RZ(1.1) on qubit 1 (still |0>)
        expected = np.array([np.cos(0.15) * z, 0, np.sin(0.15) * z, 0])
        if not np.allclose(amplitudes, expected, atol=1e-6):
            raise CheckFailed(f"§3.1: complex64 amplitudes {amplitudes} differ from {expected}")


@kit_check("3.2", "exit without shutdown ends the process with code 1")
def _exit_alone(s: Exchange) -> None:
    s.initialize()
    s.notify("exit", None)
    code = s.close()
    if code != 1:
        raise CheckFailed(f"§3.2: after exit without shutdown the backend ended with {code}, "
                          "not 1")


@kit_check("3.2", "after shutdown every request is InvalidRequest", since=3)
def _after_shutdown(s: Exchange) -> None:
    s.initialize()
    s.result("shutdown")
    s.error("state/new", {"nqubits": 1}, ErrorCode.INVALID_REQUEST,
            "§3.2 a request between shutdown and exit")


_SPAWN_AND_LEAVE = """
import subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdin=0, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
child.stdout.readline()  # its reply to the kit's initialize: it is up and serving
print(child.pid, flush=True)
"""


@kit_check("3.2", "a backend whose parent dies exits")
def _orphan(s: Exchange) -> None:
    """A backend whose parent dies once it serves exits, though its input stays open."""
    s.close()
    read_end, write_end = os.pipe()
    os.write(write_end, b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", '
                        b'"params": {"protocolVersion": 1}}\n')
    try:
        parent = subprocess.run([sys.executable, "-c", _SPAWN_AND_LEAVE, *s.argv],
                                stdin=read_end, capture_output=True, text=True,
                                timeout=2 * s.limits.reply)
        pid = int(parent.stdout.split()[0])
        deadline = time.monotonic() + s.limits.reply
        while _running(pid):
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                raise CheckFailed(f"§3.2: the backend (pid {pid}) was still running "
                                  f"{s.limits.reply:.0f} s after its parent died, its input "
                                  "still open")
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
