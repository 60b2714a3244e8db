"""Protocol version 4's runs: execute answering its state inline (`read`), holding none
(`keep`), running a prepared circuit with one set of values, and execute/many; by hand on the
wire and through the Handle, on every backend kind."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from helpers import bell
from rawpipe import Pipe

from qibo_core import Circuit, Handle, Parameter, UsageError, connect, gates
from qibo_core.client.discovery import find_backend
from qibo_core.client.spawned import ProcessTransport
from qibo_core.protocol import ArrayData, ErrorCode, Method, StateRef, decode_array

BELL = {"nqubits": 2, "gates": [{"name": "H", "qubits": [0]}, {"name": "CNOT", "qubits": [0, 1]}],
        "measurements": [{"qubits": [0, 1]}]}
RY = {"nqubits": 1, "gates": [{"name": "RY", "qubits": [0], "params": {"theta": 0.0}}]}


@pytest.fixture(params=["numpy", "qulacs"])
def pipe(request: pytest.FixtureRequest) -> Iterator[Pipe]:
    pipe = Pipe([find_backend(request.param)])
    assert pipe.call("initialize", {"protocolVersion": 4})["result"]["protocolVersion"] == 4
    yield pipe
    assert pipe.close() == 0


def amplitudes(reply: dict[str, Any]) -> np.ndarray:
    return decode_array(ArrayData(**reply["result"]["amplitudes"]))


def test_read_answers_the_state_with_the_reply_and_keep_false_holds_none(pipe: Pipe) -> None:
    reply = pipe.call("execute", {"circuit": BELL, "read": True})
    assert np.allclose(amplitudes(reply), [2**-0.5, 0, 0, 2**-0.5])
    held = reply["result"]["state"]
    read = pipe.call("state/read", {"state": held})["result"]
    assert np.allclose(decode_array(ArrayData(**read)), amplitudes(reply))

    reply = pipe.call("execute", {"circuit": BELL, "nshots": 10, "seed": 1, "keep": False})
    assert "state" not in reply["result"] and sum(reply["result"]["frequencies"].values()) == 10
    assert pipe.call("state/read", {"state": held + 1})["error"]["code"] == \
        ErrorCode.UNKNOWN_STATE  # nothing was held


def test_a_prepared_circuit_runs_with_its_values(pipe: Pipe) -> None:
    slots = [{"gate": 0, "param": "theta", "parameter": 0}]
    prepared = pipe.call("circuit/prepare", {"circuit": RY, "slots": slots, "parameters": 1})
    circuit = prepared["result"]["circuit"]
    for theta in (0.3, 2.0):
        reply = pipe.call("execute", {"prepared": circuit, "parameters": [theta], "read": True,
                                      "keep": False})
        assert np.allclose(amplitudes(reply), [np.cos(theta / 2), np.sin(theta / 2)])
    for params, message in [
        ({"prepared": circuit, "parameters": [1, 2]}, "takes sets of 1 values"),
        ({"prepared": circuit + 1, "parameters": [1]}, f"no circuit {circuit + 1} is prepared"),
        ({"prepared": circuit, "parameters": [1], "circuit": RY}, "not both"),
        ({"nshots": 1}, "execute needs a 'circuit'"),
    ]:
        error = pipe.call("execute", params)["error"]
        assert error["code"] == ErrorCode.INVALID_PARAMS and message in error["message"], error


def test_execute_many_answers_each_run_in_order(pipe: Pipe) -> None:
    flipped = {"nqubits": 1, "gates": [{"name": "X", "qubits": [0]}],
               "measurements": [{"qubits": [0]}]}
    reply = pipe.call("execute/many", {"runs": [
        {"circuit": BELL, "nshots": 100, "seed": 3, "keep": False},
        {"circuit": flipped, "read": True},
        {"circuit": BELL, "nshots": 100, "seed": 3, "keep": False}]})
    first, second, third = reply["result"]["results"]
    assert first == third and set(first["frequencies"]) <= {"00", "11"}
    assert np.allclose(decode_array(ArrayData(**second["amplitudes"])), [0, 1])
    assert pipe.call("state/free", {"state": second["state"]})["result"] is None


def test_a_failed_run_names_itself_and_frees_what_the_others_hold(pipe: Pipe) -> None:
    bad = {"nqubits": 1, "gates": [{"name": "NOPE", "qubits": [0]}]}
    reply = pipe.call("execute/many", {"runs": [{"circuit": BELL}, {"circuit": bad}]})
    error = reply["error"]
    assert error["code"] == ErrorCode.INVALID_PARAMS and error["message"].startswith("run 1: ")
    assert error["data"]["run"] == 1
    state = pipe.call("execute", {"circuit": BELL})["result"]["state"]
    assert pipe.call("state/free", {"state": state - 1})["error"]["code"] == \
        ErrorCode.UNKNOWN_STATE  # run 0's state was freed


@pytest.mark.parametrize("version", [1, 2, 3])
def test_older_sessions_refuse_what_version_4_brought(version: int) -> None:
    pipe = Pipe([find_backend("numpy")])
    try:
        pipe.call("initialize", {"protocolVersion": version})
        for field in ({"read": True}, {"keep": False}, {"prepared": 1}, {"parameters": [1]}):
            error = pipe.call("execute", {"circuit": BELL, **field})["error"]
            assert error["code"] == ErrorCode.INVALID_PARAMS, error
            assert f"{next(iter(field))!r} is a field of execute from protocol version 4" in \
                error["message"]
        error = pipe.call("execute/many", {"runs": []})["error"]
        assert error["code"] == ErrorCode.METHOD_NOT_FOUND
    finally:
        pipe.close()


# ---- through the Handle ------------------------------------------------------------------------

@pytest.fixture(params=["numpy", "qulacs", "numpy-in-process"])
def handle(request: pytest.FixtureRequest) -> Iterator[Handle]:
    if request.param == "numpy-in-process":
        from qibo_backend_numpy import NumpyBackend
        with connect(NumpyBackend()) as handle:
            yield handle
        return
    with connect(request.param) as handle:
        yield handle


def test_a_small_state_is_one_request(handle: Handle) -> None:
    requests: list[str] = []
    transport_request = handle.transport.request
    handle.transport.request = lambda method, *a, **k: (  # type: ignore[method-assign]
        requests.append(method), transport_request(method, *a, **k))[1]
    result = handle.execute(bell())
    assert np.allclose(result.state(), [2**-0.5, 0, 0, 2**-0.5])
    assert np.allclose(result.probabilities([1]), [0.5, 0.5])
    assert requests == [Method.EXECUTE]
    assert np.allclose(result.final_state.read(), result.state())  # it is held too


def test_a_parametrized_circuit_is_prepared_once_and_run_with_values(handle: Handle) -> None:
    theta = Parameter("theta")
    c = Circuit(2)
    c.add([gates.RY(0, theta), gates.CNOT(0, 1), gates.RZ(1, theta)])
    for value in (0.1, 0.7, 2.5):
        expected = c.bind([value]).execute(handle).state()  # bound and sent
        assert np.allclose(handle.execute(c, parameters=[value]).state(), expected)
    assert len(handle.prepared._ids) == 1
    with pytest.raises(UsageError, match="one set of values"):
        handle.execute(c, parameters=[[0.1], [0.2]])


def test_execute_many_gives_what_execute_gives(handle: Handle) -> None:
    rng = np.random.default_rng(5)
    circuits = []
    for _ in range(12):
        c = Circuit(3)
        c.add(gates.U3(q, *rng.uniform(0, 3, 3)) for q in range(3))
        c.add([gates.CNOT(0, 1), gates.CZ(1, 2), gates.M(0, 1, 2)])
        circuits.append(c)
    shots = handle.execute_many(circuits, nshots=200, seed=9)
    again = handle.execute_many(circuits, nshots=200, seed=9)
    assert [r.frequencies() for r in shots] == [r.frequencies() for r in again]
    for result in shots:
        assert sum(result.frequencies().values()) == 200 and result.final_state is None
        with pytest.raises(UsageError, match="kept no final state"):
            result.state()
    states = handle.execute_many([c.copy() for c in circuits])
    for c, result in zip(circuits, states, strict=True):
        assert np.allclose(result.state(), handle.execute(c).state())


VERSION_3_NUMPY = ("import qibo_core.server.lifecycle as lifecycle; "
                   "lifecycle.SUPPORTED_VERSIONS = (1, 2, 3); "
                   "import qibo_backend_numpy; qibo_backend_numpy.main()")
"""The NumPy backend speaking versions 1 to 3, as a backend released before version 4."""


def test_execute_many_to_a_version_3_backend_runs_one_by_one() -> None:
    transport = ProcessTransport([sys.executable, "-c", VERSION_3_NUMPY], name="numpy-v3")
    with Handle(transport) as old:
        assert old.protocol_version == 3
        results = old.execute_many([bell(), bell()], nshots=50, seed=1)
        assert [sum(r.frequencies().values()) for r in results] == [50, 50]
        assert np.isclose(old.execute(bell()).state()[0], 2**-0.5)  # read back: no `read`
        theta = Parameter("theta")
        c = Circuit(1)
        c.add(gates.RY(0, theta))
        assert np.allclose(old.execute(c, parameters=[np.pi]).state(), [0, 1])  # bound


def test_freed_states_leave_with_the_next_request(handle: Handle) -> None:
    state = handle.execute(bell()).final_state
    state_id = state.id
    del state
    gc.collect()
    handle.execute(bell())
    with pytest.raises(Exception, match="no state"):
        handle.transport.request(Method.STATE_READ, StateRef(state_id))
