"""Matrix: any matrix on some qubits, where controls are 1: what the simulation itself applies
(a projection after a measurement, a Kraus operator, a gate on a density matrix's columns).
Never a client's gate, so it is not in the gate set (`public=False`), and not unitary."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..circuit import Gate


class Matrix(Gate, public=False):
    """`matrix` on `targets` (the first most significant), applied where `controls` are 1."""

    ntargets = 0
    name = "Matrix"

    def __init__(self, matrix: np.ndarray, targets: Sequence[int],
                 controls: Sequence[int] = ()) -> None:
        super().__init__(*targets)
        self._matrix = matrix
        self.extra_controls = tuple(controls)

    def base_matrix(self) -> np.ndarray:
        return self._matrix


def kraus_branch(kraus: np.ndarray, qubits: Sequence[int], probability: float) -> Matrix:
    """K_i / sqrt(p_i): the state a trajectory continues with after Kraus operator K_i, taken
    with probability p_i, renormalised."""
    return Matrix(kraus / np.sqrt(probability), qubits)


def projector(qubits: Sequence[int], outcome: int, probability: float) -> Matrix:
    """|outcome><outcome| / sqrt(probability): a measured state, renormalised."""
    diagonal = np.zeros(2 ** len(qubits), dtype=complex)
    diagonal[outcome] = 1 / np.sqrt(probability)
    return Matrix(np.diag(diagonal), qubits)
