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
from typing import Any

import numpy as np

from qibo_core.circuit import Gate

MatrixKernel = Callable[[np.ndarray, np.ndarray, Sequence[int], Sequence[int]], None]
"""simulator.apply_matrix: any matrix on any targets of a state tensor, in place."""

PLAN_QUBITS = 14
"""Up to this many qubits a prepared circuit runs by plan; larger states are swept by the
backend's fused kernels (threads, scratch buffers), where the per-gate cost does not show."""


@dataclass
class _Kind:
    """The single-qubit gates of one kind: their positions in the plan's matrix stack, and each
    parameter's values as a fixed column or a column of value indices."""

    kind: type[Gate]
    positions: list[int] = field(default_factory=list)
    columns: list[list[float | None]] = field(default_factory=list)
    slots: list[list[int | None]] = field(default_factory=list)
    daggers: list[bool] = field(default_factory=list)


class Plan:
    """The steps of one prepared circuit of `nqubits` (see the module's docstring)."""

    def __init__(self, gates: Sequence[Any], slots: dict[int, list[tuple[str, int]]],
                 nqubits: int, apply_matrix: MatrixKernel) -> None:
        self.nqubits = nqubits
        self._apply_matrix = apply_matrix
        self._kinds: dict[type[Gate], _Kind] = {}
        self._fixed: list[tuple[int, np.ndarray]] = []
        """Single-qubit gates without slots or `entries_for`: matrices made once."""
        self._count = 0
        """Single-qubit gates in the matrix stack."""
        self._runs: list[list[int]] = []
        self.steps: list[tuple[str, Any]] = []
        waiting: dict[int, list[int]] = {}
        """Each qubit's run of single-qubit gates not placed yet (positions in the stack)."""
        diagonal: np.ndarray | None = None
        """Fixed diagonal gates not placed yet, multiplied; no run waits on their qubits."""
        touched: set[int] = set()
        for g, gate in enumerate(gates):
            slotted = dict(slots.get(g, []))
            if len(gate.qubits) == 1 and not gate.extra_controls:
                if diagonal is not None and gate.qubits[0] in touched:
                    self.steps.append(("diagonal", diagonal))
                    diagonal, touched = None, set()
                waiting.setdefault(gate.qubits[0], []).append(self._single(gate, slotted))
                continue
            qubits = set(gate.all_qubits)
            if not slotted and _is_diagonal(gate):
                # Runs waiting on its qubits go first; the pending diagonal touches none of
                # them, so the two commute.
                self._release(waiting, [q for q in gate.all_qubits if q in waiting])
                factors = _full_diagonal(gate, nqubits)
                diagonal = factors if diagonal is None else diagonal * factors
                touched |= qubits
                continue
            if diagonal is not None:  # runs still waiting are on other qubits: they commute
                self.steps.append(("diagonal", diagonal))
                diagonal, touched = None, set()
            self._release(waiting, [q for q in gate.all_qubits if q in waiting])
            self.steps.append(("gate", (gate, slotted)))
        if diagonal is not None:
            self.steps.append(("diagonal", diagonal))
        self._release(waiting, list(waiting))

    def _single(self, gate: Gate, slotted: dict[str, int]) -> int:
        position, self._count = self._count, self._count + 1
        if gate.entries_for is None:
            if slotted:
                raise ValueError(f"{gate!r}: a slotted gate needs entries_for")
            self._fixed.append((position, gate.matrix()))
            return position
        kind = self._kinds.setdefault(type(gate), _Kind(type(gate)))
        kind.positions.append(position)
        kind.columns.append([None if p in slotted else gate.params[p]
                             for p in gate.param_names])
        kind.slots.append([slotted.get(p) for p in gate.param_names])
        kind.daggers.append(gate.is_dagger)
        return position

    def _release(self, waiting: dict[int, list[int]], qubits: list[int]) -> None:
        for q in qubits:
            self._runs.append(waiting.pop(q))
            self.steps.append(("run", (q, len(self._runs) - 1)))

    def run(self, values: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """The final state for one set of `values`."""
        stack = self._matrices(values)
        products = [_product(stack, run) for run in self._runs]
        n = self.nqubits
        state = np.zeros(2**n, dtype=dtype)
        state[0] = 1
        for what, step in self.steps:
            if what == "run":
                q, index = step
                state = np.matmul(products[index], state.reshape(2**q, 2, -1)).reshape(-1)
            elif what == "diagonal":
                state *= step
            else:
                gate, slotted = step
                if slotted:
                    gate = _valued(gate, slotted, values)
                state = np.ascontiguousarray(state)
                self._apply_matrix(state.reshape((2,) * n), gate.matrix(), gate.targets,
                                   gate.controls)
        return state

    def _matrices(self, values: np.ndarray) -> np.ndarray:
        stack = np.empty((self._count, 2, 2), dtype=complex)
        for position, matrix in self._fixed:
            stack[position] = matrix
        for kind in self._kinds.values():
            m = len(kind.positions)
            columns = []
            for p in range(len(kind.kind.param_names)):
                column = np.array([row[p] if row[p] is not None else 0.0
                                   for row in kind.columns])
                indices = [row[p] for row in kind.slots]
                if any(i is not None for i in indices):
                    where = [k for k, i in enumerate(indices) if i is not None]
                    column[where] = values[[indices[k] for k in where]]
                columns.append(column)
            entries = kind.kind.entries_for(*columns)  # type: ignore[misc]
            block = np.empty((m, 4), dtype=complex)
            for k, entry in enumerate(entries):
                block[:, k] = entry
            block = block.reshape(m, 2, 2)
            if any(kind.daggers):
                block[kind.daggers] = block[kind.daggers].conj().transpose(0, 2, 1)
            stack[kind.positions] = block
        return stack


def _product(stack: np.ndarray, run: list[int]) -> np.ndarray:
    product = stack[run[0]]
    for position in run[1:]:
        product = stack[position] @ product
    return product


def _valued(gate: Gate, slotted: dict[str, int], values: np.ndarray) -> Gate:
    other = gate.bound({})
    other.params = {**gate.params, **{p: float(values[i]) for p, i in slotted.items()}}
    return other


def _is_diagonal(gate: Gate) -> bool:
    matrix = gate.matrix()
    return not np.count_nonzero(matrix - np.diag(np.diagonal(matrix)))


def _full_diagonal(gate: Gate, nqubits: int) -> np.ndarray:
    """The gate's factor for every basis state of `nqubits`."""
    factors = np.ones((2,) * nqubits, dtype=complex)
    diagonal = np.diagonal(gate.matrix()).reshape((2,) * len(gate.targets))
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
