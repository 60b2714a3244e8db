"""NumpyBackend: gates applied in place to a state vector, never as a 2^n x 2^n matrix.

Each operation goes to the cheapest kernel its matrix allows: a diagonal one multiplies only the
amplitudes it changes (CZ, CU1 and RZ touch strided views, in place); a permutation moves
slices (X, CNOT, SWAP); a dense matrix on neighbouring qubits is one matmul over the state seen
as (left, 2^k, right) into a scratch buffer; anything else is a tensordot on the view where the
controls are 1.

Large sweeps are split across threads (NumPy releases the GIL inside its kernels), along an axis
the operation does not touch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from qibo_core.circuit import Gate
from qibo_core.server import Backend, Checkpoint, no_checkpoint
from qibo_core.server.backend import Work

from . import __version__
from .fusion import Diagonal, Operation, fused, unfused
from .plan import APPLY_QUBITS, PLAN_BYTES, PLAN_GATES, PLAN_QUBITS, Plan, PlanTooLarge

_DEFAULT_THREADS = os.cpu_count() or 1
SMALL_AMPLITUDES = 2**10
"""Up to this size a sweep costs less than choosing a kernel (tens of NumPy calls): one
tensordot does every operation."""
PARALLEL_MIN_AMPLITUDES = 2**16
"""Smaller sweeps run on one thread: handing work to another costs more than it saves."""


class NumpyState:
    """The amplitudes, and a scratch array of the same size for out-of-place matmuls, made by
    the backend's new_amplitudes (memory a read may hand over, whichever of the two holds the
    amplitudes then)."""

    def __init__(self, data: np.ndarray, backend: Backend | None = None) -> None:
        self.nqubits = data.size.bit_length() - 1
        self.data = data
        self._backend = backend
        self._scratch: np.ndarray | None = None

    @property
    def tensor(self) -> np.ndarray:
        """The amplitudes as a view of shape (2,) * n, axis q for qubit q."""
        return self.data.reshape((2,) * self.nqubits)

    def swap_scratch(self) -> np.ndarray:
        """The scratch array, which becomes the amplitudes once the caller has filled it."""
        scratch, backend = self._scratch, self._backend
        if backend is None:
            scratch = np.empty_like(self.data) if scratch is None else scratch
        elif scratch is None or backend.handed_over(scratch):
            scratch = backend.new_amplitudes(self.data.size, self.data.dtype)
        self._scratch, self.data = self.data, scratch
        return scratch


class NumpyBackend(Backend):
    """A NumPy state-vector simulator; `fusion=False` applies every gate on its own."""

    name = "numpy"
    version = __version__
    baseline_bytes = 2**25  # measured: 20 MiB

    def __init__(self, *, fusion: bool | None = None) -> None:
        super().__init__()
        if fusion is None:
            fusion = os.environ.get("QIBO_NUMPY_FUSION", "1") != "0"
        self.fusion = fusion
        self._pool: ThreadPoolExecutor | None = None

    @property
    def threads(self) -> int:
        return self.options.threads or _DEFAULT_THREADS

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _run(self, tasks: Sequence[Callable[[], object]]) -> None:
        if len(tasks) == 1:
            tasks[0]()
            return
        if self._pool is None or self._pool._max_workers != self.threads:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="numpy-kernel")
        for future in [self._pool.submit(task) for task in tasks]:
            future.result()

    def state_bytes(self, nqubits: int) -> int:
        return 2 * super().state_bytes(nqubits)  # the amplitudes and the scratch array

    working = {**Backend.working, Work.GATES: 2.0, Work.READ: 0.0, Work.LOAD: 0.0,
               Work.COPY: 0.0}
    """Measured (docs/decisions.md, "Memory"): a dense matrix on qubits apart is a tensordot,
    which copies the state and makes its result; the other kernels work in place or in the
    scratch array; `to_array`, `from_array` and `copy` make no copy beyond the state's own."""

    def working_bytes(self, work: Work, nqubits: int) -> int:
        if work is Work.PREPARE:
            return PLAN_BYTES if nqubits <= PLAN_QUBITS else 0
        return super().working_bytes(work, nqubits)

    def zero_state(self, nqubits: int) -> NumpyState:
        data = self.new_amplitudes(2**nqubits)
        data[0] = 1
        return NumpyState(data, self)

    def from_array(self, amplitudes: np.ndarray) -> NumpyState:
        return NumpyState(amplitudes, self)

    def apply(self, state: NumpyState, gates: Sequence[Gate],
              checkpoint: Checkpoint = no_checkpoint) -> NumpyState:
        return self.run_compiled(state, self._program(gates, state.nqubits, kept=False),
                                 checkpoint)

    def compile_gates(self, gates: Sequence[Gate], nqubits: int) -> Compiled:
        return self._program(gates, nqubits, kept=True)

    def _program(self, gates: Sequence[Gate], nqubits: int, *, kept: bool) -> Compiled:
        """What running these gates takes, in parts: plans (plan.py) on small states where gates
        on several qubits break the runs of single-qubit gates (fewer NumPy calls; fusion alone
        multiplies unbroken runs faster), else fused operations (made as they are applied,
        unless the program is `kept`); a chunk whose plan would be too large is fused."""
        parts: list[Plan | Iterable[tuple[Any, int]]] = []
        if self.fusion and nqubits <= APPLY_QUBITS and any(map(_joins, gates)):
            for start in range(0, len(gates), PLAN_GATES):
                chunk = gates[start:start + PLAN_GATES]
                try:
                    parts.append(Plan(chunk, {}, nqubits, apply_matrix))
                except PlanTooLarge:
                    parts.append(list(self._operations(chunk, nqubits, start)))
            return Compiled(len(gates), parts)
        operations = self._operations(gates, nqubits, 0)
        return Compiled(len(gates), [list(operations) if kept else operations])

    def _operations(self, gates: Sequence[Gate], nqubits: int,
                    start: int) -> Iterator[tuple[Any, int]]:
        """The gates as fused operations, each with the gates done after it (from `start`)."""
        operations = fused(gates, nqubits) if self.fusion else unfused(gates)
        return ((op, start + done) for op, done in operations)

    def run_compiled(self, state: NumpyState, program: Compiled,
                     checkpoint: Checkpoint = no_checkpoint) -> NumpyState:
        threads, done = self.threads, 0
        for part in program.parts:
            if isinstance(part, Plan):
                checkpoint(done, program.total)
                state.data = part.run(_NO_VALUES, state.data.dtype, state.data)
                done += PLAN_GATES
                continue
            for op, done in part:
                checkpoint(done, program.total)
                if isinstance(op, Diagonal):
                    apply_fused_diagonal(state, op, self._run, threads)
                else:
                    apply_operation(state, op, self._run, threads)
        return state

    def to_array(self, state: NumpyState) -> np.ndarray:
        return state.data

    def prepare(self, prepared: Any, checkpoint: Checkpoint = no_checkpoint) -> Plan | None:
        """A plan for a prepared state-vector circuit of up to PLAN_QUBITS (plan.py)."""
        circuit = prepared.circuit
        if circuit.density_matrix or circuit.nqubits > PLAN_QUBITS:
            return None
        try:
            return Plan(circuit.gates, prepared.slots, circuit.nqubits, apply_matrix, checkpoint)
        except PlanTooLarge:
            return None

    def prepared_bytes(self, native: Plan | None) -> int:
        return 0 if native is None else native.nbytes

    def run_prepared(self, prepared: Any, values: np.ndarray, start: NumpyState,
                     checkpoint: Checkpoint) -> NumpyState | None:
        plan = prepared.native
        if plan is None:
            return None
        start.data = plan.run(values, start.data.dtype, start.data, checkpoint)
        return start

    def expectations(self, prepared: Any, sets: np.ndarray, observable: Any,
                     checkpoint: Checkpoint) -> np.ndarray | None:
        plan = prepared.native
        if plan is None:
            return None
        values = np.empty(len(sets))
        for k, row in enumerate(sets):
            checkpoint(k, len(sets))
            values[k] = observable.expectation(plan.run(row, self.dtype, checkpoint=checkpoint))
        return values


