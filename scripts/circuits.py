"""Circuits the demo and the benchmarks share."""

from __future__ import annotations

import math

import numpy as np

from qibo_core import Circuit, gates


def qft(nqubits: int) -> Circuit:
    """The quantum Fourier transform, as qibo's models.QFT builds it (with the final swaps)."""
    circuit = Circuit(nqubits)
    for i in range(nqubits):
        circuit.add(gates.H(i))
        for j in range(i + 1, nqubits):
            circuit.add(gates.CU1(j, i, math.pi / 2 ** (j - i)))
    for i in range(nqubits // 2):
        circuit.add(gates.SWAP(i, nqubits - 1 - i))
    return circuit


def layered(nqubits: int, layers: int = 10, seed: int = 0) -> Circuit:
    """RX RY RZ with random angles on every qubit, then a CZ chain; `layers` times."""
    rng = np.random.default_rng(seed)
    circuit = Circuit(nqubits)
    for _ in range(layers):
        for q in range(nqubits):
            circuit.add([gates.RX(q, rng.uniform(0, 2 * math.pi)),
                         gates.RY(q, rng.uniform(0, 2 * math.pi)),
                         gates.RZ(q, rng.uniform(0, 2 * math.pi))])
        circuit.add(gates.CZ(q, q + 1) for q in range(nqubits - 1))
    return circuit
