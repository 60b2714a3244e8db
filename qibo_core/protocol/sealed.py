"""Sealed memory (protocol version 4): an array in a memfd that nobody can change any more,
passed between client and backend as a file descriptor over a Unix socket (SCM_RIGHTS).

The sender fills a memfd, drops every writable mapping of it and seals it (F_SEAL_WRITE,
F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_SEAL); the kernel refuses F_SEAL_WRITE while a writable
shared mapping is left. The receiver checks the seals before it maps the file copy-on-write: its
array is the sender's pages, copied by no one and changed by no one (its own writes go to pages of
its own). A file without the seals is copied out with pread instead, so a sender that does not
seal, or says it did, can neither change nor truncate what the receiver holds.

Linux only: elsewhere (or under a sandbox that refuses memfd_create) `available()` is False and
arrays take the other paths.
"""

from __future__ import annotations

import ctypes
import logging
import math
import mmap
import os
import socket
import stat
import sys
from functools import cache
from typing import Any

import numpy as np

logger = logging.getLogger("qibo_core.sealed")

_fcntl: Any
try:
    import fcntl as _fcntl
except ImportError:  # not POSIX: no seals, and `available()` says so
    _fcntl = None
F_ADD_SEALS: int = getattr(_fcntl, "F_ADD_SEALS", 0)
F_GET_SEALS: int = getattr(_fcntl, "F_GET_SEALS", 0)
F_SEAL_WRITE: int = getattr(_fcntl, "F_SEAL_WRITE", 0)
F_SEAL_SHRINK: int = getattr(_fcntl, "F_SEAL_SHRINK", 0)
F_SEAL_GROW: int = getattr(_fcntl, "F_SEAL_GROW", 0)
F_SEAL_SEAL: int = getattr(_fcntl, "F_SEAL_SEAL", 0)
SEALS = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL
"""What a sender sets."""
REQUIRED = F_SEAL_WRITE | F_SEAL_SHRINK
"""What a receiver needs before it maps: nobody writes (no write, no writable shared mapping
left or new), nobody truncates (no SIGBUS)."""
NAME = "qibo-core-array"
"""The memfd's name (shown in /proc/<pid>/fd)."""
_CHUNK = 2**30
"""Bytes per pread or pwrite: Linux moves at most about 2 GiB in one call."""
MAX_DESCRIPTORS = 16
"""The most descriptors one message may carry."""
MIN_BYTES = 2**16
"""Smaller arrays travel in their message: making, passing and mapping a memfd costs more than
copying their bytes."""


@cache
def available() -> bool:
    """Whether this process can make a sealed memfd (Linux, and no sandbox refusing it)."""
    if _LIBC is None:
        return False
    try:
        fd = new_memfd(1)
    except OSError as exc:
        logger.info("sealed memory is not available here: %s", exc)
        return False
    try:
        seal(fd)
        return True
    except OSError as exc:
        logger.info("sealed memory is not available here: %s", exc)
        return False
    finally:
        os.close(fd)


VARIABLE = "QIBO_CORE_SEALED_MEMORY"
"""Set to 1 or 0, it decides instead of the kernel whether sealed memory is worthwhile."""
SHMEM_HUGE = ("/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/shmem_enabled",
              "/sys/kernel/mm/transparent_hugepage/shmem_enabled")
"""Where Linux says whether shared memory gets 2 MiB pages (the first for that size, or
"inherit" from the second)."""
_MADV_HUGEPAGE = 14


@cache
def worthwhile() -> bool:
    """Whether sealed memory pays here: where shared memory gets huge pages, as NumPy's memory
    does. With the 4 KiB pages shared memory has by default, each fresh page costs a fault
    (about 2 us a page on the project's virtual machine): every sealed array needs fresh pages,
    a simulation runs slower on memfd pages (TLB misses), and segments, whose pages are reused,
    move a copy faster. The environment's QIBO_CORE_SEALED_MEMORY=1 or 0 decides instead."""
    forced = os.environ.get(VARIABLE)
    if forced in ("0", "1"):
        return forced == "1"
    return shmem_policy() in ("always", "within_size", "advise", "force")


