"""The kit's own small linear algebra, written from docs/protocol.md (section 7's matrices,
qubit 0 the most significant bit): what a check expects is computed here, independently of
every backend and of the reference simulator."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

I2 = np.eye(2, dtype=complex)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
Z = np.diag([1, -1]).astype(complex)
H = np.array([[1, 1], [1, -1]], dtype=complex) / np.sqrt(2)
CNOT = np.eye(4, dtype=complex)[[0, 1, 3, 2]]
PAULI = {"I": I2, "X": X, "Y": Y, "Z": Z}


def rx(theta: float) -> np.ndarray:
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    return np.array([[c, -1j * s], [-1j * s, c]])


def ry(theta: float) -> np.ndarray:
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    return np.array([[c, -s], [s, c]], dtype=complex)


def rz(theta: float) -> np.ndarray:
    return np.diag([np.exp(-0.5j * theta), np.exp(0.5j * theta)])


def full(matrix: np.ndarray, targets: Sequence[int], n: int) -> np.ndarray:
    """`matrix` acting on `targets` (the first the most significant) of n qubits, as a
    2^n x 2^n matrix."""
    k = len(targets)
    columns = np.eye(2**n, dtype=complex).reshape((2,) * n + (2**n,))
    moved = np.moveaxis(columns, list(targets), list(range(k)))
    applied = (matrix @ moved.reshape(2**k, -1)).reshape(moved.shape)
    return np.moveaxis(applied, list(range(k)), list(targets)).reshape(2**n, 2**n)


def circuit(ops: Sequence[tuple[np.ndarray, Sequence[int]]], n: int) -> np.ndarray:
    """The product of (matrix, targets) operations applied in order."""
    total = np.eye(2**n, dtype=complex)
    for matrix, targets in ops:
        total = full(matrix, targets, n) @ total
    return total


def pauli(text: str, n: int) -> np.ndarray:
    """A Pauli string such as "Y0 X2" (4.11) on n qubits."""
    letters = {int(f[1:]): f[0] for f in text.split()}
    total = np.ones((1, 1), dtype=complex)
    for q in range(n):
        total = np.kron(total, PAULI[letters.get(q, "I")])
    return total


def expectation(state: np.ndarray, text: str) -> float:
    """<psi|P|psi> of a vector, Tr(P rho) of a density matrix."""
    n = state.shape[0].bit_length() - 1
    p = pauli(text, n)
    if state.ndim == 2:
        return float(np.trace(p @ state).real)
    return float(np.vdot(state, p @ state).real)


def probabilities(state: np.ndarray) -> np.ndarray:
    """Each outcome's probability, from a vector or a density matrix's diagonal."""
    return np.real(np.diagonal(state)) if state.ndim == 2 else np.abs(state) ** 2
