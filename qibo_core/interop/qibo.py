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
from qibo.result import CircuitResult, MeasurementOutcomes, QuantumState

from ..circuit import GATES, Channel, Circuit, Gate, Parameter
from ..circuit.gates import ThermalRelaxationChannel, Unitary
from ..client import execute, list_backends
from ..client.api import DEFAULT_BACKEND
from ..client.discovery import backend_command
from ..errors import CircuitError, StateTooLarge
from ..version import __version__


class QiboCoreBackend(NumpyBackend):  # type: ignore[misc]
    """qibo's NumPy backend for everything but running gates, which a qibo-core backend does:
    `platform` names it (a shared spawned process, as `execute(backend=name)` uses).

    qibo's `execute_circuit` stays as it is (its checks, a circuit as an initial state); the
    two loops under it, once and per shot, are replaced. Runs of gates between the things that
    need the state in this process go to the backend as one circuit each: a circuit without
    callbacks, collapsing measurements or noise on a vector is one request. Callbacks and
    collapsing measurements act on the state read back, through qibo's own code; noise on a
    vector is drawn here, shot by shot, as qibo draws it, and the drawn gate runs on the
    backend. Seeded with `set_seed`, runs repeat exactly.
    """

    def __init__(self, platform: str = DEFAULT_BACKEND) -> None:
        backend_command(platform)  # BackendNotFound now, listing the installed ones
        super().__init__()
        self.name = "qibo_core"
        self.platform = platform
        self.versions = {"qibo": qibo_version, "qibo-core": __version__}
        self.oom_error = StateTooLarge  # qibo turns it into its RuntimeError
        self._templates: dict[int, _Template] = {}
        """Templates of the circuits run last, by id() of the qibo circuit (each keeps the
        circuit's gates, and is checked against its queue before use)."""

    def _execute_circuit(self, circuit: Any, initial_state: Any = None,
                         nshots: int = 1000) -> Any:
        state = self._run(circuit, initial_state)
        if circuit.measurements:
            result = CircuitResult(state, circuit.measurements, backend=self, nshots=nshots)
        else:
            result = QuantumState(state, backend=self)
        circuit._final_state = result
        return result

    def execute_circuit_repeated(self, circuit: Any, nshots: int,
                                 initial_state: Any = None) -> Any:
        """qibo's repeated execution (noise on a vector, collapsing measurements): the circuit
        runs once per shot; a density matrix's final state is the mean over shots."""
        density = circuit.density_matrix
        if circuit.has_collapse and not circuit.measurements and not density:
            raise_error(RuntimeError, "The circuit contains only collapsing measurements "
                        "(`collapse=True`) but `density_matrix=False`. Please set "
                        "`density_matrix=True` to retrieve the final state after execution.")
        states, shots = [], []
        for _ in range(nshots):
            state = self._run(circuit, initial_state)
            if density:
                states.append(state)
            if circuit.measurements:
                shots.append(CircuitResult(state, circuit.measurements, backend=self,
                                           nshots=1).samples()[0])
                for gate in circuit.measurements:
                    gate.result.reset()
        samples = self.aggregate_shots(shots) if shots else None
        if density:
            mean = np.mean(states, axis=0)
            if circuit.measurements:
                result = CircuitResult(mean, circuit.measurements, backend=self,
                                       samples=samples, nshots=nshots)
            else:
                result = QuantumState(mean, backend=self)
        else:
            result = MeasurementOutcomes(circuit.measurements, backend=self, samples=samples,
                                         nshots=nshots)
            result._repeated_execution_frequencies = self.calculate_frequencies(
                ["".join(str(int(bit)) for bit in shot) for shot in shots])
        circuit._final_state = result
        return result

    def _run(self, circuit: Any, state: Any) -> np.ndarray:
        """One pass over the queue, from `state` (None: |0...0>)."""
        nqubits, density = circuit.nqubits, circuit.density_matrix
        template = self._template(circuit)
        if template.circuit is not None:
            initial = None if state is None else np.asarray(state, dtype=complex)
            return np.array(execute(template.circuit, self.platform, parameters=template.values(),
                                    initial_state=initial).state())
        run: list[Gate | Channel] = []
        for gate in circuit.queue:
            if gate.symbolic_parameters:
                gate.substitute_symbols()
            if isinstance(gate, qibo_gates.M) and not gate.collapse:
                continue
            if isinstance(gate, qibo_gates.M | qibo_gates.CallbackGate):
                state = gate.apply(self, self._simulate(run, state, nqubits, density), nqubits)
                run = []
            elif isinstance(gate, qibo_gates.Channel) and not density:
                run.extend(self._drawn(gate))
            elif isinstance(gate, qibo_gates.Channel):
                run.append(self._channel(gate))
            else:
                run.append(from_qibo(gate, self))
        return self._simulate(run, state, nqubits, density)

    def _template(self, circuit: Any) -> _Template:
        """The circuit's template, made on first use and again when its queue changed."""
        template = self._templates.pop(id(circuit), None)
        if template is None or not template.made_from(circuit):
            template = _Template.of(circuit, self)
            if len(self._templates) >= TEMPLATES_KEPT:
                del self._templates[next(iter(self._templates))]
        self._templates[id(circuit)] = template
        return template

    def _simulate(self, run: list[Gate | Channel], state: Any, nqubits: int,
                  density: bool) -> np.ndarray:
        if not run and state is not None:
            return np.asarray(state)
        circuit = Circuit(nqubits, density_matrix=density)
        circuit.add(run)
        initial = None if state is None else np.asarray(state, dtype=complex)
        return np.array(execute(circuit, self.platform, initial_state=initial).state())

    def _drawn(self, channel: Any) -> list[Gate]:
        """The gate a noise channel applies to a vector in this shot, drawn as qibo draws it
        (unitary channels only, as in qibo)."""
        if not isinstance(channel, qibo_gates.UnitaryChannel):
            raise_error(NotImplementedError, f"{type(channel).__name__} on a state vector: "
                        "qibo samples only unitary channels there; use density_matrix=True")
        probabilities = (*channel.coefficients, 1 - sum(channel.coefficients))
        index = int(self.sample_shots(probabilities, 1)[0])
        return [] if index == len(channel.gates) else [from_qibo(channel.gates[index], self)]

    def _channel(self, channel: Any) -> Channel:
        """Our channel for a qibo channel: its Kraus operators on all its qubits, as qibo
        builds them (each of its gates weighted by its coefficient, the identity taking what is
        left); a thermal relaxation as ours (qibo's Kraus operators for t2 > t1 are not its
        channel)."""
        if isinstance(channel, qibo_gates.ThermalRelaxationChannel):
            qubit, t1, t2, time = channel.init_args
            return ThermalRelaxationChannel(
                qubit, [t1, t2, time, channel.init_kwargs["excited_population"]])
        qubits = tuple(channel.target_qubits)
        kraus = [np.sqrt(coefficient) * _embedded(
                     np.asarray(gate.matrix(self), dtype=complex), gate.target_qubits, qubits)
                 for gate, coefficient in zip(channel.gates, channel.coefficients, strict=True)]
        rest = np.eye(2 ** len(qubits)) - sum(k.conj().T @ k for k in kraus)
        if np.abs(rest).max() > 1e-12:
            kraus.append(np.sqrt(max(0.0, float(rest[0, 0].real))) * np.eye(2 ** len(qubits)))
        return Channel(qubits, kraus, name=type(channel).__name__)


