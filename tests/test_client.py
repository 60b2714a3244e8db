"""The client: discovery, handles, process reuse, typed errors, crashes and clean shutdown."""

from __future__ import annotations

import gc
import inspect
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import bell, eventually, fake_backend, fake_program, make_handle, without_qulacs

import qibo_core
from qibo_backend_numpy import NumpyBackend
from qibo_core import (
    BackendCrashed,
    BackendError,
    BackendNotFound,
    Circuit,
    ConfigError,
    GateFailed,
    Handle,
    HandleClosed,
    InvalidParams,
    ProtocolError,
    StateTooLarge,
    UnknownState,
    UsageError,
    connect,
    gates,
    list_backends,
)
from qibo_core.client import AsyncHandle, AsyncState, State, api, close_shared, resolve
from qibo_core.client import state as state_module
from qibo_core.client.discovery import find_backend
from qibo_core.protocol import ErrorCode, ExecuteParams, Method, StateRef


def test_public_names_are_sorted_and_exported() -> None:
    assert qibo_core.__all__ == sorted(qibo_core.__all__)
    for name in qibo_core.__all__:
        assert hasattr(qibo_core, name)


def test_error_codes_are_pinned() -> None:
    assert {c.name: int(c) for c in ErrorCode} == {
        "PARSE_ERROR": -32700, "INVALID_REQUEST": -32600, "METHOD_NOT_FOUND": -32601,
        "INVALID_PARAMS": -32602, "INTERNAL_ERROR": -32603, "UNSUPPORTED_PROTOCOL_VERSION": -32001,
        "SERVER_NOT_INITIALIZED": -32002, "UNKNOWN_STATE": -32003, "GATE_FAILED": -32004,
        "STATE_TOO_LARGE": -32005, "REQUEST_CANCELLED": -32006}
    assert set(BackendError.by_code) == set(ErrorCode)


# ---- discovery ---------------------------------------------------------------------------

@pytest.mark.backends("qulacs")
def test_list_backends_finds_both() -> None:
    found = {b.name: b for b in list_backends()}
    assert {"numpy", "qulacs"} <= set(found)
    assert os.access(found["numpy"].path, os.X_OK)


