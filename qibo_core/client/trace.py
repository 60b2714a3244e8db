"""Trace: every line exchanged with backends, appended to the file QIBO_CORE_TRACE names."""

from __future__ import annotations

import os
import threading
import time

TRACE_VARIABLE = "QIBO_CORE_TRACE"
"""Set to a file path to record every message exchanged with backends (`qibo-core trace`)."""


class Trace:
    """An append-only record of one transport's lines, shared safely between threads."""

    LIMIT = 2**16
    """Longer lines (states in base64) are cut, saying how long they were."""

    def __init__(self, path: str) -> None:
        # Amplitudes are nobody else's business: 0600, and a planted link is not followed.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        self._file = os.fdopen(fd, "ab", buffering=0)
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> Trace | None:
        path = os.environ.get(TRACE_VARIABLE)
        return cls(path) if path else None

    def record(self, direction: str, name: str, pid: int, line: bytes) -> None:
        if len(line) > self.LIMIT:
            line = line[:self.LIMIT] + f"... ({len(line)} bytes)".encode()
        stamp = time.strftime("%H:%M:%S") + f".{int(time.time() * 1000) % 1000:03d}"
        with self._lock:
            self._file.write(f"{stamp} {name}[{pid}] {direction} ".encode() + line + b"\n")

    def close(self) -> None:
        self._file.close()
