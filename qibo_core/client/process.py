"""BackendProcess: a spawned backend's life, apart from what is said to it.

Starting, watching and stopping a child is one job, speaking JSON-RPC to it another (spawned.py).
Stderr is drained on a thread of its own into a bounded tail (an unread stderr pipe blocks the
child at 64 KiB), shown when the backend dies. Stopping is a ladder: wait, terminate, wait,
kill, always reap, close every pipe.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import IO, Any

from ..errors import BackendCrashed, ConnectionFailed
from ..protocol import EXECUTABLE_PREFIX

logger = logging.getLogger("qibo_core.client")

EXIT_TIMEOUT = 2.0
"""Seconds a backend has to exit by itself once asked, before it is terminated."""
TERMINATE_TIMEOUT = 2.0
"""Seconds to wait after SIGTERM before SIGKILL."""
STDERR_TAIL_LINES = 50
STDERR_LINE_BYTES = 1000
"""Each stderr line is kept to at most this many bytes."""
PIPE_BUFFER = 2**20


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "is still running"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def _widen(fd: int) -> None:
    """Grow a pipe's buffer to 1 MiB, so a large message crosses in few wake-ups (Linux)."""
    try:
        import fcntl  # POSIX only: `import qibo_core` must work everywhere, in process at least
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BUFFER)
    except (ImportError, OSError):
        pass  # above /proc/sys/fs/pipe-max-size, or not Linux: the default buffer still works


class BackendProcess:
    """A backend executable running with its stdin, stdout and stderr on pipes."""

    def __init__(self, argv: list[str], *, name: str, env: dict[str, str] | None = None,
                 pass_fds: tuple[int, ...] = ()) -> None:
        """`pass_fds` stay open in the backend, at the same numbers (the others are closed)."""
        self.name = name
        self._tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        try:
            self._popen = _spawner.run(lambda: subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                bufsize=PIPE_BUFFER, env=env, close_fds=True, pass_fds=pass_fds,
                # A terminal's Ctrl-C is the client's to handle (it cancels), not the backend's.
                start_new_session=True))
        except OSError as exc:
            raise ConnectionFailed(f"could not start backend {name!r} ({argv[0]}): {exc}") from exc
        assert self._popen.stdin is not None and self._popen.stdout is not None
        for pipe in (self._popen.stdin, self._popen.stdout):
            _widen(pipe.fileno())
        self.stdin: IO[bytes] = self._popen.stdin
        self.stdout_fd = self._popen.stdout.fileno()
        self._drainer = threading.Thread(target=self._drain_stderr, daemon=True,
                                         name=f"{EXECUTABLE_PREFIX}{name} stderr (pid {self.pid})")
        self._drainer.start()

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit status, always current: None while it runs, -N if killed by signal N."""
        return self._popen.poll()

    def poll(self) -> int | None:
        return self._popen.poll()

    @property
    def stderr_tail(self) -> list[str]:
        return list(self._tail)

    def __repr__(self) -> str:
        return f"<BackendProcess {self.name} pid={self.pid} {describe_exit(self.returncode)}>"

    def _drain_stderr(self) -> None:
        """Keep the last lines, each cut to STDERR_LINE_BYTES: memory stays bounded whatever
        comes (a progress bar redrawn with \\r for ever has no newline at all)."""
        stderr = self._popen.stderr
        assert stderr is not None
        partial = b""
        while chunk := os.read(stderr.fileno(), 2**16):
            lines = (partial + chunk).replace(b"\r", b"\n").split(b"\n")
            partial = lines.pop()[-STDERR_LINE_BYTES:]
            for raw in lines:
                self._keep(raw)
        if partial:
            self._keep(partial)

    def _keep(self, raw: bytes) -> None:
        line = raw[:STDERR_LINE_BYTES].decode("utf-8", errors="replace").rstrip()
        if line:
            self._tail.append(line)
            logger.info("[%s] %s", self.name, line)

    def crashed(self) -> BackendCrashed:
        """What to raise now that the backend's stdout ended or a write failed: how it ended,
        with its last words."""
        try:
            returncode: int | None = self._popen.wait(TERMINATE_TIMEOUT)
        except subprocess.TimeoutExpired:
            returncode = None
        self._drainer.join(0.5)
        return BackendCrashed(f"backend {self.name!r} (pid {self.pid}) "
                              f"{describe_exit(returncode)}", returncode=returncode,
                              stderr_tail=self.stderr_tail[-10:])

    def stop(self, *, polite: bool = True) -> None:
        """Wait for the process to exit (unless `polite` is False), then terminate, then kill;
        always reap it."""
        if polite:
            try:
                self._popen.wait(EXIT_TIMEOUT)
                return
            except subprocess.TimeoutExpired:
                logger.warning("backend %s (pid %d) did not exit; terminating", self.name,
                               self.pid)
        self._popen.terminate()
        try:
            self._popen.wait(TERMINATE_TIMEOUT)
            return
        except subprocess.TimeoutExpired:
            logger.warning("backend %s (pid %d) ignored SIGTERM; killing", self.name, self.pid)
        self._popen.kill()
        self._popen.wait()

    def close(self) -> None:
        """Close stdin (end of input), reap the process, close the other pipes."""
        try:
            self.stdin.close()
        except OSError:
            pass  # a broken pipe while flushing: the child is gone already
        self.stop()
        self._drainer.join()
        for stream in (self._popen.stdout, self._popen.stderr):
            if stream is not None:
                stream.close()

    def kill(self) -> None:
        """End the process at once (for tests and emergencies); `close` still reaps it."""
        if self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)


class _Spawner:
    """Starts every backend from one thread that lives as long as this process. A backend asks
    the kernel to kill it when the thread that started it ends (Linux's PR_SET_PDEATHSIG, which
    works even while the backend's own threads cannot run): started from a caller's thread
    (an executor's, a batch's feeder), it would die with that thread."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = \
            queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, start: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        """`start()` run on the spawner's thread; its process, or its exception."""
        with self._lock:
            if self._thread is None:
                # A daemon: it lives until the interpreter is gone, after atexit has closed
                # every backend politely.
                self._thread = threading.Thread(target=self._serve, name="qibo-core-spawner",
                                                daemon=True)
                self._thread.start()
        future: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((start, future))
        try:
            return future.result()
        except BaseException:
            future.add_done_callback(_discard)  # interrupted: end what was started for nobody
            raise

    def _serve(self) -> None:
        while True:
            start, future = self._requests.get()
            try:
                future.set_result(start())
            except BaseException as exc:  # handed to the caller, who raises it
                future.set_exception(exc)


def _discard(future: Future[subprocess.Popen[bytes]]) -> None:
    if future.exception() is None:
        popen = future.result()
        popen.kill()
        popen.communicate()


_spawner = _Spawner()


def _new_spawner_after_fork() -> None:
    global _spawner
    _spawner = _Spawner()  # the parent's thread did not come along


os.register_at_fork(after_in_child=_new_spawner_after_fork)
