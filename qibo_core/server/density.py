"""Density matrices on any backend that has none of its own (Backend.density_matrices): rho of
n qubits is held as a state vector of 2n qubits, rho's row bit of qubit q at position 2q and
its column bit at 2q + 1 (each qubit's two bits side by side, so what acts on one qubit acts on
neighbouring bits, where backends fuse and sweep fastest).

A gate U becomes U on the row bits and conj(U) on the column bits (U rho U^dagger); a channel
becomes one operator, sum_i K_i (x) conj(K_i), on its row and column bits: one pass over the
matrix, not a sum of dense products. A channel whose superoperator would take more memory than
rho's copy and an accumulator acts by its Kraus operators one at a time instead (a 7-qubit
channel's superoperator is 4 GiB). Probabilities come from the diagonal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..circuit import Channel, Gate, Operation
from ..errors import InvalidParams
from .backend import Backend, Checkpoint, DensityMatrices, Work
from .operators import Matrix


def of(backend: Backend) -> DensityMatrices:
    """How `backend` holds density matrices: its own way, or as vectors."""
    return backend.density_matrices() or Vectorized(backend)


class Vectorized(DensityMatrices):
    """rho as a vector of 2n qubits, evolved by the backend's `apply`."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def start(self, nqubits: int, initial: np.ndarray | None) -> Any:
        """vec(|0...0><0...0|) (|0...0> of 2n qubits), or vec of the initial state."""
        if initial is None:
            return self.backend.zero_state(2 * nqubits)
        rho = np.outer(initial, initial.conj()) if initial.ndim == 1 else initial
        interleaved = rho.reshape((2,) * 2 * nqubits).transpose(_INTERLEAVE[nqubits])
        return self.backend.from_array(interleaved.astype(self.backend.dtype).reshape(-1))

    def apply(self, rho: Any, ops: Sequence[Operation], nqubits: int,
              checkpoint: Checkpoint) -> Any:
        """Gates and channels in batches whose superoperators take at most BATCH_BYTES; wide
        channels by their Kraus operators."""
        batch: list[Operation] = []
        size = 0
        for op in ops:
            if isinstance(op, Channel) and self._by_kraus(op, nqubits):
                rho = self.backend.apply(rho, operators(batch, nqubits), checkpoint)
                rho, batch, size = self._kraus(rho, op, nqubits, checkpoint), [], 0
                continue
            if isinstance(op, Channel):
                size += superoperator_bytes(op)
                if size > BATCH_BYTES:
                    rho = self.backend.apply(rho, operators(batch, nqubits), checkpoint)
                    batch, size = [], superoperator_bytes(op)
            batch.append(op)
        return self.backend.apply(rho, operators(batch, nqubits), checkpoint)

    def _by_kraus(self, channel: Channel, nqubits: int) -> bool:
        """Whether `channel` acts by its Kraus operators one at a time: when its superoperator
        takes more than doing so (and more than SMALL_SUPEROPERATOR)."""
        return superoperator_bytes(channel) > max(SMALL_SUPEROPERATOR, self._kraus_bytes(nqubits))

    def _kraus(self, rho: Any, channel: Channel, nqubits: int, checkpoint: Checkpoint) -> Any:
        """sum_i K_i rho K_i^dagger: each term on a copy of rho, added into one array."""
        rows, columns = _rows(channel.qubits), _columns(channel.qubits)
        total: np.ndarray | None = None
        for k in channel.kraus:
            term = self.backend.apply(self.backend.copy(rho),
                                      [Matrix(k, rows), Matrix(k.conj(), columns)], checkpoint)
            if total is None:
                total = np.array(self.backend.to_array(term))
            else:
                total += self.backend.to_array(term)
            del term
        del rho
        assert total is not None
        return self.backend.from_array(total)

    def _kraus_bytes(self, nqubits: int) -> int:
        """What `_kraus` takes beyond rho: a copy and its work, and the sum."""
        backend, bits = self.backend, 2 * nqubits
        return (backend.state_bytes(bits) + (backend.dtype.itemsize << bits)
                + max(backend.working_bytes(work, bits)
                      for work in (Work.COPY, Work.GATES, Work.READ, Work.LOAD)))

    def matrix(self, rho: Any, nqubits: int) -> np.ndarray:
        """rho, rows and columns apart again."""
        held = self.backend.to_array(rho).reshape((2,) * 2 * nqubits)
        return np.ascontiguousarray(held.transpose(np.argsort(_INTERLEAVE[nqubits]))).reshape(
            2**nqubits, 2**nqubits)

    def working_bytes(self, work: Work, nqubits: int) -> int:
        """The backend's on a vector of 2n qubits; `matrix` adds a reordered copy, and
        `probabilities` reads the matrix."""
        bits = 2 * nqubits
        backend_work = self.backend.working_bytes
        if work is Work.GATES:
            return backend_work(Work.GATES, bits)
        matrix = backend_work(Work.READ, bits) + (self.backend.dtype.itemsize << bits)
        if work is Work.READ:
            return matrix
        return matrix + (16 << nqubits)

    def apply_bytes(self, ops: Sequence[Operation], nqubits: int) -> int:
        """The gates' work, with a batch of superoperators or a wide channel's Kraus
        operators one at a time."""
        channels = [op for op in ops if isinstance(op, Channel)]
        narrow = [op for op in channels if not self._by_kraus(op, nqubits)]
        batch = min(BATCH_BYTES, sum(map(superoperator_bytes, narrow)))
        batch += max(map(superoperator_bytes, narrow), default=0)
        wide = len(narrow) < len(channels)
        return self.working_bytes(Work.GATES, nqubits) + max(
            batch, self._kraus_bytes(nqubits) if wide else 0)


