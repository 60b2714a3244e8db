"""Large states cross through shared-memory segments (what a client that takes no sealed memfds
uses, as in protocol version 3): right values, no overwrite, no leak, a fallback."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import spawned
from rawpipe import Pipe

from qibo_core import Circuit, InvalidParams, gates
from qibo_core.client.discovery import find_backend
from qibo_core.client.segments import MIN_BYTES, SegmentPool
from qibo_core.protocol import SHM_DIR, SHM_PREFIX, ErrorCode

N = 17  # 2 MiB of complex128: above MIN_BYTES


def our_segments() -> list[str]:
    return [e for e in os.listdir(SHM_DIR) if e.startswith(f"{SHM_PREFIX}{os.getpid()}-")]


def test_large_reads_use_segments_and_keep_their_values(reference) -> None:  # type: ignore[no-untyped-def]
    assert 2**N * 16 >= MIN_BYTES
    circuit = Circuit(N)
    circuit.add(gates.H(q) for q in range(N))
    circuit.add(gates.RZ(q, 0.1 * (q + 1)) for q in range(N))
    expected = reference.execute(circuit).state()
    with spawned("numpy", descriptors=False) as handle:
        assert "shm" in handle.info.capabilities.state_encodings
        state = handle.new_state(N)
        state.apply(*circuit.gates)
        first = state.read()
        np.testing.assert_allclose(first, expected, atol=1e-12)
        pool = handle.arrays.segments
        assert pool is not None and len(pool._free) == 1  # read through one segment, given back
        assert first.flags.owndata  # a copy of our own: the backend cannot change it
        state.apply(gates.X(0))
        second = state.read()  # the same segment again
        assert len(pool._free) == 1
        np.testing.assert_allclose(first, expected, atol=1e-12)
        np.testing.assert_allclose(second, np.roll(expected.reshape(2, -1), 1, axis=0).reshape(-1),
                                   atol=1e-12)  # X(0) swaps the two halves
        assert our_segments() == []  # unlinked as soon as the backend opened them


def test_large_samples_cross_through_a_segment() -> None:
    circuit = Circuit(N)
    circuit.add(gates.H(q) for q in range(N))
    circuit.add(gates.M(*range(N)))
    nshots = 2**12
    assert nshots * N >= MIN_BYTES
    with spawned("numpy", descriptors=False) as handle:
        result = handle.execute(circuit, nshots=nshots, seed=3, samples=True)
        samples = result.samples()
        pool = handle.arrays.segments
        assert pool is not None and len(pool._free) == 1  # written into one, given back
    assert samples.shape == (nshots, N) and samples.flags.owndata
    counts: dict[str, int] = {}
    for shot in samples:
        key = "".join(map(str, shot))
        counts[key] = counts.get(key, 0) + 1
    assert counts == result.frequencies()
    assert our_segments() == []


def test_samples_go_into_the_segment_named_and_a_small_one_is_refused_first() -> None:
    pipe = Pipe([find_backend("numpy")])
    assert pipe.call("initialize", {"protocolVersion": 2})["result"]["protocolVersion"] == 2
    circuit = {"nqubits": 2, "gates": [{"name": "H", "qubits": [0]}],
               "measurements": [{"qubits": [0, 1]}]}
    small, large = segment_file(64), segment_file(2 * 100)
    try:
        small_id = attach(pipe, small, 64)["result"]["segment"]
        large_id = attach(pipe, large, 200)["result"]["segment"]
    finally:
        small.unlink()
        large.unlink()
    refused = pipe.call("execute", {"circuit": circuit, "nshots": 100, "samples": True,
                                    "samplesSegment": small_id})["error"]
    assert refused["code"] == ErrorCode.INVALID_PARAMS and "holds 64" in refused["message"]
    reply = pipe.call("execute", {"circuit": circuit, "nshots": 100, "samples": True,
                                  "samplesSegment": large_id})["result"]
    assert reply["state"] == 1  # the refused execute held no state
    assert reply["samples"] == {"dtype": "uint8", "shape": [100, 2], "segment": large_id}
    assert pipe.close() == 0


def test_a_backend_that_cannot_map_turns_the_pool_off() -> None:
    def refuse(method: str, params: object) -> object:
        raise InvalidParams("cannot open shared memory: No such file or directory")

    pool = SegmentPool(refuse, lambda method, params: None)
    assert pool.acquire(MIN_BYTES) is None
    assert not pool.enabled
    assert our_segments() == []


@pytest.mark.backends("qulacs")
def test_qulacs_reads_through_segments_too(reference) -> None:  # type: ignore[no-untyped-def]
    circuit = Circuit(N)
    circuit.add(gates.H(q) for q in range(N))
    circuit.add(gates.CU1(0, N - 1, 0.3))
    with spawned("qulacs", descriptors=False) as handle:
        np.testing.assert_allclose(handle.execute(circuit).state(),
                                   reference.execute(circuit).state(), atol=1e-12)
        assert handle.arrays.segments is not None and handle.arrays.segments._free


def segment_file(size: int, *, prefix: str = SHM_PREFIX) -> Path:
    path = Path(SHM_DIR) / f"{prefix}{os.getpid()}-{uuid.uuid4().hex}"
    path.write_bytes(b"\0" * size)
    return path


@pytest.fixture
def server() -> Iterator[Pipe]:
    pipe = Pipe([find_backend("numpy")])
    pipe.initialize()
    yield pipe
    assert pipe.close() == 0


def attach(pipe: Pipe, path: Path | str, size: int) -> dict[str, Any]:
    return pipe.call("shm/attach", {"path": str(path), "size": size})


def test_attach_refuses_what_is_not_a_segment_of_ours(server: Pipe, tmp_path: Path) -> None:
    """An ordinary file, a link, a foreign name, a short file, another user's file: each is
    refused, and nothing is written to it."""
    victim = tmp_path / "notes.txt"
    victim.write_bytes(b"precious text, not amplitudes\n" * 4)
    link, short, foreign, others = (segment_file(0), segment_file(8),
                                    segment_file(64, prefix="someone-else-"), segment_file(64))
    link.unlink()
    link.symlink_to(victim)
    cases = [(victim, "not a shared-memory segment"), (link, "Too many levels of symbolic"),
             (short, "holds 8 bytes, fewer than the 64 claimed"),
             (foreign, "not a shared-memory segment"), ("qibo-core-1-x", "not a shared")]
    if os.geteuid() == 0:  # as root (CI), a file can be given to another user: nobody
        os.chown(others, 65534, 65534)
        cases.append((others, "belongs to user 65534"))
    try:
        for path, message in cases:
            error = attach(server, path, 64)["error"]
            assert error["code"] == ErrorCode.INVALID_PARAMS and message in error["message"], path
        state = server.call("state/new", {"nqubits": 2})["result"]["state"]
        for segment in (1, 2, 3):  # no segment was attached, so none can be written to
            error = server.call("state/read", {"state": state, "segment": segment})["error"]
            assert error["code"] == ErrorCode.INVALID_PARAMS
        assert victim.read_bytes() == b"precious text, not amplitudes\n" * 4
        assert others.read_bytes() == b"\0" * 64
    finally:
        for path in (link, short, foreign, others):
            path.unlink()


def test_a_segment_of_ours_is_attached_and_written(server: Pipe) -> None:
    path = segment_file(64)
    try:
        segment = attach(server, path, 64)["result"]["segment"]
    finally:
        path.unlink()
    state = server.call("state/new", {"nqubits": 1})["result"]["state"]
    assert server.call("state/read", {"state": state, "segment": segment})["result"] == {
        "dtype": "complex128", "shape": [2], "segment": segment}


def test_a_backend_started_without_shared_memory() -> None:
    pipe = Pipe([find_backend("numpy"), "--no-shm"])
    assert pipe.initialize()["capabilities"]["stateEncodings"] == ["base64"]
    path = segment_file(64)
    try:
        error = attach(pipe, path, 64)["error"]
    finally:
        path.unlink()
    assert error["code"] == ErrorCode.INVALID_PARAMS and "--no-shm" in error["message"]
    assert pipe.close() == 0
    for binary in (False, True):
        with spawned("numpy", argv=[find_backend("numpy"), "--no-shm"],
                     binary_frames=binary) as handle:
            capabilities = handle.info.capabilities
            assert handle.arrays.segments is None and not capabilities.descriptors
            assert capabilities.binary_frames is binary
            state = handle.new_state(N)
            assert state.read()[0] == 1  # through base64, or attached
