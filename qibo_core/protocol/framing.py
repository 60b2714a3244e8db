"""Framing: one message per line on a pipe, read straight from the file descriptor; and, once a
session agreed on them (protocol version 4), the raw bytes and file descriptors a message
carries with it.

No buffered reader and no thread: a read can wait, poll (timeout 0) or give up after a timeout,
and a line of any length (a 24-qubit state inline is hundreds of MB) is taken in whole, unless it
exceeds the limit, in which case it is skipped as it arrives and reported by its size.

A message that carries more says so in its top-level object: `"attachments": [n, ...]` (binary
frames: that many raw bytes follow its newline, attachment after attachment) and
`"descriptors": n` (that many file descriptors were passed on the descriptor socket before it).
Such a message is read as a Frame; a line without them stays bytes, so text framing is unchanged.
"""

from __future__ import annotations

import collections
import os
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Final

import msgspec
import numpy as np

from . import sealed

READ_CHUNK = 2**16
"""Bytes asked of each read. os.read allocates what it asks for: 1 MiB cost 13 us a read where
64 KiB cost 0.8 us, for a line of 200 bytes; long lines take more reads (attachments are read
straight into their arrays)."""
SPIN_SECONDS = 2e-4
"""How long a read polls before it sleeps: the answer to a small request, or the next request of
a loop, comes within it, and a process that slept is woken late and runs slowly at first (on
this project's 2-core VM a line's round trip took 80 us between two sleeping processes, 8 us
between two that poll)."""
LOOK_SECONDS = 0.01
"""How long what /proc/loadavg said about idle cores is taken as true."""
MAX_ATTACHMENTS: Final = 64
"""The most attachments one message may carry."""


@dataclass(frozen=True)
class Oversized:
    """Stands for a line longer than the limit, which was dropped."""

    size: int


class TimedOut:
    def __repr__(self) -> str:
        return "TIMEOUT"


TIMEOUT: Final = TimedOut()
"""What `LineReader.read_line` returns when no line arrived in time."""


_looked = [-1.0, False]
"""When _idle_core last read /proc/loadavg, and what it found."""


def _idle_core() -> bool:
    """Whether no more tasks are runnable than this process may use cores (this one and the
    other end of the pipe among them), as /proc/loadavg said within the last LOOK_SECONDS;
    False where it cannot tell."""
    now = time.monotonic()
    if now - _looked[0] > LOOK_SECONDS:
        try:
            with open("/proc/loadavg", "rb") as f:
                runnable = int(f.read().split()[3].split(b"/")[0])
            _looked[1] = runnable <= len(os.sched_getaffinity(0))
        except (OSError, ValueError, IndexError, AttributeError):
            _looked[1] = False
        _looked[0] = now
    return bool(_looked[1])


@dataclass
class Frame:
    """A message that carried attachments or descriptors: its line, the raw bytes that followed
    it (one uint8 array each), the descriptors passed with it; `problem` says why they could not
    be taken (the line is kept, so that the reply can name the request)."""

    line: bytes
    attachments: list[np.ndarray] = field(default_factory=list)
    descriptors: list[sealed.Descriptor] = field(default_factory=list)
    problem: str = ""


class _Envelope(msgspec.Struct):
    attachments: list[int] = []
    descriptors: int = 0


_envelope = msgspec.json.Decoder(_Envelope)


def framed(line: bytes, attachments: list[int], descriptors: int) -> bytes:
    """An encoded message with its envelope: what follows it and what was passed with it. The
    fields go last, since they are known only once the message was encoded (an array becomes an
    attachment while the encoder meets it)."""
    extra = b""
    if attachments:
        extra += b',"attachments":[' + b",".join(b"%d" % n for n in attachments) + b"]"
    if descriptors:
        extra += b',"descriptors":%d' % descriptors
    if not extra:
        return line
    assert line.endswith(b"}"), "a message is a JSON object"
    return line[:-1] + extra + b"}"