SMALL_SUPEROPERATOR = 2**21
"""Superoperators of up to this many bytes (channels of up to 4 qubits) are always used."""
BATCH_BYTES = 2**24
"""The most memory the superoperators of one `apply` of the backend take."""


def superoperator_bytes(channel: Channel) -> int:
    """What building the channel's superoperator takes: the matrix and its reordered copy."""
    return 32 << 4 * len(channel.qubits)


def operators(ops: Sequence[Operation], n: int) -> list[Gate]:
    """What the backend applies to vec(rho) for `ops` on a density matrix of n qubits."""
    applied: list[Gate] = []
    for op in ops:
        if isinstance(op, Channel):
            applied.append(Matrix(superoperator(op.kraus),
                                  [*_rows(op.qubits), *_columns(op.qubits)]))
        elif isinstance(op, Gate):
            u = op.matrix()
            applied.append(Matrix(u, _rows(op.targets), _rows(op.controls)))
            applied.append(Matrix(u.conj(), _columns(op.targets), _columns(op.controls)))
        else:
            raise InvalidParams(f"{op!r} has no meaning on a density matrix")
    return applied


def _rows(qubits: Sequence[int]) -> list[int]:
    return [2 * q for q in qubits]


def _columns(qubits: Sequence[int]) -> list[int]:
    return [2 * q + 1 for q in qubits]


def superoperator(kraus: Sequence[np.ndarray]) -> np.ndarray:
    """sum_i K_i (x) conj(K_i), as one matrix product over i (no Kronecker product per K_i)."""
    k = np.asarray(kraus)
    m, d = k.shape[0], k.shape[1]
    products: np.ndarray = k.reshape(m, d * d).T @ k.conj().reshape(m, d * d)  # [(a,b), (c,e)]
    return products.reshape(d, d, d, d).transpose(0, 2, 1, 3).reshape(d * d, d * d)


class _Interleave(dict[int, list[int]]):
    """For n qubits, the axes of rho (rows 0..n-1, columns n..2n-1) in the held order."""

    def __missing__(self, n: int) -> list[int]:
        self[n] = [axis for q in range(n) for axis in (q, n + q)]
        return self[n]


_INTERLEAVE = _Interleave()
