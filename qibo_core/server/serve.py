"""serve(backend): the loop inside a backend process, and the Server that runs it.

One message per line on stdin (decoded by incoming.py), one response per request on stdout, in
order. A thread watches the parent process and exits when it is gone, even in the middle of a
request. Stdout is kept for protocol messages: fd 1 is pointed at stderr before the backend is
loaded, so a stray print (or C code writing to fd 1) cannot corrupt the stream.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import IO, Any

import msgspec

from ..errors import (
    BackendError,
    InternalError,
    InvalidParams,
    InvalidRequest,
    RequestCancelled,
)
from ..protocol import (
    EXECUTABLE_PREFIX,
    JSONRPC,
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    Frame,
    IncomingRequest,
    LineReader,
    Method,
    Oversized,
    ProgressParams,
    ProgressValue,
    Request,
    Response,
    WireEncoder,
    bind,
    sealed,
)
from .backend import Backend
from .incoming import decode_params, decoded, error_response, salvage_state, with_misspellings
from .registry import method_not_found
from .session import Session
from .states import stream_failed

DEFAULT_MAX_MESSAGE_BYTES = 256 * 2**20
PARENT_POLL_SECONDS = 1.0
CHECKPOINT_SECONDS = 0.005
MAX_CANCELLED = 1024
"""Cancellations remembered for requests not seen yet."""
_INITIALIZE = ('{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": '
               f'{{"protocolVersion": {PROTOCOL_VERSION}}}}}')
"""The first line a person types to a backend."""
PR_SET_PDEATHSIG = 1
"""prctl(2)'s option: the signal this process gets when its parent thread ends."""
PROGRESS_SECONDS = 0.2
"""At most one `$/progress` notification per request this often."""


def log(message: str) -> None:
    """Diagnostics go to stderr: stdout carries protocol messages only."""
    print(message, file=sys.stderr, flush=True)


def serve(backend: Backend | Callable[[], Backend], *, name: str | None = None,
          version: str | None = None, argv: Sequence[str] | None = None) -> None:
    """Run a backend executable's main loop until `exit` or end of input, then exit.

    `backend` is a Backend, or a callable returning one: pass a callable (with `name` and
    `version`) to import the simulator only after stdout is protected.
    """
    if isinstance(backend, Backend):
        name, version = name or backend.name, version or backend.version
    args = _parse_args(name or "backend", version or "unknown", argv)
    _die_with_parent()
    protocol_out = _protect_stdout()
    try:
        if os.isatty(sys.stdin.fileno()):
            log(f"{EXECUTABLE_PREFIX}{name} {version}: a JSON-RPC 2.0 server (protocol versions "
                f"{', '.join(map(str, SUPPORTED_VERSIONS))}), one message per line. Begin "
                f"with\n  {_INITIALIZE}\nCtrl-D ends it; --help says more.")
        if not isinstance(backend, Backend):
            try:
                backend = backend()
            except ImportError as exc:  # the simulator is missing: say so, not look healthy
                log(f"{EXECUTABLE_PREFIX}{name}: cannot start: {exc}")
                sys.exit(1)
        session = Session(backend, shared_memory=args.shm,
                          max_message_bytes=args.max_message_bytes)
        server = Server(session, protocol_out, max_message_bytes=args.max_message_bytes)
        code = server.run(sys.stdin.fileno())
        session.backend.close()
    except KeyboardInterrupt:  # Ctrl-C in a terminal: end quietly, as Ctrl-D would
        code = 130
    # Every answer is written and the backend closed: exit now. Finalizing the interpreter
    # would take seconds with some simulators loaded (2.4 s with qibo and numba), which the
    # client spends waiting.
    sys.stderr.flush()
    os._exit(code)


def idle_threads_sleep() -> None:
    """Let the simulator's OpenMP threads sleep as soon as a request's work is done, unless the
    user chose how they wait (OMP_WAIT_POLICY, GOMP_SPINCOUNT). libgomp's threads otherwise
    spin after each parallel region, while the backend idles and its client works: they take
    the cores both need (docs/decisions.md, "OpenMP threads sleep between requests"). A backend
    whose simulator uses OpenMP calls this before the simulator loads: it reads the setting
    once."""
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def _die_with_parent() -> None:
    """Ask the kernel to kill this process when the thread that started it ends (Linux): a
    backend busy in a simulator that holds the GIL for seconds cannot watch for itself, and
    must not outlive its client."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return  # not Linux: the thread watching the parent pid remains
    if os.getppid() != parent:  # the parent ended before the request took effect
        os._exit(1)


def _parse_args(name: str, version: str, argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"{EXECUTABLE_PREFIX}{name}",
        description=f"The {name} qibo-core backend: a JSON-RPC 2.0 server on stdin/stdout, one "
                    f"message per line (protocol version {PROTOCOL_VERSION}). Start with an "
                    f"'initialize' request, for example:\n  {_INITIALIZE}",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version",
                        version=f"{EXECUTABLE_PREFIX}{name} {version} "
                                f"(protocol {PROTOCOL_VERSION})")
    parser.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES,
                        help="refuse longer input lines (default: %(default)s)")
    parser.add_argument("--no-shm", dest="shm", action="store_false",
                        help="refuse shared memory (shm/attach segments and sealed memfds): "
                             "arrays cross the pipe, as base64 or binary frames")
    return parser.parse_args(argv)


def _protect_stdout() -> IO[bytes]:
    """Keep a private copy of fd 1 for protocol messages and point fd 1 at stderr."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(protocol_fd, "wb")


