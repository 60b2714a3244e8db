"""connect(), and the shared handles behind `execute(backend="name")`.

A name gives one spawned process, shared and reused until it dies; a crashed one is restarted
(at most RESTARTS times in RESTART_WINDOW seconds, as editors do for language servers) and the
circuit run again: running a circuit is idempotent. Every shared process is closed at exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import BackendCrashed, UsageError
from ..protocol import Precision
from ..server import Backend
from .discovery import backend_command
from .handle import Handle
from .local import LocalTransport
from .result import Result
from .spawned import MAX_REPLY_BYTES, ProcessTransport

if TYPE_CHECKING:
    from ..circuit import Circuit

logger = logging.getLogger("qibo_core.client")
T = TypeVar("T")


def connect(backend: str | Backend, *, precision: str = Precision.COMPLEX128,
            threads: int | None = None, timeout: float | None = None,
            command: list[str] | None = None, max_reply_bytes: int = MAX_REPLY_BYTES,
            device: str | None = None) -> Handle:
    """A handle on `backend`: a name spawns its configured command or qibo-backend-<name>
    (or `command`: anything whose stdin/stdout speak the protocol, such as
    ["ssh", "host", "qibo-backend-qulacs"]); a Backend object runs here. A spawned backend's
    replies may be at most `max_reply_bytes` long (a base64 state is 4/3 of its size).
    `device` is one of the backend's `capabilities.devices` (Aer's "GPU", where there is one)."""
    if isinstance(backend, Backend):
        return Handle(LocalTransport(backend), precision=precision, threads=threads,
                      timeout=timeout, device=device)
    _check_name(backend)
    transport = ProcessTransport(command or backend_command(backend), name=backend,
                             max_reply_bytes=max_reply_bytes)
    return Handle(transport, precision=precision, threads=threads, timeout=timeout,
                  device=device, reopen=lambda: resolve(backend))


def _check_name(backend: object) -> None:
    if not isinstance(backend, str):
        raise UsageError(f"backend must be a name (such as \"numpy\"), a Backend object or a "
                         f"Handle, got {backend!r}")


_shared: dict[str, Handle] = {}
_shared_lock = threading.Lock()


def resolve(backend: str | Backend | Handle, spawn: str | None = None,
            threads: int | None = None) -> Handle:
    """The handle `Circuit.execute` uses: by name, one spawned process reused until it dies.

    `spawn` names the backend to start when `backend` is only a key for a shared process (the
    workers of `execute_many` are "numpy#0", "numpy#1"...)."""
    if isinstance(backend, Handle):
        return backend
    if isinstance(backend, Backend):
        return connect(backend)
    _check_name(backend)
    with _shared_lock:
        handle = _shared.get(backend)
        if handle is None or not handle.alive:
            handle = _shared[backend] = connect(spawn or backend, threads=threads)
        return handle


DEFAULT_BACKEND = "numpy"
"""The backend used when none is named: Circuit.execute, execute_many, `qibo-core run`."""


def execute(circuit: Circuit, backend: str | Backend | Handle | None = None,
            **options: Any) -> Result:
    """`Circuit.execute` (Handle.execute's options)."""
    return _restarting(backend, lambda handle: handle.execute(circuit, **options))


def expectation(circuit: Circuit, backend: str | Backend | Handle | None, observable: Any,
                **options: Any) -> Any:
    """`Circuit.expectation` (Handle.expectation's options)."""
    return _restarting(backend, lambda handle: handle.expectation(circuit, observable, **options))


def _restarting(backend: str | Backend | Handle | None, run: Callable[[Handle], T]) -> T:
    """`run` on the backend's handle; by name, a backend that crashed is restarted and `run`
    again (running a circuit is idempotent), at most RESTARTS times in RESTART_WINDOW
    seconds."""
    backend = DEFAULT_BACKEND if backend is None else backend
    while True:
        handle = resolve(backend)
        try:
            return run(handle)
        except BackendCrashed as exc:
            if not isinstance(backend, str) or not _may_restart(backend):
                raise
            logger.warning("backend %s crashed (%s); restarting it and running again", backend,
                           str(exc).splitlines()[0])


RESTARTS = 5
RESTART_WINDOW = 180.0
"""At most RESTARTS automatic restarts in RESTART_WINDOW seconds, as editors do for language
servers: a backend that keeps crashing on a circuit is left dead and its error raised."""
_restarts: dict[str, list[float]] = {}


def _may_restart(name: str) -> bool:
    now = time.monotonic()
    recent = [t for t in _restarts.get(name, []) if now - t < RESTART_WINDOW]
    _restarts[name] = recent
    if len(recent) >= RESTARTS:
        return False
    recent.append(now)
    return True


def _forget_after_fork() -> None:
    """In a forked child the shared handles are the parent's: forget them (the child starts its
    own on first use), and the lock a parent thread may have held."""
    global _shared_lock
    _shared_lock = threading.Lock()
    _shared.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


@atexit.register
def close_shared() -> None:
    """Shut down every backend spawned for `execute(backend=name)`."""
    with _shared_lock:
        handles = list(_shared.values())
        _shared.clear()
    for handle in handles:
        handle.close()
