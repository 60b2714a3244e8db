"""Channel: how a Handle reaches its backend, in this process (local.py) or spawned
(spawned.py). Code that runs circuits never asks which one it has."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np


class Channel(Protocol):
    """Requests and notifications to one backend; results come back decoded with the type the
    method table (protocol.METHOD_TYPES) gives."""

    name: str
    shares_memory: bool
    """True when the backend runs on this host, so shared-memory segments can reach it."""
    max_request_bytes: int | None
    """The longest message the backend reads (from `initialize`): longer ones are refused."""

    def request(self, method: str, params: Any, timeout: float | None = None) -> Any: ...
    def request_array(self, method: str, params: Any, dtype: str) -> np.ndarray: ...
    def notify(self, method: str, params: Any) -> None: ...
    def cancel(self) -> None: ...
    def watch(self, token: int | str, callback: Callable[[int, int], None] | None) -> None: ...
    def close(self) -> None: ...
    @property
    def alive(self) -> bool: ...
