"""The maths both ends do on states and outcomes, in the protocol's bit order (qubit 0 the most
significant): outcome probabilities of some qubits, outcomes as rows of bits and back, and
whether a density matrix is positive semidefinite. The server computes answers with them, the
client reads and checks answers with them; pure NumPy, so either may import it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CHUNK_QUBITS = 18
"""Probabilities and reduced density matrices are summed over chunks of 2**18 amplitudes, so that
no temporary of the state's length is made."""


def marginal(probabilities: np.ndarray, qubits: Sequence[int]) -> np.ndarray:
    """The probabilities of the outcomes of `qubits` (in that order, the first most
    significant), from those of every outcome."""
    n = probabilities.size.bit_length() - 1
    tensor = probabilities.reshape((2,) * n)
    others = tuple(q for q in range(n) if q not in qubits)
    summed = tensor.sum(axis=others) if others else tensor
    kept = sorted(qubits)
    ordered = np.transpose(summed, [kept.index(q) for q in qubits])
    return ordered.reshape(-1).astype(np.float64)


def marginal_probabilities(amplitudes: np.ndarray, qubits: Sequence[int]) -> np.ndarray:
    """Probabilities of the outcomes of `qubits` (in that order, the first most significant),
    summed chunk by chunk: the only array of more than a chunk is the answer."""
    n = amplitudes.size.bit_length() - 1
    kept = sorted(qubits)
    lead = max(0, n - CHUNK_QUBITS)
    """The qubits fixed in each chunk: 0 .. lead-1."""
    inner = n - lead
    summed_axes = tuple(q - lead for q in range(lead, n) if q not in kept)
    outer = [q for q in kept if q < lead]
    result = np.zeros((2,) * len(kept))  # axes in `kept` order: the outer qubits come first
    for prefix in range(2**lead):
        chunk = amplitudes[prefix << inner:(prefix + 1) << inner]
        probabilities = (np.abs(chunk) ** 2).reshape((2,) * inner)
        if summed_axes:
            probabilities = probabilities.sum(axis=summed_axes)
        result[tuple((prefix >> (lead - 1 - q)) & 1 for q in outer)] += probabilities
    ordered = np.transpose(result, [kept.index(q) for q in qubits])
    return np.ascontiguousarray(ordered).reshape(-1)



def outcome_bits(outcomes: np.ndarray, width: int) -> np.ndarray:
    """Each outcome as a row of `width` bits (uint8), the first the most significant."""
    if outcomes.dtype == object:
        text = "".join(format(int(o), f"0{width}b") for o in outcomes).encode()
        return (np.frombuffer(text, np.uint8) - ord("0")).reshape(len(outcomes), width)
    rows = np.empty((len(outcomes), width), np.uint8)
    for column in range(width):
        rows[:, column] = (outcomes >> (width - 1 - column)) & 1
    return rows


def as_integers(rows: np.ndarray) -> np.ndarray:
    """`outcome_bits` undone: each row of bits as an integer, the first bit the most
    significant."""
    return rows.astype(np.int64) @ (1 << np.arange(rows.shape[1] - 1, -1, -1, dtype=np.int64))


def positive_semidefinite(rho: np.ndarray, tolerance: float) -> bool:
    """Whether the Hermitian `rho` has no eigenvalue below -`tolerance`: rho + tolerance I has
    a Cholesky factor (a third of the work of the eigenvalues)."""
    shifted = rho + tolerance * np.eye(len(rho), dtype=rho.dtype)
    try:
        np.linalg.cholesky(shifted)
    except np.linalg.LinAlgError:
        return False
    return True
