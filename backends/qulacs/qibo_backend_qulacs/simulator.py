"""QulacsBackend: gates run on Qulacs' QuantumState, natively where Qulacs has the gate.

Qulacs numbers qubits from the least significant bit; qubit q here is Qulacs qubit n-1-q, which
makes Qulacs' state vector index equal ours. Qulacs reads OMP_NUM_THREADS when it loads, so it is
imported in `configure`, after the `threads` option is known.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from qibo_core.circuit import Gate
from qibo_core.protocol import InitializeOptions, Precision
from qibo_core.server import Backend, Checkpoint, no_checkpoint
from qibo_core.server.backend import Work

from . import __version__

# Gates whose Qulacs constructor takes (qubits..., *params) with qibo's meaning and sign. Qulacs'
# RX/RY/RZ rotate the other way round; its RotX/RotY/RotZ match qibo. U2 and U3 differ from qibo
# by a global phase, which matters once they are controlled, so they go through DenseMatrix.
_NATIVE: dict[str, str] = {
    "H": "H", "X": "X", "Y": "Y", "Z": "Z", "S": "S", "SDG": "Sdag", "T": "T", "TDG": "Tdag",
    "SX": "sqrtX", "SXDG": "sqrtXdag", "RX": "RotX", "RY": "RotY", "RZ": "RotZ", "U1": "U1",
    "CNOT": "CNOT", "CZ": "CZ", "SWAP": "SWAP", "TOFFOLI": "TOFFOLI",
}


_PARAMETRIC: dict[str, str] = {"RX": "add_parametric_RX_gate", "RY": "add_parametric_RY_gate",
                               "RZ": "add_parametric_RZ_gate"}
"""Qulacs' parametric rotations, exp(+i a P / 2): our RX(theta) is its RX(-theta)."""


FREED_QUBITS = 14
FREED_KEPT = 4
"""Freed states of at most FREED_QUBITS are kept for reuse, FREED_KEPT of them (1 MiB)."""


