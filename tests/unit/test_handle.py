"""The Handle over a MemoryTransport: the client's whole path (encoding, the server's
decoding and checks, replies decoded and checked) with no process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from qibo_core import (
    Circuit,
    GateFailed,
    Handle,
    InvalidParams,
    Parameter,
    ProtocolError,
    UsageError,
    gates,
)
from qibo_core.protocol import Method
from qibo_core.testing import ReferenceBackend
from qibo_core.testing.memory import MemoryTransport


@pytest.fixture
def handle() -> Iterator[Handle]:
    with Handle(MemoryTransport(ReferenceBackend())) as h:
        yield h


def bell() -> Circuit:
    c = Circuit(2)
    c.add([gates.H(0), gates.CNOT(0, 1), gates.M(0, 1)])
    return c


def test_a_circuit_runs_and_its_state_reads_back(handle: Handle) -> None:
    result = handle.execute(bell(), nshots=100, seed=3, samples=True)
    assert sum(result.frequencies().values()) == 100
    assert result.samples().shape == (100, 2)
    assert np.allclose(result.state(), [2**-0.5, 0, 0, 2**-0.5])
    assert np.allclose(result.probabilities([0]), [0.5, 0.5])


def test_streamed_gates_leave_in_order_before_the_next_request(handle: Handle) -> None:
    state = handle.new_state(2).apply(gates.H(0), gates.CNOT(0, 1))
    assert np.allclose(state.read(), [2**-0.5, 0, 0, 2**-0.5])
    assert state.expectation("Z0 Z1") == pytest.approx(1)
    assert state.sample(10, seed=1).keys() <= {"00", "11"}


def test_a_failed_streamed_gate_leaves_the_history_as_the_state_is(handle: Handle) -> None:
    state = handle.new_state(2)
    state.apply(gates.H(0), gates.X(5), gates.X(1))  # X(5): outside, which the backend sees
    with pytest.raises(GateFailed, match=r"gate 1 \(X\)"):
        state.read()
    assert [g.name for g in state.history] == ["H"]
    assert np.allclose(state.read(), [2**-0.5, 0, 2**-0.5, 0])


def test_errors_of_the_server_keep_their_class(handle: Handle) -> None:
    with pytest.raises(InvalidParams, match="gate 0 \\(H\\): H\\(2\\) acts on qubit 2"):
        handle.request(Method.EXECUTE, {"circuit": {"nqubits": 2, "gates": [
            {"name": "H", "qubits": [2]}]}})


def test_expectation_values_and_gradients_on_prepared_circuits(handle: Handle) -> None:
    c = Circuit(1)
    c.add(gates.RY(0, Parameter("t")))
    values = handle.expectation(c, "Z0", parameters=np.array([[0.0], [np.pi / 2]]))
    assert np.allclose(values, [1, 0])
    assert handle.gradient(c, "X0", parameters=[0.3])[0] == pytest.approx(np.cos(0.3))


def test_bad_arguments_are_usage_errors_before_anything_is_sent(handle: Handle) -> None:
    sent = len(handle.transport.exchange)  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="nshots must be between 0"):
        handle.execute(bell(), nshots=-1)
    with pytest.raises(UsageError, match="qubits must be a list of integers"):
        handle.new_state(1).probabilities(["0"])  # type: ignore[list-item]
    assert len(handle.transport.exchange) == sent + 2  # state/new only (request and reply)


class Liar(ReferenceBackend):
    """Answers probabilities that are not a distribution."""

    def probabilities(self, state: Any, qubits: Any) -> np.ndarray:
        return np.array([0.5, 0.5, -3.0, 7.0])


def test_a_reply_that_is_not_what_was_asked_is_a_protocol_error() -> None:
    with Handle(MemoryTransport(Liar())) as handle:
        with pytest.raises(ProtocolError, match="not a distribution"):
            handle.new_state(2).probabilities()
