"""The handlers of a session, by method: each area's module (lifecycle.py, execution.py,
states.py, prepared.py) registers its own, for the methods of protocol.METHODS only, once each;
a mistake fails at import."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import MethodNotFound
from ..protocol import METHODS

F = TypeVar("F", bound=Callable[..., Any])
HANDLERS: dict[str, Callable[[Any, Any], Any]] = {}
"""The handler of each method a session serves: handler(session, params)."""
NOTIFIED: dict[str, Callable[[Any, Any], None]] = {}
"""Handlers for methods that run differently as a notification (state/apply streams)."""


def handles(method: str, *, notification: bool = False) -> Callable[[F], F]:
    """Register the handler of `method` (of its notifications, with `notification`)."""
    spec = METHODS.get(method)
    table = NOTIFIED if notification else HANDLERS
    if spec is None or not spec.session:
        raise LookupError(f"{method!r} is not a method a session serves (protocol.METHODS)")
    if method in table:
        raise LookupError(f"{method!r} has a handler already: {table[method].__qualname__}")

    def register(handler: F) -> F:
        table[method] = handler
        return handler
    return register


def method_not_found(method: str) -> MethodNotFound:
    spec = METHODS.get(method)
    if spec is not None and spec.since > 1:
        return MethodNotFound(f"{method!r} is a method of protocol version {spec.since}, which "
                              "this session does not speak")
    return MethodNotFound(f"unknown method {method!r}; methods: {', '.join(sorted(HANDLERS))}")
