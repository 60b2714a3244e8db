"""Every method of the protocol: its name, its params and result types, and the versions.

`METHOD_TYPES` is the one table both ends read: the server decodes params with it, the client
decodes results with it.
"""

from __future__ import annotations

from typing import Final

from .messages import (
    ApplyParams,
    ArrayData,
    AttachParams,
    CancelParams,
    CircuitData,
    CircuitRef,
    ExecuteParams,
    ExecuteResult,
    ExpectationParams,
    GateData,
    InitializeParams,
    InitializeResult,
    NewStateParams,
    PrepareParams,
    ProbabilitiesParams,
    ReadParams,
    SampleParams,
    SampleResult,
    SegmentRef,
    StateExpectationParams,
    StateRef,
)

PROTOCOL_VERSION: Final = 3
"""The version this package speaks by default: the newest."""
SUPPORTED_VERSIONS: Final = (1, 2, 3)


class Method:
    """Every method name, defined once."""

    INITIALIZE: Final = "initialize"
    SHUTDOWN: Final = "shutdown"
    EXIT: Final = "exit"
    EXECUTE: Final = "execute"
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


METHOD_TYPES: Final[dict[str, tuple[type | None, type | None]]] = {
    Method.INITIALIZE: (InitializeParams, InitializeResult),
    Method.SHUTDOWN: (None, None),
    Method.EXIT: (None, None),
    Method.EXECUTE: (ExecuteParams[CircuitData, ArrayData], ExecuteResult),
    Method.STATE_NEW: (NewStateParams[ArrayData], StateRef),
    Method.STATE_APPLY: (ApplyParams[GateData], None),
    Method.STATE_READ: (ReadParams, ArrayData),
    Method.STATE_PROBABILITIES: (ProbabilitiesParams, ArrayData),
    Method.STATE_SAMPLE: (SampleParams, SampleResult),
    Method.STATE_FREE: (StateRef, None),
    Method.STATE_EXPECTATION: (StateExpectationParams, float),
    Method.CIRCUIT_PREPARE: (PrepareParams[CircuitData], CircuitRef),
    Method.CIRCUIT_EXPECTATION: (ExpectationParams[ArrayData], ArrayData),
    Method.CIRCUIT_FREE: (CircuitRef, None),
    Method.SHM_ATTACH: (AttachParams, SegmentRef),
    Method.SHM_DETACH: (SegmentRef, None),
    Method.CANCEL_REQUEST: (CancelParams, None),
}
"""Each method's params and result types (None: no params / a null result)."""

METHOD_VERSIONS: Final = {Method.CIRCUIT_PREPARE: 3, Method.CIRCUIT_EXPECTATION: 3,
                          Method.CIRCUIT_FREE: 3, Method.STATE_EXPECTATION: 3}
"""Methods a later protocol version brought: a session of an older one does not serve them."""
