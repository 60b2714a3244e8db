"""The qibo-core command, run as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
from helpers import HANDSHAKE, child_pids, eventually, without_qulacs

from qibo_core.protocol import PROTOCOL_VERSION

QIBO_CORE = os.path.join(sysconfig.get_path("scripts"), "qibo-core")
GHZ = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[3];
creg c[3];
h q[0];
cx q[0], q[1];
cx q[1], q[2];
measure q -> c;
"""


def qibo_core(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([QIBO_CORE, *args], capture_output=True, text=True, timeout=120,
                          env=env)


@pytest.fixture
def ghz(tmp_path: Path) -> Path:
    path = tmp_path / "ghz.qasm"
    path.write_text(GHZ)
    return path


@pytest.mark.backends("qulacs")
def test_backends_lists_both_with_their_capabilities() -> None:
    run = qibo_core("backends")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "STATUS", "VERSION", "PROTOCOL"]
    numpy = next(line.split() for line in lines if line.startswith("numpy "))
    assert numpy[1:4] == ["ok", "0.1.0", str(PROTOCOL_VERSION)]
    assert numpy[-1].endswith("qibo-backend-numpy")
    report = {r["name"]: r for r in json.loads(qibo_core("backends", "--json").stdout)}
    assert report["qulacs"]["native"] > 0 and "shm" in report["qulacs"]["encodings"]


def test_backends_warns_about_shadowed_broken_and_incompatible(tmp_path: Path) -> None:
    for folder in ("first", "second"):
        (tmp_path / folder).mkdir()
    numpy = Path(sysconfig.get_path("scripts")) / "qibo-backend-numpy"
    (tmp_path / "second" / "qibo-backend-numpy").symlink_to(numpy)
    (tmp_path / "first" / "qibo-backend-noperm").write_text("#!/bin/sh\n")
    crashing = tmp_path / "first" / "qibo-backend-crashing"
    crashing.write_text("#!/bin/sh\necho 'missing licence file' >&2\nexit 3\n")
    crashing.chmod(0o755)
    path = os.pathsep.join([str(tmp_path / "first"), str(tmp_path / "second"),
                            os.environ["PATH"]])
    run = qibo_core("backends", env=dict(os.environ, PATH=path))
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert f"warning: {tmp_path / 'second' / 'qibo-backend-numpy'} is shadowed by" in out
    assert f"warning: {tmp_path / 'first' / 'qibo-backend-noperm'} is not executable" in out
    assert "warning: crashing: failed the handshake: backend 'crashing'" in out
    assert "exited with code 3: missing licence file" in out
    assert next(line for line in out.splitlines() if line.startswith("crashing ")).split()[1] \
        == "broken"


@pytest.mark.backends("qulacs")
def test_run_prints_a_sorted_histogram(ghz: Path) -> None:
    run = qibo_core("run", str(ghz), "--backend", "qulacs", "--shots", "2000", "--seed", "5")
    assert run.returncode == 0, run.stderr
    rows = [line.split() for line in run.stdout.splitlines()[1:]]
    assert [r[0] for r in rows] == ["000", "111"]
    assert sum(int(r[1]) for r in rows) == 2000 and all("█" in r[3] for r in rows)


def test_run_json_and_state(ghz: Path) -> None:
    run = qibo_core("run", str(ghz), "--json", "--seed", "1", "--state", "2")
    result = json.loads(run.stdout)
    assert sum(result["frequencies"].values()) == 1000
    assert [s[0] for s in result["state"]] == [0, 7]
    assert result["state"][0][1] == pytest.approx(2 ** -0.5)


def test_run_a_json_circuit_without_measurements(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"nqubits": 2, "gates": [{"name": "X", "qubits": [1]}]}')
    run = qibo_core("run", str(path), "--shots", "10")
    assert "measuring every qubit" in run.stdout and run.stdout.splitlines()[-1].startswith("01")


@pytest.mark.parametrize("args, message", [
    (["run", "missing.qasm"], "No such file"),
    (["run", "{circuit}", "--backend", "nope"], "qibo-backend-nope not found"),
    (["run", "{bad}"], "bad.qasm:3: unknown gate 'foo'"),
    (["run", "{bad_comma}"], "comma.qasm:3: expected ',' or ';' after cx's arguments, found 'q'"),
])
def test_errors_are_one_clear_line(tmp_path: Path, ghz: Path, args: list[str],
                                   message: str) -> None:
    bad = tmp_path / "bad.qasm"
    bad.write_text("OPENQASM 2.0;\nqreg q[1];\nfoo q[0];\n")
    bad_comma = tmp_path / "bad_comma.qasm"
    bad_comma.write_text("OPENQASM 2.0;\nqreg q[2];\ncx q[0] q[1];\n")
    args = [a.format(circuit=ghz, bad=bad, bad_comma=bad_comma) for a in args]
    run = qibo_core(*args)
    assert run.returncode == 1
    assert run.stderr.startswith("qibo-core: error:") and message in run.stderr


def test_trace_records_the_exchange(tmp_path: Path) -> None:
    log = tmp_path / "trace.log"
    script = "from qibo_core import Circuit, gates; c = Circuit(1); c.add(gates.H(0)); " \
             "c.execute(backend='numpy').state()"
    run = qibo_core("trace", "--output", str(log), "--", sys.executable, "-c", script)
    assert run.returncode == 0, run.stderr
    lines = log.read_text().splitlines()
    assert any(' > {"jsonrpc":"2.0","id":1,"method":"initialize"' in line for line in lines)
    assert any(" < " in line and '"serverInfo"' in line for line in lines)
    assert any('"method":"execute"' in line for line in lines)