@cache
def shmem_policy() -> str:
    """The kernel's choice of 2 MiB pages for shared memory ("always", "advise"...), or ""."""
    for path in SHMEM_HUGE:
        try:
            with open(path) as f:
                words = f.read().split()
        except OSError:
            continue
        chosen = next((w[1:-1] for w in words if w.startswith("[")), "")
        if chosen != "inherit":
            return chosen
    return ""


def advise_huge_pages(address: int, nbytes: int) -> None:
    """Ask for huge pages where the kernel gives them to shared memory only when asked."""
    if shmem_policy() == "advise" and _LIBC is not None:
        _LIBC.madvise(ctypes.c_void_p(address), ctypes.c_size_t(nbytes), _MADV_HUGEPAGE)


def new_memfd(nbytes: int) -> int:
    """A memfd of `nbytes` zero bytes that can be sealed (OSError where it cannot be made)."""
    create = getattr(os, "memfd_create", None)
    if create is None or not F_ADD_SEALS:
        raise OSError("memfd_create is not available on this platform")
    fd: int = create(NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, nbytes)
    except OSError:
        os.close(fd)
        raise
    return fd


def seal(fd: int) -> None:
    """Seal a memfd for good; OSError (EBUSY) while a writable shared mapping of it is left."""
    _fcntl.fcntl(fd, F_ADD_SEALS, SEALS)


def sealed_copy(array: np.ndarray) -> int:
    """A new sealed memfd holding `array`'s bytes (little-endian, C order): written with
    pwrite, which fills fresh pages without a fault each; through a mapping advised to take huge
    pages where only that gets them."""
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).reshape(-1)
    view = data.data.cast("B")
    fd = new_memfd(len(view))
    try:
        if shmem_policy() == "advise" and len(view):
            mapping = Mapping(fd, len(view), mmap.MAP_SHARED, np.dtype(np.uint8))
            advise_huge_pages(mapping.address, len(view))
            np.asarray(mapping)[:] = np.frombuffer(view, np.uint8)
            del mapping  # no writable mapping may be left when sealing
        else:
            done = 0
            while done < len(view):
                done += os.pwrite(fd, view[done:done + _CHUNK], done)
        seal(fd)
    except OSError:
        os.close(fd)
        raise
    return fd


class Descriptor:
    """A file descriptor received with a message: closed when dropped unless taken."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def take(self) -> int:
        """The descriptor, now the caller's to close; ValueError if it was taken already."""
        if self._fd is None:
            raise ValueError("the descriptor was used already")
        fd, self._fd = self._fd, None
        return fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self.take())

    def __del__(self) -> None:
        self.close()


