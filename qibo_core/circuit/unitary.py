"""A circuit's unitary, computed by a backend in one ordinary run.

The n qubits of the circuit start maximally entangled with n ancillas, sum_j |j>|j> / sqrt(2^n)
(H on each ancilla, then a CNOT from it onto its qubit), and the circuit acts on its own qubits
alone, leaving sum_ij U_ij |i>|j> / sqrt(2^n). Its qubits come first (the most significant), so
the final amplitudes, reshaped to 2^n x 2^n, are U / sqrt(2^n): one `execute` of 2n qubits,
which every backend of every protocol version runs.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import CircuitError
from .gate import Gate
from .gates import CNOT, H
from .operation import CircuitParts

MAX_QUBITS = 12
"""The largest circuit whose unitary is computed: a run of 24 qubits, a 256 MiB state."""


def entangling(circuit: CircuitParts) -> list[Gate]:
    """The gates that entangle `circuit`'s n qubits with n ancillas, to run before its own gates
    on 2n qubits; a circuit without a unitary raises, saying why."""
    _check(circuit)
    n = circuit.nqubits
    return [gate for q in range(n) for gate in (H(n + q), CNOT(n + q, q))]


def from_amplitudes(amplitudes: np.ndarray, nqubits: int) -> np.ndarray:
    """The unitary, from the final amplitudes of the `entangled` circuit."""
    dim = 2**nqubits
    return np.asarray(amplitudes).reshape(dim, dim) * math.sqrt(dim)


def _check(circuit: CircuitParts) -> None:
    n = circuit.nqubits
    if n > MAX_QUBITS:
        raise CircuitError(f"unitary: a {n}-qubit circuit's matrix takes {_size(16 * 4**n)}, "
                           f"computed as a {2 * n}-qubit state of the same size; at most "
                           f"{MAX_QUBITS} qubits ({_size(16 * 4**MAX_QUBITS)})")
    if circuit.measurements:
        raise CircuitError(f"unitary: {circuit.measurements[0]!r}: a circuit that measures has "
                           "no unitary; leave its measurements out")
    for index, op in enumerate(circuit.gates):
        if not isinstance(op, Gate):
            raise CircuitError(f"unitary: gate {index}, {op!r}, is not unitary")
    if circuit.parameters:
        names = ", ".join(p.name for p in circuit.parameters)
        raise CircuitError(f"unitary: the circuit has Parameters ({names}): value them first, "
                           "circuit.bind(values).unitary()")


def _size(nbytes: int) -> str:
    units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    power = min((nbytes.bit_length() - 1) // 10, len(units) - 1)
    return f"{nbytes / 1024**power:g} {units[power]}"
