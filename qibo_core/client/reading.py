"""ProcessTransport's reading half (its base class): the requests in flight and the reading of
their responses.

There is no reader thread to hand responses over (a hand-over between threads costs tens of
microseconds): a waiting caller reads stdout itself, as the leader, and sets the futures of every
response it meets; other waiting callers sleep until their future is set or the leader steps
down. `$/progress` notifications met on the way go to the callback watching their token.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

import msgspec

from ..errors import BackendCrashed, BackendError, ConnectionFailed, ProtocolError
from ..protocol import (
    Frame,
    IncomingResponse,
    LineReader,
    Method,
    Oversized,
    ProgressParams,
    TimedOut,
)
from .process import BackendProcess
from .trace import Trace
from .transport import quoted

logger = logging.getLogger("qibo_core.client")

_response_decoder = msgspec.json.Decoder(IncomingResponse)
_progress_decoder = msgspec.json.Decoder(ProgressParams)

Reply = tuple[msgspec.Raw, Frame | None]
"""A result as read, and the frame it came in (attachments, descriptors), if any."""


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class ReplyReader:
    """Requests in flight and their responses, read by whoever waits (the leader). The writing
    half (ProcessTransport) spawns the process and sets `name`, `process`, `_stdout` and
    `_trace`; it sends the requests whose futures are here, and `cancel_request`."""

    name: str
    process: BackendProcess
    _stdout: LineReader
    _trace: Trace | None

    def __init__(self) -> None:
        self._pending: dict[int, Future[Reply]] = {}
        self._abandoned: set[int] = set()
        self._lock = threading.Lock()
        """Guards the requests in flight, and the writes of the messages that start them."""
        self._failure: ConnectionFailed | None = None
        self._closing = False
        self._reading = threading.Lock()
        """Held by the caller that is reading stdout (the leader)."""
        self._turn = threading.Condition()
        """Notified when a future is set or the leader steps down."""
        self._watchers: dict[int | str, Callable[[int, int], None]] = {}
        self._watched: dict[int | str, int] = {}
        """The request carrying each progress token."""
        self._callback_failures: dict[int | str, Exception] = {}
        """What a progress callback raised, by token, until its request's caller raises it."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def cancel_request(self, request_id: int) -> None:
        """Ask the backend to cancel one request, if it is still in flight (the writing half
        writes it)."""
        raise NotImplementedError

    def _wait(self, future: Future[Reply], deadline: float | None) -> Reply:
        """The result of `future`, reading stdout as the leader whenever nobody else does."""
        while not future.done():
            if self._reading.acquire(blocking=False):
                try:
                    self._lead(future, deadline)
                finally:
                    self._reading.release()
                    with self._turn:
                        self._turn.notify_all()
            else:
                with self._turn:
                    if not future.done() and self._reading.locked():
                        self._turn.wait(_remaining(deadline))
            if not future.done() and _remaining(deadline) == 0:
                raise FutureTimeout
        return future.result()

    def _lead(self, future: Future[Reply], deadline: float | None) -> None:
        """Read and dispatch responses until `future` is set, stdout ends or time is up."""
        while not future.done():
            line = self._stdout.read_line(_remaining(deadline))
            if isinstance(line, TimedOut):
                return
            if line is None:
                self._fail(self._closed_stdout())
                return
            if isinstance(line, Oversized):
                self._fail(ProtocolError(
                    f"backend {self.name!r} sent a line of {line.size} bytes, more than the "
                    f"{self._stdout.limit} this client takes: connect(..., max_reply_bytes=...) "
                    "takes more"))
                self.process.kill()
                return
            try:
                self._dispatch(line)
            except ProtocolError as exc:
                self._fail(exc)
                self.process.kill()
                return

    def _closed_stdout(self) -> BackendCrashed:
        """Stdout ended: the backend exited, or closed it and must not be left running."""
        crash = self.process.crashed()
        if crash.returncode is not None:
            return crash
        self.process.stop(polite=False)
        return BackendCrashed(f"backend {self.name!r} (pid {self.pid}) closed its stdout but kept "
                              "running; it was terminated", returncode=self.process.returncode,
                              stderr_tail=crash.stderr_tail)

    def _dispatch(self, line: bytes | Frame) -> None:
        frame = None
        if isinstance(line, Frame):
            frame, line = line, line.line
        if self._trace is not None:
            self._trace.record("<", self.name, self.pid, line)
        if frame is not None and frame.problem:
            raise ProtocolError(f"backend {self.name!r} sent a message whose attachments or "
                                f"descriptors are wrong ({frame.problem}): {quoted(line)}")
        try:
            message = _response_decoder.decode(line)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"backend {self.name!r} sent a line that is not a JSON-RPC "
                                f"message ({exc}): {quoted(line)}") from None
        if message.method is not msgspec.UNSET:
            self._notified(message.method, message.params)
            return
        with self._lock:
            future = self._pending.pop(message.id, None)  # type: ignore[arg-type]
            if future is None:
                if message.id in self._abandoned:
                    self._abandoned.discard(message.id)
                    return
                raise ProtocolError(f"backend {self.name!r} answered an unknown request id "
                                    f"{message.id!r}: {quoted(line)}")
        if message.error is not msgspec.UNSET:
            future.set_exception(BackendError.from_object(message.error))
        elif message.result is not msgspec.UNSET:
            future.set_result((message.result, frame))
        else:
            future.set_exception(ProtocolError(
                f"backend {self.name!r} sent a response with neither result nor error: "
                f"{quoted(line)}"))
        with self._turn:
            self._turn.notify_all()

    def watch(self, token: int | str, callback: Callable[[int, int], None] | None) -> None:
        """Call `callback(done, total)` for each `$/progress` carrying `token` (None: stop)."""
        if callback is None:
            self._watchers.pop(token, None)
        else:
            self._watchers[token] = callback

    def _notified(self, method: str, params: msgspec.Raw) -> None:
        if method != Method.PROGRESS:
            logger.debug("backend %s sent notification %s", self.name, method)
            return
        try:
            progress = _progress_decoder.decode(params)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"backend {self.name!r} sent an invalid $/progress: "
                                f"{exc}") from None
        callback = self._watchers.get(progress.token)
        if callback is None or progress.token in self._callback_failures:
            return
        try:
            callback(progress.value.done, progress.value.total)
        except Exception as exc:  # the caller's: cancel its request and raise it there
            self._callback_failures[progress.token] = exc
            request_id = self._watched.get(progress.token)
            if request_id is not None:
                self.cancel_request(request_id)

    def _fail(self, failure: ConnectionFailed) -> None:
        with self._lock:
            if self._closing and isinstance(failure, BackendCrashed):
                failure = ConnectionFailed(f"the connection to backend {self.name!r} is closed")
            self._failure = failure
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_exception(failure)
        with self._turn:
            self._turn.notify_all()

    def _raise_callback_failure(self, token: int | str | None) -> None:
        """What the progress callback of this request raised, if it raised (the request was
        cancelled then): the caller's own exception, not the RequestCancelled it caused."""
        failure = self._callback_failures.pop(token, None) if token is not None else None
        if failure is not None:
            raise failure