TEMPLATES_KEPT = 64


class _Template:
    """A qibo circuit of gates alone as one of ours, made once, whose parametrized gates take
    Parameters valued from the qibo gates at each run: a variational loop (qibo's
    set_parameters changes the gates in place) then runs as one prepared circuit on the
    backend, and only the values travel. `circuit` is None for a circuit that needs its state
    here midway (measurements, callbacks, noise) or has gates of no fixed shape (matrices,
    symbols): it runs gate run by gate run."""

    def __init__(self, queue: list[Any], circuit: Circuit | None,
                 sources: list[tuple[Any, str]]) -> None:
        self.queue = queue
        self.ids = list(map(id, queue))
        self.circuit = circuit
        self.sources = sources
        """(qibo gate, parameter name) for each Parameter, in order."""

    @classmethod
    def of(cls, qibo_circuit: Any, backend: Any) -> _Template:
        queue = list(qibo_circuit.queue)
        ours = Circuit(qibo_circuit.nqubits, density_matrix=qibo_circuit.density_matrix)
        sources: list[tuple[Any, str]] = []
        for gate in queue:
            if isinstance(gate, qibo_gates.M) and not gate.collapse:
                continue
            kind = GATES.get(type(gate).__name__)
            if (isinstance(gate, qibo_gates.M | qibo_gates.CallbackGate | qibo_gates.Channel)
                    or kind is None or kind is Unitary or isinstance(gate, qibo_gates.FusedGate)
                    or gate.symbolic_parameters):
                return cls(queue, None, [])
            if not kind.param_names:
                ours.add(from_qibo(gate, backend))
                continue
            parameters = [Parameter(f"p{len(sources) + k}") for k in range(len(kind.param_names))]
            sources.extend((gate, name) for name in kind.param_names)
            made = kind(*gate.init_args, *parameters)
            ours.add(made.controlled_by(*gate.control_qubits) if gate.is_controlled_by else made)
        return cls(queue, ours, sources)

    def made_from(self, qibo_circuit: Any) -> bool:
        return list(map(id, qibo_circuit.queue)) == self.ids

    def values(self) -> list[float] | None:
        """The qibo gates' parameter values now, in Parameter order (None: there are none)."""
        if not self.sources:
            return None
        return [float(gate.init_kwargs[name]) for gate, name in self.sources]


