"""A real refusal of memfd_create: a seccomp filter (as a container's sandbox installs one) in
front of a program, so that the kernel answers memfd_create with ENOSYS. x86-64 Linux only."""

from __future__ import annotations

import platform
import sys

SUPPORTED = sys.platform == "linux" and platform.machine() == "x86_64"

WITHOUT_MEMFD = """
import ctypes, os, struct, sys
AUDIT_ARCH_X86_64, MEMFD_CREATE, ENOSYS = 0xC000003E, 319, 38
ALLOW, ERRNO = 0x7FFF0000, 0x00050000
def op(code, k, jt=0, jf=0):
    return struct.pack("HBBI", code, jt, jf, k)
program = b"".join([
    op(0x20, 4),                              # load seccomp_data.arch
    op(0x15, AUDIT_ARCH_X86_64, 1, 0),        # x86-64? go on : allow
    op(0x06, ALLOW),
    op(0x20, 0),                              # load seccomp_data.nr
    op(0x15, MEMFD_CREATE, 0, 1),             # memfd_create? refuse : allow
    op(0x06, ERRNO | ENOSYS),
    op(0x06, ALLOW),
])
buffer = ctypes.create_string_buffer(program)
fprog = struct.pack("HxxxxxxQ", len(program) // 8, ctypes.addressof(buffer))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.c_char_p(fprog), 0, 0):
    sys.exit(f"seccomp: {os.strerror(ctypes.get_errno())}")
os.execv(sys.argv[1], sys.argv[1:])
"""
"""Run as `python -c WITHOUT_MEMFD program args...`: program runs (and everything it starts)
with memfd_create refused (PR_SET_NO_NEW_PRIVS, then PR_SET_SECCOMP with the filter)."""


def without_memfd(argv: list[str]) -> list[str]:
    """`argv` run under the filter."""
    return [sys.executable, "-c", WITHOUT_MEMFD, *argv]