@dataclass
class Compiled:
    """Gates made ready to run (NumpyBackend.compile_gates): plans, and fused operations with
    the number of gates done after each, in order; `total` gates in all."""

    total: int
    parts: list[Plan | Iterable[tuple[Any, int]]]


Runner = Callable[[Sequence[Callable[[], object]]], None]
_NO_VALUES = np.zeros(0)
"""The values of a plan without slots."""


def _joins(gate: Gate) -> bool:
    """Whether the gate acts on several qubits."""
    return len(gate.qubits) > 1 or bool(gate.extra_controls)


def apply_operation(state: NumpyState, op: Operation, run: Runner, threads: int = 1,
                    small: int = SMALL_AMPLITUDES) -> None:
    """Apply one operation with the cheapest kernel its matrix allows (on states of up to
    `small` amplitudes: the general one)."""
    matrix = op.matrix.astype(state.data.dtype, copy=False)
    if state.data.size <= small:
        apply_matrix(state.tensor, matrix, op.targets, op.controls)
        return
    nonzero = matrix != 0
    if not (nonzero & ~np.eye(len(matrix), dtype=bool)).any():
        apply_diagonal(state.tensor, np.diagonal(matrix), op.targets, op.controls)
    elif (nonzero.sum(axis=0) == 1).all() and (nonzero.sum(axis=1) == 1).all():
        apply_permutation(state.tensor, matrix, op.targets, op.controls)
    elif not op.controls and max(op.targets) - min(op.targets) == len(op.targets) - 1:
        apply_adjacent(state, matrix, op.targets, run, threads)
    else:
        apply_matrix(state.tensor, matrix, op.targets, op.controls)


def _slice(tensor: np.ndarray, targets: Sequence[int], value: int,
           controls: Sequence[int]) -> np.ndarray:
    """The view where the targets read `value` (first target most significant) and every
    control is 1; length-1 slices keep it a view even when every axis is fixed."""
    index = [slice(None)] * tensor.ndim
    for c in controls:
        index[c] = slice(1, 2)
    k = len(targets)
    for i, t in enumerate(targets):
        bit = (value >> (k - 1 - i)) & 1
        index[t] = slice(bit, bit + 1)
    return tensor[tuple(index)]


