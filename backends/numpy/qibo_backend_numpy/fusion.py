"""Gate fusion: fewer, larger operations, so the state is swept fewer times.

Single-qubit gates wait on their qubit, multiplied together, until a gate on more qubits needs
that qubit (or the circuit ends). They commute with everything on other qubits, so a waiting
gate may be released early: when one qubit of a group of `GROUP` neighbours must be released,
the whole group goes as one 2^GROUP x 2^GROUP matrix, which costs one sweep, as much as a
single-qubit gate does. Groups are counted from the last qubit, so that the amplitudes to the
right of a group are either none or at least 2^GROUP: both shapes make a fast matmul.

A gate on several qubits of one group (CNOT, SWAP, CRX...) waits too: the group's waiting gates
become one block matrix, released like a run. On a state of a few qubits a whole stream of
gates becomes a handful of sweeps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter

import numpy as np

from qibo_core.circuit import Gate

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
    waiting: dict[int, list[Gate]] = {}
    """Each qubit's waiting single-qubit gates, in order."""
    blocks: dict[int, np.ndarray] = {}
    """Each group's waiting gates on several qubits, as a matrix on the whole group; a qubit's
    waiting run came after the block's gates on that qubit, so a group is runs @ block."""
    diagonal: Diagonal | None = None
    for done, gate in enumerate(gates):
        if len(gate.qubits) == 1 and not gate.extra_controls:  # one target, no control
            run = waiting.get(gate.qubits[0])
            if run is None:
                waiting[gate.qubits[0]] = [gate]
            else:
                run.append(gate)
            continue
        matrix = gate.matrix()
        is_diagonal = _is_diagonal(matrix)
        qubits = gate.controls + gate.targets
        spanned = {(nqubits - 1 - q) // GROUP for q in qubits}
        if len(spanned) == 1 and not is_diagonal:  # within one group: join its block
            _join(spanned.pop(), qubits, _controlled(matrix, len(gate.controls)), waiting, blocks,
                  nqubits)
            continue
        groups = sorted({(nqubits - 1 - q) // GROUP for q in qubits if q in waiting}
                        | (spanned & blocks.keys()))
        if groups and diagonal is not None:
            yield diagonal, done  # it came before the waiting gates now released
            diagonal = None
        for group in groups:
            yield _release(group, waiting, blocks, nqubits), done
        if is_diagonal:
            factors = _controlled_diagonal(np.diagonal(matrix), len(gate.controls))
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
    for group in sorted({(nqubits - 1 - q) // GROUP for q in waiting} | set(blocks)):
        yield _release(group, waiting, blocks, nqubits), len(gates)


def _product(run: list[Gate]) -> np.ndarray:
    """The product of a run of single-qubit gates' matrices (the last applied leftmost):
    pairwise, so that a long run costs a few NumPy calls rather than one per gate."""
    matrices = _matrices(run)
    while len(matrices) > 1:
        if len(matrices) % 2:
            matrices = np.concatenate([matrices, _IDENTITY[None]])
        matrices = matrices[1::2] @ matrices[::2]
    return matrices[0]


def _matrices(run: list[Gate]) -> np.ndarray:
    """The gates' matrices, shape (n, 2, 2), built kind by kind."""
    if len(run) == 1:  # the common case on small mixed streams: skip the scans below
        return run[0].matrix()[None]
    kinds: set[type[Gate]] = set(map(type, run))
    if len(kinds) == 1:
        matrices = kinds.pop().matrices(run)
    else:
        matrices = np.empty((len(run), 2, 2), dtype=complex)
        for kind in kinds:
            where = [i for i, gate in enumerate(run) if type(gate) is kind]
            matrices[where] = kind.matrices([run[i] for i in where])
    if any(map(attrgetter("is_dagger"), run)):
        daggers = [i for i, gate in enumerate(run) if gate.is_dagger]
        matrices[daggers] = matrices[daggers].conj().transpose(0, 2, 1)
    return matrices


def _is_diagonal(matrix: np.ndarray) -> bool:
    """Whether only the diagonal is nonzero (the first row alone settles most dense matrices
    without a pass over the whole)."""
    if np.count_nonzero(matrix[0, 1:]):
        return False
    return not np.count_nonzero(matrix - np.diag(np.diagonal(matrix)))


def _controlled(matrix: np.ndarray, ncontrols: int) -> np.ndarray:
    """The matrix on controls + targets: identity unless every control is 1 (for gates within a
    group: the full matrix of a diagonal gate with many controls would not fit)."""
    full = np.eye(len(matrix) << ncontrols, dtype=complex)
    full[-len(matrix):, -len(matrix):] = matrix
    return full


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


def _span(group: int, nqubits: int) -> list[int]:
    """The group's qubits, ascending."""
    last = nqubits - 1 - group * GROUP
    return list(range(max(last - GROUP + 1, 0), last + 1))


def _join(group: int, qubits: tuple[int, ...], matrix: np.ndarray,
          waiting: dict[int, list[Gate]], blocks: dict[int, np.ndarray],
          nqubits: int) -> None:
    """Multiply a gate (`matrix` on `qubits`, all in `group`) into the group's block, after the
    runs waiting on its qubits."""
    span = _span(group, nqubits)
    block = blocks.get(group)
    if block is None:
        block = np.eye(2 ** len(span), dtype=complex)
    for q in qubits:
        run = waiting.pop(q, None)
        if run is not None:
            block = _embed(_product(run), [q], span) @ block
    blocks[group] = _embed(matrix, list(qubits), span) @ block


def _release(group: int, waiting: dict[int, list[Gate]], blocks: dict[int, np.ndarray],
             nqubits: int) -> Operation:
    """One operation for every waiting gate of the group: on its waiting qubits, or on all of
    them when it has a block."""
    block = blocks.pop(group, None)
    qubits = [q for q in _span(group, nqubits) if q in waiting or block is not None]
    if len(qubits) > 1:
        # Identity on the gaps keeps the targets adjacent: one reshape, one matmul.
        qubits = list(range(qubits[0], qubits[-1] + 1))
    matrix = np.ones((1, 1), dtype=complex)
    for q in qubits:
        run = waiting.pop(q, None)
        matrix = _kron(matrix, _IDENTITY if run is None else _product(run))
    return Operation(tuple(qubits), (), matrix if block is None else matrix @ block)


def _embed(matrix: np.ndarray, qubits: list[int], span: list[int]) -> np.ndarray:
    """`matrix` (on `qubits`, the first most significant) as a matrix on all of `span`."""
    k = len(span)
    order = qubits + [q for q in span if q not in qubits]
    full = _kron(matrix, np.eye(2 ** (k - len(qubits)), dtype=complex))
    axes = [order.index(q) for q in span]
    return full.reshape((2,) * 2 * k).transpose(axes + [k + a for a in axes]).reshape(2**k, -1)


def _kron(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.kron for square matrices in one multiply: np.kron's generality costs ~20 NumPy calls."""
    return (a[:, None, :, None] * b[None, :, None, :]).reshape(len(a) * len(b), -1)
