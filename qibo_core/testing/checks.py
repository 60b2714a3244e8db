"""The kit's checks, registered by the modules that define them, and what decides whether one
applies to a backend.

A module of checks registers each with `kit_check` and is listed in conformance.CHECK_MODULES
(a module of another area, such as transfer_checks.py, registers the same way):

    @kit_check("2.5", "a segment is refused once truncated", security=True)
    def _truncated(s: Exchange) -> None:
        s.initialize()
        ...

A check cites the section of docs/protocol.md whose rule it tests, and says the version that
brought the rule (`since`): a backend that speaks only older versions skips it, unless the rule
is a security one, which binds every backend. A check that needs optional features skips
backends that do not offer them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .profile import Profile

if TYPE_CHECKING:
    from .exchange import Exchange


@dataclass(frozen=True)
class Check:
    section: str
    """The section of docs/protocol.md whose rule it tests."""
    title: str
    run: Callable[[Exchange], None]
    since: int = 1
    """The protocol version that brought the rule."""
    features: tuple[str, ...] = ()
    """The optional features it needs the backend to offer."""
    security: bool = False
    """A rule every backend follows, whatever versions it speaks."""

    @property
    def name(self) -> str:
        tags = [f"version {self.since}"] if self.since > 1 else []
        tags += ["security"] if self.security else []
        return f"§{self.section} {self.title}" + (f" [{', '.join(tags)}]" if tags else "")

    def reason_to_skip(self, profile: Profile) -> str:
        """Why the check does not apply to this backend ("" when it does)."""
        newest = profile.newest
        if newest is None:
            return ""  # nothing is known: run it, and let its handshake fail
        if self.since > newest and not self.security:
            return f"a rule of protocol version {self.since}; the backend speaks up to {newest}"
        missing = [f for f in self.features if f not in profile.features()]
        if missing:
            return f"the backend does not offer {', '.join(map(repr, missing))}"
        return ""


CHECKS: list[Check] = []
"""Every check, in the order a run makes them."""


def kit_check(section: str, title: str, *, since: int = 1, features: tuple[str, ...] = (),
              security: bool = False) -> Callable[[Callable[[Exchange], None]],
                                                   Callable[[Exchange], None]]:
    """Register the decorated function as a check (see the module's docstring)."""
    def register(run: Callable[[Exchange], None]) -> Callable[[Exchange], None]:
        check = Check(section, title, run, since, features, security)
        if any(c.name == check.name for c in CHECKS):
            raise LookupError(f"two checks are named {check.name!r}")
        CHECKS.append(check)
        return run
    return register
