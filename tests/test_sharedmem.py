"""Large states cross through shared memory: right values, no overwrite, no leak, a fallback."""

from __future__ import annotations

import gc
import os

import numpy as np

from qibo_core import Circuit, InvalidParams, connect, gates
from qibo_core.sharedmem import MIN_BYTES, SegmentPool

N = 17  # 2 MiB of complex128: above MIN_BYTES


def our_segments() -> list[str]:
    return [e for e in os.listdir("/dev/shm") if e.startswith(f"qibo-core-{os.getpid()}-")]


def test_large_reads_use_segments_and_keep_their_values(reference) -> None:  # type: ignore[no-untyped-def]
    assert 2**N * 16 >= MIN_BYTES
    circuit = Circuit(N)
    circuit.add(gates.H(q) for q in range(N))
    circuit.add(gates.RZ(q, 0.1 * (q + 1)) for q in range(N))
    expected = reference.execute(circuit).state()
    with connect("numpy") as handle:
        assert "shm" in handle.info.capabilities.state_encodings
        state = handle.new_state(N)
        state.apply(*circuit.gates)
        first = state.read()
        np.testing.assert_allclose(first, expected, atol=1e-12)
        assert isinstance(first.base, np.ndarray) and not first.flags.owndata
        state.apply(gates.X(0))
        second = state.read()  # a second segment: `first` must not change under our feet
        np.testing.assert_allclose(first, expected, atol=1e-12)
        assert not np.allclose(second, first)
        pool = handle._segments
        assert pool is not None
        del first, second
        gc.collect()
        third = state.read()  # reuses a released segment
        assert len(pool._free) + len(pool._released) == 1
        np.testing.assert_allclose(third, np.roll(expected.reshape(2, -1), 1, axis=0).reshape(-1),
                                   atol=1e-12)  # X(0) swaps the two halves
        assert our_segments() == []  # unlinked as soon as the backend mapped them


def test_a_backend_that_cannot_map_turns_the_pool_off() -> None:
    def refuse(method: str, params: object, result_type: object) -> object:
        raise InvalidParams("cannot open shared memory: No such file or directory")

    pool = SegmentPool(refuse, lambda method, params: None)
    assert pool.acquire(MIN_BYTES) is None
    assert not pool.enabled
    assert our_segments() == []


def test_qulacs_reads_through_segments_too(reference) -> None:  # type: ignore[no-untyped-def]
    circuit = Circuit(N)
    circuit.add(gates.H(q) for q in range(N))
    circuit.add(gates.CU1(0, N - 1, 0.3))
    with connect("qulacs") as handle:
        np.testing.assert_allclose(handle.execute(circuit).state(),
                                   reference.execute(circuit).state(), atol=1e-12)
        assert handle._segments is not None and handle._segments._released
