"""NumpyBackend: gates applied in place to a state vector, never as a 2^n x 2^n matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qibo_core.backend import Backend
from qibo_core.gates import Gate

from . import __version__


class NumpyBackend(Backend):
    """The state is a flat array; a k-qubit gate is one tensordot on a strided view of it."""

    name = "numpy"
    version = __version__

    def zero_state(self, nqubits: int) -> np.ndarray:
        state = np.zeros(2**nqubits, dtype=self.dtype)
        state[0] = 1
        return state

    def apply(self, state: np.ndarray, gates: Sequence[Gate]) -> np.ndarray:
        tensor = state.reshape((2,) * (state.size.bit_length() - 1))
        for gate in gates:
            apply_matrix(tensor, gate.matrix().astype(state.dtype, copy=False), gate.targets,
                         gate.controls)
        return state

    def to_array(self, state: np.ndarray) -> np.ndarray:
        return state


def apply_matrix(tensor: np.ndarray, matrix: np.ndarray, targets: Sequence[int],
                 controls: Sequence[int]) -> None:
    """Apply `matrix` to the `targets` axes of `tensor` (shape (2,)*n), where `controls` are 1."""
    index: list[int | slice] = [slice(None)] * tensor.ndim
    for c in controls:
        index[c] = 1
    view = tensor[tuple(index)]  # basic indexing: a view, so the update lands in the state
    axes = [t - sum(c < t for c in controls) for t in targets]
    k = len(targets)
    product = np.tensordot(matrix.reshape((2,) * (2 * k)), view, axes=(range(k, 2 * k), axes))
    view[...] = np.moveaxis(product, range(k), axes)
