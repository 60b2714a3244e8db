"""Connection: one backend after the handshake, and the requests of the protocol to it.

What states, prepared circuits and the Handle (handle.py, which runs circuits) are built on:
the Transport below (in process or spawned), the Outbox that orders streamed gates before
other messages, the ArrayTransfer that moves arrays through shared memory when it can.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import HandleClosed, UnsupportedProtocolVersion, UsageError
from ..protocol import (
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    TRANSFER_SINCE,
    ClientInfo,
    InitializeOptions,
    InitializeParams,
    InitializeResult,
    Method,
    Precision,
)
from ..version import __version__
from . import replies
from .arrays import ArrayTransfer
from .outbox import Outbox
from .segments import SegmentPool
from .transport import Transport

_tokens = itertools.count(1)

HANDSHAKE_TIMEOUT = 10.0
"""Seconds a spawned backend has to answer `initialize` (it only has to start up), or the
connection's `timeout` if longer."""


class Connection:
    """A backend that answered `initialize`. Use as a context manager, or call `close()`.

    `timeout` (seconds, default none) bounds every request; one that runs out is cancelled, and
    a backend that ignores the cancellation too is terminated. `reopen` gives a working
    connection to the same backend after this one's died (by name: the shared one, restarted):
    the default of `State.replay()`.
    """

    def __init__(self, transport: Transport, *, precision: str = Precision.COMPLEX128,
                 threads: int | None = None, timeout: float | None = None,
                 device: str | None = None,
                 reopen: Callable[[], Connection] | None = None) -> None:
        self._transport = transport
        self.timeout = timeout
        self.reopen = reopen
        self.precision = precision
        self._closed = False
        self.outbox = Outbox(transport)
        """Streamed gates and frees, sent before any other message."""
        try:
            self.info: InitializeResult = _initialize(transport, precision, threads, device,
                                                      max(HANDSHAKE_TIMEOUT, timeout or 0))
        except BaseException:
            transport.close()
            raise
        capabilities = self.info.capabilities
        transport.max_request_bytes = capabilities.max_message_bytes
        transport.agree(capabilities.binary_frames, capabilities.descriptors)
        segments = None
        if (transport.shares_memory and "shm" in capabilities.state_encodings
                and not capabilities.descriptors):
            segments = SegmentPool(self.request, transport.notify)
        self.arrays = ArrayTransfer(self.name, segments, sealed=capabilities.descriptors)
        """How arrays cross: sealed memfds or shared-memory segments when both ends can."""

    @property
    def name(self) -> str:
        return self.info.server_info.name

    @property
    def protocol_version(self) -> int:
        """The protocol version agreed with the backend."""
        return self.info.protocol_version

    @property
    def transport(self) -> Transport:
        return self._transport

    @property
    def alive(self) -> bool:
        return not self._closed and self._transport.alive

    @property
    def closed(self) -> bool:
        """True once `close()` was called."""
        return self._closed

    def require(self, feature: str, what: str) -> None:
        """UsageError, before anything is sent, unless the backend offers `feature`."""
        if feature not in self.info.capabilities.features:
            raise UsageError(f"{what}: backend {self.name!r} (protocol version "
                             f"{self.protocol_version}) does not offer {feature!r}; it offers "
                             f"{self.info.capabilities.features or 'no optional features'}")

    def check_open(self, what: str) -> None:
        """HandleClosed, saying what to do instead, once the connection is closed."""
        if self._closed:
            raise HandleClosed(f"{what}: the handle to backend {self.name!r} was closed, and its "
                               "states with it; read what you need before closing the handle "
                               "(or keep it open), or replay a state on another handle")

    def request(self, method: str, params: Any, *, timeout: float | None = None) -> Any:
        """A request of the protocol (docs/protocol.md), once what waits in the outbox has
        gone; its result, decoded with the method's type, within `timeout` or the
        connection's. What states, prepared circuits and shared memory are built on; for
        tools too."""
        self.check_open(f"cannot send {method!r}")
        self.outbox.flush(now=False)
        return self._transport.request(method, params, timeout or self.timeout)

    def cancel(self) -> None:
        """Cancel every request in flight on this handle (from another thread): each caller
        gets RequestCancelled. A backend in this process cannot be interrupted."""
        self._transport.cancel()

    @contextlib.contextmanager
    def watching(self, progress: Callable[[int, int], None] | None) -> Iterator[str | None]:
        """A workDoneToken whose `$/progress` reports go to `progress` while the block runs
        (None when there is no `progress`)."""
        if progress is None:
            yield None
            return
        token = f"work-{next(_tokens)}"
        self._transport.watch(token, progress)
        try:
            yield token
        finally:
            self._transport.watch(token, None)

    def close(self) -> None:
        """Close the backend (a spawned one is shut down and reaped). Safe to call twice."""
        self._closed = True
        self._transport.close()
        self.arrays.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._transport!r}>"


def _initialize(transport: Transport, precision: str, threads: int | None,
                device: str | None = None,
                timeout: float = HANDSHAKE_TIMEOUT) -> InitializeResult:
    """The handshake, in the newest version both ends speak: a backend of an older version
    refuses ours and says which it speaks (the protocol leaves it uninitialized); an answer is
    checked against what was asked."""
    client = ClientInfo("qibo-core", __version__)
    version = PROTOCOL_VERSION
    options = _options(transport, version, precision, threads, device)
    try:
        info = transport.request(Method.INITIALIZE, InitializeParams(version, client, options),
                                 timeout=timeout)
    except UnsupportedProtocolVersion as exc:
        supported = exc.data.get("supported", []) if isinstance(exc.data, dict) else []
        common = sorted(set(supported) & set(SUPPORTED_VERSIONS))
        if not common:
            raise
        version = common[-1]
        options = _options(transport, version, precision, threads, device)
        info = transport.request(Method.INITIALIZE, InitializeParams(version, client, options),
                                 timeout=timeout)
    return replies.checked_initialize(info, transport.name, version, precision, options)


def _options(transport: Transport, version: int, precision: str, threads: int | None,
             device: str | None) -> InitializeOptions:
    """What the client asks for in `version`: from version 4, binary frames where messages
    cross a byte stream, and sealed memfds where the backend has our descriptor socket."""
    if version < TRANSFER_SINCE:
        return InitializeOptions(precision, threads, device)
    return InitializeOptions(precision, threads, device, binary_frames=transport.frames,
                             descriptors=transport.descriptor_offer)
