"""qibo-backend-dense: the smallest honest simulator, as a third party would ship one.

Each gate becomes a full 2^n x 2^n matrix (built from the gate's own matrix, its targets and its
controls) that multiplies the state. Slow and obviously right: good for 10 qubits, and a model of
how little a backend needs. It uses only qibo-core's public API: `Backend` and `serve`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qibo_core.circuit import Gate
from qibo_core.server import Backend, Checkpoint, no_checkpoint, serve

__version__ = "0.1.0"


class DenseBackend(Backend):
    name = "dense"
    version = __version__
    max_qubits = 10  # a 10-qubit operator already has a million entries

    def zero_state(self, nqubits: int) -> np.ndarray:
        state = np.zeros(2**nqubits, dtype=self.dtype)
        state[0] = 1
        return state

    def apply(self, state: np.ndarray, gates: Sequence[Gate],
              checkpoint: Checkpoint = no_checkpoint) -> np.ndarray:
        n = state.size.bit_length() - 1
        for done, gate in enumerate(gates):
            checkpoint(done, len(gates))  # lets the client cancel, and see progress
            state = operator(gate, n).astype(state.dtype) @ state
        return state

    def to_array(self, state: np.ndarray) -> np.ndarray:
        return state


def operator(gate: Gate, n: int) -> np.ndarray:
    """The gate on all n qubits: its matrix where the controls are 1, identity elsewhere."""
    u, targets, controls = gate.matrix(), gate.targets, gate.controls
    k = len(targets)
    full = np.zeros((2**n, 2**n), dtype=complex)
    for column in range(2**n):
        bits = [(column >> (n - 1 - q)) & 1 for q in range(n)]
        if not all(bits[c] for c in controls):
            full[column, column] = 1
            continue
        t_in = sum(bits[t] << (k - 1 - i) for i, t in enumerate(targets))
        for t_out in range(2**k):
            for i, t in enumerate(targets):
                bits[t] = (t_out >> (k - 1 - i)) & 1
            full[sum(b << (n - 1 - q) for q, b in enumerate(bits)), column] = u[t_out, t_in]
    return full


def main() -> None:
    """The qibo-backend-dense executable."""
    serve(DenseBackend())
