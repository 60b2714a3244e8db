"""The session on the reference backend, called directly: every method, its checks, the
version gate, streamed gates, and the table the session's handlers are registered in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qibo_core import (
    Circuit,
    GateFailed,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    ServerNotInitialized,
    StateTooLarge,
    UnknownState,
    gates,
)
from qibo_core.protocol import (
    METHODS,
    ApplyParams,
    CircuitRef,
    ExecuteParams,
    ExpectationParams,
    InitializeParams,
    Method,
    NewStateParams,
    PrepareParams,
    ProbabilitiesParams,
    ReadParams,
    SampleParams,
    SlotData,
    StateRef,
    TermData,
)
from qibo_core.server import Session
from qibo_core.server.backend import Counts
from qibo_core.server.registry import HANDLERS, NOTIFIED, handles
from qibo_core.server.shots import frequencies
from qibo_core.testing import ReferenceBackend

PROTOCOL = Path(__file__).parents[2] / "docs" / "protocol.md"


def session(version: int = 3) -> Session:
    s = Session(ReferenceBackend(), shared_memory=False)
    s.call(Method.INITIALIZE, InitializeParams(version))
    return s


def bell(nshots: int = 0) -> ExecuteParams[Any, Any]:
    c = Circuit(2)
    c.add([gates.H(0), gates.CNOT(0, 1), gates.M(0, 1)])
    return ExecuteParams(c, nshots, seed=7)


# ---- the method table ----------------------------------------------------------------------

def test_every_method_a_session_serves_has_one_handler() -> None:
    served = {name for name, spec in METHODS.items() if spec.session}
    assert set(HANDLERS) == served
    assert set(NOTIFIED) <= served


@pytest.mark.parametrize("method", ["state/teleport", Method.EXIT, Method.EXECUTE])
def test_a_handler_for_no_method_or_a_second_one_fails_at_once(method: str) -> None:
    with pytest.raises(LookupError):
        handles(method)


def test_the_table_and_the_specification_list_the_same_methods() -> None:
    text = PROTOCOL.read_text()
    headings = " ".join(re.findall(r"^###? [\d.]+ (.*)$", text, flags=re.M))
    named = set(re.findall(r"[a-z]+/[a-zA-Z]+|\$/[a-zA-Z]+", headings))
    named |= {m for m in ("initialize", "shutdown", "exit", "execute") if m in headings}
    mentioned = set(re.findall(r"`([a-z$]+/[a-zA-Z]+|initialize|shutdown|exit|execute)`", text))
    assert not named - set(METHODS), "in protocol.md's headings, not in protocol.METHODS"
    assert not set(METHODS) - named - mentioned, "in protocol.METHODS, not in protocol.md"


# ---- lifecycle and versions ------------------------------------------------------------------

def test_requests_before_initialize_and_a_second_initialize_are_refused() -> None:
    fresh = Session(ReferenceBackend())
    with pytest.raises(ServerNotInitialized, match="send 'initialize' first"):
        fresh.call(Method.STATE_NEW, NewStateParams(1))
    fresh.call(Method.INITIALIZE, InitializeParams(3))
    with pytest.raises(InvalidRequest, match="already received"):
        fresh.call(Method.INITIALIZE, InitializeParams(3))


def test_a_version_2_session_serves_neither_version_3_methods_nor_features() -> None:
    s = Session(ReferenceBackend())
    info = s.call(Method.INITIALIZE, InitializeParams(2))
    assert "expectation" not in info.capabilities.features and info.capabilities.devices is None
    with pytest.raises(MethodNotFound, match="a method of protocol version 3; this session "
                                             "speaks version 2"):
        s.call(Method.CIRCUIT_FREE, CircuitRef(1))


# ---- execute and states --------------------------------------------------------------------

def test_execute_holds_the_state_and_counts_the_shots() -> None:
    s = session()
    result = s.call(Method.EXECUTE, bell(100))
    assert sum(result.frequencies.values()) == 100 and set(result.frequencies) <= {"00", "11"}
    amplitudes = s.call(Method.STATE_READ, ReadParams(result.state))
    assert np.allclose(amplitudes, [2**-0.5, 0, 0, 2**-0.5])
    probabilities = s.call(Method.STATE_PROBABILITIES, ProbabilitiesParams(result.state, [1]))
    assert np.allclose(probabilities, [0.5, 0.5])
    counts = s.call(Method.STATE_SAMPLE, SampleParams(result.state, 10, [0, 1], 3))
    assert sum(counts.frequencies.values()) == 10
    s.call(Method.STATE_FREE, StateRef(result.state))
    with pytest.raises(UnknownState, match=f"no state {result.state} is held"):
        s.call(Method.STATE_READ, ReadParams(result.state))


@pytest.mark.parametrize("width, outcomes", [
    (10, np.arange(0, 1024, 3)),
    (18, np.arange(2**16 + 5) * 3),  # more outcomes than one block of rows
    (72, np.array([3, 2**70 + 5, 2**72 - 1], dtype=object)),  # wider than an int64
])
def test_frequencies_are_the_outcomes_bits_most_significant_first(width: int,
                                                                   outcomes: Any) -> None:
    counts = np.arange(1, len(outcomes) + 1)
    answer = frequencies(Counts(outcomes, counts), width)
    assert answer == {format(int(o), f"0{width}b"): int(c)
                      for o, c in zip(outcomes, counts, strict=True)}


@pytest.mark.parametrize("params, message", [
    (SampleParams(1, 10, []), "qubits is empty"),
    (SampleParams(1, 10, [0, 0]), "has repeats"),
    (SampleParams(1, 10, [2]), "qubit 2 is out of range"),
    (SampleParams(1, -1), "nshots must be between 0"),
])
def test_bad_qubits_and_shots_are_invalid_params(params: SampleParams, message: str) -> None:
    s = session()
    s.call(Method.STATE_NEW, NewStateParams(2))
    with pytest.raises(InvalidParams, match=message):
        s.call(Method.STATE_SAMPLE, params)


def test_a_state_that_does_not_fit_is_refused_before_it_is_made() -> None:
    with pytest.raises(StateTooLarge, match="exceed this backend's maximum"):
        session().call(Method.STATE_NEW, NewStateParams(200))


def test_a_streamed_gate_that_fails_is_reported_once_at_the_next_request() -> None:
    s = session()
    state = s.call(Method.STATE_NEW, NewStateParams(2)).state
    s.notify(Method.STATE_APPLY, ApplyParams(state, [gates.H(0), gates.X(5), gates.X(1)]))
    s.notify(Method.STATE_APPLY, ApplyParams(state, [gates.X(0)]))
    with pytest.raises(GateFailed, match=r"gate 1 \(X\).*the 2 gates streamed after it were "
                                         "skipped") as failure:
        s.call(Method.STATE_READ, ReadParams(state))
    assert failure.value.data["index"] == 1
    assert np.allclose(s.call(Method.STATE_READ, ReadParams(state)), [2**-0.5, 0, 2**-0.5, 0])


# ---- prepared circuits -----------------------------------------------------------------------

def test_prepared_circuits_take_sets_of_values() -> None:
    s = session()
    c = Circuit(1)
    c.add(gates.RX(0, 0.0))
    ref = s.call(Method.CIRCUIT_PREPARE, PrepareParams(c, [SlotData(0, "theta", 0)], 1))
    values = s.call(Method.CIRCUIT_EXPECTATION, ExpectationParams(
        ref.circuit, np.array([[0.0], [np.pi]]), [TermData(1.0, "Z0")]))
    assert np.allclose(values, [1, -1])
    s.call(Method.CIRCUIT_FREE, ref)
    with pytest.raises(InvalidParams, match="no circuit 1 is prepared"):
        s.call(Method.CIRCUIT_FREE, ref)
