"""The server half of shared memory: the client's segments a backend has attached, by id.

A backend attaches only what the protocol means by a segment (docs/protocol.md 2.5), so that
`shm/attach` can never be used to make it write to another file. It maps the segment once and
copies states into it at memory speed, after checking, at every write, that the file still holds
them: writing past the end of a file someone truncated would kill the backend with SIGBUS. (Only
the client, which created the file, and its own user can reach it after the unlink: they could
as well kill the backend.)
"""

from __future__ import annotations

import mmap
import os
import stat
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidParams
from ..protocol import SHM_DIR, SHM_PREFIX

_CHUNK = 2**30
"""Bytes per pread: Linux moves at most about 2 GiB in one call."""
MAX_SEGMENTS = 64
"""The most segments attached at once (each holds a file descriptor)."""


@dataclass
class _Segment:
    fd: int
    memory: mmap.mmap


class Segments:
    """Attached segments by id; `enabled` is False for a backend started with --no-shm."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._attached: dict[int, _Segment] = {}
        self._next_id = 1

    def attach(self, path: str, size: int) -> int:
        if not self.enabled:
            raise InvalidParams("shared memory is off in this backend (--no-shm); use base64")
        if len(self._attached) >= MAX_SEGMENTS:
            raise InvalidParams(f"{MAX_SEGMENTS} segments are attached already: detach some")
        fd = _open_segment(path, size)
        try:
            memory = mmap.mmap(fd, size)
        except OSError:
            os.close(fd)
            raise
        segment_id, self._next_id = self._next_id, self._next_id + 1
        self._attached[segment_id] = _Segment(fd, memory)
        return segment_id

    def detach(self, segment_id: int) -> None:
        segment = self._get(segment_id)
        del self._attached[segment_id]
        _close(segment)

    def check_room(self, segment_id: int, nbytes: int) -> None:
        """InvalidParams unless the segment exists and holds `nbytes` now."""
        segment = self._get(segment_id)
        size = min(len(segment.memory), os.fstat(segment.fd).st_size)
        if nbytes > size:
            raise InvalidParams(f"the array takes {nbytes} bytes; segment {segment_id} holds "
                                f"{size} (was it truncated?)")

    def write(self, segment_id: int, array: np.ndarray) -> None:
        """`array`'s bytes at the start of the segment."""
        self.check_room(segment_id, array.nbytes)
        segment = self._attached[segment_id]
        target = np.frombuffer(segment.memory, dtype=array.dtype, count=array.size)
        np.copyto(target, array.reshape(-1))

    def read(self, segment_id: int, dtype: np.dtype, count: int) -> np.ndarray:
        """The `count` items of `dtype` the client wrote at the start of the segment, copied
        into memory of our own with pread: a client that truncates the file meanwhile causes a
        short read (InvalidParams), where reading through the mapping would be a SIGBUS."""
        self.check_room(segment_id, count * dtype.itemsize)
        segment = self._attached[segment_id]
        array = np.empty(count, dtype=dtype)
        buffer = array.data.cast("B")
        done = 0
        while done < len(buffer):
            got = os.preadv(segment.fd, [buffer[done:done + _CHUNK]], done)
            if got == 0:
                raise InvalidParams(f"an array of {len(buffer)} bytes does not fit in segment "
                                    f"{segment_id}: it ends after {done} (was it truncated?)")
            done += got
        return array

    def close(self) -> None:
        for segment in self._attached.values():
            _close(segment)
        self._attached.clear()

    def _get(self, segment_id: int) -> _Segment:
        segment = self._attached.get(segment_id)
        if segment is None:
            raise InvalidParams(f"no shared-memory segment {segment_id} is attached")
        return segment


def _close(segment: _Segment) -> None:
    segment.memory.close()
    os.close(segment.fd)


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
