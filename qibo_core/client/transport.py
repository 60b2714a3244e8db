"""Transport: how a Handle reaches its backend, in this process (local.py) or spawned
(spawned.py). Code that runs circuits never asks which one it has."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Protocol

import msgspec

from ..errors import ProtocolError
from ..protocol import METHODS, DescriptorOffer, Frame, bind


class Call:
    """One call of an async caller, running on a worker thread: the transport says here how to
    cancel the request it sent, so that the event loop can cancel exactly that one."""

    def __init__(self) -> None:
        self._cancel: Callable[[], None] | None = None
        self.cancelled = False

    def sent(self, cancel: Callable[[], None]) -> None:
        self._cancel = cancel
        if self.cancelled:
            cancel()

    def cancel(self) -> None:
        self.cancelled = True
        if self._cancel is not None:
            self._cancel()


current_call: ContextVar[Call | None] = ContextVar("qibo_core_call", default=None)
"""The Call the current request belongs to (set by the async API, read by the transport)."""


class Transport(Protocol):
    """Requests and notifications to one backend; results come back decoded with the type the
    method table (protocol.METHODS) gives: an Array result as ArrayData from a spawned backend,
    as a NumPy array from one in this process."""

    name: str
    shares_memory: bool
    """True when the backend runs on this host, so shared-memory segments can reach it."""
    frames: bool
    """True when messages cross a byte stream, so binary frames can be asked for."""
    descriptor_offer: DescriptorOffer | None
    """Where the backend finds a descriptor socket of ours, if it has one (version 4)."""
    max_request_bytes: int | None
    """The longest message the backend reads (from `initialize`): longer ones are refused."""

    def agree(self, binary: bool, descriptors: bool) -> None:
        """Move arrays from now on as `initialize` agreed (binary frames, sealed memfds)."""

    def request(self, method: str, params: Any, timeout: float | None = None) -> Any: ...
    def notify(self, method: str, params: Any, *, now: bool = True) -> None:
        """Send a notification; `now=False`: a request follows at once, and it may leave with
        it (in one write)."""
    def cancel(self) -> None: ...
    def watch(self, token: int | str, callback: Callable[[int, int], None] | None) -> None: ...
    def close(self) -> None: ...
    @property
    def alive(self) -> bool: ...


_result_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    method: msgspec.json.Decoder(spec.result) for method, spec in METHODS.items()
    if spec.result is not None}


def decoded_result(method: str, raw: msgspec.Raw, backend: str,
                   frame: Frame | None = None) -> Any:
    """A response's result, decoded with the method's result type (protocol.METHODS), its
    arrays bound to what `frame` carried (attachments, descriptors); a result of another shape
    is a ProtocolError quoting it."""
    decoder = _result_decoders.get(method)
    try:
        result = msgspec.json.decode(raw) if decoder is None else decoder.decode(raw)
        if frame is not None:
            bind(result, frame)
        return result
    except (msgspec.DecodeError, ValueError) as exc:
        raise ProtocolError(f"backend {backend!r} answered {method!r} with an invalid result: "
                            f"{exc}: {quoted(bytes(raw))}") from None


def quoted(line: bytes, limit: int = 200) -> str:
    """A line of the exchange as an error message quotes it: at most `limit` characters."""
    text = line.decode("utf-8", errors="replace").rstrip("\n")
    return repr(text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)")
