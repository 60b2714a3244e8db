"""The Outbox: what waits to leave for a backend until the next message.

Gates streamed into held states wait here (each state sends its own, in batches), then frees of
what the garbage collector took: they leave before any other message, so that the backend sees
every message in the order the user made it, and fuses the gates of a batch.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

from .transport import Transport


class Outbox:
    """One backend's streams with gates to send, and its deferred frees."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._streams: dict[int, Callable[[Transport, bool], None]] = {}
        self._frees: collections.deque[tuple[str, Any]] = collections.deque()
        self._lock = threading.Lock()

    def stream(self, key: int, send: Callable[[Transport, bool], None]) -> None:
        """Something (a state, by `key`) holds gates that `send` sends with the next
        message."""
        self._streams[key] = send

    def free_later(self, method: str, params: Any) -> None:
        """A free to send with the next message (the garbage collector calls this, maybe
        inside a send: it only queues)."""
        self._frees.append((method, params))

    def flush(self, *, now: bool = True) -> None:
        """Send the streamed gates, then the frees; `now=False`: a request follows at once,
        and they may leave with it (Transport.notify)."""
        with self._lock:
            while self._streams:
                self._streams.popitem()[1](self._transport, now)
        while self._frees and self._transport.alive:
            try:
                method, params = self._frees.popleft()
            except IndexError:  # another thread took the last one
                return
            self._transport.notify(method, params, now=now)