def test_help_on_every_command() -> None:
    for args in ([], ["backends"], ["run"], ["trace"]):
        run = qibo_core(*args, "--help")
        assert run.returncode == 0 and "usage: qibo-core" in run.stdout


@pytest.mark.backends("qulacs")
def test_run_shows_progress_for_long_circuits(tmp_path: Path) -> None:
    from qibo_core import Circuit, gates
    circuit = Circuit(21)
    for layer in range(40):
        circuit.add(gates.RX(q, 0.1 * layer + q) for q in range(21))
        circuit.add(gates.CNOT(q, q + 1) for q in range(0, 20, 2))
    path = tmp_path / "long.json"
    import msgspec
    path.write_bytes(msgspec.json.encode(circuit.to_data()))
    run = qibo_core("run", str(path), "--backend", "qulacs", "--shots", "10", "--progress")
    assert run.returncode == 0, run.stderr
    assert f"of {len(circuit.gates)} gates" in run.stderr and "█" in run.stderr


def test_backends_lists_configured_commands(tmp_path: Path) -> None:
    numpy = Path(sysconfig.get_path("scripts")) / "qibo-backend-numpy"
    config = tmp_path / "backends.json"
    config.write_text(json.dumps({"backends": {"far": {"command": ["sh", "-c", f"exec {numpy}"]}}}))
    run = qibo_core("backends", env=dict(os.environ, QIBO_CORE_CONFIG=str(config)))
    far = next(line for line in run.stdout.splitlines() if line.startswith("far "))
    assert far.split()[1:4] == ["ok", "0.1.0", str(PROTOCOL_VERSION)]
    assert far.endswith(f"sh -c 'exec {numpy}'")


def test_alone_it_lists_the_commands_and_it_has_a_version() -> None:
    run = qibo_core()
    assert run.returncode == 0 and all(c in run.stdout for c in ("backends", "run", "check",
                                                                   "trace"))
    version = qibo_core("--version")
    assert version.returncode == 0
    assert version.stdout.strip() == f"qibo-core 0.1.0 (protocol {PROTOCOL_VERSION})"


def test_trace_claims_no_file_it_did_not_write(tmp_path: Path) -> None:
    log = tmp_path / "trace.log"
    run = qibo_core("trace", "--output", str(log), "--", sys.executable, "-c", "pass")
    assert run.returncode == 0 and not log.exists()
    assert "nothing was recorded" in run.stderr and "the exchange is in" not in run.stderr


def test_ctrl_c_during_run_cancels_and_exits_quietly(tmp_path: Path) -> None:
    from qibo_core import Circuit, gates
    circuit = Circuit(22)
    for layer in range(200):  # a minute of work: CNOTs across fusion groups keep it long
        circuit.add(gates.RX(q, 0.1 * layer + q) for q in range(22))
        circuit.add(gates.CNOT(q, q + 1) for q in range(21))
    path = tmp_path / "long.json"
    import msgspec
    path.write_bytes(msgspec.json.encode(circuit.to_data()))
    # A shell running CI in the background ignores SIGINT, and children inherit that; a
    # terminal's Ctrl-C reaches a program with the default disposition, as restored here.
    process = subprocess.Popen([QIBO_CORE, "run", str(path), "--shots", "0", "--no-progress"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONFAULTHANDLER="1"),
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert eventually(lambda: child_pids(process.pid), 60), "qibo-core run started no backend"
    time.sleep(1.0)  # into the execute
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)  # the fault handler prints where every thread is
        pytest.fail(f"qibo-core run did not exit after SIGINT:\n{process.communicate()[1]}")
    assert process.returncode == 130, err
    assert err.strip() == "qibo-core: interrupted" and "Traceback" not in err


@pytest.mark.backends("qulacs")
def test_backends_shows_a_backend_whose_simulator_is_missing_as_broken(tmp_path: Path) -> None:
    config = tmp_path / "backends.json"
    config.write_text(json.dumps({"backends": {"noqulacs": {"command": without_qulacs(tmp_path)}}}))
    run = qibo_core("backends", env=dict(os.environ, QIBO_CORE_CONFIG=str(config)))
    row = next(line for line in run.stdout.splitlines() if line.startswith("noqulacs "))
    assert row.split()[1] == "broken"
    assert "noqulacs: failed the handshake" in run.stdout and "pip install qulacs" in run.stdout


def test_check_takes_a_name_and_fails_cat_without_crashing() -> None:
    good = qibo_core("check", "numpy", "--only", "4.6 state/sample")
    assert good.returncode == 0 and good.stdout.startswith("conformance of ")
    bad = qibo_core("check", "/bin/cat")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr + bad.stdout
    assert "FAIL    §3.1 a session at version" in bad.stdout and "PASS" not in bad.stdout


def test_check_reports_a_hung_backend_in_seconds(tmp_path: Path) -> None:
    hung = tmp_path / "hung.py"  # answers initialize, then nothing
    hung.write_text(HANDSHAKE.replace('"stateEncodings": []', '"stateEncodings": ["base64"]')
                    + "time.sleep(600)\n")
    started = time.monotonic()
    run = qibo_core("check", sys.executable, str(hung))
    assert run.returncode == 1 and time.monotonic() - started < 40
    assert "no reply within" in run.stdout and "NOT RUN" in run.stdout
    assert "the backend hung" in run.stdout and "PASS" not in run.stdout

