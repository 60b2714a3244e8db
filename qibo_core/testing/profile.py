"""What the kit knows of a backend (the capabilities of each version it accepted, how long it
takes to start) and the time each request of a check has, which follows from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BASE_SECONDS = 10.0
"""What a backend that starts at once has to answer a request of a check."""
START_FACTOR = 4.0
"""How many times its start each request of a check may add: every check starts a fresh
process, which may import and compile again on its first requests."""
FIRST_START_SECONDS = 120.0
"""The most the kit waits for a backend's first answers, before it knows how slow it starts."""


@dataclass(frozen=True)
class Limits:
    """How long a backend has, in seconds."""

    reply: float
    """To answer one request (and to exit when told to)."""

    @classmethod
    def after_start(cls, start: float, base: float = BASE_SECONDS) -> Limits:
        return cls(base + START_FACTOR * start)


@dataclass
class Profile:
    """What the kit learned at a backend's first starts (negotiation_checks.py)."""

    capabilities: dict[int, dict[str, Any]] = field(default_factory=dict)
    """By each protocol version the backend accepted: the capabilities it answered."""
    start_seconds: float | None = None
    """From starting it to the answer of its first circuit."""

    @property
    def known(self) -> bool:
        return bool(self.capabilities)

    @property
    def newest(self) -> int | None:
        return max(self.capabilities, default=None)

    def features(self, version: int | None = None) -> list[str]:
        version = self.newest if version is None else version
        if version is None:
            return []
        offered = self.capabilities[version].get("features", [])
        return offered if isinstance(offered, list) else []
