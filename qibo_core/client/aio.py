"""The asyncio API: the same handles, with awaitable methods.

    async with await aconnect("qulacs") as handle:
        result = await handle.execute(circuit, nshots=1000)
        amplitudes = await result.state()

One implementation underneath: each call runs the synchronous one on a worker thread, so the
event loop never blocks. Cancelling the task cancels the request on the backend
(`$/cancelRequest`), which stops at its next gate boundary and stays usable; a backend in this
process cannot be interrupted, so its call finishes in the background.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .api import connect
from .handle import Handle
from .result import Result
from .state import State
from .transport import Call, Transport, current_call

if TYPE_CHECKING:
    from ..circuit import Circuit, Gate
    from ..circuit.observable import ObservableLike
    from ..protocol import InitializeResult
    from ..server import Backend

T = TypeVar("T")


async def _run(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`function` on a worker thread; cancelling the awaiting task cancels its request."""
    call = Call()
    token = current_call.set(call)  # the worker thread runs in a copy of this context
    try:
        return await asyncio.to_thread(function, *args, **kwargs)
    except asyncio.CancelledError:
        call.cancel()
        raise
    finally:
        current_call.reset(token)


async def aconnect(backend: str | Backend, **options: Any) -> AsyncHandle:
    """`connect()` without blocking the event loop: the same options. Cancelled, it closes the
    backend it was starting once that has started."""
    loop = asyncio.get_running_loop()
    starting = loop.run_in_executor(None, partial(connect, backend, **options))
    try:
        return AsyncHandle(await asyncio.shield(starting))
    except asyncio.CancelledError:
        starting.add_done_callback(_close_unclaimed)
        raise


def _close_unclaimed(starting: asyncio.Future[Handle]) -> None:
    """Close, off the event loop (which may be ending), a handle whose connect was
    cancelled."""
    if not starting.cancelled() and starting.exception() is None:
        threading.Thread(target=starting.result().close, name="qibo-core-close").start()


class AsyncHandle:
    """A Handle whose calls are awaited: every method of Handle, the blocking ones as
    coroutines (`close` as `aclose`)."""

    def __init__(self, handle: Handle) -> None:
        self.handle = handle

    @property
    def name(self) -> str:
        return self.handle.name

    @property
    def info(self) -> InitializeResult:
        return self.handle.info

    @property
    def protocol_version(self) -> int:
        return self.handle.protocol_version

    @property
    def alive(self) -> bool:
        return self.handle.alive

    @property
    def closed(self) -> bool:
        return self.handle.closed

    @property
    def transport(self) -> Transport:
        return self.handle.transport

    def require(self, feature: str, what: str) -> None:
        """`Handle.require`: it sends nothing."""
        self.handle.require(feature, what)

    def check_open(self, what: str) -> None:
        """`Handle.check_open`: it sends nothing."""
        self.handle.check_open(what)

    def watching(self, progress: Callable[[int, int], None] | None
                 ) -> AbstractContextManager[str | None]:
        """`Handle.watching`: it sends nothing."""
        return self.handle.watching(progress)

    def cancel(self) -> None:
        """`Handle.cancel`: it only writes the cancellations."""
        self.handle.cancel()

    async def request(self, method: str, params: Any, *, timeout: float | None = None) -> Any:
        """`Handle.request`, awaited."""
        return await _run(self.handle.request, method, params, timeout=timeout)

    async def execute(self, circuit: Circuit, **options: Any) -> AsyncResult:
        """`Handle.execute`, awaited (the same options)."""
        return AsyncResult(await _run(self.handle.execute, circuit, **options))

    async def execute_many(self, circuits: Iterable[Circuit], **options: Any
                           ) -> list[AsyncResult]:
        """`Handle.execute_many`, awaited (the same options)."""
        results = await _run(self.handle.execute_many, list(circuits), **options)
        return [AsyncResult(result) for result in results]

    async def expectation(self, circuit: Circuit, observable: ObservableLike,
                          **options: Any) -> Any:
        """`Handle.expectation`, awaited (the same options)."""
        return await _run(self.handle.expectation, circuit, observable, **options)

    async def gradient(self, circuit: Circuit, observable: ObservableLike,
                       **options: Any) -> np.ndarray:
        """`Handle.gradient`, awaited (the same options)."""
        return await _run(self.handle.gradient, circuit, observable, **options)

    async def release(self, circuit: Circuit) -> None:
        """`Handle.release`, awaited."""
        await _run(self.handle.release, circuit)

    async def new_state(self, nqubits: int, **options: Any) -> AsyncState:
        """`Handle.new_state`, awaited (the same options)."""
        return AsyncState(await _run(self.handle.new_state, nqubits, **options))

    async def aclose(self) -> None:
        """`Handle.close`, awaited."""
        await _run(self.handle.close)

    async def __aenter__(self) -> AsyncHandle:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncHandle {self.handle!r}>"


class AsyncResult:
    """A Result whose reads are awaited; what came with the reply is there at once."""

    def __init__(self, result: Result) -> None:
        self.result = result

    def frequencies(self, **options: Any) -> Any:
        return self.result.frequencies(**options)

    def samples(self, **options: Any) -> Any:
        return self.result.samples(**options)

    async def state(self) -> np.ndarray:
        return await _run(self.result.state)

    async def probabilities(self, qubits: list[int] | None = None) -> np.ndarray:
        return await _run(self.result.probabilities, qubits)


class AsyncState:
    """A State whose reads are awaited. `apply` only queues gates, so it is not."""

    def __init__(self, state: State) -> None:
        self.state = state

    def apply(self, *gates: Gate) -> AsyncState:
        self.state.apply(*gates)
        return self

    async def read(self) -> np.ndarray:
        return await _run(self.state.read)

    async def probabilities(self, qubits: list[int] | None = None) -> np.ndarray:
        return await _run(self.state.probabilities, qubits)

    async def sample(self, nshots: int, **options: Any) -> dict[str, int]:
        return await _run(self.state.sample, nshots, **options)

    async def expectation(self, observable: ObservableLike) -> float:
        return await _run(self.state.expectation, observable)

    async def free(self) -> None:
        await _run(self.state.free)

    async def replay(self, handle: AsyncHandle | None = None) -> AsyncState:
        """`State.replay`, awaited: on `handle`, or on the shared backend restarted."""
        target = None if handle is None else handle.handle
        return AsyncState(await _run(self.state.replay, target))
