"""Framing: one message per line on a pipe, read straight from the file descriptor.

No buffered reader and no thread: a read can wait, poll (timeout 0) or give up after a timeout,
and a line of any length (a 24-qubit state inline is hundreds of MB) is taken in whole, unless it
exceeds the limit, in which case it is skipped as it arrives and reported by its size.
"""

from __future__ import annotations

import collections
import os
import select
from dataclasses import dataclass
from typing import Final

READ_CHUNK = 2**20


@dataclass(frozen=True)
class Oversized:
    """Stands for a line longer than the limit, which was dropped."""

    size: int


class TimedOut:
    def __repr__(self) -> str:
        return "TIMEOUT"


TIMEOUT: Final = TimedOut()
"""What `LineReader.read_line` returns when no line arrived in time."""


class LineReader:
    """The lines (without their newline) of a file descriptor."""

    def __init__(self, fd: int, limit: int | None = None) -> None:
        self.fd = fd
        self.limit = limit
        self._lines: collections.deque[bytes | Oversized] = collections.deque()
        self._partial = bytearray()
        self._dropped = 0  # bytes of an oversized line skipped so far
        self.eof = False

    def read_line(self, timeout: float | None = None) -> bytes | Oversized | TimedOut | None:
        """The next line; None at end of input; TIMEOUT if none came within `timeout` seconds
        (None waits for ever, 0 only takes what has already arrived)."""
        while not self._lines and not self.eof:
            if timeout is not None and not select.select([self.fd], [], [], timeout)[0]:
                return TIMEOUT
            self._feed(os.read(self.fd, READ_CHUNK))
        return self._lines.popleft() if self._lines else None

    def _feed(self, chunk: bytes) -> None:
        if not chunk:
            self.eof = True
            if self._dropped or self._partial:
                self._end_line(b"")
            return
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            self._end_line(chunk[start:end])
            start = end + 1
        rest = len(chunk) - start
        if self._dropped or self._too_long(len(self._partial) + rest):
            self._dropped += len(self._partial) + rest
            self._partial.clear()
        else:
            self._partial += chunk[start:]

    def _end_line(self, tail: bytes) -> None:
        size = self._dropped + len(self._partial) + len(tail)
        if self._dropped or self._too_long(size):
            self._lines.append(Oversized(size))
        else:
            self._lines.append(bytes(self._partial + tail) if self._partial else tail)
        self._partial.clear()
        self._dropped = 0

    def _too_long(self, size: int) -> bool:
        return self.limit is not None and size > self.limit