def array_from(descriptor: Descriptor, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """The array of `dtype` and `shape` at the start of a received memfd, and whether it was
    sealed: then mapped copy-on-write (no copy; writable, and the writes stay ours); else
    copied out with pread. ValueError if the file cannot hold it."""
    fd = descriptor.take()
    try:
        info = os.fstat(fd)
        nbytes = math.prod(shape) * dtype.itemsize
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("the descriptor is not a regular file")
        if info.st_size < nbytes:
            raise ValueError(f"the file holds {info.st_size} bytes, fewer than the {nbytes} "
                             "of the array")
        if nbytes == 0:
            return np.empty(shape, dtype=dtype)
        if is_sealed(fd):
            mapping = Mapping(fd, nbytes, mmap.MAP_PRIVATE, dtype)
            return np.asarray(mapping).reshape(shape)
        logger.warning("a peer sent an array in memory it did not seal: copied, not mapped")
        array = np.empty(shape, dtype=dtype)
        read_into(fd, array.reshape(-1).data.cast("B"))
        return array
    finally:
        os.close(fd)


class Mapping:
    """A file mapped at `address`, owned by the NumPy arrays over it (their `base`): unmapped
    with the last of them. Unlike Python's mmap it keeps no descriptor of the file, so that
    arrays held by the thousand do not exhaust the process's descriptors."""

    def __init__(self, fd: int, nbytes: int, flags: int, dtype: np.dtype) -> None:
        self.nbytes = nbytes
        self.address = map_file(nbytes, flags, fd)
        self.__array_interface__ = {"shape": (nbytes // dtype.itemsize,), "typestr": dtype.str,
                                    "data": (self.address, False), "version": 3}

    def __del__(self) -> None:
        if hasattr(self, "address"):
            _LIBC.munmap(self.address, self.nbytes)


def mapped(array: np.ndarray) -> bool:
    """Whether `array` lies in a file mapped by a Mapping (a sealed array received)."""
    owner: Any = array.base
    while isinstance(owner, np.ndarray):
        owner = owner.base
    return isinstance(owner, Mapping)


def map_file(nbytes: int, flags: int, fd: int, address: int | None = None) -> int:
    """mmap(2), readable and writable: where it mapped `fd` (at `address` with MAP_FIXED)."""
    if _LIBC is None:
        raise OSError("no C library to map files with")
    result = _LIBC.mmap(address, nbytes, mmap.PROT_READ | mmap.PROT_WRITE, flags, fd, 0)
    if result in (None, _MAP_FAILED) or (address is not None and result != address):
        errno = ctypes.get_errno()
        raise OSError(errno, f"mmap: {os.strerror(errno)}")
    return int(result)


def _libc() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, ctypes.c_long]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC: Any = _libc() if sys.platform == "linux" else None
_MAP_FAILED = ctypes.c_void_p(-1).value
MAP_FIXED = 0x10


def is_sealed(fd: int) -> bool:
    """Whether nobody can write to the file or truncate it any more (False for a file that
    cannot carry seals at all)."""
    try:
        seals: int = _fcntl.fcntl(fd, F_GET_SEALS)
    except OSError:
        return False  # EINVAL: not a memfd
    return seals & REQUIRED == REQUIRED


def read_into(fd: int, buffer: memoryview) -> None:
    """The first len(buffer) bytes of `fd` into `buffer`; ValueError if the file is shorter
    (truncated under us)."""
    done = 0
    while done < len(buffer):
        count = os.preadv(fd, [buffer[done:done + _CHUNK]], done)
        if count == 0:
            raise ValueError(f"the file ends after {done} of {len(buffer)} bytes (truncated?)")
        done += count


# ---- the descriptor socket ------------------------------------------------------------------

def socket_pair() -> tuple[socket.socket, socket.socket]:
    """Both ends of a descriptor socket: message boundaries kept (SOCK_SEQPACKET), so each
    message's descriptors arrive as one."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def send(sock: socket.socket, fds: list[int]) -> bool:
    """Pass `fds` as one message without waiting; False if the socket would block or is gone
    (the caller sends the arrays another way)."""
    try:
        return socket.send_fds(sock, [b"d"], fds, socket.MSG_DONTWAIT) == 1
    except OSError:
        return False


def receive(sock: socket.socket, count: int) -> list[Descriptor]:
    """The `count` descriptors of the next message, which must be there already (the sender
    passes them before it writes the message that says so); ValueError if they are not."""
    space = socket.CMSG_SPACE(MAX_DESCRIPTORS * _INT.itemsize)
    try:  # recvmsg itself: socket.recv_fds drops its flags (Python 3.11), and would wait
        _, ancillary, flags, _ = sock.recvmsg(16, space, socket.MSG_DONTWAIT | _CLOEXEC)
    except BlockingIOError:
        raise ValueError(f"the message says {count} descriptors were passed, and none "
                         "were") from None
    fds: list[int] = []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += np.frombuffer(data[:len(data) - len(data) % _INT.itemsize], _INT).tolist()
    received = [Descriptor(fd) for fd in fds]
    if flags & socket.MSG_CTRUNC or len(received) != count:
        for descriptor in received:
            descriptor.close()
        more = " (and more, cut off)" if flags & socket.MSG_CTRUNC else ""
        raise ValueError(f"the message says {count} descriptors were passed; {len(fds)} "
                         f"came{more}")
    return received


def close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass  # closed already


_CLOEXEC = getattr(socket, "MSG_CMSG_CLOEXEC", 0)
"""Received descriptors are not inherited by processes this one starts."""
_INT = np.dtype(np.intc)
