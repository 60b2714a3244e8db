"""Timing for the benchmarks: each figure measured beside its anchor, in the same run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Row:
    target: str
    case: str
    median_ms: float
    min_ms: float
    max_ms: float
    anchor: str
    ratio: float | None
    note: str = ""


class Seconds(float):
    """What a run timed elsewhere returns: its own duration, which measure_pair records."""


def measure(run: Callable[[], object], repeats: int) -> list[float]:
    """Wall-clock seconds of each run, after one warm-up run."""
    return measure_pair(run, None, repeats)[0]


def measure_pair(run: Callable[[], object], anchor: Callable[[], object] | None,
                 repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of each run of `run` and of `anchor`, alternated so that the machine's drift
    (it is shared) falls on both alike; a run that returns Seconds was timed where it ran."""
    runs = [run] if anchor is None else [run, anchor]
    times: list[list[float]] = [[] for _ in runs]
    for f in runs:
        f()  # warm-up
    for _ in range(repeats):
        for f, t in zip(runs, times, strict=True):
            start = time.perf_counter()
            result = f()
            elapsed = time.perf_counter() - start
            t.append(result if isinstance(result, Seconds) else elapsed)
    return times[0], times[-1]


def row(target: str, case: str, times: list[float], anchor: str = "",
        anchor_times: list[float] | None = None, note: str = "") -> Row:
    median = statistics.median(times)
    ratio = median / statistics.median(anchor_times) if anchor_times else None
    return Row(target, case, median * 1e3, min(times) * 1e3, max(times) * 1e3, anchor, ratio, note)
