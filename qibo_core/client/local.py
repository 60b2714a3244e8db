"""LocalTransport: a backend object in this process, reached through the same Session as a
server, with no serialization: gates and circuits pass through as the objects they are."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ..protocol import DescriptorOffer, ExecuteManyResult, ExecuteResult
from ..server import Backend, Session


class LocalTransport:
    """The in-process sibling of ProcessTransport."""

    shares_memory = False  # arrays are handed over directly
    frames = False
    descriptor_offer: DescriptorOffer | None = None
    max_request_bytes: int | None = None  # nothing is encoded

    def __init__(self, backend: Backend) -> None:
        self.name = backend.name
        self._session = Session(backend)
        self._lock = threading.Lock()
        self._closed = False

    @property
    def alive(self) -> bool:
        return not self._closed

    def request(self, method: str, params: Any, timeout: float | None = None) -> Any:
        """The handler's result; an Array result as a NumPy array of the caller's own (the
        session's may be the backend's memory)."""
        with self._lock:
            return _owned(self._session.call(method, params))

    def notify(self, method: str, params: Any, *, now: bool = True) -> None:
        with self._lock:
            self._session.notify(method, params)

    def agree(self, binary: bool, descriptors: bool) -> None:
        """Nothing to do: arrays are handed over as they are."""

    def cancel(self) -> None:
        """Nothing to do: a call in this process runs on the caller's own thread."""

    def watch(self, token: int | str, callback: Callable[[int, int], None] | None) -> None:
        """Nothing to do: a backend in this process reports no progress."""

    def close(self) -> None:
        self._closed = True
        self._session.backend.close()

    def __repr__(self) -> str:
        return f"<LocalTransport {self.name} {'closed' if self._closed else 'open'}>"


def _owned(result: Any) -> Any:
    """The result with the arrays it carries copied: the session's may be the backend's
    memory, which its next request changes."""
    if isinstance(result, np.ndarray):
        return np.array(result)
    if isinstance(result, ExecuteResult) and isinstance(result.amplitudes, np.ndarray):
        result.amplitudes = np.array(result.amplitudes)
    if isinstance(result, ExecuteManyResult):
        for one in result.results:
            _owned(one)
    return result