def _embedded(matrix: np.ndarray, qubits: tuple[int, ...], onto: tuple[int, ...]) -> np.ndarray:
    """`matrix` on `qubits` as a matrix on `onto` (a superset; the first the most significant),
    the identity on the others."""
    n = len(onto)
    rest = [q for q in onto if q not in qubits]
    full = np.kron(matrix, np.eye(2 ** len(rest))).reshape((2,) * (2 * n))
    order = [*qubits, *rest]
    axes = [order.index(q) for q in onto]
    return full.transpose(axes + [n + a for a in axes]).reshape(2 ** n, 2 ** n)


_QIBO_DAGGERS = {"CSXDG": "CSX"}
"""qibo gates that are another gate's dagger, where we write `.dagger()` instead."""


def from_qibo(gate: Any, backend: Any = None) -> Gate:
    """Our gate for a qibo gate (same names, qubits and parameters; a fused gate as the
    unitary of its gates, which `backend` computes)."""
    name = type(gate).__name__
    if isinstance(gate, qibo_gates.FusedGate):
        return Unitary(np.asarray(gate.matrix(backend or NumpyBackend())), *gate.qubits)
    if name in _QIBO_DAGGERS:
        base = GATES[_QIBO_DAGGERS[name]](*gate.init_args).dagger()
        return base.controlled_by(*gate.control_qubits) if gate.is_controlled_by else base
    cls = GATES.get(name)
    if cls is None:
        raise CircuitError(f"qibo's {name} gate has no qibo-core equivalent")
    if cls is Unitary:
        ours: Gate = Unitary(np.asarray(gate.parameters[0]), *gate.init_args[1:])
    else:
        ours = cls(*gate.init_args, *(gate.init_kwargs[p] for p in cls.param_names))
    if gate.is_controlled_by:
        ours = ours.controlled_by(*gate.control_qubits)
    return ours


class MetaBackend:
    """What qibo looks for in a backend provider module."""

    @staticmethod
    def load(platform: str = DEFAULT_BACKEND) -> QiboCoreBackend:
        return QiboCoreBackend(platform)

    def list_available(self) -> dict[str, bool]:
        return {backend.name: True for backend in list_backends()}
