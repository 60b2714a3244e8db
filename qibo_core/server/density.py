"""Density matrices on any backend that has none of its own (Backend.density_matrices): rho of
n qubits is held as a state vector of 2n qubits, rho's row bit of qubit q at position 2q and
its column bit at 2q + 1 (each qubit's two bits side by side, so what acts on one qubit acts on
neighbouring bits, where backends fuse and sweep fastest).

A gate U becomes U on the row bits and conj(U) on the column bits (U rho U^dagger); a channel
becomes one operator, sum_i K_i (x) conj(K_i), on its row and column bits: one pass over the
matrix, not a sum of dense products. Probabilities come from the diagonal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..circuit import Channel, Gate, Operation
from ..errors import InvalidParams
from .backend import Backend, Checkpoint, DensityMatrices
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
        return self.backend.apply(rho, operators(ops, nqubits), checkpoint)

    def matrix(self, rho: Any, nqubits: int) -> np.ndarray:
        """rho, rows and columns apart again."""
        held = self.backend.to_array(rho).reshape((2,) * 2 * nqubits)
        return np.ascontiguousarray(held.transpose(np.argsort(_INTERLEAVE[nqubits]))).reshape(
            2**nqubits, 2**nqubits)


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