class LineReader:
    """The lines (without their newline) of a file descriptor, and, once `attachments` or
    `descriptors` (a socket) is set, the frames of messages that carry more."""

    def __init__(self, fd: int, limit: int | None = None) -> None:
        self.fd = fd
        self.limit = limit
        self.attachments = False
        """Binary frames agreed: a message's attachments follow it."""
        self.descriptors: socket.socket | None = None
        """The descriptor socket agreed: a message's descriptors are taken from it."""
        self._lines: collections.deque[bytes | Oversized | Frame] = collections.deque()
        self._partial = bytearray()
        self._dropped = 0  # bytes of an oversized line skipped so far
        self._frame: Frame | None = None
        """The frame whose attachments are arriving."""
        self._wanted: list[int] = []
        """The sizes of its attachments still to come, the current one first."""
        self._filled = 0  # bytes of the current attachment arrived so far
        self._skipping = 0  # bytes of attachments over the limit still to skip
        self.eof = False

    def read_line(self, timeout: float | None = None
                  ) -> bytes | Frame | Oversized | TimedOut | None:
        """The next line (or Frame); None at end of input; TIMEOUT if none came within
        `timeout` seconds (None waits for ever, 0 only takes what has already arrived)."""
        while not self._lines and not self.eof:
            if timeout != 0:
                started = time.monotonic()
                if not self._readable_soon() and timeout is not None:
                    timeout = max(0.0, timeout - (time.monotonic() - started))
            if timeout is not None and not select.select([self.fd], [], [], timeout)[0]:
                return TIMEOUT
            if self._wanted:
                self._read_attachment()
            else:
                self._feed(os.read(self.fd, READ_CHUNK))
        return self._lines.popleft() if self._lines else None

    def _readable_soon(self) -> bool:
        """Whether input arrives within SPIN_SECONDS, polled without sleeping, where a core
        is idle (elsewhere polling would take the time of the other end, or of other work)."""
        if not _idle_core():
            return False
        end = time.perf_counter() + SPIN_SECONDS
        while time.perf_counter() < end:
            if select.select([self.fd], [], [], 0)[0]:
                return True
            os.sched_yield()  # a process that shares this core (the other end) runs first
        return False

    def _feed(self, chunk: bytes) -> None:
        if not chunk:
            self._ended()
            return
        view = memoryview(chunk)
        start = 0
        while start < len(chunk):
            if self._wanted or self._skipping:
                start += self._take_attachment(view[start:])
                continue
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            self._end_line(chunk[start:end])
            start = end + 1
        rest = len(chunk) - start
        if not rest:
            return
        if self._dropped or self._too_long(len(self._partial) + rest):
            self._dropped += len(self._partial) + rest
            self._partial.clear()
        else:
            self._partial += view[start:]

    def _ended(self) -> None:
        self.eof = True
        if self._frame is not None:
            self._frame.problem = "the input ended inside the message's attachments"
            self._finish_frame()
        elif self._dropped or self._partial:
            self._end_line(b"")

    def _end_line(self, tail: bytes) -> None:
        size = self._dropped + len(self._partial) + len(tail)
        if self._dropped or self._too_long(size):
            self._lines.append(Oversized(size))
        else:
            message = self._framed(bytes(self._partial + tail) if self._partial else tail)
            if message is not None:
                self._lines.append(message)
        self._partial.clear()
        self._dropped = 0

    def _too_long(self, size: int) -> bool:
        return self.limit is not None and size > self.limit

    # ---- frames ------------------------------------------------------------------------

    def _framed(self, line: bytes) -> bytes | Frame | None:
        """The line, or its Frame when it says it carries attachments or descriptors; None
        while the frame's attachments are still to come (it is queued once they came)."""
        if not self.attachments and self.descriptors is None:
            return line
        try:
            envelope = _envelope.decode(line)
        except msgspec.ValidationError as exc:
            return Frame(line, problem=f"the message's envelope is malformed: {exc}")
        except msgspec.DecodeError:
            return line  # not JSON: the decoder above says so
        # Fields of a kind the session did not agree on are unknown fields: ignored.
        sizes = envelope.attachments if self.attachments else []
        count = envelope.descriptors if self.descriptors is not None else 0
        if not sizes and not count:
            return line
        frame = Frame(line)
        frame.problem = self._take_descriptors(frame, count)
        if sizes:
            problem = self._attachments_problem(sizes)
            if problem and not frame.problem:
                frame.problem = problem
            if any(n < 0 for n in sizes):
                return frame  # nothing can be skipped reliably: what follows reads as lines
            if problem:
                self._skipping = sum(sizes)
                return frame
            self._frame, self._wanted, self._filled = frame, list(sizes), 0
            frame.attachments = [np.empty(n, dtype=np.uint8) for n in sizes]
            self._next_attachment()
            return None
        return frame

    def _attachments_problem(self, sizes: list[int]) -> str:
        if any(n < 0 for n in sizes):
            return f"attachment sizes must be non-negative, got {sizes[:8]}"
        if len(sizes) > MAX_ATTACHMENTS:
            return f"{len(sizes)} attachments: at most {MAX_ATTACHMENTS} a message"
        if self._too_long(sum(sizes)):
            return (f"attachments of {sum(sizes)} bytes exceed the maximum of {self.limit} "
                    "(--max-message-bytes)")
        return ""

    def _take_descriptors(self, frame: Frame, count: int) -> str:
        if not count:
            return ""
        assert self.descriptors is not None
        if not 0 < count <= sealed.MAX_DESCRIPTORS:
            return f"a message carries 1 to {sealed.MAX_DESCRIPTORS} descriptors, not {count}"
        try:
            frame.descriptors = sealed.receive(self.descriptors, count)
        except ValueError as exc:
            return str(exc)
        return ""

    def _next_attachment(self) -> None:
        """Step past empty attachments; the frame is complete when none is left."""
        while self._wanted and self._filled == self._wanted[0]:
            self._wanted.pop(0)
            self._filled = 0
        if not self._wanted:
            self._finish_frame()

    def _finish_frame(self) -> None:
        frame, self._frame, self._wanted = self._frame, None, []
        assert frame is not None
        self._lines.append(frame)

    def _take_attachment(self, data: bytes | memoryview) -> int:
        """Bytes of `data` that belong to the current attachment (or are skipped), taken."""
        if self._skipping:
            taken = min(self._skipping, len(data))
            self._skipping -= taken
            return taken
        assert self._frame is not None
        target = self._frame.attachments[-len(self._wanted)]
        taken = min(self._wanted[0] - self._filled, len(data))
        target[self._filled:self._filled + taken] = np.frombuffer(data, np.uint8, taken)
        self._filled += taken
        self._next_attachment()
        return taken

    def _read_attachment(self) -> None:
        """Read straight into the attachment that is arriving: no copy through a chunk."""
        assert self._frame is not None
        target = self._frame.attachments[-len(self._wanted)]
        view = memoryview(target)[self._filled:self._wanted[0]]  # type: ignore[arg-type]
        count = os.readv(self.fd, [view])
        if not count:
            self._ended()
            return
        self._filled += count
        self._next_attachment()
