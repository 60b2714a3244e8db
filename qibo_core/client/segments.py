"""The client half of shared memory (server/segments.py is the other): large states cross to
and from a backend at memory speed, safely.

The client creates a file in /dev/shm and reserves its space (so a full /dev/shm fails here,
cleanly, and never as a SIGBUS later), the backend opens it (`shm/attach`), and the client
unlinks it as soon as the backend has answered: from then on only the two descriptors hold the
memory, so nothing leaks whichever side dies. Names carry the creator's pid: segments left by a
client killed in between are removed by the next one.

The client never maps the file: it writes uploads with pwrite and copies answers out with pread
into memory of its own. So a backend that truncates a segment causes a short read (a
ProtocolError), not a SIGBUS, and cannot change an array once it was handed out. (The backend
maps it, and checks its size before every write; it reads uploads with pread.) A segment holds
one array at a time and returns to the pool at once.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BackendError, ProtocolError
from ..protocol import SHM_DIR, SHM_PREFIX, ArrayData, AttachParams, Method, SegmentRef
from ..protocol.arrays import checked_shape

logger = logging.getLogger("qibo_core.client")

MIN_BYTES = 2**16
"""Smaller arrays go inline as base64: a round trip to attach would cost more."""
KEEP_FREE = 2
"""Free segments kept for reuse; more are closed, on both sides."""
_CHUNK = 2**30
"""Bytes per pread: Linux moves at most about 2 GiB in one call."""


@dataclass(eq=False)
class Segment:
    id: int
    size: int
    fd: int


class SegmentPool:
    """The segments one backend has attached, and which of them are free."""

    def __init__(self, request: Callable[..., Any], notify: Callable[[str, Any], None]) -> None:
        self._request = request
        self._notify = notify
        self._free: list[Segment] = []
        self._lock = threading.Lock()
        self._said: set[str] = set()
        self.enabled = os.path.isdir(SHM_DIR)
        if self.enabled:
            remove_orphans()

    def acquire(self, nbytes: int) -> Segment | None:
        """A free segment of at least `nbytes`, attached anew if need be; None when this read
        must go as base64 (the backend cannot open our files: then the pool stays off)."""
        with self._lock:
            fitting = [s for s in self._free if s.size >= nbytes]
            if fitting:
                segment = min(fitting, key=lambda s: s.size)
                self._free.remove(segment)
                return segment
            while len(self._free) >= KEEP_FREE:
                self._drop(min(self._free, key=lambda s: s.size))
        return self._attach(nbytes) if self.enabled else None

    def copy_out(self, segment: Segment, data: ArrayData, dtype: np.dtype) -> np.ndarray:
        """The array the backend wrote into `segment`, copied into memory of our own; the
        segment goes back to the pool."""
        try:
            if data.segment != segment.id or data.dtype != dtype.name:
                raise ProtocolError(f"the backend answered {data!r} for segment {segment.id} "
                                    f"of {dtype.name}")
            shape = checked_shape(data.shape)
            nbytes = math.prod(shape) * dtype.itemsize
            if nbytes > segment.size:
                raise ProtocolError(f"the backend claims {nbytes} bytes in segment "
                                    f"{segment.id} of {segment.size}")
            array = np.empty(shape, dtype=dtype)
            _read_into(segment.fd, array.reshape(-1).data.cast("B"))
            return array
        except ValueError as exc:
            raise ProtocolError(f"the backend answered a malformed array: {exc}") from None
        finally:
            self.release(segment)

    def copy_in(self, segment: Segment, array: np.ndarray) -> ArrayData:
        """`array` written at the start of `segment`, for the backend to read; what params
        carry instead of the array."""
        data = np.ascontiguousarray(array).reshape(-1).data.cast("B")
        done = 0
        while done < len(data):
            done += os.pwritev(segment.fd, [data[done:done + _CHUNK]], done)
        return ArrayData(dtype=array.dtype.name, shape=list(array.shape), segment=segment.id)

    def release(self, segment: Segment) -> None:
        """Give back a segment that holds no array handed out."""
        with self._lock:
            self._free.append(segment)

    def close(self) -> None:
        with self._lock:
            for segment in self._free:
                os.close(segment.fd)
            self._free.clear()

    def _attach(self, nbytes: int) -> Segment | None:
        path = os.path.join(SHM_DIR, f"{SHM_PREFIX}{os.getpid()}-{uuid.uuid4().hex}")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:  # read-only, no inodes left...
            self._say(f"cannot create a segment in {SHM_DIR} ({exc.strerror}): reading as "
                      "base64")
            return None
        try:
            try:
                os.posix_fallocate(fd, 0, nbytes)  # a full /dev/shm fails here, not as SIGBUS
            except OSError as exc:
                self._say(f"{SHM_DIR} has no room for {nbytes} bytes ({exc.strerror}): reading "
                          "as base64")
                os.close(fd)
                return None
            try:
                ref: SegmentRef = self._request(Method.SHM_ATTACH, AttachParams(path, nbytes))
            except BackendError:
                os.close(fd)
                self.enabled = False  # another host, or a backend that cannot open files
                return None
        finally:
            os.unlink(path)
        return Segment(ref.segment, nbytes, fd)

    def _drop(self, segment: Segment) -> None:
        self._free.remove(segment)
        os.close(segment.fd)
        self._notify(Method.SHM_DETACH, SegmentRef(segment.id))

    def _say(self, message: str) -> None:
        """Log a fallback once per kind, not at every read."""
        kind = message.split(" (")[0]
        if kind not in self._said:
            self._said.add(kind)
            logger.warning(message)


def _read_into(fd: int, buffer: memoryview) -> None:
    done = 0
    while done < len(buffer):
        count = os.preadv(fd, [buffer[done:done + _CHUNK]], done)
        if count == 0:
            raise ProtocolError(f"the segment ends after {done} of {len(buffer)} bytes: the "
                                "backend truncated it")
        done += count


def remove_orphans() -> None:
    """Remove segments that clients killed while attaching left behind: ours (same user) whose
    creator pid no longer runs."""
    try:
        entries = os.listdir(SHM_DIR)
    except OSError:
        return
    for entry in entries:
        if not entry.startswith(SHM_PREFIX):
            continue
        pid = entry[len(SHM_PREFIX):].split("-", 1)[0]
        path = os.path.join(SHM_DIR, entry)
        try:
            if not pid.isdigit() or _running(int(pid)) or os.lstat(path).st_uid != os.geteuid():
                continue
            os.unlink(path)
        except OSError:
            pass  # another client removed it first


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
