"""Incoming messages decoded: a line (or frame) as a request, or the error response it earns,
and a request's params with the type the method table gives (the server loop, serve.py, runs
what they decode to)."""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import BackendError, InvalidParams, InvalidRequest, ParseError
from ..protocol import (
    METHODS,
    ArrayData,
    ExecuteManyParams,
    ExecuteParams,
    Frame,
    IncomingRequest,
    Method,
    Oversized,
    Response,
)
from ..protocol.misspellings import misspelled_fields

_request_decoder = msgspec.json.Decoder(IncomingRequest)
_params_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    method: msgspec.json.Decoder(spec.params) for method, spec in METHODS.items() if spec.params
}
_params_decoders[Method.EXECUTE] = msgspec.json.Decoder(ExecuteParams[msgspec.Raw, ArrayData])
_params_decoders[Method.EXECUTE_MANY] = msgspec.json.Decoder(
    ExecuteManyParams[msgspec.Raw, ArrayData])
"""execute's circuits are left as JSON: the session finds a circuit it ran before by its bytes
(known.py) and decodes only a new one."""
_NO_PARAMS = (b"null", b"{}", b"[]")


def decoded(line: bytes | Frame | Oversized,
            max_message_bytes: int) -> IncomingRequest | Response | None:
    """One input line (or frame) as a message, or the error response it earns (None: a
    blank line)."""
    if isinstance(line, Oversized):
        return error_response(None, InvalidRequest(
            f"message of {line.size} bytes exceeds the maximum of {max_message_bytes} "
            "(--max-message-bytes)"))
    frame = None
    if isinstance(line, Frame):
        frame, line = line, line.line
        if frame.problem:
            return error_response(_salvage_id(line), InvalidRequest(frame.problem))
    line = line.strip()
    if not line:
        return None
    try:
        message = _request_decoder.decode(line)
        if frame is not None:
            vars(message)["frame"] = frame
        return message
    except msgspec.ValidationError as exc:
        return error_response(_salvage_id(line), InvalidRequest(f"not a JSON-RPC request: {exc}"))
    except (msgspec.DecodeError, RecursionError) as exc:
        nan = b"NaN" in line or b"Infinity" in line
        hint = " (NaN and Infinity are not JSON numbers)" if nan else ""
        return error_response(None, ParseError(f"invalid JSON: {exc}{hint}"))


def decode_params(message: IncomingRequest) -> Any:
    """The params of `message`, decoded with its method's type; InvalidParams or ParseError
    saying what is wrong with them."""
    decoder = _params_decoders.get(message.method)
    raw = message.params
    absent = len(raw) <= 4 and bytes(raw) in _NO_PARAMS
    if decoder is None:
        if not absent:
            raise InvalidParams(f"{message.method!r} takes no params")
        return None
    if absent and bytes(raw) == b"null":
        raise InvalidParams(f"{message.method!r} needs params")
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise InvalidParams(f"invalid params for {message.method!r}: {exc}") from None
    except msgspec.DecodeError as exc:  # invalid UTF-8 inside the params, say
        raise ParseError(f"params for {message.method!r} are not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidParams(f"params for {message.method!r} are nested too deeply") from None


def with_misspellings(error: InvalidParams, message: IncomingRequest) -> InvalidParams:
    """The error, naming the unknown fields of the params that look like misspelt ones."""
    spec = METHODS.get(message.method)
    hints = misspelled_fields(message.params, spec.params) if spec and spec.params else []
    if not hints:
        return error
    return InvalidParams(f"{error.message} ({'; '.join(hints)})", error.data)


def error_response(request_id: Any, exc: BackendError) -> Response:
    """The response that answers `request_id` with `exc`."""
    return Response(id=request_id, error=exc.to_error_object())


class _IdOnly(msgspec.Struct):
    id: int | str | None = None


def _salvage_id(line: bytes) -> int | str | None:
    """The id of an invalid request, when one can be read, so the client can match the error."""
    try:
        return msgspec.json.decode(line, type=_IdOnly).id
    except (msgspec.DecodeError, RecursionError):
        return None


class _StateOnly(msgspec.Struct):
    state: int | None = None


def salvage_state(params: msgspec.Raw) -> int | None:
    """The state a `state/apply` whose gates cannot be decoded was meant for, when one can be
    read."""
    try:
        return msgspec.json.decode(params, type=_StateOnly).state
    except (msgspec.DecodeError, RecursionError):
        return None
