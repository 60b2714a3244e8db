"""Every exception qibo-core raises, under one root.

    QiboCoreError
    ├── CircuitError            a gate or circuit is invalid (also a ValueError)
    ├── InvalidArgument         a call was given a wrong argument (also a ValueError)
    ├── BackendNotFound         no qibo-backend-<name> executable
    ├── ConfigError             the backends configuration file is invalid
    ├── ConnectionFailed        the backend process is unusable
    │   ├── BackendCrashed      it exited; carries the exit status and its last stderr lines
    │   │   └── StateLost       ...taking a state with it; State.replay() rebuilds it
    │   ├── HandleClosed        you closed the handle; its states went with it
    │   ├── ProtocolError       it sent something that is not protocol
    │   └── RequestTimeout      it did not answer in time
    └── BackendError            it answered a request with a JSON-RPC error (code, message, data)
        ├── ParseError, InvalidRequest, MethodNotFound, InvalidParams, InternalError
        ├── UnsupportedProtocolVersion, ServerNotInitialized
        └── UnknownState, GateFailed, StateTooLarge, RequestCancelled

A backend raises BackendError subclasses; the server sends their code, message and data, and
the client raises the same class again from the code: in process or spawned, callers catch the
same exceptions.
"""

from __future__ import annotations

from typing import Any, ClassVar

from msgspec import UNSET

from .protocol import ErrorCode, ErrorObject


class QiboCoreError(Exception):
    """The root of every qibo-core exception."""


class CircuitError(QiboCoreError, ValueError):
    """A gate or circuit is invalid."""


class InvalidArgument(QiboCoreError, ValueError):
    """A call was given an argument of the wrong type or out of range."""


class BackendNotFound(QiboCoreError):
    """No qibo-backend-<name> executable was found."""


class ConfigError(QiboCoreError):
    """The backends configuration file cannot be read or is malformed."""


class ConnectionFailed(QiboCoreError):
    """The backend process can no longer be used."""


class BackendCrashed(ConnectionFailed):
    """The backend process exited while requests were pending or before it was closed."""

    def __init__(self, message: str, *, returncode: int | None = None,
                 stderr_tail: list[str] | None = None) -> None:
        self.returncode = returncode
        self.stderr_tail = stderr_tail or []
        if self.stderr_tail:
            message += "\nlast lines of its stderr:\n  " + "\n  ".join(self.stderr_tail)
        super().__init__(message)


class StateLost(BackendCrashed):
    """A state died with its backend; `State.replay()` rebuilds it from the gates sent."""

    @classmethod
    def after(cls, crash: BackendCrashed, state: Any) -> StateLost:
        message = str(crash).split("\nlast lines", 1)[0]
        return cls(f"{message}; state {state.id} ({state.nqubits} qubits, "
                   f"{len(state.history)} gates streamed) is lost with it: state.replay() "
                   "rebuilds it on a fresh backend", returncode=crash.returncode,
                   stderr_tail=crash.stderr_tail)


class HandleClosed(ConnectionFailed):
    """The handle was closed: its backend, and every state it held, are gone."""


class ProtocolError(ConnectionFailed):
    """The backend sent something that breaks the protocol."""


class RequestTimeout(ConnectionFailed):
    """The backend did not answer within the timeout."""


class BackendError(QiboCoreError):
    """The backend answered with a JSON-RPC error."""

    code: ClassVar[int] = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def to_error_object(self) -> ErrorObject:
        return ErrorObject(code=self.code, message=self.message,
                           **({} if self.data is None else {"data": self.data}))


class ParseError(BackendError):
    """A message was not valid JSON."""

    code = ErrorCode.PARSE_ERROR


class InvalidRequest(BackendError):
    """A message was JSON but not a valid request."""

    code = ErrorCode.INVALID_REQUEST


class MethodNotFound(BackendError):
    """The method does not exist."""

    code = ErrorCode.METHOD_NOT_FOUND


class InvalidParams(BackendError):
    """The params were of the wrong shape or out of range."""

    code = ErrorCode.INVALID_PARAMS


class InternalError(BackendError):
    """The backend failed in a way it did not anticipate."""

    code = ErrorCode.INTERNAL_ERROR


class UnsupportedProtocolVersion(BackendError):
    """The backend does not speak the requested protocol version."""

    code = ErrorCode.UNSUPPORTED_PROTOCOL_VERSION


class ServerNotInitialized(BackendError):
    """A request came before `initialize`."""

    code = ErrorCode.SERVER_NOT_INITIALIZED


class UnknownState(BackendError):
    """No state with that id is held (never created, or freed)."""

    code = ErrorCode.UNKNOWN_STATE


class GateFailed(BackendError):
    """A streamed gate could not be applied; the state holds every gate before it."""

    code = ErrorCode.GATE_FAILED


class StateTooLarge(BackendError):
    """A state would not fit in memory or exceeds the backend's maximum qubits."""

    code = ErrorCode.STATE_TOO_LARGE


class RequestCancelled(BackendError):
    """The request was cancelled before it completed."""

    code = ErrorCode.REQUEST_CANCELLED


ERRORS_BY_CODE: dict[int, type[BackendError]] = {
    cls.code: cls for cls in (ParseError, InvalidRequest, MethodNotFound, InvalidParams,
                              InternalError, UnsupportedProtocolVersion, ServerNotInitialized,
                              UnknownState, GateFailed, StateTooLarge, RequestCancelled)
}


def error_from_object(error: ErrorObject) -> BackendError:
    """The exception a JSON-RPC error object stands for (BackendError for codes we do not know)."""
    cls = ERRORS_BY_CODE.get(error.code, BackendError)
    exc = cls(error.message, None if error.data is UNSET else error.data)
    exc.code = error.code  # type: ignore[misc]
    return exc
