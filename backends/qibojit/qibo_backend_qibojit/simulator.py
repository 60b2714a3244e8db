"""QibojitBackend: gates applied by qibojit's numba kernels, one qibo gate at a time.

qibojit is qibo's own fast backend, so its conventions are ours (qubit 0 the most significant
bit, qibo's gate definitions): each gate becomes the qibo gate of the same name (a unitary for
the few qibo lacks, and for the simulation's own matrices), with its dagger and extra controls.
numba compiles its kernels on first use in a process: the first circuit pays for that, once.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from qibo_core.circuit import GATES, Gate
from qibo_core.errors import InvalidParams
from qibo_core.protocol import InitializeOptions, Precision
from qibo_core.server import Backend, Checkpoint, no_checkpoint
from qibo_core.server.backend import Work

from . import __version__


class QibojitBackend(Backend):
    """States are NumPy arrays that qibojit's kernels update."""

    name = "qibojit"
    version = __version__
    precisions = (Precision.COMPLEX128, Precision.COMPLEX64)
    native_gates = frozenset(GATES) - {"Unitary"}
    """qibo has a gate of every name we have (importing qibo to ask takes 4 s: not at start)."""
    baseline_bytes = 2**28
    """Measured: 185 MiB once qibo is imported and every gate's kernel compiled by numba."""

    def __init__(self) -> None:
        super().__init__()
        if importlib.util.find_spec("qibojit") is None:
            raise ImportError("the qibojit package is not installed in this Python "
                              f"({sys.executable}): pip install qibojit")
        self._engine: Any = None

    def configure(self, options: InitializeOptions) -> None:
        if options.threads is not None and options.threads > _max_threads():
            raise InvalidParams(f"threads {options.threads}: numba runs at most "
                                f"{_max_threads()} here (NUMBA_NUM_THREADS in the backend's "
                                "environment, or the CPUs it may use)")
        super().configure(options)
        self._engine = None

    @property
    def engine(self) -> Any:
        """qibojit's NumbaBackend, in this session's precision and threads."""
        if self._engine is None:
            from qibojit.backends import NumbaBackend

            class Engine(NumbaBackend):  # type: ignore[misc]
                """qibojit's backend, which asks numba for every CPU when it is made: no more
                than numba may run (NUMBA_NUM_THREADS)."""

                def set_threads(self, nthreads: int) -> None:
                    super().set_threads(min(nthreads, _max_threads()))

            engine = Engine()
            engine.set_dtype(self.dtype.name)
            engine.set_threads(self.threads)
            self._engine = engine
        return self._engine

    @property
    def threads(self) -> int:
        return self.options.threads or _max_threads()

    working = {**Backend.working, Work.GATES: 0.0, Work.READ: 0.0, Work.LOAD: 0.0,
               Work.COPY: 0.0}
    """Measured (docs/decisions.md, "Memory"): qibojit's kernels work in place; the state is
    the array that `to_array`, `from_array` and `copy` hand over."""

    def zero_state(self, nqubits: int) -> np.ndarray:
        state = np.zeros(2**nqubits, dtype=self.dtype)
        state[0] = 1
        return state

    def from_array(self, amplitudes: np.ndarray) -> np.ndarray:
        return amplitudes

    def apply(self, state: np.ndarray, gates: Sequence[Gate],
              checkpoint: Checkpoint = no_checkpoint) -> np.ndarray:
        engine = self.engine
        n = state.size.bit_length() - 1
        for done, gate in enumerate(gates):
            if done % 64 == 0:
                checkpoint(done, len(gates))
            state = engine.apply_gate(_qibo_gate(gate), state, n)
        return np.asarray(state)

    def to_array(self, state: np.ndarray) -> np.ndarray:
        return state


def _max_threads() -> int:
    """The threads numba may run: NUMBA_NUM_THREADS when set, else the CPUs this process may
    use (numba's own default)."""
    cpus = len(os.sched_getaffinity(0))
    try:
        return max(1, int(os.environ.get("NUMBA_NUM_THREADS", cpus)))
    except ValueError:
        return cpus


def _qibo_gate(gate: Gate) -> Any:
    """The qibo gate for ours: same name, qubits and parameters; a unitary where qibo has no
    gate of that name, for the simulation's own matrices, for a dagger (qibojit applied iSWAP's
    wrongly) and for a controlled gate (CRX...) given extra controls (qibo refuses them)."""
    import qibo.gates

    ours = GATES.get(gate.name) is type(gate) and gate.name != "Unitary"
    cls = getattr(qibo.gates, gate.name, None) if ours else None
    if cls is None or gate.is_dagger or (gate.extra_controls and gate.ncontrols):
        qgate = qibo.gates.Unitary(np.array(gate.matrix(), dtype=complex), *gate.targets,
                                   check_unitary=False)
        return qgate.controlled_by(*gate.controls) if gate.controls else qgate
    qgate = cls(*gate.qubits, **gate.params)
    return qgate.controlled_by(*gate.extra_controls) if gate.extra_controls else qgate