class QulacsBackend(Backend):
    """States are qulacs.QuantumState objects."""

    name = "qulacs"
    version = __version__
    precisions = (Precision.COMPLEX128,)
    native_gates = frozenset(_NATIVE) | {"I"}
    baseline_bytes = 2**25  # measured: 21 MiB

    def __init__(self) -> None:
        super().__init__()
        if importlib.util.find_spec("qulacs") is None:
            raise ImportError("the qulacs package is not installed in this Python "
                              f"({sys.executable}): pip install qulacs")
        self._qulacs: ModuleType | None = None
        self._freed: list[Any] = []

    def configure(self, options: InitializeOptions) -> None:
        super().configure(options)
        if options.threads is not None:
            os.environ["OMP_NUM_THREADS"] = str(options.threads)

    @property
    def qulacs(self) -> ModuleType:
        if self._qulacs is None:
            import qulacs
            self._qulacs = qulacs
        return self._qulacs

    @property
    def threads(self) -> int:
        return int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)

    working = {**Backend.working, Work.GATES: 0.0, Work.READ: 1.0, Work.LOAD: 1.0,
               Work.COPY: 0.0, Work.EXPECTATIONS: 1.0}
    """Measured (docs/decisions.md, "Memory"): gates run in place; `get_vector` copies the
    state, `load` converts the array it is given, `copy` is Qulacs' own; `expectations` makes
    one state."""

    def zero_state(self, nqubits: int) -> Any:
        for k, state in enumerate(self._freed):
            if state.get_qubit_count() == nqubits:
                del self._freed[k]
                state.set_zero_state()
                return state
        return self.qulacs.QuantumState(nqubits)

    def free(self, state: Any) -> None:
        """Small states are kept for zero_state: making a QuantumState costs 30 us of CPU (it
        seeds a random engine), zeroing a small one 0.5 us."""
        if state.get_qubit_count() <= FREED_QUBITS and len(self._freed) < FREED_KEPT:
            self._freed.append(state)

    def copy(self, state: Any) -> Any:
        return state.copy()

    def from_array(self, amplitudes: np.ndarray) -> Any:
        state = self.qulacs.QuantumState(amplitudes.size.bit_length() - 1)
        state.load(amplitudes)  # qubit n-1-q is ours q: the index is the same
        return state

    def apply(self, state: Any, gates: Sequence[Gate],
              checkpoint: Checkpoint = no_checkpoint) -> Any:
        n = state.get_qubit_count()
        if len(gates) == 1:
            self._gate(gates[0], n).update_quantum_state(state)
            return state
        return self.run_compiled(state, self.compile_gates(gates, n), checkpoint)

    def compile_gates(self, gates: Sequence[Gate],
                      nqubits: int) -> tuple[int, list[tuple[int, Any]]]:
        """Qulacs circuits of a few milliseconds of work each, with the gates done before
        each, and the gates in all: Qulacs holds the GIL while it runs one, so cancellation
        and the parent watch get their turn between them."""
        size = _chunk(nqubits)
        circuits = []
        for start in range(0, len(gates), size):
            circuit = self.qulacs.QuantumCircuit(nqubits)
            for qgate in self._merged(gates[start:start + size], nqubits):
                circuit.add_gate(qgate)
            circuits.append((start, circuit))
        return len(gates), circuits

    def run_compiled(self, state: Any, program: tuple[int, list[tuple[int, Any]]],
            checkpoint: Checkpoint = no_checkpoint) -> Any:
        total, circuits = program
        for done, circuit in circuits:
            checkpoint(done, total)
            circuit.update_quantum_state(state)
        return state

    def _merged(self, gates: Sequence[Gate], n: int) -> list[Any]:
        """Qulacs gates for `gates`, each run of one-qubit gates on a qubit (nothing else acting
        on it in between) merged by qulacs.gate.merge: one pass over the state, not one a gate
        (layered, 20 qubits: 0.53 s -> 0.23 s). Qulacs' QuantumCircuitOptimizer.optimize(c, 1)
        merges the same, but costs 8 times a 10-qubit layered run."""
        merged: list[Any] = []
        pending: dict[int, Any] = {}
        for gate in gates:
            if gate.name == "I" and not gate.controls:
                continue
            qgate = self._gate(gate, n)
            qubits = (*gate.controls, *gate.targets)
            if len(qubits) == 1:
                q = qubits[0]
                pending[q] = self.qulacs.gate.merge(pending[q], qgate) if q in pending else qgate
                continue
            merged.extend(pending.pop(q) for q in qubits if q in pending)
            merged.append(qgate)
        return merged + list(pending.values())

    def _gate(self, gate: Gate, n: int) -> Any:
        qgate = self.qulacs.gate
        if gate.name in _NATIVE and not gate.extra_controls and not gate.is_dagger:
            make: Callable[..., Any] = getattr(qgate, _NATIVE[gate.name])
            return make(*(n - 1 - q for q in gate.qubits), *gate.params.values())
        # Qulacs' DenseMatrix takes its first target as the least significant bit: reverse.
        dense = qgate.DenseMatrix([n - 1 - q for q in reversed(gate.targets)], gate.matrix())
        for c in gate.controls:
            dense.add_control_qubit(n - 1 - c, 1)
        return dense

    def to_array(self, state: Any) -> np.ndarray:
        return state.get_vector()

    def prepare(self, prepared: Any, checkpoint: Checkpoint = no_checkpoint
                ) -> tuple[Any, list[tuple[int, int]], dict[Any, Any]] | None:
        """A state-vector circuit whose slots are all RX/RY/RZ angles becomes one Qulacs
        ParametricQuantumCircuit, made once; each set only sets its angles. (Other slots take
        the session's generic path.) Returns it with (its parameter, value index) pairs and a
        cache of Qulacs Observables by terms."""
        circuit = prepared.circuit
        if circuit.density_matrix:
            return None
        n = circuit.nqubits
        parametric = self.qulacs.ParametricQuantumCircuit(n)
        slots = []
        for g, gate in enumerate(circuit.gates):
            if g % 256 == 0:
                checkpoint()
            slotted = dict(prepared.slots.get(g, []))
            if not slotted:
                parametric.add_gate(self._gate(gate, n))
                continue
            if gate.name not in _PARAMETRIC or gate.extra_controls or gate.is_dagger:
                return None
            getattr(parametric, _PARAMETRIC[gate.name])(n - 1 - gate.qubits[0], 0.0)
            slots.append((parametric.get_parameter_count() - 1, slotted["theta"]))
        return parametric, slots, {}

    def run_prepared(self, prepared: Any, values: np.ndarray, start: Any,
                     checkpoint: Checkpoint) -> Any:
        if prepared.native is None:
            return None
        parametric, slots, _ = prepared.native
        for index, value in slots:
            parametric.set_parameter(index, -values[value])  # Qulacs' RX(a) is our RX(-a)
        count, size = parametric.get_gate_count(), _chunk(prepared.circuit.nqubits)
        for begin in range(0, count, size):
            checkpoint()
            parametric.update_quantum_state(start, begin, min(begin + size, count))
        return start

    def expectations(self, prepared: Any, sets: np.ndarray, observable: Any,
                     checkpoint: Checkpoint) -> np.ndarray | None:
        if prepared.native is None:
            return None
        parametric, slots, observables = prepared.native
        n = prepared.circuit.nqubits
        measured = observables.get(observable.terms)
        if measured is None:
            if len(observables) >= 64:
                observables.clear()
            measured = observables[observable.terms] = self.qulacs.Observable(n)
            for coefficient, pauli in observable.terms:
                text = " ".join(f"{letter} {n - 1 - q}" for letter, q in pauli)
                measured.add_operator(coefficient, text or f"I {n - 1}")
        state = self.qulacs.QuantumState(n)
        values = np.empty(len(sets))
        count, size = parametric.get_gate_count(), _chunk(n)
        for k, row in enumerate(sets):
            checkpoint(k, len(sets))
            for index, value in slots:
                parametric.set_parameter(index, -row[value])  # Qulacs' RX(a) is our RX(-a)
            state.set_zero_state()
            for start in range(0, count, size):
                if start:
                    checkpoint(k, len(sets))
                parametric.update_quantum_state(state, start, min(start + size, count))
            values[k] = measured.get_expectation_value(state).real
        return values


def _chunk(n: int) -> int:
    """Gates per Qulacs call on n qubits: a few milliseconds of work. Qulacs holds the GIL while
    it runs a circuit, so cancellation gets its turn only between calls."""
    return min(4096, max(16, 2 ** max(0, 24 - n)))
