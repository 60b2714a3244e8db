"""Density matrices on any backend: rho of n qubits is held as a state vector of 2n qubits,
rho's row bit of qubit q at position 2q and its column bit at 2q + 1 (each qubit's two bits
side by side, so what acts on one qubit acts on neighbouring bits, where backends fuse and
sweep fastest).

A gate U becomes U on the row bits and conj(U) on the column bits (U rho U^dagger); a channel
becomes one operator, sum_i K_i (x) conj(K_i), on its row and column bits: one pass over the
matrix, not a sum of dense products. Probabilities come from the diagonal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..circuit import Channel, Gate, Operation
from ..errors import CircuitError, InvalidParams
from .backend import Backend
from .operators import Matrix


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


def start(backend: Backend, n: int, initial: np.ndarray | None) -> Any:
    """vec(|0...0><0...0|) (|0...0> of 2n qubits), or of the initial state: a vector psi
    (rho = |psi><psi|) or a density matrix, already checked."""
    if initial is None:
        return backend.zero_state(2 * n)
    rho = np.outer(initial, initial.conj()) if initial.ndim == 1 else initial
    interleaved = rho.reshape((2,) * 2 * n).transpose(_INTERLEAVE[n]).astype(backend.dtype)
    return backend.from_array(interleaved.reshape(-1))


def matrix(backend: Backend, native: Any, n: int) -> np.ndarray:
    """rho, rows and columns apart again."""
    held = backend.to_array(native).reshape((2,) * 2 * n)
    return np.ascontiguousarray(held.transpose(np.argsort(_INTERLEAVE[n]))).reshape(2**n, 2**n)


class _Interleave(dict[int, list[int]]):
    """For n qubits, the axes of rho (rows 0..n-1, columns n..2n-1) in the held order."""

    def __missing__(self, n: int) -> list[int]:
        self[n] = [axis for q in range(n) for axis in (q, n + q)]
        return self[n]


_INTERLEAVE = _Interleave()


def probabilities(backend: Backend, native: Any, n: int, qubits: Sequence[int]) -> np.ndarray:
    """The outcome probabilities of `qubits` (in that order), from rho's diagonal."""
    diagonal = np.real(np.diagonal(matrix(backend, native, n))).clip(min=0)
    tensor = diagonal.reshape((2,) * n)
    others = tuple(q for q in range(n) if q not in qubits)
    marginal = tensor.sum(axis=others) if others else tensor
    kept = sorted(qubits)
    return np.transpose(marginal, [kept.index(q) for q in qubits]).reshape(-1)


def sample(backend: Backend, native: Any, n: int, qubits: Sequence[int], nshots: int,
           seed: int | None) -> np.ndarray:
    p = probabilities(backend, native, n, qubits)
    return np.random.default_rng(seed).multinomial(nshots, p / p.sum())


class Unstreamable:
    """The gate reader of a density matrix: gates are not streamed into one."""

    def __init__(self, nqubits: int) -> None:
        self.nqubits = nqubits

    def read(self, data: object) -> Gate:
        raise CircuitError("gates are not streamed into a density matrix: execute a circuit "
                           "with density_matrix=True")
