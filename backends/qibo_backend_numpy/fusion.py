"""Gate fusion: fewer, larger operations, so the state is swept fewer times.

Single-qubit gates wait on their qubit, multiplied together, until a gate on more qubits needs
that qubit (or the circuit ends). They commute with everything on other qubits, so a waiting
gate may be released early: when one qubit of a group of `GROUP` neighbours must be released,
the whole group goes as one 2^GROUP x 2^GROUP matrix, which costs one sweep, as much as a
single-qubit gate does. Groups are counted from the last qubit, so that the amplitudes to the
right of a group are either none or at least 2^GROUP: both shapes make a fast matmul.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from qibo_core.gates import Gate

GROUP = 3
"""Neighbouring qubits released together: a matmul on 8 amplitudes is still memory-bound."""
DIAGONAL_QUBITS = 12
"""The most qubits a fused diagonal spans (4096 factors)."""
_IDENTITY = np.eye(2, dtype=complex)


@dataclass(frozen=True)
class Operation:
    """A matrix on `targets`, applied where every one of `controls` is |1>."""

    targets: tuple[int, ...]
    controls: tuple[int, ...]
    matrix: np.ndarray


@dataclass(frozen=True)
class Diagonal:
    """A diagonal on `qubits` (ascending): one factor per amplitude, shape (2,) * len(qubits)."""

    qubits: tuple[int, ...]
    factors: np.ndarray


def unfused(gates: Sequence[Gate]) -> Iterator[tuple[Operation, int]]:
    """Each gate as an operation, with the number of gates it completes."""
    for done, gate in enumerate(gates, 1):
        yield Operation(gate.targets, gate.controls, gate.matrix()), done


def fused(gates: Sequence[Gate], nqubits: int) -> Iterator[tuple[Operation | Diagonal, int]]:
    """The same unitary as `gates`, in as few sweeps as the rules above allow; each operation
    comes with the number of gates read so far (for progress reports).

    Consecutive diagonal gates (CZ, CU1, RZZ...) multiply into one Diagonal on the union of
    their qubits, up to DIAGONAL_QUBITS of them.
    """
    waiting: dict[int, list[complex]] = {}
    """Each qubit's waiting gates: their 2x2 matrices' entries, one after the other."""
    diagonal: Diagonal | None = None
    for done, gate in enumerate(gates):
        if len(gate.qubits) == 1 and not gate.extra_controls:  # one target, no control
            run = waiting.get(gate.qubits[0])
            if run is None:
                waiting[gate.qubits[0]] = run = []
            run += gate.entries() if gate.is_dagger else gate.base_entries()  # saves a call
            continue
        matrix = gate.matrix()
        groups = sorted({(nqubits - 1 - q) // GROUP for q in gate.all_qubits if q in waiting})
        if groups and diagonal is not None:
            yield diagonal, done  # it came before the waiting gates now released
            diagonal = None
        for group in groups:
            yield _release(group, waiting, nqubits), done
        if _is_diagonal(matrix):
            factors = _controlled_diagonal(np.diagonal(matrix), len(gate.controls))
            qubits = gate.controls + gate.targets
            if diagonal is not None and len(set(diagonal.qubits) | set(qubits)) > DIAGONAL_QUBITS:
                yield diagonal, done
                diagonal = None
            diagonal = _multiply(diagonal, qubits, factors)
            continue
        if diagonal is not None:
            yield diagonal, done
            diagonal = None
        yield Operation(gate.targets, gate.controls, matrix), done + 1
    if diagonal is not None:
        yield diagonal, len(gates)
    for group in sorted({(nqubits - 1 - q) // GROUP for q in waiting}):
        yield _release(group, waiting, nqubits), len(gates)


def _product(run: list[complex]) -> np.ndarray:
    """The product of a run of 2x2 matrices (the last applied leftmost): pairwise, so that a
    long run costs a few NumPy calls rather than one per gate."""
    matrices = np.array(run, dtype=complex).reshape(-1, 2, 2)
    while len(matrices) > 1:
        if len(matrices) % 2:
            matrices = np.concatenate([matrices, _IDENTITY[None]])
        matrices = matrices[1::2] @ matrices[::2]
    return matrices[0]


def _is_diagonal(matrix: np.ndarray) -> bool:
    return not np.count_nonzero(matrix - np.diag(np.diagonal(matrix)))


def _controlled_diagonal(factors: np.ndarray, ncontrols: int) -> np.ndarray:
    """The diagonal on controls + targets: 1 unless every control is 1."""
    full = np.ones(len(factors) << ncontrols, dtype=complex)
    full[-len(factors):] = factors
    return full


def _multiply(diagonal: Diagonal | None, qubits: tuple[int, ...],
              factors: np.ndarray) -> Diagonal:
    """`diagonal` times the factors on `qubits`, on the union of their qubits."""
    union = tuple(sorted(set(qubits) | set(diagonal.qubits if diagonal else ())))
    order = sorted(range(len(qubits)), key=lambda i: qubits[i])
    new = factors.reshape((2,) * len(qubits)).transpose(order)
    new = new.reshape([2 if q in qubits else 1 for q in union])
    if diagonal is None:
        return Diagonal(union, np.broadcast_to(new, (2,) * len(union)).copy())
    old = diagonal.factors.reshape([2 if q in diagonal.qubits else 1 for q in union])
    return Diagonal(union, old * new)


def _release(group: int, waiting: dict[int, list[complex]], nqubits: int) -> Operation:
    """One operation for every waiting gate of the group, on the group's waiting qubits."""
    last = nqubits - 1 - group * GROUP
    qubits = [q for q in range(max(last - GROUP + 1, 0), last + 1) if q in waiting]
    if len(qubits) > 1:
        # Identity on the gaps keeps the targets adjacent: one reshape, one matmul.
        qubits = list(range(qubits[0], qubits[-1] + 1))
    matrix = np.ones((1, 1), dtype=complex)
    for q in qubits:
        run = waiting.pop(q, None)
        matrix = np.kron(matrix, _IDENTITY if run is None else _product(run))
    return Operation(tuple(qubits), (), matrix)
