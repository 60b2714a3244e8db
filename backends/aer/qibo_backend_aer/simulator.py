"""AerBackend: gates run by Qiskit Aer's statevector method, natively where Qiskit has the gate
with qibo's meaning, as unitaries otherwise.

Qiskit numbers qubits from the least significant bit; qubit q here is Qiskit qubit n-1-q, which
makes Aer's state vector index equal ours. A held state lives in this process as an array;
applying gates to it is one Aer run that starts from it (`set_statevector`) and saves the result.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from qibo_core.circuit import Gate
from qibo_core.protocol import InitializeOptions, Precision
from qibo_core.server import Backend, Checkpoint, no_checkpoint

from . import __version__

# Qiskit gates with qibo's matrix, sign and global phase, taking (qubits..., *params) in our
# order (controls first, then targets: Qiskit's own order once each is mapped), among those Aer
# runs without transpiling.
_NATIVE: dict[str, str] = {
    "H": "h", "X": "x", "Y": "y", "Z": "z", "S": "s", "SDG": "sdg", "T": "t", "TDG": "tdg",
    "SX": "sx", "SXDG": "sxdg", "RX": "rx", "RY": "ry", "RZ": "rz", "U1": "p", "CNOT": "cx",
    "CY": "cy", "CZ": "cz", "SWAP": "swap", "TOFFOLI": "ccx", "CRX": "crx",
    "CRY": "cry", "CRZ": "crz", "CU1": "cp", "RXX": "rxx", "RYY": "ryy", "RZZ": "rzz",
}
CHUNK = 2000
"""Gates per Aer run: cancellation is checked between runs."""


class AerBackend(Backend):
    """States are NumPy arrays; every `apply` is an Aer run from the array."""

    name = "aer"
    version = __version__
    precisions = (Precision.COMPLEX128, Precision.COMPLEX64)
    native_gates = frozenset(_NATIVE) | {"I"}

    def __init__(self) -> None:
        super().__init__()
        if importlib.util.find_spec("qiskit_aer") is None:
            raise ImportError("the qiskit-aer package is not installed in this Python "
                              f"({sys.executable}): pip install qiskit-aer")
        self._simulator: Any = None

    def configure(self, options: InitializeOptions) -> None:
        super().configure(options)
        self._simulator = None

    @property
    def devices(self) -> tuple[str, ...]:  # type: ignore[override]
        """What Aer finds here: "CPU", and "GPU" where a CUDA device and Aer's GPU build are."""
        from qiskit_aer import AerSimulator
        return tuple(AerSimulator().available_devices())

    @property
    def simulator(self) -> Any:
        if self._simulator is None:
            from qiskit_aer import AerSimulator
            single = self.options.precision == Precision.COMPLEX64
            self._simulator = AerSimulator(method="statevector",
                                           precision="single" if single else "double",
                                           device=self.options.device or "CPU",
                                           max_parallel_threads=self.options.threads or 0)
        return self._simulator

    @property
    def threads(self) -> int:
        import os
        return self.options.threads or os.cpu_count() or 1

    def zero_state(self, nqubits: int) -> _Zero:
        return _Zero(nqubits)

    def from_array(self, amplitudes: np.ndarray) -> np.ndarray:
        return amplitudes

    def apply(self, state: np.ndarray | _Zero, gates: Sequence[Gate],
              checkpoint: Checkpoint = no_checkpoint) -> np.ndarray | _Zero:
        simulator = self.simulator  # imports qiskit_aer, which adds set/save_statevector
        from qiskit import QuantumCircuit

        n = state.nqubits if isinstance(state, _Zero) else state.size.bit_length() - 1
        for start in range(0, len(gates), CHUNK):
            checkpoint(start, len(gates))
            circuit = QuantumCircuit(n)
            norm = 1.0
            if not isinstance(state, _Zero):  # Aer starts from |0...0> by itself
                # Aer takes only unit vectors; the session also applies Kraus operators and
                # projections, and holds density matrices as vectors: every operator is
                # linear, so the norm is taken out here and put back after.
                norm = float(np.linalg.norm(state))
                if norm == 0:
                    return state
                circuit.set_statevector(state / norm)
            for gate in gates[start:start + CHUNK]:
                if gate.name != "I" or gate.controls:
                    self._add(circuit, gate, n)
            circuit.save_statevector()
            result = simulator.run(circuit, shots=1).result()
            state = np.asarray(result.get_statevector(), dtype=self.dtype)
            if norm != 1.0:
                state *= norm
        return state

    def _add(self, circuit: Any, gate: Gate, n: int) -> None:
        if gate.name in _NATIVE and not gate.extra_controls and not gate.is_dagger:
            getattr(circuit, _NATIVE[gate.name])(*gate.params.values(),
                                                 *(n - 1 - q for q in gate.qubits))
            return
        from qiskit.circuit.library import UnitaryGate

        # The matrix on controls and targets (the controls most significant, the identity
        # unless all are 1: Aer runs no controlled unitary), and UnitaryGate takes its first
        # qubit as the least significant: the qubits go reversed.
        matrix = gate.matrix()
        qubits = [*gate.controls, *gate.targets]
        if gate.controls:
            full = np.eye(2 ** len(qubits), dtype=complex)
            full[-len(matrix):, -len(matrix):] = matrix
            matrix = full
        # An array of its own: given a C-ordered view of a transposed array (as Unitary's matrix
        # may be), Aer read the memory under it and applied the transpose.
        own = np.array(matrix, dtype=complex, order="C", copy=True)
        circuit.append(UnitaryGate(own, check_input=False),
                       [n - 1 - q for q in reversed(qubits)])

    def to_array(self, state: np.ndarray | _Zero) -> np.ndarray:
        if isinstance(state, _Zero):
            zero = np.zeros(2**state.nqubits, dtype=self.dtype)
            zero[0] = 1
            return zero
        return state


class _Zero:
    """|0...0> of `nqubits`, not made into an array until it is read: Aer starts from it."""

    def __init__(self, nqubits: int) -> None:
        self.nqubits = nqubits
