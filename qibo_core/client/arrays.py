"""How arrays cross between the client and one backend: large ones as sealed memfds when the
session agreed on them (the transport passes them; protocol/sealed.py), else through shared-memory
segments when both can (segments.py); the others in the message (base64, or attachments under
binary frames). An answered array is checked here, in one place (a malformed one is a
ProtocolError)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import ProtocolError
from ..protocol import ArrayData, decode_array
from .segments import MIN_BYTES, Segment, SegmentPool


class ArrayTransfer:
    """The arrays of one backend's requests and replies; `segments` is None when shared memory
    segments cannot reach the backend (another host, --no-shm, a backend in this process) or
    are not needed (`sealed`: the session moves arrays as sealed memfds)."""

    def __init__(self, backend: str, segments: SegmentPool | None, *,
                 sealed: bool = False) -> None:
        self.backend = backend
        self.segments = segments
        self.sealed = sealed

    @contextlib.contextmanager
    def sending(self, array: np.ndarray) -> Iterator[Any]:
        """What params carry for `array` while the request runs: ArrayData naming a segment the
        array was written into, when one can be had; else the array itself, which the
        transport encodes as the session agreed (a sealed memfd, an attachment, base64), or
        hands over as it is in process."""
        segments = self.segments
        segment = None
        if segments is not None and array.nbytes >= MIN_BYTES:
            segment = segments.acquire(array.nbytes)
        if segments is None or segment is None:
            yield array
            return
        try:
            yield segments.copy_in(segment, array)
        finally:
            segments.release(segment)

    def reply_segment(self, nbytes: int) -> Segment | None:
        """A segment for the backend to write an answered array of `nbytes` into, when one can
        be had (a large array, shared memory on); give it back with `received` or `release`."""
        if self.segments is None or nbytes < MIN_BYTES:
            return None
        return self.segments.acquire(nbytes)

    def release(self, segment: Segment | None) -> None:
        if segment is not None:
            self.segments.release(segment)  # type: ignore[union-attr]

    def received(self, data: ArrayData | np.ndarray, dtype: str,
                 segment: Segment | None = None) -> np.ndarray:
        """An answered array of `dtype`: copied out of `segment` (which goes back to the pool),
        decoded from the message (a sealed memfd is mapped copy-on-write: the backend's pages,
        which nobody can change), or as a backend in this process handed it over."""
        if isinstance(data, np.ndarray):
            if data.dtype != np.dtype(dtype):
                raise ProtocolError(f"backend {self.backend!r} answered an array of "
                                    f"{data.dtype} where {dtype} was asked for")
            return data
        if segment is not None:
            return self.segments.copy_out(segment, data, np.dtype(dtype))  # type: ignore[union-attr]
        try:
            return decode_array(data, dtype)
        except ValueError as exc:
            raise ProtocolError(f"backend {self.backend!r} answered a malformed array: "
                                f"{exc}") from None

    def close(self) -> None:
        if self.segments is not None:
            self.segments.close()
