"""The JSON-RPC 2.0 envelopes that carry every message, as sent and as received: UNSET fields
are left out of the JSON."""

from __future__ import annotations

from typing import Any, Final

from msgspec import UNSET, Raw, Struct, UnsetType

JSONRPC: Final = "2.0"


class ErrorObject(Struct):
    code: int
    message: str
    data: Any = UNSET


class Request(Struct, kw_only=True):
    """A request or notification (no id) as sent: params is any Struct."""

    jsonrpc: str = JSONRPC
    id: int | str | UnsetType = UNSET
    method: str
    params: Any = UNSET


class IncomingRequest(Struct, dict=True):
    """A request or notification as received: params stay raw until the method is known. One
    that came as a Frame (version 4) carries it as the attribute `frame` until its params are
    decoded and bound."""

    jsonrpc: str
    method: str
    id: int | str | None | UnsetType = UNSET
    params: Raw = Raw(b"null")


class Response(Struct, kw_only=True):
    """A response as sent: exactly one of result and error."""

    jsonrpc: str = JSONRPC
    id: int | str | None
    result: Any = UNSET
    error: ErrorObject | UnsetType = UNSET


class IncomingResponse(Struct):
    """Any message a client receives: a response, or a notification when `method` is set."""

    jsonrpc: str
    id: int | str | None | UnsetType = UNSET
    result: Raw | UnsetType = UNSET
    error: ErrorObject | UnsetType = UNSET
    method: str | UnsetType = UNSET
    params: Raw = Raw(b"null")
