"""The C client (clients/c) runs circuits on our spawned backends: every function checked
against the reference simulator and the Python client, its refusals and failures in the
Python client's words, under AddressSanitizer and UndefinedBehaviorSanitizer (leaks
included), and its examples under valgrind's leak check. Everything is built into the
test's own temporary folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from helpers import bell

from qibo_core import Circuit, Handle, Observable, QiboCoreError, connect, gates
from qibo_core.client.spawned import ProcessTransport
from qibo_core.protocol.messages import CircuitData
from qibo_core.testing import ReferenceBackend

ROOT = Path(__file__).parent.parent
CLIENT = ROOT / "clients" / "c"
CC = shutil.which("cc") or shutil.which("gcc")
JANSSON = Path("/usr/include/jansson.h").exists()
VALGRIND = shutil.which("valgrind")

pytestmark = pytest.mark.skipif(
    CC is None or not JANSSON or shutil.which("make") is None,
    reason="a C compiler, make and libjansson-dev are needed; scripts/test.sh installs them "
           "(Debian)")


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The library, examples, tests and benchmark built plainly, and the tests again under
    the sanitizers: each into a folder of the test's own."""
    root = tmp_path_factory.mktemp("c-client")
    folders = {"plain": root / "plain", "sanitized": root / "sanitized"}
    makes = [subprocess.Popen(["make", "-C", str(CLIENT), f"BUILD={folders[kind]}",
                               "CFLAGS=-O1 -g -Werror", *targets], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
             for kind, targets in (("plain", ["lib", "examples"]),
                                   ("sanitized", ["SANITIZE=1", "tests"]))]
    for make in makes:  # the two in parallel: one core each
        output, _ = make.communicate(timeout=300)
        assert make.returncode == 0, output
    return folders


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Our venv's backends first on PATH, no configuration file of the user's, and the
    sanitizers stopping at the first error."""
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                QIBO_CORE_CONFIG=str(tmp_path_factory.mktemp("config") / "none.json"),
                ASAN_OPTIONS="detect_leaks=1:halt_on_error=1",
                UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")


def run_check(builds: dict[str, Path], env: dict[str, str], *args: str,
              timeout: float = 120) -> dict[str, Any]:
    """Run the sanitized test program; its lines by step (usage lines by case)."""
    run = subprocess.run([str(builds["sanitized"] / "qc_check"), *args], capture_output=True,
                         text=True, env=env, timeout=timeout)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert not [line for line in lines if "unexpected" in line], lines
    steps: dict[str, Any] = {}
    for line in lines:
        steps.setdefault(line["step"], []).append(line)
    assert steps.pop("leftovers") == [{"step": "leftovers", "fds": 0, "children": False,
                                       "segments": 0}]
    return {step: found[0] if len(found) == 1 else found for step, found in steps.items()}


def complex_list(values: list[float]) -> np.ndarray:
    return np.array(values[0::2]) + 1j * np.array(values[1::2])


def circuit_of(data: dict[str, Any]) -> Circuit:
    return Circuit.from_data(msgspec.json.decode(json.dumps(data), type=CircuitData))


@pytest.fixture(scope="module")
def reference() -> Iterator[Handle]:
    with connect(ReferenceBackend()) as h:
        yield h


@pytest.mark.parametrize("backend", ["numpy", "qulacs"])
def test_every_function_agrees_with_the_reference_and_the_python_client(
        backend: str, builds: dict[str, Path], env: dict[str, str], reference: Handle) -> None:
    steps = run_check(builds, env, "functions", backend)
    assert steps["connected"] == {"step": "connected", "name": backend, "protocol": 3,
                                  "has pid": True, "expectation": True}
    with connect(backend) as python:
        result = python.execute(bell(), nshots=1000, seed=7)
        line = steps["bell"]
        assert line["frequencies"] == dict(result.frequencies())
        assert line["count 00"] == result.frequencies()["00"] and line["count 01"] == 0
        state = python.new_state(2).apply(gates.H(0), gates.CNOT(0, 1))
        assert line["sample"] == dict(state.sample(100, qubits=[1, 0], seed=3))
        np.testing.assert_allclose(complex_list(line["amplitudes"]),
                                   [2**-0.5, 0, 0, 2**-0.5], atol=1e-12)
        assert line["view equals read"]
        np.testing.assert_allclose(line["probabilities"], [0.5, 0, 0, 0.5], atol=1e-12)
        np.testing.assert_allclose(line["marginal"], [0.5, 0.5], atol=1e-12)

        line = steps["gates"]
        expected = reference.execute(circuit_of(line["circuit"])).state()
        np.testing.assert_allclose(complex_list(line["amplitudes"]), expected, atol=1e-10)

        first, second = steps["invalid gates"]["refusals"]
        assert first["status"] == second["status"] == "QC_BACKEND"
        assert first["code"] == second["code"] == -32602  # InvalidParams, naming the gate
        assert "gate 1 (FOO)" in first["message"] and "unknown gate 'FOO'" in first["message"]
        assert "gate 1 (RX)" in second["message"] and "theta" in second["message"]

        line = steps["qasm"]
        from_python = Circuit.from_qasm(line["text"])
        ours = circuit_of(line["circuit"])
        assert ours.registers == from_python.registers
        assert [(g.name, g.qubits) for g in ours.gates] == \
            [(g.name, g.qubits) for g in from_python.gates]
        for mine, theirs in zip(ours.gates, from_python.gates, strict=True):
            np.testing.assert_allclose(list(mine.params.values()),
                                       list(theirs.params.values()), atol=1e-15)
        run = python.execute(from_python, nshots=500, seed=11)
        assert line["frequencies"] == dict(run.frequencies())
        np.testing.assert_allclose(complex_list(line["amplitudes"]),
                                   reference.execute(from_python).state(), atol=1e-10)

        line = steps["stream"]
        streamed = [gates.X(0), gates.RY(2, 1.2), gates.H(1), gates.T(1).dagger()]
        expected = reference.new_state(3).apply(*streamed).read()
        np.testing.assert_allclose(complex_list(line["amplitudes"]), expected, atol=1e-10)
        probabilities = np.abs(expected.reshape(2, 2, 2)) ** 2
        np.testing.assert_allclose(line["probabilities"],
                                   probabilities.sum(axis=1).reshape(-1), atol=1e-10)
        assert line["expectation"] == pytest.approx(
            Observable("Z0 + 0.5 X2 - 0.25 Y1 Z2").expectation(expected), abs=1e-10)
        assert set(line["sample"]) <= {"01", "11"} and sum(line["sample"].values()) == 100

        line = steps["gate failed"]
        assert line["status"] == "QC_BACKEND" and line["code"] == -32004
        assert json.loads(line["data"])["index"] == 5 and "FOO" in line["message"]
        assert line["usable after"]
        expected = reference.new_state(3).apply(*streamed, gates.H(0)).read()
        np.testing.assert_allclose(complex_list(line["amplitudes"]), expected, atol=1e-10)

        line = steps["expectation"]
        sets = np.array(line["sets"]).reshape(-1, line["nparameters"])
        template = circuit_of(line["circuit"]).to_data()
        values = []
        for values_of_set in sets:
            data = json.loads(msgspec.json.encode(template))
            for k, value in enumerate(values_of_set):  # slot k is gate k's theta
                data["gates"][k]["params"]["theta"] = value
            state = reference.execute(circuit_of(data)).state()
            values.append(Observable(line["observable"]).expectation(state))
        np.testing.assert_allclose(line["values"], values, atol=1e-10)
        first = json.loads(msgspec.json.encode(template))
        for k, value in enumerate(sets[0]):
            first["gates"][k]["params"]["theta"] = value
        assert steps["expectation again"]["value"] == pytest.approx(
            Observable("X0").expectation(reference.execute(circuit_of(first)).state()),
            abs=1e-10)

    line = steps["large"]
    assert line["norm"] == pytest.approx(1.0) and line["view equals read"]
    assert line["first re"] + 1j * line["first im"] == pytest.approx(2**-8 * np.exp(-0.25j))

    line = steps["samples"]
    assert line["nshots"] == 30000 and line["width"] == 3
    assert line["rows match counts"] and line["same without shared memory"]
    c = Circuit(3)
    c.add([gates.H(0), gates.RX(2, 1.0), gates.M(2, 0, 1, register_name="m")])
    with connect(backend) as python:
        assert line["frequencies"] == dict(python.execute(c, nshots=30000, seed=5).frequencies())

    line = steps["timeout and cancel"]
    assert line["timeout"] == {
        "status": "QC_TIMEOUT",
        "message": f"backend '{backend}' did not answer 'execute' within 0.05 s; the request was "
                   "cancelled"}
    assert line["usable after timeout"] and line["usable after cancel"]
    assert line["cancel"]["status"] == "QC_BACKEND" and line["cancel"]["code"] == -32006


def python_words(action: Any) -> str:
    try:
        action()
    except QiboCoreError as exc:
        return str(exc)
    raise AssertionError("no error")


def test_refusals_say_what_the_python_client_says(builds: dict[str, Path],
                                                  env: dict[str, str]) -> None:
    steps = run_check(builds, env, "usage")
    cases = {line["case"]: line for line in steps["usage"]}
    assert all(line["status"] == "QC_USAGE" for name, line in cases.items()
               if name not in ("not found", "not a name", "found nothing to use",
                               "cannot start"))
    two = Circuit(2)
    same = {
        "no qubits": lambda: Circuit(0),
        "outside": lambda: two.add(gates.H(2)),
        "repeated": lambda: gates.CNOT(0, 0),
        "register again": lambda: Circuit(2).add([gates.M(1, register_name="m"),
                                                  gates.M(0, register_name="m")]),
    }
    for name, action in same.items():
        assert cases[name]["message"] == python_words(action), name
    for name, words in (("shots", "nshots must be between 0 and 2**40, got 1099511627777"),
                        ("seed", "seed must be between 0 and 2**63 - 1, got -5")):
        assert cases[name]["message"].startswith(words)
    assert cases["not found"]["status"] == "QC_NOT_FOUND"
    assert cases["not found"]["message"].startswith(
        "qibo-backend-no-such-backend not found on PATH; installed backends: ")
    assert "numpy" in cases["not found"]["message"]
    assert cases["not a name"]["message"] == python_words(lambda: connect("not a name"))
    assert cases["found nothing to use"]["status"] == "QC_CONNECTION"
    assert cases["cannot start"]["status"] == "QC_CONNECTION"
    assert "/nonexistent/program" in cases["cannot start"]["message"]
    for line in steps["qasm refused"]:
        assert line["status"] == "QC_USAGE"
        assert re.match(r"line \d+: ", line["message"]), line
        try:
            Circuit.from_qasm(line["program"])
        except QiboCoreError as exc:
            python = str(exc)
            if "unknown gate" in python or "out of range" in python or "OpenQASM 2.0" in \
                    python or "division" in python:
                assert line["message"].startswith(python), (line["message"], python)


SERVE = '''
import base64, json, os, sys, time
CAPABILITIES = {"gates": ["H", "X"], "nativeGates": [], "maxQubits": 20,
                "precisions": ["complex128"], "stateEncodings": ["base64"], "threads": 1,
                "features": []}
QUBITS = {1: 2}
def send(message):
    sys.stdout.write(message if isinstance(message, str) else json.dumps(message))
    sys.stdout.write("\\n")
    sys.stdout.flush()
def default(method, params):
    if method == "initialize":
        return {"protocolVersion": params["protocolVersion"],
                "serverInfo": {"name": "fake", "version": "0"}, "capabilities": CAPABILITIES}
    if method == "execute":
        return {"state": 1, "frequencies": {"00": 10}}
    if method == "state/new":
        QUBITS[len(QUBITS) + 1] = params["nqubits"]
        return {"state": len(QUBITS)}
    if method == "state/read":
        data = bytes(16 * 2 ** QUBITS[params["state"]])
        return {"dtype": "complex128", "shape": [2 ** QUBITS[params["state"]]],
                "data": base64.b64encode(data).decode()}
    if method == "shm/attach":
        return {"error": {"code": -32602, "message": "no shared memory here"}}
    return None
'''
LOOP = '''
for line in sys.stdin:
    request = json.loads(line)
    if request.get("method") == "exit":
        sys.exit(0)
    if "id" not in request:
        continue
    answer = handle(request["method"], request.get("params") or {}, request["id"])
    if answer is None:
        answer = default(request["method"], request.get("params") or {})
    if isinstance(answer, str):
        send(answer)
    elif isinstance(answer, dict) and "error" in answer:
        send({"jsonrpc": "2.0", "id": request["id"], "error": answer["error"]})
    else:
        send({"jsonrpc": "2.0", "id": request["id"], "result": answer})
'''

SHM = 'CAPABILITIES["stateEncodings"] = ["base64", "shm"]\n'
FAKES: dict[str, tuple[str, str, str, list[str]]] = {
    # name: (handler source, step, status, words in the message)
    "garbage": ("if method == 'execute': return 'this is not JSON'",
                "execute", "QC_PROTOCOL", ["sent a line that is not a JSON-RPC message",
                                           "'this is not JSON'"]),
    "unknown id": ("if method == 'execute': return json.dumps({'jsonrpc': '2.0', 'id': 99, "
                   "'result': None})",
                   "execute", "QC_PROTOCOL", ["backend 'fake' answered an unknown request id "
                                              "99: "]),
    "neither": ("if method == 'execute': return json.dumps({'jsonrpc': '2.0', 'id': id})",
                "execute", "QC_PROTOCOL", ["sent a response with neither result nor error"]),
    "no message": ("if method == 'execute': return json.dumps({'jsonrpc': '2.0', 'id': id, "
                   "'error': {'code': 'x'}})",
                   "execute", "QC_PROTOCOL", ["an error without an integer 'code'"]),
    "invalid result": ("if method == 'execute': return {'state': 'x'}",
                       "execute", "QC_PROTOCOL",
                       ["backend 'fake' answered 'execute' with an invalid result: expected an "
                        "integer at $.state"]),
    "bad progress": ("if method == 'execute': send({'jsonrpc': '2.0', 'method': '$/progress', "
                     "'params': {'token': 'x'}})",
                     "execute", "QC_PROTOCOL", ["sent an invalid $/progress"]),
    "base64 length": ("if method == 'state/read': return {'dtype': 'complex128', 'shape': [4], "
                      "'data': base64.b64encode(bytes(48)).decode()}",
                      "read", "QC_PROTOCOL", ["answered 'state/read' with a malformed array",
                                              "holds 48 bytes, its shape needs 64"]),
    "not base64": ("if method == 'state/read': return {'dtype': 'complex128', 'shape': [4], "
                   "'data': '!' * 86 + '=='}",
                   "read", "QC_PROTOCOL", ["not base64"]),
    "dtype": ("if method == 'state/read': return {'dtype': 'float64', 'shape': [8], "
              "'data': base64.b64encode(bytes(64)).decode()}",
              "read", "QC_PROTOCOL", ["dtype 'float64' where 'complex128' was asked for"]),
    "shape": ("if method == 'state/read': return {'dtype': 'complex128', 'shape': [2**50], "
              "'data': ''}",
              "read", "QC_PROTOCOL", ["more than 2**40 elements"]),
    "exits": ("if method == 'execute':\n    sys.stderr.write('simulator missing: install it\\n')"
              "\n    sys.stderr.flush()\n    sys.exit(3)",
              "execute", "QC_CRASHED", ["exited with code 3\nlast lines of its stderr:\n"
                                        "  simulator missing: install it"]),
    "killed": ("if method == 'execute': os.kill(os.getpid(), 9)",
               "execute", "QC_CRASHED", ["(pid ", ") was killed by SIGKILL"]),
    "closes stdout": ("if method == 'execute':\n    os.close(1)\n    time.sleep(60)",
                      "execute", "QC_CRASHED", ["closed its stdout but kept running; it was "
                                                "terminated"]),
    "closes stdin": ("if method == 'initialize':\n    os.close(0)\n"
                     "    send({'jsonrpc': '2.0', 'id': id, 'result': default(method, params)})"
                     "\n    time.sleep(60)",
                     "execute", "QC_CRASHED", ["closed its stdin but kept running"]),
    "hung": ("if method == 'execute': time.sleep(60)",
             "execute", "QC_HUNG", ["backend 'fake' did not answer 'execute' within 0.5 s, nor "
                                    "the cancellation within 2.0 s: it is hung and was "
                                    "terminated"]),
    "older version": ("if method == 'initialize' and params['protocolVersion'] == 3:\n"
                      "    return {'error': {'code': -32001, 'message': 'no', 'data': "
                      "{'supported': [2, 1], 'requested': 3}}}\n"
                      "if method == 'execute': return {'error': {'code': -32602, "
                      "'message': 'invalid circuit: no'}}",
                      "execute", "QC_BACKEND", ["invalid circuit: no"]),
    "no common version": ("if method == 'initialize': return {'error': {'code': -32001, "
                          "'message': 'version 3 is not spoken here', 'data': "
                          "{'supported': [7], 'requested': 3}}}",
                          "connect", "QC_BACKEND", ["version 3 is not spoken here"]),
    "oversized": ("if method == 'execute': return '{' + 'x' * (2 << 20) + '}'",
                  "execute", "QC_PROTOCOL", ["sent a line of more than 1048576 bytes"]),
    "stderr flood": ("if method == 'execute':\n    sys.stderr.write('x' * (10 << 20) + "
                     "'\\n')\n    sys.stderr.flush()",
                     "done", "QC_OK", [""]),
    "shm refused": (SHM + "pass", "done", "QC_OK", [""]),
    "shm wrong segment": (SHM + "if method == 'shm/attach': return {'segment': 1}\n"
                          "if method == 'state/read' and 'segment' in params: return "
                          "{'dtype': 'complex128', 'shape': [2**14], 'segment': 2}",
                          "large read", "QC_PROTOCOL", ["answered segment 2 for segment 1"]),
    "shm truncated": (SHM + "if method == 'shm/attach':\n"
                      "    SEGMENT.append(os.open(params['path'], os.O_RDWR))\n"
                      "    return {'segment': 1}\n"
                      "if method == 'state/read' and 'segment' in params:\n"
                      "    os.ftruncate(SEGMENT[0], 100)\n"
                      "    return {'dtype': 'complex128', 'shape': [2**14], 'segment': 1}",
                      "large read", "QC_PROTOCOL", ["the segment ends after 100 of 262144 "
                                                    "bytes: backend 'fake' truncated it"]),
}


def fake_source(handler: str) -> str:
    """A fake backend: SERVE's defaults, `handler`'s answers first (None: the default)."""
    setup, body = (SHM, handler[len(SHM):]) if handler.startswith(SHM) else ("", handler)
    return (SERVE + setup + "SEGMENT = []\ndef handle(method, params, id):\n" +
            textwrap.indent(body, "    ") + "\n    return None\n" + LOOP)


def run_fake(builds: dict[str, Path], env: dict[str, str], tmp_path: Path,
             case: str) -> dict[str, Any]:
    program = tmp_path / "fake.py"
    program.write_text(fake_source(FAKES[case][0]))
    timeout = "0.5" if case == "hung" else "0"
    return run_check(builds, env, "fake", timeout, sys.executable, str(program))["fake"]


@pytest.mark.parametrize("case", sorted(FAKES))
def test_a_fake_backend_fails_in_words_and_leaves_nothing(
        case: str, builds: dict[str, Path], env: dict[str, str], tmp_path: Path) -> None:
    _, step, status, words = FAKES[case]
    line = run_fake(builds, env, tmp_path, case)
    assert line["status"] == status and line["at"] == step, line
    for word in words:
        assert word in line["message"], line
    if case == "older version":
        assert line["protocol"] == 2
    if status in ("QC_PROTOCOL", "QC_CRASHED", "QC_HUNG"):
        assert line["later"] == status  # for good: every later call says the same


@pytest.mark.parametrize("case", ["exits", "killed", "hung", "unknown id"])
def test_the_words_of_a_failure_are_the_python_clients(case: str, builds: dict[str, Path],
                                                       env: dict[str, str],
                                                       tmp_path: Path) -> None:
    ours = run_fake(builds, env, tmp_path, case)
    channel = ProcessTransport([sys.executable, str(tmp_path / "fake.py")], name="fake")
    with Handle(channel, timeout=0.5 if case == "hung" else None) as handle:
        theirs = python_words(lambda: handle.execute(bell(), nshots=10))

    def plain(text: str) -> str:
        return re.sub(r"pid \d+", "pid N", text).split(": '")[0]
    assert plain(ours["message"]) == plain(theirs)


def test_a_backend_killed_mid_call_is_reported_and_reaped(builds: dict[str, Path],
                                                          env: dict[str, str]) -> None:
    steps = run_check(builds, env, "killed", "numpy")
    line = steps["killed"]
    assert line["status"] == "QC_CRASHED" and line["later"] == "QC_CRASHED"
    assert re.fullmatch(r"backend 'numpy' \(pid \d+\) was killed by SIGKILL", line["message"])
    assert steps["after free"]["status"] == "QC_USAGE"
    assert "was freed (qc_backend_free)" in steps["after free"]["message"]


def test_a_configured_backend_and_a_broken_configuration(builds: dict[str, Path],
                                                         env: dict[str, str],
                                                         tmp_path: Path) -> None:
    numpy = shutil.which("qibo-backend-numpy", path=env["PATH"])
    config = tmp_path / "backends.json"
    config.write_text(json.dumps({"backends": {"far-away": {"command": [str(numpy)]}}}))
    configured = dict(env, QIBO_CORE_CONFIG=str(config))
    assert run_check(builds, configured, "connect", "far-away")["connect"]["name"] == "numpy"
    config.write_text("{not json")
    line = run_check(builds, configured, "connect", "numpy")["connect"]
    assert line["status"] == "QC_OK" and f"{config}: expected" in line["log"]
    line = run_check(builds, configured, "connect", "far-away")["connect"]
    assert line["status"] == "QC_NOT_FOUND"
    assert line["message"].startswith("qibo-backend-far-away not found on PATH; installed "
                                      "backends: ")
    assert f"(and {config}: expected" in line["message"]


def valgrind(builds: dict[str, Path], env: dict[str, str],
             *runs: tuple[str, str]) -> list[str]:
    """Each example run under valgrind's leak check, all at once; their outputs."""
    processes = [subprocess.Popen(["valgrind", "-q", "--leak-check=full", "--error-exitcode=1",
                                   str(builds["plain"] / example), backend], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for example, backend in runs]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, out + err
        outputs.append(out)
    return outputs


@pytest.mark.backends("qulacs")
@pytest.mark.skipif(VALGRIND is None, reason="valgrind is not installed; scripts/test.sh "
                                             "installs it (Debian)")
def test_the_examples_run_without_a_leak_under_valgrind(builds: dict[str, Path],
                                                        env: dict[str, str]) -> None:
    bell_out, qft_out, variational_out = valgrind(
        builds, env, ("bell", "qulacs"), ("qft20", "qulacs"), ("variational", "numpy"))
    lines = bell_out.split()
    with connect("qulacs") as python:
        expected = python.execute(bell(), nshots=1000, seed=7).frequencies()
    assert dict(zip(lines[0::2], map(int, lines[1::2]), strict=True)) == dict(expected)
    assert "16777216 bytes read through shared memory" in qft_out
    assert float(qft_out.rsplit("largest deviation: ", 1)[1]) < 1e-10
    first, last = map(float, re.findall(r"from (\S+) to (\S+)", variational_out)[0])
    ground = ising_ground_energy()
    assert last < first - 1 and ground - 1e-9 <= last < ground + 0.5


def ising_ground_energy() -> float:
    """The variational example's Hamiltonian, diagonalised."""
    z, x, one = np.diag([1.0, -1.0]), np.array([[0.0, 1.0], [1.0, 0.0]]), np.eye(2)

    def on(ops: dict[int, np.ndarray]) -> np.ndarray:
        matrix = np.eye(1)
        for q in range(4):
            matrix = np.kron(matrix, ops.get(q, one))
        return matrix
    h = sum(on({q: z, q + 1: z}) for q in range(3)) + sum(0.5 * on({q: x}) for q in range(4))
    return float(np.linalg.eigvalsh(h)[0])


@pytest.mark.backends("qulacs")
def test_the_readme_program_builds_from_its_lines_and_prints_the_frequencies(
        builds: dict[str, Path], env: dict[str, str], tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## From other languages", 1)[1].split("\n## ", 1)[0]
    program = re.search(r"```c\n(.*?)```", section, re.S)
    commands = re.search(r"```sh\n(.*?)```", section, re.S)
    assert program and commands
    (tmp_path / "bell.c").write_text(program.group(1))
    lines = [line for line in commands.group(1).splitlines() if line.strip()]
    build = builds["plain"]  # built already: make finds the library up to date
    for line in lines[:-1]:  # the build lines, into the test's folders, not the source tree
        line = line.replace("make -C clients/c", f"make -C clients/c BUILD={build}")
        line = line.replace("clients/c/build/", f"{build}/").replace("-o bell",
                                                                    f"-o {tmp_path}/bell")
        line = line.replace(" bell.c", f" {tmp_path}/bell.c")
        run = subprocess.run(line, shell=True, cwd=ROOT, capture_output=True, text=True,
                             env=env, timeout=300)
        assert run.returncode == 0, line + run.stdout + run.stderr
    assert lines[-1] == "./bell"
    run = subprocess.run([str(tmp_path / "bell")], capture_output=True, text=True, env=env,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    counts = dict(line.split() for line in run.stdout.splitlines())
    assert set(counts) == {"00", "11"} and sum(map(int, counts.values())) == 1000