def apply_diagonal(tensor: np.ndarray, diagonal: np.ndarray, targets: Sequence[int],
                   controls: Sequence[int]) -> None:
    """Multiply, in place, only the amplitudes whose factor is not 1."""
    for value, factor in enumerate(diagonal):
        if factor != 1:
            view = _slice(tensor, targets, value, controls)
            np.multiply(view, factor, out=view)


def apply_fused_diagonal(state: NumpyState, op: Diagonal, run: Runner, threads: int = 1) -> None:
    """One in-place sweep multiplying every amplitude by its factor. Neighbouring axes that are
    all in, or all out of, the diagonal's qubits are merged, so NumPy broadcasts over few axes."""
    inside = [q in op.qubits for q in range(state.nqubits)]
    shape: list[int] = []
    factor_shape: list[int] = []
    for q, is_in in enumerate(inside):
        if q and is_in == inside[q - 1]:
            shape[-1] *= 2
            factor_shape[-1] *= 2 if is_in else 1
        else:
            shape.append(2)
            factor_shape.append(2 if is_in else 1)
    tensor = state.data.reshape(shape)
    factors = op.factors.astype(state.data.dtype).reshape(factor_shape)
    pieces = threads if state.data.size >= PARALLEL_MIN_AMPLITUDES else 1
    bounds = np.linspace(0, shape[0], min(pieces, shape[0]) + 1).astype(int)
    tasks = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        f = factors if factor_shape[0] == 1 else factors[a:b]
        tasks.append(partial(np.multiply, tensor[a:b], f, out=tensor[a:b]))
    run(tasks)


def apply_permutation(tensor: np.ndarray, matrix: np.ndarray, targets: Sequence[int],
                      controls: Sequence[int]) -> None:
    """A matrix with one non-zero per row and column: move (and scale) slices."""
    moves = [(int(np.flatnonzero(matrix[:, col])[0]), col) for col in range(len(matrix))]
    sources = {col: _slice(tensor, targets, col, controls).copy()
               for row, col in moves if row != col}
    for row, col in moves:
        factor = matrix[row, col]
        out = _slice(tensor, targets, row, controls)
        source = sources.get(col, out)
        if factor == 1:
            if source is not out:
                np.copyto(out, source)
        else:
            np.multiply(source, factor, out=out)


def apply_adjacent(state: NumpyState, matrix: np.ndarray, targets: Sequence[int], run: Runner,
                   threads: int = 1) -> None:
    """A dense matrix on neighbouring qubits: one matmul over the state seen as
    (left, 2^k, right), written to the scratch array, in `threads` slabs of `left` or `right`."""
    k = len(targets)
    order = np.argsort(targets)
    if (order != np.arange(k)).any():
        axes = [*order, *(order + k)]
        matrix = matrix.reshape((2,) * 2 * k).transpose(axes).reshape(2**k, 2**k)
    left = 2 ** min(targets)
    right = 2 ** (state.nqubits - min(targets) - k)
    source = state.data.reshape(left, 2**k, right)
    out = state.swap_scratch().reshape(left, 2**k, right)
    pieces = threads if state.data.size >= PARALLEL_MIN_AMPLITUDES else 1
    if right == 1:
        # The lowest qubits: one (left x 2^k) @ (2^k x 2^k) product, split by rows.
        rows = np.array_split(np.arange(left), pieces)
        src2, out2, m_t = source.reshape(left, 2**k), out.reshape(left, 2**k), matrix.T
        run([partial(np.matmul, src2[r[0]:r[-1] + 1], m_t, out=out2[r[0]:r[-1] + 1])
             for r in rows if len(r)])
    elif right < 2**k:
        # Few amplitudes to the right (an unfused gate near the end): many tiny products.
        np.matmul(source.transpose(0, 2, 1), matrix.T, out=out.transpose(0, 2, 1))
    else:
        axis = 0 if left >= pieces else 2
        bounds = np.linspace(0, source.shape[axis], pieces + 1).astype(int)
        index = [slice(None)] * 3
        tasks = []
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            index[axis] = slice(a, b)
            piece = tuple(index)
            tasks.append(partial(np.matmul, matrix, source[piece], out=out[piece]))
        run(tasks)


def apply_matrix(tensor: np.ndarray, matrix: np.ndarray, targets: Sequence[int],
                 controls: Sequence[int]) -> None:
    """Any matrix on any targets: a tensordot on the view where the controls are 1."""
    index: list[int | slice] = [slice(None)] * tensor.ndim
    for c in controls:
        index[c] = 1
    view = tensor[tuple(index)]  # basic indexing: a view, so the update lands in the state
    axes = [t - sum(c < t for c in controls) for t in targets]
    k = len(targets)
    product = np.tensordot(matrix.reshape((2,) * (2 * k)), view, axes=(range(k, 2 * k), axes))
    view[...] = np.moveaxis(product, range(k), axes)
