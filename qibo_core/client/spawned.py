"""ProcessTransport: JSON-RPC with a spawned backend process.

Requests may be pipelined from any number of threads: each gets an id and a Future, which the
caller waits for reading stdout itself when nobody else does (reading.py, the transport's base).
Results are decoded with the type the method table gives. The process itself (spawning, stderr,
the stop ladder) is a BackendProcess.

Once `initialize` agreed on them (protocol version 4), arrays travel as raw bytes after their
message (binary frames) and as sealed memfds passed on a Unix socket the backend inherits at
spawn (descriptors): `agree` switches both directions at once.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import socket
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial
from typing import Any

from ..errors import (
    BackendError,
    BackendHung,
    ConfigError,
    ConnectionFailed,
    RequestTimeout,
    ServerNotInitialized,
    UsageError,
)
from ..protocol import (
    CancelParams,
    DescriptorOffer,
    LineReader,
    Method,
    Request,
    WireEncoder,
    sealed,
)
from .process import BackendProcess
from .reading import Reply, ReplyReader
from .trace import TRACE_VARIABLE, Trace
from .transport import current_call, decoded_result

logger = logging.getLogger("qibo_core.client")

MAX_REPLY_BYTES = 2**30
"""Longer reply lines are refused as they arrive; connect(max_reply_bytes=...) raises it."""
SHUTDOWN_TIMEOUT = 2.0
"""Seconds the backend has to answer `shutdown`."""
CANCEL_GRACE = 2.0
"""Seconds a backend has to answer a `$/cancelRequest` sent after a timeout before it is
terminated as hung."""


class ProcessTransport(ReplyReader):
    """A spawned backend process and the JSON-RPC endpoint that talks to it: the requests it
    writes here, their replies read by its base (ReplyReader)."""

    shares_memory = True  # segments are offered; a backend elsewhere (ssh) refuses them
    frames = True
    """Messages cross a byte stream: binary frames can be asked for (unless turned off)."""

    def __init__(self, argv: list[str], *, name: str, env: dict[str, str] | None = None,
                 max_reply_bytes: int = MAX_REPLY_BYTES, trace: Trace | None = None,
                 binary_frames: bool = True, descriptors: bool = True) -> None:
        """`binary_frames` and `descriptors` False leave those out of what `initialize` asks
        for (version 4): arrays then take the paths of version 3 (segments, base64)."""
        super().__init__()
        self.name = name
        self.frames = binary_frames
        self._owner = os.getpid()
        self.max_request_bytes: int | None = None
        """The longest line the backend reads (it says in `initialize`), when it says."""
        self._ids = itertools.count(1)
        self._waiting: list[bytes] = []
        """Lines of notifications that leave with the next message."""
        try:  # before spawning: a trace that cannot be written must leave no process behind
            self._trace = trace or Trace.from_environment()
        except OSError as exc:
            raise ConfigError(f"cannot write the trace file {TRACE_VARIABLE} names: "
                              f"{exc}") from None
        self._writer = WireEncoder()
        """Encodes requests as `initialize` agreed (base64 until then)."""
        self._socket, theirs = _descriptor_sockets() if descriptors else (None, None)
        their_fd = None if theirs is None else theirs.fileno()
        try:
            self.process = BackendProcess(argv, name=name, env=env, pass_fds=tuple(
                [] if their_fd is None else [their_fd]))
        except BaseException:
            self._close_socket()
            raise
        finally:
            if theirs is not None:
                theirs.close()  # the backend holds its own end now
        self.descriptor_offer: DescriptorOffer | None = None
        """Where the backend finds the descriptor socket, for `initialize` to offer."""
        if self._socket is not None and their_fd is not None:
            token = secrets.token_hex(16)
            try:
                self._socket.send(token.encode(), socket.MSG_DONTWAIT)
                self.descriptor_offer = DescriptorOffer(their_fd, token)
            except OSError:  # the command closed it at start (ssh does): nothing to offer
                self._close_socket()
        self._stdin = self.process.stdin
        self._stdout = LineReader(self.process.stdout_fd, max_reply_bytes)

    @property
    def alive(self) -> bool:
        return (self._owner == os.getpid() and self._failure is None and not self._closing
                and self.process.poll() is None)

    def _check_owner(self) -> None:
        """A transport belongs to the process that made it: after a fork the child gets the
        parent's pipes (and maybe locks its threads held), never a working connection."""
        if self._owner != os.getpid():
            raise ConnectionFailed(
                f"this connection to backend {self.name!r} belongs to process {self._owner}, "
                f"not to this one (pid {os.getpid()}, forked from it): connect again here")

    @property
    def stderr_tail(self) -> list[str]:
        return self.process.stderr_tail

    def agree(self, binary: bool, descriptors: bool) -> None:
        """Read and write as `initialize` agreed: arrays as attachments (`binary`), large ones
        as sealed memfds on the descriptor socket (`descriptors`; the socket is closed if not)."""
        self._writer.binary = self._stdout.attachments = binary
        if descriptors and self._socket is not None:
            self._writer.seal = _sealed_copy
            self._stdout.descriptors = self._socket
        else:
            self._close_socket()

    def _close_socket(self) -> None:
        """No descriptors from now on (the backend did not take the socket, or is gone)."""
        self._writer.seal = None
        if hasattr(self, "_stdout"):
            self._stdout.descriptors = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __repr__(self) -> str:
        return f"<ProcessTransport {self.process!r}>"

    # ---- requests ----------------------------------------------------------------------

    def request(self, method: str, params: Any, timeout: float | None = None) -> Any:
        """Send a request and wait for its result, decoded as the method's result type."""
        future: Future[Reply] = Future()
        request_id = self._send(Request(method=method, params=params), future)
        call = current_call.get()
        if call is not None:  # an async caller may cancel this request from its event loop
            call.sent(partial(self.cancel_request, request_id))
        token = getattr(params, "work_done_token", None)
        if token is not None:
            self._watched[token] = request_id
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            raw, frame = self._wait(future, deadline)
        except FutureTimeout:
            raise self._timed_out(method, request_id, future, timeout) from None
        except KeyboardInterrupt:
            self._abandon(request_id)
            raise
        except (BackendError, ConnectionFailed):
            self._raise_callback_failure(token)
            raise
        finally:
            if token is not None:
                self._watched.pop(token, None)
        self._raise_callback_failure(token)
        return decoded_result(method, raw, self.name, frame)

    def cancel_request(self, request_id: int) -> None:
        """Ask the backend to cancel one request, if it is still in flight."""
        with self._lock:
            if request_id in self._pending:
                self._write_cancel(request_id)

    def cancel(self) -> None:
        """Ask the backend to cancel every request in flight; their callers get
        RequestCancelled (or their result, if it came first)."""
        self._check_owner()
        with self._lock:
            for request_id in list(self._pending):
                self._write_cancel(request_id)

    def _timed_out(self, method: str, request_id: int, future: Future[Reply],
                   timeout: float | None) -> RequestTimeout | BackendHung:
        """Cancel a request that ran out of time; a backend that ignores the cancellation too
        is hung, and is terminated."""
        with self._lock:
            self._write_cancel(request_id)
        try:
            self._wait(future, time.monotonic() + CANCEL_GRACE)
        except FutureTimeout:
            error = BackendHung(
                f"backend {self.name!r} did not answer {method!r} within {timeout} s, nor the "
                f"cancellation within {CANCEL_GRACE} s: it is hung and was terminated")
            self._fail(error)
            self.process.stop(polite=False)
            return error
        except (BackendError, ConnectionFailed):
            pass  # RequestCancelled, as asked
        return RequestTimeout(f"backend {self.name!r} did not answer {method!r} within "
                              f"{timeout} s; the request was cancelled")

    def _write_cancel(self, request_id: int) -> None:
        if self._failure is None and not self._closing:
            try:
                self._write(Request(method=Method.CANCEL_REQUEST, params=CancelParams(request_id)))
            except (OSError, ValueError):
                pass  # gone: the reader reports it

    def notify(self, method: str, params: Any, *, now: bool = True) -> None:
        """Send a notification: no reply, nothing to wait for. `now=False`: it leaves with the
        next message, in one write."""
        self._send(Request(method=method, params=params), now=now)

    def _send(self, message: Request, future: Future[Reply] | None = None, *,
              now: bool = True) -> int:
        """Write one message (a request when `future` is given); its id, or 0."""
        self._check_owner()
        with self._lock:
            self._check_usable()
            if future is not None:
                message.id = next(self._ids)
            line, attachments = self._encoded(message)
            if future is not None:
                self._pending[message.id] = future  # type: ignore[index]
            try:
                self._write(message, line, attachments, now=now)
                return message.id if future is not None else 0  # type: ignore[return-value]
            except (OSError, ValueError):
                pass  # the child is gone: report how it ended, outside the lock
        if self._failure is None:
            self._fail(self.process.crashed())
        raise self._failure  # type: ignore[misc]

    def _encoded(self, message: Request) -> tuple[bytes, list[memoryview]]:
        """The message's line and attachments, its descriptors passed already (or, if the
        socket takes no more now, the message encoded without); UsageError for a message
        longer than the backend reads."""
        line, attachments, fds = self._writer.encode(message)
        if fds:
            passed = self._socket is not None and sealed.send(self._socket, fds)
            for fd in fds:
                os.close(fd)
            if not passed:
                line, attachments, _ = self._writer.encode(message, seal=False)
        limit = self.max_request_bytes
        size = max(len(line), sum(map(len, attachments)))
        if limit is not None and size > limit:
            raise UsageError(f"the {message.method!r} message is {size} bytes, more than "
                             f"backend {self.name!r} reads ({limit}, its --max-message-bytes): "
                             "send less at once")
        return line, attachments

    def _write(self, message: Request, line: bytes | None = None,
               attachments: list[memoryview] | None = None, *, now: bool = True) -> None:
        """Write a line and its attachments (after those waiting for it), under the lock;
        `now=False` leaves them waiting for the next message."""
        if line is None:
            line, attachments = self._encoded(message)
        if self._trace is not None:
            self._trace.record(">", self.name, self.pid, line)
        if not now:
            self._waiting.append(b"".join([line, b"\n", *(attachments or ())]))
            return
        if self._waiting:
            line = b"".join(self._waiting) + line
            self._waiting.clear()
        self._stdin.write(line + b"\n")
        for attachment in attachments or ():
            self._stdin.write(attachment)
        # Nothing waits in the file's buffer, which a forked child could flush again.
        self._stdin.flush()

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closing:
            raise ConnectionFailed(f"the connection to backend {self.name!r} is closed")

    def _abandon(self, request_id: int) -> None:
        """Stop waiting for a request: ask the backend to cancel it, and ignore its answer."""
        with self._lock:
            if self._pending.pop(request_id, None) is None:
                return
            self._abandoned.add(request_id)
            self._write_cancel(request_id)

    # ---- closing -----------------------------------------------------------------------

    def close(self) -> None:
        """Shut the backend down politely, then less so; always reap it. Safe to call twice. In
        a forked child it does nothing: the backend is the parent's."""
        if self._closing or self._owner != os.getpid():
            return
        if self._failure is None and self.process.poll() is None:
            try:
                try:
                    self.request(Method.SHUTDOWN, None, timeout=SHUTDOWN_TIMEOUT)
                except ServerNotInitialized:
                    pass  # it refused `initialize` (an option it lacks): exit is all it needs
                self.notify(Method.EXIT, None)
            except (ConnectionFailed, BackendError, RequestTimeout) as exc:
                logger.warning("backend %s did not shut down politely: %s", self.name, exc)
        with self._lock:
            self._closing = True
        self.process.close()
        self._close_socket()
        if self._trace is not None:
            self._trace.close()

    def kill(self) -> None:
        """End the process at once (for tests and emergencies); `close` still reaps it."""
        self.process.kill()


def _descriptor_sockets() -> tuple[socket.socket | None, socket.socket | None]:
    """Our end of a descriptor socket and the backend's, where sealed memory can be made and
    is worth it (sealed.worthwhile: elsewhere segments and the pipe are faster)."""
    if not sealed.available() or not sealed.worthwhile():
        return None, None
    try:
        return sealed.socket_pair()
    except OSError:
        return None, None


def _sealed_copy(array: Any) -> int | None:
    try:
        return sealed.sealed_copy(array)
    except OSError:
        return None  # no memfd now (descriptors, memory): the pipe it is