def test_shadowed_duplicates_and_non_executables(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for folder, mode in (("a", 0o755), ("b", 0o755), ("c", 0o644)):
        (tmp_path / folder).mkdir()
        script = tmp_path / folder / "qibo-backend-toy"
        script.write_text("#!/bin/sh\n")
        script.chmod(mode)
    path = os.pathsep.join(str(tmp_path / f) for f in "cab") + os.pathsep + os.environ["PATH"]
    monkeypatch.setenv("PATH", path)
    toy = next(b for b in list_backends() if b.name == "toy")
    assert toy.path == str(tmp_path / "a" / "qibo-backend-toy")
    assert toy.shadowed == (str(tmp_path / "b" / "qibo-backend-toy"),)


@pytest.mark.backends("qulacs")
def test_missing_backend_lists_installed_ones() -> None:
    with pytest.raises(BackendNotFound, match=r"qibo-backend-nope not found on PATH.*"
                                              r"installed backends: .*numpy.*qulacs"):
        connect("nope")
    with pytest.raises(BackendNotFound, match="not a backend name"):
        connect("../etc")


# ---- handles -----------------------------------------------------------------------------

def test_in_process_and_spawned_give_identical_results() -> None:
    circuit = bell()
    with connect("numpy") as spawned, connect(NumpyBackend()) as local:
        a = spawned.execute(circuit, nshots=500, seed=4)
        b = local.execute(circuit, nshots=500, seed=4)
        assert np.array_equal(a.state(), b.state())
        assert a.frequencies() == b.frequencies()
        np.testing.assert_array_equal(a.probabilities([1]), b.probabilities([1]))


def test_execute_by_name_reuses_one_process() -> None:
    close_shared()
    bell().execute(backend="numpy")
    first = resolve("numpy")
    bell().execute(backend="numpy", nshots=10)
    assert resolve("numpy") is first
    pid = first.transport.pid  # type: ignore[attr-defined]
    close_shared()
    assert not first.alive
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_crashed_shared_backend_is_restarted_and_the_circuit_run_again() -> None:
    close_shared()
    handle = resolve("numpy")
    before = bell().execute(backend="numpy", nshots=100, seed=3).frequencies()
    handle.transport.kill()  # type: ignore[attr-defined]
    after = bell().execute(backend="numpy", nshots=100, seed=3).frequencies()
    assert after == before  # idempotent: the same seed, the same counts
    assert not handle.alive and resolve("numpy") is not handle
    close_shared()


def test_restarts_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend that crashes on every execute is restarted 5 times, then left dead."""
    script = tmp_path / "qibo-backend-crashy"
    body = fake_program("sys.stdin.readline()\nos._exit(7)\n")
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(api, "_restarts", {})
    spawned = []
    real_connect = api.connect

    def counting_connect(*args: object, **kwargs: object) -> Handle:
        spawned.append(args)
        return real_connect(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(api, "connect", counting_connect)
    with pytest.raises(BackendCrashed, match="exited with code 7"):
        bell().execute(backend="crashy")
    assert len(spawned) == 1 + api.RESTARTS
    close_shared()


def test_server_errors_arrive_as_typed_exceptions(handle: Handle) -> None:
    with pytest.raises(InvalidParams, match="nshots must be between 0 and 2\\*\\*40"):
        handle.transport.request(Method.EXECUTE, ExecuteParams(bell().to_data(), -5))
    with pytest.raises(StateTooLarge, match="exceed this backend's maximum") as info:
        handle.new_state(200)
    assert info.value.data["nqubits"] == 200
    with pytest.raises(UnknownState, match="no state 424242"):
        handle.transport.request(Method.STATE_READ, StateRef(424242))


def test_streaming_and_its_errors(handle: Handle) -> None:
    state = handle.new_state(3)
    state.apply(gates.H(0)).apply(gates.CNOT(0, 1), gates.RX(2, 0.2))
    expected = Circuit(3)
    expected.add([gates.H(0), gates.CNOT(0, 1), gates.RX(2, 0.2)])
    np.testing.assert_allclose(state.read(), handle.execute(expected).state(), atol=1e-12)
    state.apply(gates.X(9))
    failed = r"streamed gate 3 \(X\) of state \d+ failed: qubit 9 is out of range"
    with pytest.raises(GateFailed, match=failed) as info:
        state.probabilities()
    assert info.value.data["index"] == 3
    assert state.sample(100, qubits=[2], seed=1).keys() <= {"0", "1"}


def test_history_is_what_the_backend_applied(handle: Handle) -> None:
    """After a streamed gate fails, the failed gate and those the backend skipped leave the
    history, so that replay() rebuilds the state the backend holds."""
    state = handle.new_state(2)
    state.apply(gates.H(0), gates.X(7), gates.Z(0))
    with pytest.raises(GateFailed):
        state.read()
    assert state.history == [gates.H(0)]
    state.apply(gates.CNOT(0, 1))
    assert state.history == [gates.H(0), gates.CNOT(0, 1)]
    replayed = state.replay(handle)
    np.testing.assert_allclose(replayed.read(), state.read(), atol=1e-12)
    np.testing.assert_allclose(state.read(), [2**-0.5, 0, 0, 2**-0.5], atol=1e-12)


def test_arguments_are_checked_in_words_before_sending(handle: Handle) -> None:
    for kwargs, message in (({"nshots": 10.0}, "nshots must be an integer, got 10.0"),
                            ({"nshots": -1}, "nshots must be between 0 and 2\\*\\*40"),
                            ({"seed": "7"}, "seed must be an integer or None, got '7'"),
                            ({"timeout": 0}, "timeout must be a positive number")):
        with pytest.raises(UsageError, match=message):
            handle.execute(bell(), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="nshots must be an integer"):
        handle.new_state(1).sample(True)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["numpy-spawned", "numpy-local"])
def test_a_closed_handle_refuses_at_once_and_says_what_to_do(kind: str) -> None:
    handle = make_handle(kind)
    state, result = handle.new_state(1), handle.execute(bell())
    handle.close()
    with pytest.raises(HandleClosed, match="cannot apply gates to state"):
        state.apply(gates.X(0))
    assert state.history == []
    assert result.state()[0] == pytest.approx(2**-0.5)  # small: it came with the reply
    with pytest.raises(HandleClosed, match="read what you need before closing the handle"):
        result.final_state.read()


def test_states_are_freed_explicitly_and_when_collected(handle: Handle) -> None:
    state = handle.new_state(2)
    state.free()
    with pytest.raises(UnknownState):
        handle.transport.request(Method.STATE_READ, StateRef(state.id))
    result = handle.execute(bell())
    state_id = result.final_state.id
    del result
    gc.collect()
    handle.new_state(1)  # the free is sent before the next request
    with pytest.raises(UnknownState):
        handle.transport.request(Method.STATE_READ, StateRef(state_id))


def test_one_handle_many_threads() -> None:
    with connect("numpy") as handle:
        errors: list[BaseException] = []

        def work(seed: int) -> None:
            try:
                for _ in range(20):
                    c = Circuit(3)
                    c.add([gates.RY(0, seed * 0.1), gates.M(0)])
                    p1 = handle.execute(c).probabilities([0])[1]
                    assert abs(p1 - np.sin(seed * 0.05) ** 2) < 1e-12
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors


def test_a_refused_initialize_ends_the_backend_quietly(caplog: pytest.LogCaptureFixture) -> None:
    """No shutdown to a backend that is not initialized (it would refuse it): exit alone."""
    with pytest.raises(InvalidParams, match="device 'GPU' is not available"):
        connect("numpy", device="GPU")
    assert "did not shut down politely" not in caplog.text


def test_close_is_idempotent_and_final() -> None:
    handle = connect("numpy")
    process = handle.transport.process  # type: ignore[attr-defined]
    handle.close()
    handle.close()
    assert process.returncode == 0
    with pytest.raises(HandleClosed, match="closed"):
        handle.execute(bell())


def test_streams_into_several_states_interleaved(handle: Handle) -> None:
    first, second = handle.new_state(2), handle.new_state(2)
    for k in range(state_module.STREAM_BATCH + 5):
        first.apply(gates.RX(k % 2, 0.01 * k))
        second.apply(gates.RY(k % 2, -0.02 * k))
    for state in (first, second):
        circuit = Circuit(2)
        circuit.add(state.history)
        np.testing.assert_allclose(state.read(), handle.execute(circuit).state(), atol=1e-10)


def test_a_full_batch_of_streamed_gates_leaves_at_once(tmp_path: Path) -> None:
    """The backend gets a full batch while the client is still queueing (no request needed
    to push it), and a partial batch only before the next request."""
    log = tmp_path / "received"
    handle = fake_backend(f"""
    request = json.loads(sys.stdin.readline())
    print(json.dumps({{"jsonrpc": "2.0", "id": request["id"], "result": {{"state": 1}}}}),
          flush=True)
    for line in sys.stdin:
        message = json.loads(line)
        with open({str(log)!r}, "a") as f:
            f.write(f"{{message['method']}} {{len(message['params'].get('gates', []))}}\\n")
        if "id" in message:
            print(json.dumps({{"jsonrpc": "2.0", "id": message["id"], "result": None}}),
                  flush=True)
    """)
    state = handle.new_state(2)
    for _ in range(state_module.STREAM_BATCH + 3):
        state.apply(gates.X(0))
    assert eventually(lambda: log.exists() and log.read_text() == f"state/apply "
                      f"{state_module.STREAM_BATCH}\n", 5)
    handle.request(Method.STATE_FREE, StateRef(1))
    assert log.read_text().splitlines()[1:] == ["state/apply 3", "state/free 0"]
    handle.close()


# ---- broken backends ---------------------------------------------------------------------

def test_crash_mid_request_names_exit_code_and_stderr() -> None:
    handle = fake_backend("""
    sys.stdin.readline()
    print("simulator exploded: out of unobtainium", file=sys.stderr, flush=True)
    os._exit(3)
    """)
    with pytest.raises(BackendCrashed, match="exited with code 3") as info:
        handle.execute(bell())
    assert info.value.returncode == 3
    assert "simulator exploded: out of unobtainium" in str(info.value)
    assert not handle.alive
    handle.close()


def test_killed_by_signal() -> None:
    handle = fake_backend("sys.stdin.readline()\nos.kill(os.getpid(), 9)\n")
    with pytest.raises(BackendCrashed, match="killed by SIGKILL"):
        handle.new_state(1)
    handle.close()


def test_garbage_on_stdout_is_a_protocol_error() -> None:
    handle = fake_backend("""
    sys.stdin.readline()
    print("Welcome to my simulator!", flush=True)
    sys.stdin.readline()
    """)
    with pytest.raises(ProtocolError, match="'Welcome to my simulator!'"):
        handle.new_state(1)
    handle.close()


def test_reply_to_unknown_id_is_a_protocol_error() -> None:
    handle = fake_backend("""
    sys.stdin.readline()
    print(json.dumps({"jsonrpc": "2.0", "id": 777, "result": None}), flush=True)
    sys.stdin.readline()
    """)
    with pytest.raises(ProtocolError, match="unknown request id 777"):
        handle.new_state(1)
    handle.close()


def test_backend_that_dies_before_the_handshake() -> None:
    with pytest.raises(BackendCrashed, match="exited with code 2"):
        fake_backend("import sys; print('cannot start: no licence', file=sys.stderr); sys.exit(2)",
                     handshake=False)


def test_old_protocol_version_from_backend_is_reported() -> None:
    from qibo_core import UnsupportedProtocolVersion
    with pytest.raises(UnsupportedProtocolVersion, match="supported"):
        fake_backend("""
        import json, sys
        request = json.loads(sys.stdin.readline())
        print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": {
            "code": -32001, "message": "protocol version 1 is not supported; I speak [0]",
            "data": {"supported": [0], "requested": 1}}}), flush=True)
        sys.stdin.readline()
        """, handshake=False)


def test_backend_ignoring_shutdown_is_terminated() -> None:
    handle = fake_backend("""
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(60)
    """)
    process = handle.transport.process  # type: ignore[attr-defined]
    handle.close()
    assert process.returncode == -signal.SIGKILL


# ---- configured commands (tunnels) -------------------------------------------------------

def test_any_command_speaking_the_protocol_is_a_backend() -> None:
    tunnel = ["sh", "-c", f"exec {find_backend('numpy')}"]  # stands for ["ssh", "host", ...]
    with connect("numpy", command=tunnel) as handle:
        assert handle.execute(bell(), nshots=10, seed=1).frequencies()


@pytest.mark.backends("qulacs")
def test_configured_backends_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "backends.json"
    config.write_text(json.dumps({"backends": {"far-qulacs": {
        "command": ["sh", "-c", f"exec {find_backend('qulacs')}"]}}}))
    monkeypatch.setenv("QIBO_CORE_CONFIG", str(config))
    result = bell().execute(backend="far-qulacs", nshots=100, seed=2)
    assert set(result.frequencies()) <= {"00", "11"}
    assert resolve("far-qulacs").name == "qulacs"
    close_shared()
    with pytest.raises(BackendNotFound, match="configured: far-qulacs"):
        connect("near-qulacs")


@pytest.mark.parametrize("text, message", [
    ("{not json", "expected"),
    ('{"backends": {"x": {}}}', "KeyError"),
    ('{"backends": {"x": {"command": "ssh host"}}}', "must be a list of strings"),
])
def test_a_bad_configuration_says_what_is_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                text: str, message: str) -> None:
    config = tmp_path / "backends.json"
    config.write_text(text)
    monkeypatch.setenv("QIBO_CORE_CONFIG", str(config))
    with pytest.raises(ConfigError, match=message):
        connect("x")


@pytest.mark.backends("qulacs")
def test_a_backend_whose_simulator_is_missing_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(BackendCrashed, match="exited with code 1") as info:
        connect("noqulacs", command=without_qulacs(tmp_path))
    assert "the qulacs package is not installed" in info.value.stderr_tail[-1]
    assert "pip install qulacs" in str(info.value)


def test_in_process_use_needs_no_posix_module() -> None:
    """As on Windows, where there is no fcntl: importing and running in process must work."""
    code = ("import sys; sys.modules['fcntl'] = None\n"
            "from qibo_core import Circuit, connect, gates\n"
            "from qibo_backend_numpy import NumpyBackend\n"
            "c = Circuit(1); c.add(gates.X(0))\n"
            "print(abs(c.execute(backend=NumpyBackend()).state()[1]))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "1.0", run.stderr


@pytest.mark.parametrize("sync, awaited", [(Handle, AsyncHandle), (State, AsyncState)])
def test_the_async_api_has_every_method_of_the_sync_one(sync: type, awaited: type) -> None:
    """A method added to Handle or State alone fails here: add it to the async API too."""
    renamed = {"close": "aclose"}
    public = [name for name in dir(sync) if not name.startswith("_")
              and not isinstance(inspect.getattr_static(sync, name), classmethod)]
    missing = [name for name in public if renamed.get(name, name) not in dir(awaited)]
    assert not missing, f"{awaited.__name__} lacks {missing}"
