"""Qibo interop: `qibo.set_backend("qibo_core", platform="qulacs")` runs qibo circuits on a
spawned qibo-core backend and returns qibo's own result objects.

qibo imports the module named like the backend and calls its `MetaBackend.load(**kwargs)`;
`qibo_core.MetaBackend` is this module's, loaded on first use, so qibo is imported only by
people who use qibo. qibo stays an optional extra (`pip install qibo-core[qibo]`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qibo import __version__ as qibo_version
from qibo import gates as qibo_gates
from qibo.backends import NumpyBackend
from qibo.config import raise_error
from qibo.result import CircuitResult, QuantumState

from ..circuit import GATES, Channel, Circuit, Gate
from ..circuit.gates import Unitary
from ..client import execute, list_backends
from ..client.discovery import backend_command
from ..errors import CircuitError
from ..version import __version__


class QiboCoreBackend(NumpyBackend):  # type: ignore[misc]
    """qibo's NumPy backend for everything but running circuits, which a qibo-core backend
    does: `platform` names it (a shared spawned process, as `execute(backend=name)` uses)."""

    def __init__(self, platform: str = "numpy") -> None:
        backend_command(platform)  # BackendNotFound now, listing the installed ones
        super().__init__()
        self.name = "qibo_core"
        self.platform = platform
        self.versions = {"qibo": qibo_version, "qibo-core": __version__}

    def execute_circuit(self, circuit: Any, initial_state: Any = None,
                        nshots: int = 1000) -> Any:
        collapsing = [g for g in circuit.queue if isinstance(g, qibo_gates.M) and g.collapse]
        if collapsing:
            raise_error(NotImplementedError, "qibo's collapsing measurements (whose outcomes may "
                        "parametrize later gates) are not translated: M(collapse=True) on "
                        f"qubits {list(collapsing[0].qubits)} is not supported yet")
        if not circuit.density_matrix and any(isinstance(g, qibo_gates.Channel)
                                              for g in circuit.queue):
            raise_error(NotImplementedError, "noise on a state vector (qibo's repeated "
                        "trajectories) is not translated yet: use density_matrix=True")
        if isinstance(initial_state, type(circuit)):
            raise_error(NotImplementedError, "a circuit as an initial state is not supported")
        ours = Circuit(circuit.nqubits, density_matrix=circuit.density_matrix)
        ours.add(self._channel(gate) if isinstance(gate, qibo_gates.Channel) else from_qibo(gate)
                 for gate in circuit.queue if not isinstance(gate, qibo_gates.M))
        initial = None if initial_state is None else np.asarray(initial_state, dtype=complex)
        state = np.array(execute(ours, self.platform, initial_state=initial).state())
        if circuit.measurements:
            return CircuitResult(state, circuit.measurements, backend=self, nshots=nshots)
        return QuantumState(state, backend=self)


    def _channel(self, channel: Any) -> Channel:
        """Our channel for a qibo channel: its Kraus operators, as qibo builds them (each of
        its gates weighted by its coefficient, the identity taking what is left)."""
        qubits = tuple(channel.target_qubits)
        kraus = []
        for gate, coefficient in zip(channel.gates, channel.coefficients, strict=True):
            if tuple(gate.target_qubits) != qubits:
                raise_error(NotImplementedError, f"{type(channel).__name__}: a Kraus operator on "
                            "part of the channel's qubits is not translated")
            kraus.append(np.sqrt(coefficient) * np.asarray(gate.matrix(self), dtype=complex))
        rest = np.eye(2 ** len(qubits)) - sum(k.conj().T @ k for k in kraus)
        if np.abs(rest).max() > 1e-12:
            kraus.append(np.sqrt(max(0.0, float(rest[0, 0].real))) * np.eye(2 ** len(qubits)))
        return Channel(qubits, kraus, name=type(channel).__name__)


_QIBO_DAGGERS = {"CSXDG": "CSX"}
"""qibo gates that are another gate's dagger, where we write `.dagger()` instead."""


def from_qibo(gate: Any) -> Gate:
    """Our gate for a qibo gate (same names, qubits and parameters)."""
    name = type(gate).__name__
    if name in _QIBO_DAGGERS:
        base = GATES[_QIBO_DAGGERS[name]](*gate.init_args).dagger()
        return base.controlled_by(*gate.control_qubits) if gate.is_controlled_by else base
    cls = GATES.get(name)
    if cls is None:
        raise CircuitError(f"qibo's {name} gate has no qibo-core equivalent")
    if cls is Unitary:
        ours: Gate = Unitary(np.asarray(gate.init_args[0]), *gate.init_args[1:])
    else:
        ours = cls(*gate.init_args, *(gate.init_kwargs[p] for p in cls.param_names))
    if gate.is_controlled_by:
        ours = ours.controlled_by(*gate.control_qubits)
    return ours


class MetaBackend:
    """What qibo looks for in a backend provider module."""

    @staticmethod
    def load(platform: str = "numpy") -> QiboCoreBackend:
        return QiboCoreBackend(platform)

    def list_available(self) -> dict[str, bool]:
        return {backend.name: True for backend in list_backends()}
