"""MemoryTransport: a backend object behind the whole wire path, in this process.

Each request is encoded as a ProcessTransport would send it, decoded and run by the server
loop's own code (Server.decode and Server.handle, so every check the server makes), and its
response encoded and decoded back; no process, no pipe, no thread. Tests of a Handle, of the
client's checks of replies and of the server's errors run in milliseconds with it (as httpx's
MockTransport does for a client):

    with Handle(MemoryTransport(ReferenceBackend())) as handle:
        handle.execute(circuit, nshots=100)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import msgspec

from ..client.transport import decoded_result
from ..errors import BackendError, ProtocolError
from ..protocol import DescriptorOffer, IncomingResponse, Request, Response, encoder
from ..server import Backend, Session
from ..server.serve import Server

_response_decoder = msgspec.json.Decoder(IncomingResponse)


class _Discard:
    """Where the server writes what it sends on its own ($/progress): nowhere (a server with no
    input reports no progress)."""

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


class MemoryTransport:
    """A Transport to `backend` through encoded messages, in this process."""

    shares_memory = False
    frames = False  # text lines only: what a person types, what the exchange shows
    descriptor_offer: DescriptorOffer | None = None
    max_request_bytes: int | None = None

    def __init__(self, backend: Backend) -> None:
        self.name = backend.name
        self.session = Session(backend, shared_memory=False)
        self._server = Server(self.session, _Discard())  # type: ignore[arg-type]
        self._ids = itertools.count(1)
        self._closed = False
        self.exchange: list[bytes] = []
        """Every line sent and received, in order: what a trace of a spawned backend shows."""

    @property
    def alive(self) -> bool:
        return not self._closed

    def request(self, method: str, params: Any, timeout: float | None = None) -> Any:
        response = self._run(Request(id=next(self._ids), method=method, params=params))
        if response is None:
            raise ProtocolError(f"backend {self.name!r} answered request {method!r} with nothing")
        line = encoder.encode(response)
        self.exchange.append(line)
        message = _response_decoder.decode(line)
        if message.error is not msgspec.UNSET:
            raise BackendError.from_object(message.error)
        assert message.result is not msgspec.UNSET
        return decoded_result(method, message.result, self.name)

    def agree(self, binary: bool, descriptors: bool) -> None:
        """Nothing to agree: MemoryTransport asks for neither."""

    def notify(self, method: str, params: Any, *, now: bool = True) -> None:
        self._run(Request(method=method, params=params))

    def _run(self, request: Request) -> Response | None:
        """What the server answers to `request`, after a trip through its own decoder."""
        line = encoder.encode(request)
        self.exchange.append(line)
        message = self._server.decode(line)
        if message is None or isinstance(message, Response):
            return message
        return self._server.handle(message)

    def cancel(self) -> None:
        """Nothing to do: a request runs on the caller's thread, to its end."""

    def watch(self, token: int | str, callback: Callable[[int, int], None] | None) -> None:
        """Nothing to do: a server that has no input to look at reports no progress."""

    def close(self) -> None:
        self._closed = True
        self.session.backend.close()

    def __repr__(self) -> str:
        return f"<MemoryTransport {self.name} {'closed' if self._closed else 'open'}>"
