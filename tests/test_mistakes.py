"""Users' ordinary mistakes, and hostile values on the wire: each gets a plain answer (an
error naming the problem), never a raw exception, a silent wrong answer or a dead backend."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import bell, spawned
from rawpipe import Pipe

from qibo_backend_numpy import NumpyBackend
from qibo_core import (
    Circuit,
    InvalidParams,
    Parameter,
    connect,
    gates,
)
from qibo_core.client.discovery import find_backend
from qibo_core.protocol import SUPPORTED_VERSIONS, ErrorCode, NewStateParams


@pytest.fixture(scope="module")
def pipe() -> Iterator[Pipe]:
    """qibo-backend-numpy in a version 3 session, driven line by line."""
    pipe = Pipe([find_backend("numpy")])
    assert pipe.call("initialize", {"protocolVersion": 3})["result"]["protocolVersion"] == 3
    yield pipe
    assert pipe.close() == 0


def error_of(pipe: Pipe, method: str, params: Any) -> dict[str, Any]:
    """The error a request earns; the backend must go on serving after it."""
    reply = pipe.call(method, params, request_id=7)
    assert "error" in reply, reply
    assert pipe.call("state/new", {"nqubits": 1}, request_id=8)["result"]["state"] > 0
    return reply["error"]  # type: ignore[no-any-return]


# ---- NumPy integers, and a backend that is not one ----------------------------------------

def test_numpy_integers_are_integers() -> None:
    c = Circuit(np.int64(2))
    c.add([gates.H(np.int64(0)), gates.CNOT(0, np.int32(1)), gates.M(0, 1)])
    with connect("numpy", threads=np.int64(1)) as handle:
        result = handle.execute(c, nshots=np.int64(10), seed=np.int64(3))
        assert sum(result.frequencies().values()) == 10
        assert np.allclose(result.probabilities(np.array([0, 1])), [0.5, 0, 0, 0.5])
        state = handle.new_state(2)
        state.apply(gates.X(np.uint8(1)))
        assert state.sample(np.int64(5), qubits=np.array([1]), seed=np.uint64(2)) == {"1": 5}


def test_no_backend_named_is_the_default_one() -> None:
    assert sum(bell().execute(backend=None, nshots=10).frequencies().values()) == 10


# ---- observables ----------------------------------------------------------------------------


def test_overflowing_observables_are_refused_by_the_backend(pipe: Pipe) -> None:
    state = pipe.call("state/new", {"nqubits": 2})["result"]["state"]
    observable = [{"coefficient": 1e308, "pauli": "Z0"}, {"coefficient": 1e308, "pauli": "Z1"}]
    error = error_of(pipe, "state/expectation", {"state": state, "observable": observable})
    assert error["code"] == ErrorCode.INVALID_PARAMS and "overflow" in error["message"]


# ---- gates, channels and numbers no circuit can hold --------------------------------------


ONE_QUBIT_KRAUS = [[[[1, 0], [0, 0]], [[0, 0], [1, 0]]]]


@pytest.mark.parametrize("entry, message", [
    ({"name": "KrausChannel", "qubits": [0], "kraus": ONE_QUBIT_KRAUS, "controls": [1]},
     "a channel takes no 'controls'"),
    ({"name": "KrausChannel", "qubits": [0], "kraus": ONE_QUBIT_KRAUS, "dagger": True},
     "a channel takes no 'dagger'"),
    ({"name": "KrausChannel", "qubits": [1], "kraus": ONE_QUBIT_KRAUS,
      "condition": {"register": "m"}}, "a channel takes no 'condition'"),
    ({"name": "RESET", "qubits": [1], "params": {"theta": 1.0}}, "RESET takes no 'params'"),
    ({"name": "M", "qubits": [1], "register": "n", "controls": [0]}, "M takes no 'controls'"),
    ({"name": "M", "qubits": [1], "register": "n", "params": {"theta": 1.0}},
     "M takes no 'params'"),
    ({"name": "H", "qubits": [1], "register": "n"}, "gate 'H' takes no 'register'"),
])
def test_fields_an_operation_does_not_take_are_refused(pipe: Pipe, entry: dict[str, Any],
                                                       message: str) -> None:
    """A field silently dropped would run another circuit than the one sent."""
    circuit = {"nqubits": 2, "gates": [{"name": "M", "qubits": [0], "register": "m"}, entry]}
    error = error_of(pipe, "execute", {"circuit": circuit})
    assert error["code"] == ErrorCode.INVALID_PARAMS and message in error["message"], error


def test_a_streamed_gate_with_kraus_operators_is_refused(pipe: Pipe) -> None:
    state = pipe.call("state/new", {"nqubits": 1})["result"]["state"]
    error = error_of(pipe, "state/apply", {"state": state, "gates": [
        {"name": "H", "qubits": [0], "kraus": ONE_QUBIT_KRAUS}]})
    assert "'kraus' and 'register' belong to channels and measurements" in error["message"]


@pytest.mark.parametrize("shape, message", [
    ([10**18, 0], "has a dimension over"),
    ([2**30, 0], "sets of values: at most"),
])
def test_absurd_parameter_sets_are_refused(pipe: Pipe, shape: list[int], message: str) -> None:
    prepared = pipe.call("circuit/prepare", {
        "circuit": {"nqubits": 1, "gates": [{"name": "H", "qubits": [0]}]}, "slots": [],
        "parameters": 0})["result"]["circuit"]
    error = error_of(pipe, "circuit/expectation", {
        "circuit": prepared, "parameters": {"dtype": "float64", "shape": shape, "data": ""},
        "observable": [{"coefficient": 1.0, "pauli": "Z0"}]})
    assert error["code"] == ErrorCode.INVALID_PARAMS and message in error["message"], error


def test_a_density_matrix_that_is_not_positive_is_refused() -> None:
    """[[0.5, 5], [5, 0.5]] is Hermitian of trace 1, and would give <Z> = 10 after H."""
    c = Circuit(1, density_matrix=True)
    c.add(gates.H(0))
    with connect(NumpyBackend()) as handle:
        with pytest.raises(Exception, match="not positive semidefinite"):
            handle.execute(c, initial_state=np.array([[0.5, 5], [5, 0.5]]))


# ---- prepared circuits follow their circuit's content ----------------------------------------

@pytest.mark.parametrize("kind", ["spawned", "in process"])
def test_a_circuit_edited_in_place_is_prepared_again(kind: str) -> None:
    c = Circuit(1)
    c.add(gates.RX(0, Parameter("t")))
    with connect("numpy" if kind == "spawned" else NumpyBackend()) as handle:
        assert handle.expectation(c, "Z0", parameters=[0.3]) == pytest.approx(np.cos(0.3))
        c.gates[0] = gates.RY(0, Parameter("t"))
        assert handle.expectation(c, "X0", parameters=[0.3]) == pytest.approx(np.sin(0.3))
        c.gates[0] = gates.H(0)
        c.add(gates.RZ(0, Parameter("t")))
        assert handle.expectation(c, "X0", parameters=[0.3]) == pytest.approx(np.cos(0.3))


def test_release_frees_what_the_backend_keeps_for_a_circuit() -> None:
    c = Circuit(1)
    c.add(gates.RX(0, Parameter("t")))
    with connect(NumpyBackend()) as handle:
        handle.expectation(c, "Z0", parameters=[0.1])
        handle.gradient(c, "Z0", parameters=[0.1])
        session = handle.transport._session  # type: ignore[attr-defined]
        assert len(session.prepared) == 2
        handle.release(c)
        handle.new_state(1)  # any request carries the frees before it
        assert not session.prepared
        assert handle.expectation(c, "Z0", parameters=[0.1]) == pytest.approx(np.cos(0.1))


# ---- a backend typed at by hand ----------------------------------------------------------

def test_a_backend_on_a_terminal_greets_and_ends_quietly_on_ctrl_c() -> None:
    main, terminal = pty.openpty()
    # A shell running the tests in the background ignores SIGINT, and children inherit that; a
    # terminal's Ctrl-C reaches a program with the default disposition, as restored here.
    process = subprocess.Popen([find_backend("numpy")], stdin=terminal, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(terminal)
    try:
        assert process.stderr is not None
        greeting = process.stderr.readline() + process.stderr.readline()
        versions = ", ".join(map(str, SUPPORTED_VERSIONS))
        assert f"a JSON-RPC 2.0 server (protocol versions {versions})" in greeting
        assert f'"params": {{"protocolVersion": {SUPPORTED_VERSIONS[-1]}}}' in greeting
        assert "Ctrl-D ends it" in process.stderr.readline()
        process.send_signal(signal.SIGINT)  # what Ctrl-C on a terminal sends
        out, err = process.communicate(timeout=20)
        assert process.returncode == 130 and out == "" and "Traceback" not in err, err
    finally:
        os.close(main)
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_a_backend_on_a_pipe_says_nothing_at_start() -> None:
    pipe = Pipe([find_backend("numpy")])
    pipe.initialize()
    assert pipe.close() == 0 and pipe.stderr_text == ""


@pytest.mark.parametrize("qubit, message", [
    ("1" + "0" * 30, "is over the largest, 2**31 - 1"),
    ("9" * 5000, "Integer value out of range - at `$.circuit.gates[0].qubits[0]`"),
])
def test_huge_qubit_indices_on_the_wire(pipe: Pipe, qubit: str, message: str) -> None:
    circuit = '{"nqubits": 1, "gates": [{"name": "H", "qubits": [' + qubit + ']}]}'
    line = ('{"jsonrpc": "2.0", "id": 5, "method": "execute", "params": {"circuit": '
            + circuit + "}}")
    pipe.send(line)
    reply = pipe.receive()
    assert reply["error"]["code"] == ErrorCode.INVALID_PARAMS, reply
    assert message in reply["error"]["message"]


def test_unknown_fields_that_look_misspelt_are_named(pipe: Pipe) -> None:
    circuit = {"nqubits": 1, "gates": [{"name": "RX", "qubits": [0], "parameters": {"theta": 1}}],
               "measurement": [{"qubits": [0]}]}
    error = error_of(pipe, "execute", {"circuit": circuit, "nshot": 10})
    message = error["message"]
    assert "missing parameter 'theta'" in message
    assert "$.circuit.gates[0]: 'parameters' is not a field; did you mean 'params'?" in message
    assert "$: 'nshot' is not a field; did you mean 'nshots'?" in message
    assert "'measurement' is not a field; did you mean 'measurements'?" in message


# ---- the environment and the command ---------------------------------------------------------

@pytest.mark.backends("qibojit")
def test_qibojit_takes_its_threads_from_numba_num_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")
    with connect("qibojit") as handle:
        assert handle.info.capabilities.threads == 1
        assert sum(handle.execute(bell(), nshots=10).frequencies().values()) == 10
    with pytest.raises(InvalidParams, match="numba runs at most 1 here"):
        connect("qibojit", threads=2)


def test_run_without_shots_shows_the_state(tmp_path: Path) -> None:
    program = tmp_path / "x.qasm"
    program.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nx q[1];\n')
    output = subprocess.run([sys.executable, "-m", "qibo_core.cli", "run", str(program),
                             "--shots", "0"], capture_output=True, text=True, check=True).stdout
    assert "|01>  +1.00000000+0.00000000j   1.000000" in output


def test_a_client_that_truncates_its_upload_does_not_kill_the_backend() -> None:
    """The backend copies an uploaded state out of the segment with pread: truncated while it
    reads, it answers InvalidParams (a mapping would have died of SIGBUS)."""
    n = 23
    amplitudes = np.full(2**n, 2 ** (-n / 2), dtype=complex)
    with spawned("numpy", descriptors=False) as handle:  # a client that uploads by segment
        pool = handle.arrays.segments
        assert pool is not None
        for delay in np.linspace(0, 0.04, 9):
            segment = pool.acquire(amplitudes.nbytes)
            assert segment is not None
            data = pool.copy_in(segment, amplitudes)
            cut = threading.Timer(delay, os.ftruncate, (segment.fd, 0))
            cut.start()
            try:
                handle.transport.request("state/new", NewStateParams(n, data))
            except InvalidParams as exc:
                assert "was it truncated?" in str(exc)
            cut.join()
            os.close(segment.fd)  # the pool's: it holds an empty file now
            assert sum(handle.execute(bell(), nshots=10).frequencies().values()) == 10
