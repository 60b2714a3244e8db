"""execute_many: the same results as one by one, in order, whatever the workers, losing nothing."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import eventually

from qibo_core import Circuit, execute_many, gates
from qibo_core.client import close_shared, resolve
from qibo_core.client.batch import circuit_seeds


def circuits(count: int, nqubits: int = 4) -> list[Circuit]:
    rng = np.random.default_rng(0)
    batch = []
    for _ in range(count):
        c = Circuit(nqubits)
        c.add(gates.RY(q, rng.uniform(0, np.pi)) for q in range(nqubits))
        c.add(gates.CNOT(q, q + 1) for q in range(nqubits - 1))
        c.add(gates.M(*range(nqubits)))
        batch.append(c)
    return batch


@pytest.fixture(autouse=True)
def fresh_workers() -> None:
    close_shared()
    yield
    close_shared()


@pytest.mark.parametrize("backend", ["numpy", "qulacs"])
def test_the_same_results_as_one_by_one_in_order(backend: str) -> None:
    batch = circuits(12)
    seeds = circuit_seeds(42, len(batch))
    serial = [c.execute(backend=backend, nshots=200, seed=s)
              for c, s in zip(batch, seeds, strict=True)]
    for workers in (1, 3):
        results = execute_many(batch, backend, workers=workers, nshots=200, seed=42)
        assert [r.frequencies() for r in results] == [r.frequencies() for r in serial]
        for result, expected in zip(results, serial, strict=True):
            np.testing.assert_allclose(result.state(), expected.state(), atol=1e-12)


def test_progress_and_worker_reuse() -> None:
    seen: list[tuple[int, int]] = []
    execute_many(circuits(6), workers=2, progress=lambda d, t: seen.append((d, t)))
    assert sorted(seen) == [(d, 6) for d in range(1, 7)]
    first = resolve("numpy#0")
    execute_many(circuits(2), workers=2)
    assert resolve("numpy#0") is first  # the worker processes are reused


def test_a_dying_worker_loses_nothing() -> None:
    batch = circuits(30, nqubits=12)
    expected = [r.frequencies() for r in execute_many(batch, workers=2, nshots=100, seed=7)]
    killed = threading.Event()

    def kill_once(done: int, total: int) -> None:
        if done == 5 and not killed.is_set():
            killed.set()
            os.kill(resolve("numpy#1").transport.pid, signal.SIGKILL)  # type: ignore[attr-defined]

    results = execute_many(batch, workers=2, nshots=100, seed=7, progress=kill_once)
    assert killed.is_set()
    assert [r.frequencies() for r in results] == expected


def test_seeds_are_independent_of_the_batch_size() -> None:
    assert circuit_seeds(5, 3) == circuit_seeds(5, 10)[:3]
    assert len(set(circuit_seeds(5, 100))) == 100


def backend_processes() -> set[int]:
    """Every live qibo-backend process of this checkout's environment, wherever its parent."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if b"qibo-backend-" in cmdline and sys.prefix.encode() in cmdline:
                found.add(int(entry))
    return found


@pytest.mark.backends("qulacs")
def test_dask_workers_give_the_serial_results_and_leave_nothing(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    import dask
    batch = circuits(10)
    seeds = circuit_seeds(3, len(batch))
    serial = [c.execute(backend="qulacs", nshots=100, seed=s)
              for c, s in zip(batch, seeds, strict=True)]
    expected_states = [r.state() for r in serial]
    close_shared()
    before = backend_processes()
    # Scheduler and workers keep their scratch space in this test's own directory.
    with dask.config.set({"temporary-directory": str(tmp_path)}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        results = execute_many(batch, "qulacs", nshots=100, seed=3, client=client)
        hosts = client.run(lambda: list(__import__("qibo_core.client.api").client.api._shared))
    assert [r.frequencies() for r in results] == [r.frequencies() for r in serial]
    for result, expected in zip(results, expected_states, strict=True):
        np.testing.assert_allclose(result.state(), expected, atol=1e-12)
        np.testing.assert_allclose(result.probabilities([1]),
                                   [np.sum(np.abs(expected.reshape(2, 2, 2, 2)[:, b]) ** 2)
                                    for b in (0, 1)], atol=1e-12)
    assert all("qulacs" in list(keys) for keys in hosts.values())  # each worker its own backend
    assert eventually(lambda: not backend_processes() - before, 10), \
        "a Dask worker's backend outlived it"


def test_progress_bar_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    execute_many(circuits(4), workers=2, progress=True)
    err = capsys.readouterr().err
    assert "100.0% of 4 circuits" in err and err.endswith("\n")
