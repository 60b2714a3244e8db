"""The protocol both ends share: messages, methods, error codes, arrays and framing, and the
maths on states that both ends do (state_maths.py).

docs/protocol.md is the contract in prose; this package is the same contract in code.
"""

from .arrays import WireEncoder, bind, decode_array, encode_array, encoder
from .codes import ErrorCode
from .envelopes import (
    JSONRPC,
    ErrorObject,
    IncomingRequest,
    IncomingResponse,
    Request,
    Response,
)
from .framing import TIMEOUT, Frame, LineReader, Oversized, TimedOut
from .handshake import (
    DEVICES_SINCE,
    FEATURE_VERSIONS,
    RUNS_SINCE,
    TRANSFER_SINCE,
    Capabilities,
    ClientInfo,
    DescriptorOffer,
    Feature,
    InitializeOptions,
    InitializeParams,
    InitializeResult,
    Precision,
    ServerInfo,
)
from .messages import (
    EXECUTABLE_PREFIX,
    MAX_SETS,
    MAX_SHOTS,
    SEED_LIMIT,
    SHM_DIR,
    SHM_PREFIX,
    STATE_ENCODINGS,
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
    MeasurementData,
    NewStateParams,
    PrepareParams,
    ProbabilitiesParams,
    ProgressParams,
    ProgressValue,
    ReadParams,
    SampleParams,
    SampleResult,
    SegmentRef,
    SlotData,
    StateExpectationParams,
    StateRef,
    TermData,
    shots_problem,
)
from .methods import METHODS, PROTOCOL_VERSION, SUPPORTED_VERSIONS, Method, MethodSpec

__all__ = [
    "ApplyParams", "ArrayData", "AttachParams", "CancelParams", "Capabilities", "CircuitData",
    "CircuitRef", "ClientInfo", "decode_array", "DescriptorOffer", "DEVICES_SINCE",
    "encode_array", "encoder", "ErrorCode", "ErrorObject", "EXECUTABLE_PREFIX",
    "ExecuteManyParams", "ExecuteManyResult", "ExecuteParams", "ExecuteResult",
    "ExpectationParams", "Feature", "FEATURE_VERSIONS", "Frame", "GateData", "IncomingRequest",
    "IncomingResponse", "InitializeOptions", "InitializeParams", "InitializeResult", "JSONRPC",
    "LineReader", "MAX_SETS", "MAX_SHOTS", "MeasurementData", "Method", "METHODS", "MethodSpec",
    "NewStateParams", "Oversized", "Precision", "PrepareParams", "ProbabilitiesParams",
    "ProgressParams", "ProgressValue", "PROTOCOL_VERSION", "ReadParams", "Request", "Response",
    "RUNS_SINCE", "SampleParams", "SampleResult", "SEED_LIMIT", "SegmentRef", "ServerInfo",
    "SHM_DIR", "SHM_PREFIX", "shots_problem", "SlotData", "STATE_ENCODINGS",
    "StateExpectationParams", "StateRef", "SUPPORTED_VERSIONS", "TermData", "TimedOut",
    "TIMEOUT", "TRANSFER_SINCE", "WireEncoder", "bind",
]
