"""A prepared circuit on a small state: a plan made once, run with each set of values in a few
dozen NumPy calls, so that the Python cost per gate is paid at preparation and not per set.

The plan is a list of steps. Runs of single-qubit gates on one qubit become one 2x2 matrix per
set: the matrices of every single-qubit gate are built together, kind by kind, from arrays of
values (`entries_for`), and the runs multiplied as batches. Fixed diagonal gates side by side
multiply into one vector of 2^n factors, made once. Anything else (a gate on several qubits)
is applied as it is, its matrix made per set only when it has a slot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np

from qibo_core.circuit import Gate
from qibo_core.server import Checkpoint, no_checkpoint

from .fusion import _is_diagonal

MatrixKernel = Callable[[np.ndarray, np.ndarray, Sequence[int], Sequence[int]], None]
"""simulator.apply_matrix: any matrix on any targets of a state tensor, in place."""

PLAN_QUBITS = 14
"""Up to this many qubits a prepared circuit runs by plan; larger states are swept by the
backend's fused kernels (threads, scratch buffers), where the per-gate cost does not show."""
APPLY_QUBITS = 12
"""Up to this many qubits gates applied once (execute, streams) that include gates on several
qubits run by a plan made for them: making and running it costs less than fusing (a 116-gate
circuit on 10 qubits: 1.1 ms against 2.5 ms); from 14 qubits on it costs more, and runs of
single-qubit gates alone fuse faster (0.4 against 0.8 us a gate on 2 qubits)."""
CHECK_EVERY = 256
"""Gates (or steps) between two calls of the checkpoint while a plan is made or run."""
PLAN_GATES = 4096
"""Gates per plan when applying: the backend checks for cancellation between plans."""
PLAN_BYTES = 2**25
"""The most memory a plan may keep (mostly its diagonals: 256 KiB each on 14 qubits). A circuit
whose plan would take more runs without one: its memory does not grow with its length."""
GATHER_QUBITS = 10
"""Up to this many qubits a gate on several qubits is applied through the indices of its
amplitudes, found once (8 KiB a gate on 10 qubits): a gather, a matmul and a scatter, 3 us on
6 qubits where a tensordot on the state's view costs 20 us."""
STACK_ENTRY_BYTES = 128
"""A single-qubit gate's place in a plan: its 2x2 matrix in the stack and in `_fixed`."""


class PlanTooLarge(Exception):
    """The plan would keep more than PLAN_BYTES."""


@dataclass
class _Kind:
    """The single-qubit gates of one kind: their positions in the plan's matrix stack, and where
    each set's values go among their parameters."""

    kind: type[Gate]
    positions: list[int] = field(default_factory=list)
    gates: list[Gate] = field(default_factory=list)
    slotted: list[tuple[int, dict[str, int]]] = field(default_factory=list)
    """(row, {param: value index}) of the gates with slots."""
    filled: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    """Per parameter: its fixed values (any where slotted), the rows slotted, their indices."""
    daggers: np.ndarray | None = None

    def finish(self) -> None:
        params = list(map(attrgetter("params"), self.gates))
        for p in self.kind.param_names:
            fixed = np.fromiter(map(itemgetter(p), params), float, len(params))
            pairs = [(row, slots[p]) for row, slots in self.slotted if p in slots]
            self.filled.append((fixed, np.array([r for r, _ in pairs], dtype=int),
                                np.array([i for _, i in pairs], dtype=int)))
        daggers = np.fromiter(map(attrgetter("is_dagger"), self.gates), bool, len(self.gates))
        self.daggers = daggers if daggers.any() else None
        self.gates = []

    def matrices(self, values: np.ndarray) -> np.ndarray:
        """Every gate's 2x2 matrix for one set of values."""
        columns = []
        for fixed, rows, indices in self.filled:
            if len(rows):
                fixed = fixed.copy()
                fixed[rows] = values[indices]
            columns.append(fixed)
        entries = self.kind.entries_for(*columns)  # type: ignore[misc]
        block = np.empty((len(self.positions), 4), dtype=complex)
        for k, entry in enumerate(entries):
            block[:, k] = entry
        block = block.reshape(-1, 2, 2)
        if self.daggers is not None:
            block[self.daggers] = block[self.daggers].conj().transpose(0, 2, 1)
        return block


