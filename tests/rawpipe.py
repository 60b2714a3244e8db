"""Driving a backend executable by hand, line by line, as a developer in a terminal would."""

from __future__ import annotations

import json
import os
import select
import subprocess
from typing import Any

READ_TIMEOUT = 20.0


class Pipe:
    """A backend process on pipes: send raw lines, read one reply line, never hang."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        self._buffer = b""

    def send(self, line: bytes | str | dict[str, Any]) -> None:
        if isinstance(line, dict):
            line = json.dumps(line)
        if isinstance(line, str):
            line = line.encode()
        assert self.process.stdin is not None
        self.process.stdin.write(line + b"\n")
        self.process.stdin.flush()

    def receive(self) -> dict[str, Any]:
        """The next line of stdout as JSON (read unbuffered, so select never misses a line)."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([fd], [], [], READ_TIMEOUT)
            assert ready, f"no reply within {READ_TIMEOUT} s"
            chunk = os.read(fd, 1 << 20)
            assert chunk, f"the backend exited with code {self.process.wait()}"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def call(self, method: str, params: Any = None, request_id: int = 1) -> dict[str, Any]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self.receive()

    def initialize(self) -> dict[str, Any]:
        return self.call("initialize", {"protocolVersion": 1})["result"]

    def close(self) -> int:
        """Close stdin (EOF) and reap; the exit code. Keeps what it wrote to stderr."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            return self.process.wait(READ_TIMEOUT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            assert self.process.stderr is not None
            self.stderr_text = self.process.stderr.read().decode(errors="replace")
            for stream in (self.process.stdout, self.process.stderr):
                if stream:
                    stream.close()
