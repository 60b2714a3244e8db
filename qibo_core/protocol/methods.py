"""Every method of the protocol, in one table: its name, its params and result types, the
version that brought it, and whether it answers an array.

Both ends derive what they do from `METHODS` and never restate it: the server decodes params
and gates methods by version with it, the session dispatches to the handler registered for
each entry (a handler for a method not in the table, or two for one, fail at import), and the
client decodes results with it. docs/protocol.md lists the same methods (a test holds the two
together).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .handshake import (
    Feature,
    InitializeParams,
    InitializeResult,
)
from .messages import (
    ApplyParams,
    ArrayData,
    AttachParams,
    CancelParams,
    CircuitData,
    CircuitRef,
    ExecuteManyParams,
    ExecuteManyResult,
    ExecuteParams,
    ExecuteResult,
    ExpectationParams,
    GateData,
    NewStateParams,
    PrepareParams,
    ProbabilitiesParams,
    ProgressParams,
    ReadParams,
    SampleParams,
    SampleResult,
    SegmentRef,
    StateExpectationParams,
    StateRef,
)

PROTOCOL_VERSION: Final = 4
"""The version this package speaks by default: the newest."""
SUPPORTED_VERSIONS: Final = (1, 2, 3, 4)


class Method:
    """Every method name, defined once."""

    INITIALIZE: Final = "initialize"
    SHUTDOWN: Final = "shutdown"
    EXIT: Final = "exit"
    EXECUTE: Final = "execute"
    EXECUTE_MANY: Final = "execute/many"
    STATE_NEW: Final = "state/new"
    STATE_APPLY: Final = "state/apply"
    STATE_READ: Final = "state/read"
    STATE_PROBABILITIES: Final = "state/probabilities"
    STATE_SAMPLE: Final = "state/sample"
    STATE_FREE: Final = "state/free"
    STATE_EXPECTATION: Final = "state/expectation"
    CIRCUIT_PREPARE: Final = "circuit/prepare"
    CIRCUIT_EXPECTATION: Final = "circuit/expectation"
    CIRCUIT_FREE: Final = "circuit/free"
    SHM_ATTACH: Final = "shm/attach"
    SHM_DETACH: Final = "shm/detach"
    CANCEL_REQUEST: Final = "$/cancelRequest"
    PROGRESS: Final = "$/progress"


@dataclass(frozen=True)
class MethodSpec:
    """What the protocol says of one method."""

    name: str
    params: type | None
    """The params' Struct; None: the method takes no params."""
    result: type | None
    """The result's type; None: the result is null (or the method is a notification)."""
    since: int = 1
    """The protocol version that brought it: a session of an older one does not serve it."""
    feature: str | None = None
    """The capability feature that offers it, if it is optional."""
    array: bool = False
    """The result is an Array: an in-process caller gets a NumPy array instead."""
    session: bool = True
    """Served by the session; False for what the server loop itself acts on (exit,
    cancellation) and what only a backend sends (progress)."""


METHODS: Final[dict[str, MethodSpec]] = {spec.name: spec for spec in (
    MethodSpec(Method.INITIALIZE, InitializeParams, InitializeResult),
    MethodSpec(Method.SHUTDOWN, None, None),
    MethodSpec(Method.EXIT, None, None, session=False),
    MethodSpec(Method.EXECUTE, ExecuteParams[CircuitData, ArrayData], ExecuteResult[ArrayData]),
    MethodSpec(Method.EXECUTE_MANY, ExecuteManyParams[CircuitData, ArrayData],
               ExecuteManyResult[ArrayData], since=4),
    MethodSpec(Method.STATE_NEW, NewStateParams[ArrayData], StateRef),
    MethodSpec(Method.STATE_APPLY, ApplyParams[GateData], None),
    MethodSpec(Method.STATE_READ, ReadParams, ArrayData, array=True),
    MethodSpec(Method.STATE_PROBABILITIES, ProbabilitiesParams, ArrayData, array=True),
    MethodSpec(Method.STATE_SAMPLE, SampleParams, SampleResult),
    MethodSpec(Method.STATE_FREE, StateRef, None),
    MethodSpec(Method.STATE_EXPECTATION, StateExpectationParams, float, since=3,
               feature=Feature.EXPECTATION),
    MethodSpec(Method.CIRCUIT_PREPARE, PrepareParams[CircuitData], CircuitRef, since=3,
               feature=Feature.EXPECTATION),
    MethodSpec(Method.CIRCUIT_EXPECTATION, ExpectationParams[ArrayData], ArrayData, since=3,
               feature=Feature.EXPECTATION, array=True),
    MethodSpec(Method.CIRCUIT_FREE, CircuitRef, None, since=3, feature=Feature.EXPECTATION),
    MethodSpec(Method.SHM_ATTACH, AttachParams, SegmentRef),
    MethodSpec(Method.SHM_DETACH, SegmentRef, None),
    MethodSpec(Method.CANCEL_REQUEST, CancelParams, None, session=False),
    MethodSpec(Method.PROGRESS, ProgressParams, None, session=False),
)}
"""Every method, by name."""