class Plan:
    """The steps of one prepared circuit of `nqubits` (see the module's docstring)."""

    def __init__(self, gates: Sequence[Any], slots: dict[int, list[tuple[str, int]]],
                 nqubits: int, apply_matrix: MatrixKernel,
                 checkpoint: Checkpoint = no_checkpoint) -> None:
        self.nqubits = nqubits
        self._apply_matrix = apply_matrix
        self._kinds: dict[type[Gate], _Kind] = {}
        self._fixed: list[tuple[int, np.ndarray]] = []
        """Single-qubit gates without slots or `entries_for`: matrices made once."""
        self._count = 0
        """Single-qubit gates in the matrix stack."""
        self._runs: list[list[int]] = []
        self.steps: list[tuple[str, Any]] = []
        self.nbytes = 0
        """What the plan keeps: its diagonals and single-qubit matrices."""
        waiting: dict[int, list[int]] = {}
        """Each qubit's run of single-qubit gates not placed yet (positions in the stack)."""
        diagonal: np.ndarray | None = None
        """Fixed diagonal gates not placed yet, multiplied; no run waits on their qubits."""
        touched: set[int] = set()
        for g, gate in enumerate(gates):
            if g % CHECK_EVERY == 0:
                checkpoint()
            slotted = dict(slots.get(g, []))
            if len(gate.qubits) == 1 and not gate.extra_controls:
                if diagonal is not None and gate.qubits[0] in touched:
                    self._keep_diagonal(diagonal)
                    diagonal, touched = None, set()
                waiting.setdefault(gate.qubits[0], []).append(self._single(gate, slotted))
                continue
            qubits = set(gate.all_qubits)
            matrix = None if slotted else gate.matrix()
            if matrix is not None and _is_diagonal(matrix):
                # Runs waiting on its qubits go first; the pending diagonal touches none of
                # them, so the two commute.
                self._release(waiting, [q for q in gate.all_qubits if q in waiting])
                factors = _full_diagonal(gate, np.diagonal(matrix), nqubits)
                diagonal = factors if diagonal is None else diagonal * factors
                touched |= qubits
                continue
            if diagonal is not None:  # runs still waiting are on other qubits: they commute
                self._keep_diagonal(diagonal)
                diagonal, touched = None, set()
            self._release(waiting, [q for q in gate.all_qubits if q in waiting])
            gather = None
            if nqubits <= GATHER_QUBITS:
                gather = _gather(gate, nqubits)
                self._grow(gather.nbytes)
            self.steps.append(("gate", (gate, slotted, matrix, gather)))
        if diagonal is not None:
            self._keep_diagonal(diagonal)
        self._release(waiting, list(waiting))
        self.steps = _blocks(self.steps)
        self._groups = _by_length(self._runs)
        for kind in self._kinds.values():
            kind.finish()
        self._slotted = bool(slots)
        self._blocks: list[np.ndarray] | None = None
        """The blocks' matrices, when no gate has a slot: made at the first run."""

    def _keep_diagonal(self, diagonal: np.ndarray) -> None:
        self.steps.append(("diagonal", diagonal))
        self._grow(diagonal.nbytes)

    def _grow(self, nbytes: int) -> None:
        self.nbytes += nbytes
        if self.nbytes > PLAN_BYTES:
            raise PlanTooLarge(f"the plan would keep more than {PLAN_BYTES} bytes")

    def _single(self, gate: Gate, slotted: dict[str, int]) -> int:
        self._grow(STACK_ENTRY_BYTES)
        position, self._count = self._count, self._count + 1
        if gate.entries_for is None:  # fixed (every slotted single-qubit kind has entries_for)
            self._fixed.append((position, gate.matrix()))
            return position
        kind = self._kinds.get(type(gate))
        if kind is None:
            kind = self._kinds[type(gate)] = _Kind(type(gate))
        if slotted:
            kind.slotted.append((len(kind.gates), slotted))
        kind.positions.append(position)
        kind.gates.append(gate)
        return position

    def _release(self, waiting: dict[int, list[int]], qubits: list[int]) -> None:
        for q in qubits:
            self._runs.append(waiting.pop(q))
            self.steps.append(("run", (q, len(self._runs) - 1)))

    def run(self, values: np.ndarray, dtype: np.dtype, initial: np.ndarray | None = None,
            checkpoint: Checkpoint = no_checkpoint) -> np.ndarray:
        """The final state for one set of `values`, from |0...0> or from `initial` (which may
        be overwritten)."""
        blocks = self._blocks
        if blocks is None:
            blocks = self._block_matrices(values)
            if not self._slotted:
                self._blocks = blocks
        n = self.nqubits
        if initial is None:
            state = np.zeros(2**n, dtype=dtype)
            state[0] = 1
        else:
            state = initial
        block = iter(blocks)
        for done, (what, step) in enumerate(self.steps):
            if done % CHECK_EVERY == 0:
                checkpoint()
            if what == "block":
                state = _apply_block(state, next(block), step[0], n)
            elif what == "diagonal":
                state *= step
            else:
                gate, slotted, matrix, gather = step
                if slotted:
                    gate = _valued(gate, slotted, values)
                    matrix = gate.matrix()
                if gather is None:
                    self._apply_matrix(state.reshape((2,) * n), matrix, gate.targets,
                                       gate.controls)
                else:
                    state[gather] = state[gather] @ matrix.T
        return state if state.dtype == dtype else state.astype(dtype)

    def _block_matrices(self, values: np.ndarray) -> list[np.ndarray]:
        """Each block's matrix, in order, for one set of values."""
        stack = np.empty((self._count, 2, 2), dtype=complex)
        for position, matrix in self._fixed:
            stack[position] = matrix
        for kind in self._kinds.values():
            stack[kind.positions] = kind.matrices(values)
        products = np.empty((len(self._runs), 2, 2), dtype=complex)
        for runs, positions in self._groups:  # runs of one length, multiplied as a batch
            products[runs] = _ordered_product(stack[positions])
        return [_kron(products[runs]) for what, (_, runs) in
                ((what, step) for what, step in self.steps if what == "block")]


