"""The protocol both ends share: messages, methods, error codes, arrays and framing.

docs/protocol.md is the contract in prose; this package is the same contract in code.
"""

from .arrays import decode_array, encode_array, encoder
from .codes import ErrorCode
from .framing import TIMEOUT, LineReader, Oversized, TimedOut
from .messages import (
    DEVICES_SINCE,
    EXECUTABLE_PREFIX,
    FEATURE_VERSIONS,
    JSONRPC,
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
    Capabilities,
    CircuitData,
    CircuitRef,
    ClientInfo,
    ErrorObject,
    ExecuteParams,
    ExecuteResult,
    ExpectationParams,
    Feature,
    GateData,
    IncomingRequest,
    IncomingResponse,
    InitializeOptions,
    InitializeParams,
    InitializeResult,
    MeasurementData,
    NewStateParams,
    Precision,
    PrepareParams,
    ProbabilitiesParams,
    ProgressParams,
    ProgressValue,
    ReadParams,
    Request,
    Response,
    SampleParams,
    SampleResult,
    SegmentRef,
    ServerInfo,
    SlotData,
    StateExpectationParams,
    StateRef,
    TermData,
    shots_problem,
)
from .methods import METHODS, PROTOCOL_VERSION, SUPPORTED_VERSIONS, Method, MethodSpec

__all__ = [
    "ApplyParams", "ArrayData", "AttachParams", "CancelParams", "Capabilities", "CircuitData",
    "CircuitRef", "ClientInfo", "DEVICES_SINCE", "EXECUTABLE_PREFIX", "ErrorCode", "ErrorObject",
    "ExecuteParams", "ExecuteResult", "ExpectationParams", "FEATURE_VERSIONS", "Feature",
    "GateData", "IncomingRequest", "IncomingResponse", "InitializeOptions", "InitializeParams",
    "InitializeResult", "JSONRPC", "LineReader", "MAX_SETS", "MAX_SHOTS", "METHODS",
    "MeasurementData", "Method", "MethodSpec", "NewStateParams", "Oversized", "PROTOCOL_VERSION",
    "Precision", "PrepareParams", "ProbabilitiesParams", "ProgressParams", "ProgressValue",
    "ReadParams", "Request", "Response", "SEED_LIMIT", "SHM_DIR", "SHM_PREFIX", "STATE_ENCODINGS",
    "SUPPORTED_VERSIONS", "SampleParams", "SampleResult", "SegmentRef", "ServerInfo", "SlotData",
    "StateExpectationParams", "StateRef", "TIMEOUT", "TermData", "TimedOut", "decode_array",
    "encode_array", "encoder", "shots_problem",
]
