"""Shared-memory segments: large states cross from a backend at memory speed.

The client creates a file in /dev/shm, the backend maps it (`shm/attach`), and the client
unlinks it as soon as the backend has answered: from then on only the two mappings hold the
memory, so nothing leaks whichever side dies. A segment holds one array at a time. An array read
into it is handed out without a copy, and the segment returns to the pool when that array is
garbage collected, so a reader that drops each state before the next read reuses one segment and
never pays for touching fresh pages.
"""

from __future__ import annotations

import collections
import mmap
import os
import threading
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BackendError
from ..protocol import SHM_DIR, SHM_PREFIX, ArrayData, AttachParams, Method, SegmentRef

MIN_BYTES = 2**16
"""Smaller arrays go inline as base64: a round trip to attach would cost more."""
KEEP_FREE = 2
"""Free segments kept for reuse; more are unmapped, on both sides."""


@dataclass(eq=False)
class Segment:
    id: int
    size: int
    memory: mmap.mmap


class SegmentPool:
    """The segments one backend has attached, and which of them are free."""

    def __init__(self, request: Callable[..., Any], notify: Callable[[str, Any], None]) -> None:
        self._request = request
        self._notify = notify
        self._free: list[Segment] = []
        # Filled by garbage-collection callbacks, which may run inside any lock: a deque is safe.
        self._released: collections.deque[Segment] = collections.deque()
        self._lock = threading.Lock()
        self.enabled = os.path.isdir(SHM_DIR)

    def acquire(self, nbytes: int) -> Segment | None:
        """A free segment of at least `nbytes`, attached anew if need be; None if the backend
        cannot map our files (then the pool stays off)."""
        with self._lock:
            while self._released:
                self._free.append(self._released.popleft())
            fitting = [s for s in self._free if s.size >= nbytes]
            if fitting:
                segment = min(fitting, key=lambda s: s.size)
                self._free.remove(segment)
                return segment
            while len(self._free) >= KEEP_FREE:
                self._drop(min(self._free, key=lambda s: s.size))
        return self._attach(nbytes) if self.enabled else None

    def view(self, segment: Segment, data: ArrayData) -> np.ndarray:
        """The array the backend wrote into `segment`, without a copy."""
        count = int(np.prod(data.shape, dtype=np.int64))
        flat = np.frombuffer(segment.memory, dtype=np.dtype(data.dtype), count=count)
        weakref.finalize(flat, self._released.append, segment)
        return flat.reshape(data.shape)

    def release(self, segment: Segment) -> None:
        """Give back a segment that holds no array handed out."""
        self._released.append(segment)

    def close(self) -> None:
        with self._lock:
            for segment in self._free:
                segment.memory.close()
            self._free.clear()

    def _attach(self, nbytes: int) -> Segment | None:
        path = os.path.join(SHM_DIR, f"{SHM_PREFIX}{os.getpid()}-{uuid.uuid4().hex}")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, nbytes)
            memory = mmap.mmap(fd, nbytes)
            try:
                ref = self._request(Method.SHM_ATTACH, AttachParams(path, nbytes))
            except BackendError:
                memory.close()
                self.enabled = False  # another host, or a backend that cannot map files
                return None
        finally:
            os.close(fd)
            os.unlink(path)
        return Segment(ref.segment, nbytes, memory)

    def _drop(self, segment: Segment) -> None:
        self._free.remove(segment)
        segment.memory.close()
        self._notify(Method.SHM_DETACH, SegmentRef(segment.id))
