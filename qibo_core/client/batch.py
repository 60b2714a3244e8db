"""execute_many: many circuits over a pool of spawned backend processes, or over Dask.

Each worker is a shared backend process (`<name>#<k>`, reused by later batches and closed at
exit), fed by a thread of ours; results come back in input order. Circuit i is sampled with a
seed derived from `seed` and i alone, so a batch gives exactly what running the circuits one by
one with those seeds gives, whatever the number of workers. A worker that dies is replaced and
its circuit run again (at most RETRIES times per circuit), so nothing is lost.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, cast

import msgspec
import numpy as np

from ..circuit import Circuit
from ..errors import BackendCrashed, UsageError
from ..protocol import CircuitData
from .api import DEFAULT_BACKEND, execute, resolve
from .progress import Bar
from .result import Result

RETRIES = 3
logger = logging.getLogger("qibo_core.batch")


def circuit_seeds(seed: int | None, count: int) -> list[int]:
    """The seed of each circuit of a batch: independent streams from one seed."""
    children = np.random.SeedSequence(seed).spawn(count)
    return [int(child.generate_state(1, np.uint64)[0] >> np.uint64(1)) for child in children]


def execute_many(circuits: Sequence[Circuit], backend: str = DEFAULT_BACKEND, *, workers: int = 2,
                 nshots: int = 0, seed: int | None = None,
                 progress: bool | Callable[[int, int], None] = False,
                 client: Any = None) -> list[Result]:
    """Run every circuit on `workers` processes of `backend`; the results in input order.

    With a Dask `client`, the circuits go to its workers instead, each of which runs its own
    `backend` process; the results (amplitudes included) come back whole. `progress=True`
    draws a bar on stderr; a callable is called with (done, total) as circuits finish.
    """
    if workers < 1:
        raise UsageError(f"workers must be at least 1, got {workers}")
    report = Bar("circuits") if progress is True else progress or None
    seeds = circuit_seeds(seed, len(circuits))
    if client is not None:
        return _on_dask(client, circuits, backend, nshots, seeds, report)
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(circuits)):
        todo.put(index)
    results: list[Result | None] = [None] * len(circuits)
    failures: list[BaseException] = []
    finished = itertools.count(1)
    lock = threading.Lock()

    def work(slot: int) -> None:
        name = f"{backend}#{slot}"
        while not failures:
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results[index] = _run(name, backend, circuits[index], nshots, seeds[index],
                                      threads)
            except BaseException as exc:
                failures.append(exc)
                return
            if report is not None:
                with lock:
                    report(next(finished), len(circuits))

    pool = [threading.Thread(target=work, args=(k,), name=f"execute_many {backend}#{k}")
            for k in range(min(workers, max(1, len(circuits))))]
    # Workers share the cores: OpenMP threads of several processes spinning on two cores
    # slowed a batch down tenfold, so each worker gets its share.
    threads = max(1, (os.cpu_count() or 1) // len(pool))
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if failures:
        raise failures[0]
    return results  # type: ignore[return-value]


def _on_dask(client: Any, circuits: Sequence[Circuit], backend: str, nshots: int,
             seeds: list[int], report: Callable[[int, int], None] | None) -> list[Result]:
    from distributed import as_completed

    futures = [client.submit(_on_worker, msgspec.to_builtins(c.to_data()), backend, nshots, s,
                             pure=False) for c, s in zip(circuits, seeds, strict=True)]
    position = {future.key: index for index, future in enumerate(futures)}
    results: list[Result | None] = [None] * len(circuits)
    for done, future in enumerate(as_completed(futures), 1):  # type: ignore[no-untyped-call]
        index = position[future.key]
        frequencies, amplitudes = future.result()
        results[index] = Result.computed(amplitudes, frequencies, circuits[index].registers,
                                         nshots)
        if report is not None:
            report(done, len(circuits))
    return results  # type: ignore[return-value]


def _on_worker(data: Any, backend: str, nshots: int,
               seed: int) -> tuple[dict[str, int] | None, np.ndarray]:
    """Runs on a Dask worker: its own shared backend process, started on first use and closed
    when the worker process exits (or exiting by itself when the worker dies)."""
    circuit = Circuit.from_data(msgspec.convert(data, CircuitData))
    result = execute(circuit, backend, nshots=nshots, seed=seed)
    frequencies = cast("dict[str, int]", dict(result.frequencies())) if nshots else None
    return frequencies, np.array(result.state())


def _run(worker: str, backend: str, circuit: Circuit, nshots: int, seed: int,
         threads: int) -> Result:
    """One circuit on one worker, on a fresh process if the worker dies (capped)."""
    for _ in range(RETRIES):
        try:
            return resolve(worker, backend, threads).execute(circuit, nshots=nshots, seed=seed)
        except BackendCrashed as exc:
            logger.warning("worker %s died (%s); running its circuit again on a fresh one",
                           worker, str(exc).splitlines()[0])
    return resolve(worker, backend, threads).execute(circuit, nshots=nshots,
                                                     seed=seed)  # the last try
