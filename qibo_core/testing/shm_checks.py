"""Shared-memory segments (2.5): a security rule every backend follows, whatever versions it
speaks, since a backend reached through a tunnel could otherwise be made to overwrite any file
its account can write."""

from __future__ import annotations

import os
import tempfile

from ..protocol import ErrorCode
from .checks import kit_check
from .exchange import Exchange, segment_file
from .report import CheckFailed, Skipped


@kit_check("2.5", "shm/attach takes a segment of the client's, refuses any other path, and "
           "a truncated one", security=True)
def _shared_memory(s: Exchange) -> None:
    """A segment of the client's is attached and written, and refused once truncated; any other
    path is refused untouched."""
    if "shm" not in s.initialize()["stateEncodings"]:
        raise Skipped("the backend offers no shared memory (base64 only)")
    with tempfile.TemporaryDirectory() as folder:
        stranger = os.path.join(folder, "not-a-segment")
        content = b"a file that is not a segment\n" * 8
        with open(stranger, "wb") as f:
            f.write(content)
        segment = segment_file(64)
        link, small, unprefixed = segment_file(0), segment_file(8), segment_file(64, prefix="x-")
        os.unlink(link)
        os.symlink(stranger, link)
        try:
            for path, size, what in (
                    (stranger, 64, "a file outside /dev/shm"), (link, 64, "a symbolic link"),
                    (small, 64, "a file smaller than size"),
                    (unprefixed, 64, "a name without the qibo-core- prefix"),
                    (segment, 0, "size 0")):
                s.error("shm/attach", {"path": path, "size": size}, ErrorCode.INVALID_PARAMS,
                        f"§2.5 {what}")
            with open(stranger, "rb") as f:
                if f.read() != content:
                    raise CheckFailed("§2.5: a refused path was written to")
            ref = s.object("shm/attach", {"path": segment, "size": 64})
            shrink = os.open(segment, os.O_RDWR)
        finally:
            for path in (segment, link, small, unprefixed):
                os.unlink(path)
        state = s.object("state/new", {"nqubits": 2})["state"]
        read = s.object("state/read", {"state": state, "segment": ref["segment"]})
        if read.get("segment") != ref["segment"] or read.get("data") is not None:
            raise CheckFailed(f"§2.5: state/read into a segment answered {read}")
        os.ftruncate(shrink, 8)  # a client that truncates: refused, not a SIGBUS
        os.close(shrink)
        s.error("state/read", {"state": state, "segment": ref["segment"]},
                ErrorCode.INVALID_PARAMS, "§2.5 a segment truncated below the array")
        s.object("state/new", {"nqubits": 1})
        s.result("shm/detach", {"segment": ref["segment"]})
        s.error("state/read", {"state": state, "segment": ref["segment"]},
                ErrorCode.INVALID_PARAMS, "§2.5 a detached segment")