class Server:
    """Reads requests, runs them on a Session one at a time, writes the responses.

    Everything happens on the main thread, so a request costs no hand-over between threads.
    While a request runs, the session calls `checkpoint` between gates: input that arrived
    meanwhile is taken in, so a `$/cancelRequest` stops the request there.
    """

    def __init__(self, session: Session, out: IO[bytes], *,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.session = session
        session.checkpoint = self.checkpoint
        self._out = out
        self._writer = WireEncoder()
        """Encodes messages as the session agreed: arrays as base64, attachments, or sealed
        memfds passed on the session's descriptor socket."""
        self._max = max_message_bytes
        self._input: LineReader | None = None
        self._backlog: collections.deque[IncomingRequest | Response] = collections.deque()
        self._cancelled: dict[int | str, None] = {}
        """Ids cancelled and not yet seen, oldest first, at most MAX_CANCELLED of them."""
        self._running: int | str | None = None
        self._progress_token: int | str | None = None
        self._next_look = 0.0
        self._next_progress = 0.0
        self._shutdown = False

    def run(self, stdin: int) -> int:
        """Serve until `exit` or end of input on file descriptor `stdin`; the exit code LSP
        prescribes."""
        self._input = LineReader(stdin, self._max)
        threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), name="parent",
                         daemon=True).start()
        while (message := self._next_message()) is not None:
            if isinstance(message, Response):
                self._send(message)
                continue
            try:
                response = self.handle(message)
            except _Exit:
                return 0 if self._shutdown else 1
            if response is not None:
                self._send(response)
        return 0

    def _next_message(self) -> IncomingRequest | Response | None:
        """The next message to run, or the error response a bad line earns; None at end of
        input. Cancellations are taken in here, never run in turn."""
        if self._backlog:
            return self._backlog.popleft()
        assert self._input is not None
        while True:
            line = self._input.read_line()
            if line is None:
                return None
            message = self._take(line)  # type: ignore[arg-type]
            if message is not None:
                return message

    def checkpoint(self, done: int = 0, total: int = 0) -> None:
        """Take in the input that arrived while a request runs; RequestCancelled if the
        running request was cancelled; report progress if it asked for it. Cheap when called
        often: it looks at most every CHECKPOINT_SECONDS."""
        now = time.monotonic()
        if self._input is None or now < self._next_look:
            return
        self._next_look = now + CHECKPOINT_SECONDS
        if self._progress_token is not None and total and now >= self._next_progress:
            self._next_progress = now + PROGRESS_SECONDS
            self._send(Request(method=Method.PROGRESS, params=ProgressParams(
                self._progress_token, ProgressValue(done, total))))
        while isinstance(line := self._input.read_line(timeout=0), (bytes, Frame, Oversized)):
            message = self._take(line)
            if message is not None:
                self._backlog.append(message)
        if self._running is not None and self._running in self._cancelled:
            del self._cancelled[self._running]
            raise RequestCancelled(f"request {self._running} was cancelled")

    def _take(self, line: bytes | Frame | Oversized) -> IncomingRequest | Response | None:
        """A line decoded, to be run in turn; or the error response it earns; or None when
        there is nothing to run (a blank line, a cancellation, which takes effect at once)."""
        message = self.decode(line)
        if isinstance(message, IncomingRequest) and message.method == Method.CANCEL_REQUEST:
            return self._cancel(message)
        return message

    def _cancel(self, message: IncomingRequest) -> Response | None:
        """Mark a request cancelled; a cancellation sent as a request is answered at once."""
        try:
            params = decode_params(message)
        except BackendError as exc:
            if message.id is msgspec.UNSET:
                log(f"ignored a malformed $/cancelRequest: {exc}")
                return None
            return error_response(message.id, exc)
        self._cancelled[params.id] = None
        if len(self._cancelled) > MAX_CANCELLED:  # ids never sent would pile up for ever
            del self._cancelled[next(iter(self._cancelled))]
        return None if message.id is msgspec.UNSET else Response(id=message.id, result=None)

    def decode(self, line: bytes | Frame | Oversized) -> IncomingRequest | Response | None:
        """One input line (or frame) as a message, or the error response it earns (None: a
        blank line)."""
        return decoded(line, self._max)

    def handle(self, message: IncomingRequest) -> Response | None:
        """Run one message; its response (None for notifications)."""
        is_request = message.id is not msgspec.UNSET
        request_id = None if message.id is msgspec.UNSET else message.id
        try:
            return self._dispatch(message, request_id, is_request)
        except BackendError as exc:
            error = exc
        except _Exit:
            raise
        except Exception as exc:  # the one place that catches everything: keep serving
            traceback.print_exc(file=sys.stderr)
            error = InternalError(f"{message.method} failed: {type(exc).__name__}: {exc}",
                                  {"exception": type(exc).__name__})
        if isinstance(error, InvalidParams):
            error = with_misspellings(error, message)
        if is_request:
            return error_response(request_id, error)
        if message.method == Method.STATE_APPLY:
            stream_failed(self.session, salvage_state(message.params), error)
        log(f"notification {message.method!r} failed: {error}")
        return None

    def _dispatch(self, message: IncomingRequest, request_id: Any,
                  is_request: bool) -> Response | None:
        if message.jsonrpc != JSONRPC:
            raise InvalidRequest(f"'jsonrpc' must be \"2.0\", got {message.jsonrpc!r}")
        if message.id is None:
            raise InvalidRequest("a request id is an integer or a string: null is what replies "
                                 "that cannot name their request carry")
        if message.method == Method.EXIT:
            if is_request:  # answered, as every request is, then carried out
                self._send(Response(id=request_id, result=None))
            raise _Exit
        if self._shutdown:
            if is_request:
                raise InvalidRequest(f"{message.method!r} after 'shutdown': only 'exit' is "
                                     "accepted now")
            return None
        if not self.session.serves(message.method):
            if is_request:
                raise method_not_found(message.method)
            return None  # unknown notifications are ignored, as LSP does
        if request_id in self._cancelled:
            del self._cancelled[request_id]
            raise RequestCancelled(f"request {request_id} was cancelled before it started")
        params = decode_params(message)
        frame = getattr(message, "frame", None)
        if frame is not None:
            try:
                bind(params, frame)
            except ValueError as exc:
                raise InvalidParams(f"invalid params for {message.method!r}: {exc}") from None
        if not is_request:
            self.session.notify(message.method, params)
            return None
        self._running = request_id
        self._progress_token = getattr(params, "work_done_token", None)
        self._next_progress = time.monotonic() + PROGRESS_SECONDS
        try:
            result = self.session.call(message.method, params)
        finally:
            self._running = self._progress_token = None
        if message.method == Method.INITIALIZE:
            self._agreed()
        if message.method == Method.SHUTDOWN:
            self._shutdown = True
        # An Array result (a NumPy array, maybe the backend's own memory) is left to the writer.
        return Response(id=request_id, result=result)

    def _agreed(self) -> None:
        """From the next message on, read and write as `initialize` agreed."""
        transfer = self.session.transfer
        self._writer.binary = transfer.binary
        self._writer.seal = transfer.seal if transfer.socket is not None else None
        if self._input is not None:
            self._input.attachments = transfer.binary
            self._input.descriptors = transfer.socket

    def _send(self, response: Response | Request) -> None:
        line, attachments, fds = self._writer.encode(response)
        if fds:
            socket = self.session.transfer.socket
            passed = socket is not None and sealed.send(socket, fds)
            for fd in fds:
                os.close(fd)
            if not passed:  # the client stopped taking descriptors: the pipe it is
                line, attachments, _ = self._writer.encode(response, seal=False)
        try:
            self._out.write(line + b"\n")
            for attachment in attachments:
                self._out.write(attachment)
            self._out.flush()
        except BrokenPipeError:
            os._exit(0)  # the client is gone; nobody is left to answer


class _Exit(Exception):
    """The `exit` notification arrived."""


def _exit_when_orphaned(parent: int) -> None:
    """Exit once the parent is gone (we are re-parented), even in the middle of a request."""
    while True:
        time.sleep(PARENT_POLL_SECONDS)
        if os.getppid() != parent:
            try:
                os.write(2, b"qibo-core: the parent process is gone; exiting\n")
            except OSError:
                pass  # stderr went with the parent: nobody is left to tell
            os._exit(1)
