"""Samples (4.1; version 2, feature "samples"): every shot, as uint8 bits in measurement order,
in the order the shots were drawn, counting to exactly the frequencies; inline or through a
segment."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..protocol import ErrorCode, Feature
from .base_checks import BELL_GATES
from .checks import kit_check
from .exchange import Exchange, decoded, frequencies, segment_file
from .report import CheckFailed, Skipped

SAMPLES = (Feature.SAMPLES,)
ORDER_SHOTS = 2000
"""Shots of the shot-order test: grouped rows change outcome once, random ones about 1000
times."""


def rows(result: dict[str, Any], nshots: int, width: int) -> np.ndarray:
    """The samples of an execute result, checked against its frequencies (4.1)."""
    bits = decoded(result.get("samples"), "uint8", [nshots, width], "§4.1 samples")
    if not np.isin(bits, (0, 1)).all():
        raise CheckFailed("§4.1: samples hold entries other than 0 and 1")
    counts = frequencies(result, nshots, width, "§4.1")
    keys, seen = np.unique(["".join(map(str, row)) for row in bits], return_counts=True)
    counted = {str(k): int(n) for k, n in zip(keys, seen, strict=True)}
    if counted != counts:
        raise CheckFailed(f"§4.1: the samples count {counted}, the frequencies say {counts}")
    return bits


@kit_check("4.1", "samples are every shot, columns in measurement order, counting to the "
           "frequencies", since=2, features=SAMPLES)
def _samples(s: Exchange) -> None:
    s.initialize()
    circuit = {"nqubits": 2, "gates": [*BELL_GATES, {"name": "X", "qubits": [1]}],
               "measurements": [{"qubits": [0, 1]}]}
    result = s.object("execute", {"circuit": circuit, "nshots": 50, "seed": 2, "samples": True})
    if not set(map(tuple, rows(result, 50, 2).tolist())) <= {(0, 1), (1, 0)}:
        raise CheckFailed("§4.1: samples of X(1) after a Bell pair are not all 01 or 10")
    ordered = {"nqubits": 3, "gates": [{"name": "X", "qubits": [0]}],
               "measurements": [{"qubits": [1]}, {"qubits": [0, 2]}]}
    result = s.object("execute", {"circuit": ordered, "nshots": 5, "samples": True})
    bits = rows(result, 5, 3)
    if not (bits == [0, 1, 0]).all():
        raise CheckFailed(f"§4.1: X(0) measured as [1] then [0, 2] gave sample rows "
                          f"{bits.tolist()}, not [0, 1, 0] (qubit 1, then 0, then 2)")


@kit_check("4.1", "samples come in the order the shots were drawn, not grouped by outcome "
           "[statistical]", since=2, features=SAMPLES)
def _shot_order(s: Exchange) -> None:
    """Independent fair bits change from one row to the next with probability 1/2, each pair
    independently: the number of changes is binomial(nshots - 1, 1/2)."""
    s.initialize()
    circuit = {"nqubits": 1, "gates": [{"name": "H", "qubits": [0]}],
               "measurements": [{"qubits": [0]}]}
    result = s.object("execute", {"circuit": circuit, "nshots": ORDER_SHOTS, "seed": 7,
                                  "samples": True})
    bits = rows(result, ORDER_SHOTS, 1)[:, 0]
    changes = int(np.count_nonzero(bits[1:] != bits[:-1]))
    problem = s.tally.binomial_misfit(changes, ORDER_SHOTS - 1, 0.5,
                                      "rows whose outcome differs from the row before")
    if problem:
        raise CheckFailed(f"§4.1: samples of H|0> are not in the order shots were drawn "
                          f"(grouped by outcome?): {problem}")


@kit_check("4.1", "samples cross through a segment, checked before the circuit runs",
           since=2, features=SAMPLES)
def _samples_segment(s: Exchange) -> None:
    if "shm" not in s.initialize()["stateEncodings"]:
        raise Skipped("the backend offers no shared memory (base64 only)")
    circuit = {"nqubits": 2, "gates": [*BELL_GATES, {"name": "X", "qubits": [1]}],
               "measurements": [{"qubits": [0, 1]}]}
    small, large = segment_file(8), segment_file(100)
    fd = os.open(large, os.O_RDONLY)
    try:
        small_ref = s.object("shm/attach", {"path": small, "size": 8})
        large_ref = s.object("shm/attach", {"path": large, "size": 100})
        os.unlink(small)
        os.unlink(large)
        asked = {"circuit": circuit, "nshots": 50, "seed": 2, "samples": True}
        s.error("execute", {**asked, "samplesSegment": small_ref["segment"]},
                ErrorCode.INVALID_PARAMS, "§4.1 a samplesSegment smaller than the samples")
        result = s.object("execute", {**asked, "samplesSegment": large_ref["segment"]})
        data = result.get("samples")
        if not isinstance(data, dict) or data.get("segment") != large_ref["segment"] \
                or data.get("data") is not None or data.get("shape") != [50, 2]:
            raise CheckFailed(f"§4.1: samples into segment {large_ref['segment']} came as {data}")
        bits = np.frombuffer(os.pread(fd, 100, 0), dtype=np.uint8).reshape(50, 2)
        counted: dict[str, int] = {}
        for row in bits:
            key = "".join(map(str, row))
            counted[key] = counted.get(key, 0) + 1
        if counted != result.get("frequencies") or not set(counted) <= {"01", "10"}:
            raise CheckFailed(f"§4.1: samples {counted} in the segment do not match the "
                              f"frequencies {result.get('frequencies')} of X(1) after a Bell pair")
    finally:
        os.close(fd)
        for path in (small, large):
            if os.path.exists(path):
                os.unlink(path)


@kit_check("4.1", "samplesSegment without samples is InvalidParams", since=3, features=SAMPLES)
def _segment_without_samples(s: Exchange) -> None:
    capabilities = s.initialize()
    segment = 1  # with no shared memory, no segment is known: refused either way
    if "shm" in capabilities["stateEncodings"]:
        path = segment_file(64)
        try:
            segment = s.object("shm/attach", {"path": path, "size": 64})["segment"]
        finally:
            os.unlink(path)
    circuit = {"nqubits": 1, "measurements": [{"qubits": [0]}]}
    s.error("execute", {"circuit": circuit, "nshots": 5, "samplesSegment": segment},
            ErrorCode.INVALID_PARAMS, "§4.1 samplesSegment names where samples go: without "
            "samples: true it is a mistake")
