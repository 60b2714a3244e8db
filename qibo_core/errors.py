"""Every exception qibo-core raises, under one root.

    QiboCoreError
    ├── UsageError              a call that cannot be made as asked: fix the call (a ValueError)
    │   ├── CircuitError        a gate or circuit is invalid
    │   │   └── InvalidGate     ...a gate of a list, which `index` names
    │   └── HandleClosed        the handle was closed; its states went with it
    ├── BackendNotFound         no qibo-backend-<name> executable: install one, or fix the name
    ├── ConfigError             the backends configuration file is invalid: fix the file
    ├── RequestTimeout          a request ran out of time and was cancelled; the backend is usable
    ├── ConnectionFailed        the backend process is unusable: connect again
    │   ├── BackendCrashed      it exited; carries the exit status and its last stderr lines
    │   │   └── StateLost       ...taking a state with it; State.replay() rebuilds it
    │   ├── BackendHung         it answered neither a request nor its cancellation (also a
    │   │                       RequestTimeout); it was terminated
    │   └── ProtocolError       it sent something that is not protocol
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

from .protocol.codes import ErrorCode
from .protocol.envelopes import ErrorObject


class QiboCoreError(Exception):
    """The root of every qibo-core exception."""


class UsageError(QiboCoreError, ValueError):
    """A call cannot be made as asked: an argument of the wrong type or out of range, or an
    object whose state does not allow it."""


class CircuitError(UsageError):
    """A gate or circuit is invalid."""


class InvalidGate(CircuitError):
    """A gate of a list is invalid; `index` is its position."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


class HandleClosed(UsageError):
    """The handle was closed: its backend, and every state it held, are gone."""


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


class ProtocolError(ConnectionFailed):
    """The backend sent something that breaks the protocol."""


class RequestTimeout(QiboCoreError):
    """A request did not finish within its timeout; it was cancelled, and the backend is still
    usable (unless this is also a BackendHung)."""


class BackendHung(ConnectionFailed, RequestTimeout):
    """The backend answered neither a request nor its cancellation in time: it was terminated."""


class BackendError(QiboCoreError):
    """The backend answered with a JSON-RPC error. Each subclass names its code (`code=`), which
    registers it: a client raises the class that the code of an error object stands for."""

    code: int = ErrorCode.INTERNAL_ERROR
    """The JSON-RPC error code: the class's, or the one received for codes we do not know."""
    by_code: ClassVar[dict[int, type[BackendError]]] = {}

    def __init_subclass__(cls, *, code: ErrorCode, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = code
        BackendError.by_code[code] = cls

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def to_error_object(self) -> ErrorObject:
        return ErrorObject(code=self.code, message=self.message,
                           **({} if self.data is None else {"data": self.data}))

    @staticmethod
    def from_object(error: ErrorObject) -> BackendError:
        """The exception a JSON-RPC error object stands for (BackendError for unknown codes)."""
        cls = BackendError.by_code.get(error.code, BackendError)
        exc = cls(error.message, None if error.data is UNSET else error.data)
        exc.code = error.code
        return exc


class ParseError(BackendError, code=ErrorCode.PARSE_ERROR):
    """A message was not valid JSON."""


class InvalidRequest(BackendError, code=ErrorCode.INVALID_REQUEST):
    """A message was JSON but not a valid request."""


class MethodNotFound(BackendError, code=ErrorCode.METHOD_NOT_FOUND):
    """The method does not exist."""


class InvalidParams(BackendError, code=ErrorCode.INVALID_PARAMS):
    """The params were of the wrong shape or out of range."""


class InternalError(BackendError, code=ErrorCode.INTERNAL_ERROR):
    """The backend failed in a way it did not anticipate."""


class UnsupportedProtocolVersion(BackendError, code=ErrorCode.UNSUPPORTED_PROTOCOL_VERSION):
    """The backend does not speak the requested protocol version."""


class ServerNotInitialized(BackendError, code=ErrorCode.SERVER_NOT_INITIALIZED):
    """A request came before `initialize`."""


class UnknownState(BackendError, code=ErrorCode.UNKNOWN_STATE):
    """No state with that id is held (never created, or freed)."""


class GateFailed(BackendError, code=ErrorCode.GATE_FAILED):
    """A streamed gate could not be applied; the state holds every gate before it."""


class StateTooLarge(BackendError, code=ErrorCode.STATE_TOO_LARGE):
    """A state would not fit in memory or exceeds the backend's maximum qubits."""


class RequestCancelled(BackendError, code=ErrorCode.REQUEST_CANCELLED):
    """The request was cancelled before it completed."""
