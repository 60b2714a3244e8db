"""An independent dense simulator: every gate as a full 2^n x 2^n matrix, built entry by entry.

Slow and obviously right; the backends are checked against it.
"""

from __future__ import annotations

import numpy as np

from qibo_core import Circuit
from qibo_core.gates import Gate


def operator(gate: Gate, n: int) -> np.ndarray:
    """The full matrix of `gate` on n qubits (qubit 0 the most significant bit)."""
    u = gate.matrix()
    targets, controls = gate.targets, gate.controls
    k = len(targets)
    op = np.zeros((2**n, 2**n), dtype=complex)
    for col in range(2**n):
        bits = [(col >> (n - 1 - q)) & 1 for q in range(n)]
        if not all(bits[c] for c in controls):
            op[col, col] = 1
            continue
        t_in = sum(bits[t] << (k - 1 - i) for i, t in enumerate(targets))
        for t_out in range(2**k):
            out = list(bits)
            for i, t in enumerate(targets):
                out[t] = (t_out >> (k - 1 - i)) & 1
            op[sum(b << (n - 1 - q) for q, b in enumerate(out)), col] += u[t_out, t_in]
    return op


def final_state(circuit: Circuit) -> np.ndarray:
    state = np.zeros(2**circuit.nqubits, dtype=complex)
    state[0] = 1
    for gate in circuit.gates:
        state = operator(gate, circuit.nqubits) @ state
    return state
