"""Memory for a backend's states that can be handed to the client without a copy (protocol
version 4, sealed arrays; Backend.new_amplitudes allocates here once a client takes them, where
that is worthwhile: sealed.worthwhile()).

Such a state lives in a memfd mapped shared. To hand it over, that mapping is replaced, at the
same address (MAP_FIXED), by a private copy-on-write mapping of the same file: the backend's
arrays see the same bytes and keep working, its later writes go to pages of its own, and since
no writable shared mapping is left the file can be sealed and passed on. The client's array is
then these very pages, which nobody can change. The file is handed over once; a state read again
after that is copied into a new sealed memfd.

Memory that cannot be had this way (small, not Linux, no memfd, no descriptors left) is NumPy's.
"""

from __future__ import annotations

import mmap
import os
import sys
from typing import Any

import numpy as np

from ..protocol import sealed

MIN_BYTES = 2**20
"""Smaller states are NumPy memory: each shared one holds a descriptor."""

MAX_LIVE = 512
"""Shared memory held at once, at most (a descriptor each, of the 1024 a process usually may
open); more states are NumPy memory."""


class _Shared(sealed.Mapping):
    """A memfd mapped shared, owned by the arrays over it (NumPy's `base`): the mapping and the
    descriptor go with the last of them."""

    live = 0

    def __init__(self, count: int, dtype: np.dtype) -> None:
        self.fd: int | None = sealed.new_memfd(count * dtype.itemsize)
        try:
            super().__init__(self.fd, count * dtype.itemsize, mmap.MAP_SHARED, dtype)
        except OSError:
            os.close(self.fd)
            raise
        _Shared.live += 1
        sealed.advise_huge_pages(self.address, self.nbytes)

    def hand_over(self) -> int | None:
        """The memfd, sealed, for the client; the backend's mapping is private from now on.
        None if the kernel refuses (the mapping is then unchanged or private: still good)."""
        fd = self.fd
        if fd is None:
            return None
        try:
            sealed.map_file(self.nbytes, mmap.MAP_PRIVATE | sealed.MAP_FIXED, fd, self.address)
            sealed.seal(fd)
        except OSError:
            return None
        self.fd = None
        return fd

    def __del__(self) -> None:
        if not hasattr(self, "address"):
            return  # __init__ failed: nothing to release
        _Shared.live -= 1
        super().__del__()
        if self.fd is not None:
            os.close(self.fd)


def zeros(count: int, dtype: np.dtype) -> np.ndarray:
    """`count` zeros of `dtype`: in a memfd when large enough and possible, else NumPy's.
    Either way no page is touched until written (a new memfd reads as zeros)."""
    if (count * dtype.itemsize < MIN_BYTES or _Shared.live >= MAX_LIVE
            or not sealed.available()):
        return np.zeros(count, dtype=dtype)
    try:
        return np.asarray(_Shared(count, dtype))
    except OSError:  # no descriptors or memory left for one more: NumPy's memory will do
        return np.zeros(count, dtype=dtype)


def handed_over(array: np.ndarray) -> bool:
    """Whether `array` lies in memory from `zeros` whose pages a read handed over: writing
    there copies each page first, and the next read of it is a copy."""
    owner = _owner(array)
    return isinstance(owner, _Shared) and owner.fd is None


def _owner(array: np.ndarray) -> Any:
    owner: Any = array.base
    while isinstance(owner, np.ndarray):
        owner = owner.base
    return owner


def hand_over(array: np.ndarray) -> int | None:
    """A sealed memfd that holds `array`, made of its own pages when it is the whole of memory
    from `zeros` not handed over yet, in little-endian order; else None (the caller copies)."""
    owner = _owner(array)
    if (not isinstance(owner, _Shared) or not array.flags.c_contiguous
            or array.ctypes.data != owner.address or array.nbytes != owner.nbytes
            or array.dtype.byteorder == ">" or sys.byteorder != "little"):
        return None
    return owner.hand_over()
