"""The error codes of the protocol: JSON-RPC's standard ones, then ours in -32000..-32099."""

from __future__ import annotations

import enum


class ErrorCode(enum.IntEnum):
    """JSON-RPC's standard codes, then ours in -32000..-32099."""

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    UNSUPPORTED_PROTOCOL_VERSION = -32001
    SERVER_NOT_INITIALIZED = -32002
    UNKNOWN_STATE = -32003
    GATE_FAILED = -32004
    STATE_TOO_LARGE = -32005
    REQUEST_CANCELLED = -32006
