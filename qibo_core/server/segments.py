"""The server half of shared memory: the client's segments a backend has attached, by id.

A backend attaches only what the protocol means by a segment (docs/protocol.md 2.5), so that
`shm/attach` can never be used to make it write to another file. It writes through the file
descriptor (pwrite) and maps nothing: a segment someone truncated makes the write fail with an
error, never kill the backend with SIGBUS.
"""

from __future__ import annotations

import os
import stat

import numpy as np

from ..errors import InvalidParams
from ..protocol import SHM_DIR, SHM_PREFIX

MAX_SEGMENTS = 64
"""The most segments attached at once (each holds a file descriptor)."""
_CHUNK = 2**30
"""Bytes per pwrite: Linux moves at most about 2 GiB in one call."""


class Segments:
    """Attached segments by id; `enabled` is False for a backend started with --no-shm."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._fds: dict[int, int] = {}
        self._next_id = 1

    def attach(self, path: str, size: int) -> int:
        if not self.enabled:
            raise InvalidParams("shared memory is off in this backend (--no-shm); use base64")
        if len(self._fds) >= MAX_SEGMENTS:
            raise InvalidParams(f"{MAX_SEGMENTS} segments are attached already: detach some")
        segment_id, self._next_id = self._next_id, self._next_id + 1
        self._fds[segment_id] = _open_segment(path, size)
        return segment_id

    def detach(self, segment_id: int) -> None:
        os.close(self._fd(segment_id))
        del self._fds[segment_id]

    def write(self, segment_id: int, array: np.ndarray) -> None:
        """`array`'s bytes at the start of the segment."""
        fd = self._fd(segment_id)
        size = os.fstat(fd).st_size
        if array.nbytes > size:
            raise InvalidParams(f"the array takes {array.nbytes} bytes; segment {segment_id} "
                                f"holds {size}")
        data = np.ascontiguousarray(array).reshape(-1).data.cast("B")
        done = 0
        try:
            while done < len(data):
                done += os.pwritev(fd, [data[done:done + _CHUNK]], done)
        except OSError as exc:  # ENOSPC: someone truncated it and the memory is gone
            raise InvalidParams(f"cannot write segment {segment_id}: {exc.strerror}") from None

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def _fd(self, segment_id: int) -> int:
        fd = self._fds.get(segment_id)
        if fd is None:
            raise InvalidParams(f"no shared-memory segment {segment_id} is attached")
        return fd


def _open_segment(path: str, size: int) -> int:
    """A descriptor of the segment file `path`, opened only if it is what the protocol means: a
    regular file of ours (same user) of at least `size` bytes, named SHM_PREFIX... directly in
    SHM_DIR, reached without following a link. Nothing else is ever written to."""
    folder, name = os.path.split(path)
    if (not name.startswith(SHM_PREFIX) or not os.path.isabs(path)
            or os.path.realpath(folder) != os.path.realpath(SHM_DIR)):
        raise InvalidParams(f"{path!r} is not a shared-memory segment: segments are files named "
                            f"{SHM_PREFIX}* directly in {SHM_DIR}")
    if size <= 0:
        raise InvalidParams(f"a segment's size must be positive, got {size}")
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidParams(f"cannot open shared memory {path!r}: {exc.strerror} (is the backend "
                            "on another host?); use base64") from None
    info = os.fstat(fd)
    problem = ""
    if not stat.S_ISREG(info.st_mode):
        problem = "it is not a regular file"
    elif info.st_uid != os.geteuid():
        problem = f"it belongs to user {info.st_uid}, not to the backend's user {os.geteuid()}"
    elif info.st_size < size:
        problem = f"it holds {info.st_size} bytes, fewer than the {size} claimed"
    if problem:
        os.close(fd)
        raise InvalidParams(f"refused to attach {path!r}: {problem}")
    return fd