BLOCK_QUBITS = 3
"""Runs on neighbouring qubits placed side by side join into one matrix of up to this many."""


def _blocks(steps: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Steps with each stretch of consecutive runs (on distinct qubits, so they commute) joined
    into blocks of runs on neighbouring qubits: ("block", (first qubit, run indices))."""
    joined: list[tuple[str, Any]] = []
    stretch: list[tuple[int, int]] = []
    for what, step in [*steps, ("end", None)]:
        if what == "run":
            stretch.append(step)
            continue
        stretch.sort()
        while stretch:
            first = stretch[0][0]
            k = 1
            while k < min(BLOCK_QUBITS, len(stretch)) and stretch[k][0] == first + k:
                k += 1
            joined.append(("block", (first, [index for _, index in stretch[:k]])))
            stretch = stretch[k:]
        if what != "end":
            joined.append((what, step))
    return joined


def _by_length(runs: list[list[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The runs grouped by length: (their indices, their stack positions [runs, length])."""
    lengths = sorted({len(run) for run in runs})
    return [(np.array([i for i, run in enumerate(runs) if len(run) == length]),
             np.array([run for run in runs if len(run) == length], dtype=int))
            for length in lengths]


def _ordered_product(matrices: np.ndarray) -> np.ndarray:
    """M_L ... M_2 M_1 of each row of `matrices` [runs, L, 2, 2], pairwise: log2(L) calls."""
    while matrices.shape[1] > 1:
        if matrices.shape[1] % 2:  # the identity, applied last
            eye = np.broadcast_to(np.eye(2), (len(matrices), 1, 2, 2))
            matrices = np.concatenate([matrices, eye], axis=1)
        matrices = matrices[:, 1::2] @ matrices[:, 0::2]
    return matrices[:, 0]


def _kron(matrices: np.ndarray) -> np.ndarray:
    """The Kronecker product of k 2x2 matrices, the first most significant."""
    product = matrices[0]
    for matrix in matrices[1:]:
        d = len(product)
        product = np.einsum("ab,cd->acbd", product, matrix).reshape(2 * d, 2 * d)
    return product


def _apply_block(state: np.ndarray, matrix: np.ndarray, q: int, n: int) -> np.ndarray:
    """`matrix` on qubits q.. (neighbours, q the most significant), as one matmul laid out by
    where they sit."""
    dim = len(matrix)
    left, right = 2**q, state.size // (2**q * dim)
    if right == 1:
        return (state.reshape(left, dim) @ matrix.T).reshape(-1)
    if left == 1:
        return (matrix @ state.reshape(dim, right)).reshape(-1)
    return np.matmul(matrix, state.reshape(left, dim, right)).reshape(-1)


def _gather(gate: Gate, nqubits: int) -> np.ndarray:
    """Where the gate's amplitudes sit: the indices of the basis states whose controls are 1,
    one row per setting of the other qubits, one column per setting of the targets (the first
    target the most significant bit)."""
    bit = [1 << (nqubits - 1 - q) for q in range(nqubits)]
    rows = np.arange(1 << nqubits)
    for q in gate.all_qubits:
        rows = rows[rows & bit[q] == 0]
    rows |= sum(bit[c] for c in gate.controls)
    columns = np.zeros(1, dtype=rows.dtype)
    for t in reversed(gate.targets):  # the last target becomes the least significant bit
        columns = np.concatenate([columns, columns | bit[t]])
    return rows[:, None] | columns[None, :]


def _valued(gate: Gate, slotted: dict[str, int], values: np.ndarray) -> Gate:
    other = gate.bound({})
    other.params = {**gate.params, **{p: float(values[i]) for p, i in slotted.items()}}
    return other


def _full_diagonal(gate: Gate, diagonal: np.ndarray, nqubits: int) -> np.ndarray:
    """The factor of the gate (whose matrix has `diagonal` on its targets) for every basis state
    of `nqubits`."""
    factors = np.ones((2,) * nqubits, dtype=complex)
    diagonal = diagonal.reshape((2,) * len(gate.targets))
    index: list[Any] = [slice(None)] * nqubits
    for c in gate.controls:
        index[c] = 1
    view = factors[tuple(index)]  # where the controls are 1
    axes = [t - sum(c < t for c in gate.controls) for t in gate.targets]
    order = np.argsort(axes)  # the diagonal's axes are in `targets` order
    shaped = np.transpose(diagonal, order).reshape(
        [2 if a in axes else 1 for a in range(view.ndim)])
    view *= shaped
    return factors.reshape(-1)
