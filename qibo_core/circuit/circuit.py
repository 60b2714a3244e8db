"""Circuit: a number of qubits, an ordered list of gates (with any collapsing measurements and
resets among them), and the measurements that close it."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Protocol, TypeVar, cast

import msgspec
import numpy as np

from ..errors import CircuitError, UsageError
from ..protocol.arrays import encoder
from ..protocol.messages import CircuitData, GateData, power_of_two
from . import metrics
from .channels import Channel
from .decode import gate_label, measurement_from_data, operation_from_data
from .gate import MAX_QUBIT_INDEX, Gate, M, Reset, shown
from .operation import Operation
from .parameter import Parameter, parameter_sets
from .transforms import inverse_gates, placed

T = TypeVar("T")


class Runner(Protocol):
    """What runs circuits: the client. The model is below it and never imports it: the
    `qibo_core` package installs it (Circuit.runner), loading it on first use."""

    def execute(self, circuit: Circuit, backend: Any, **options: Any) -> Any: ...

    def expectation(self, circuit: Circuit, backend: Any, observable: Any,
                    **options: Any) -> Any: ...


class Circuit:
    """Gates on `nqubits` qubits, checked as they are added."""

    runner: ClassVar[Runner | None] = None
    """What `execute` and `expectation` hand the circuit to (installed by `qibo_core`)."""

    def __init__(self, nqubits: int, *, density_matrix: bool = False) -> None:
        if isinstance(nqubits, bool) or not isinstance(nqubits, (int, np.integer)) \
                or nqubits <= 0:
            got = shown(nqubits) if isinstance(nqubits, (int, np.integer)) else repr(nqubits)
            raise CircuitError(f"a circuit needs a positive number of qubits, got {got}")
        if nqubits > MAX_QUBIT_INDEX + 1:
            raise CircuitError(f"a circuit of {shown(nqubits)} qubits: at most "
                               f"{power_of_two(MAX_QUBIT_INDEX + 1)}")
        self.nqubits = int(nqubits)
        self.density_matrix = bool(density_matrix)
        """Simulate a density matrix (channels act on it exactly), not a state vector (channels
        are sampled shot by shot)."""
        self.gates: list[Operation] = []
        """In order: gates, and the measurements with `collapse=True` and resets among them."""
        self.measurements: list[M] = []
        """Every measurement, in the order added: the bit order of outcomes."""
        self._measured: set[int] = set()
        self._frozen: Circuit | None = None
        self._facts: dict[str, Any] = {}
        """What was derived from a frozen circuit (frozen() keeps it), by name."""

    def add(self, gate: Operation | Iterable[Operation]) -> None:
        """Append a gate, measurement or reset, or each of an iterable of them."""
        if isinstance(gate, (Gate, M, Reset, Channel)):
            self._add_one(gate)
        else:
            for g in gate:
                self.add(g)

    def _add_one(self, op: Operation) -> None:
        qubits = op.all_qubits if isinstance(op, Gate) else op.qubits
        if qubits and max(qubits) >= self.nqubits:
            outside = next(q for q in qubits if q >= self.nqubits)
            raise CircuitError(f"{op!r} acts on qubit {outside}, outside this "
                               f"{self.nqubits}-qubit circuit")
        if not self._measured.isdisjoint(qubits):
            measured = min(self._measured.intersection(qubits))
            raise CircuitError(f"{op!r} acts on qubit {measured}, which is already measured;"
                               " measurements without collapse=True close the circuit")
        if isinstance(op, M):
            if op.collapse and self.density_matrix:
                raise CircuitError(f"{op!r}: a collapsing measurement is defined shot by shot; "
                                   "a density-matrix circuit has no shots to collapse")
            self._add_measurement(op)
            return
        if isinstance(op, Reset) and self.density_matrix:
            raise CircuitError(f"{op!r} on a density-matrix circuit: use a ResetChannel")
        if isinstance(op, Gate) and op.condition is not None:
            self._check_condition(op)
        self.gates.append(op)

    def _add_measurement(self, m: M) -> None:
        if m.register_name is None:
            m = M(*m.qubits, register_name=f"register{len(self.measurements)}",
                  collapse=m.collapse)
        if m.register_name in self.registers:
            raise CircuitError(f"register {m.register_name!r} is already used")
        if m.collapse:
            if self._measured:
                raise CircuitError(f"{m!r} comes after a measurement that closes the circuit: "
                                   "add the closing measurements last")
            self.gates.append(m)
        else:
            self._measured.update(m.qubits)
        self.measurements.append(m)

    def _check_condition(self, gate: Gate) -> None:
        assert gate.condition is not None
        register, value = gate.condition
        qubits = {m.register_name: m.qubits for m in self.measurements if m.collapse}
        if register not in qubits:
            raise CircuitError(f"{gate!r}: no register {register!r} was measured with "
                               "collapse=True before it")
        if value >= 2 ** len(qubits[register]):
            raise CircuitError(f"{gate!r}: register {register!r} of {len(qubits[register])} "
                               f"qubits never reads {value}")

    @property
    def registers(self) -> dict[str, tuple[int, ...]]:
        """Each measurement register's qubits, in the order they were added."""
        return {m.register_name: m.qubits for m in self.measurements}  # type: ignore[misc]

    @property
    def measured_qubits(self) -> tuple[int, ...]:
        """Every measured qubit, in measurement order: the bit order of `frequencies` keys."""
        return tuple(q for m in self.measurements for q in m.qubits)

    @property
    def is_stochastic(self) -> bool:
        """True when shots may differ before the end: collapsing measurements, resets, or
        channels on a state vector."""
        return self._fact("is_stochastic", lambda c: not c.density_matrix and any(
            not isinstance(op, Gate) for op in c.gates))

    @property
    def has_channels(self) -> bool:
        return self._fact("has_channels", lambda c: any(isinstance(op, Channel)
                                                        for op in c.gates))

    @property
    def has_mid_circuit_measurements(self) -> bool:
        """Measurements with collapse=True, resets, or gates conditioned on a measurement."""
        return self._fact("has_mid_circuit_measurements", lambda c: any(
            isinstance(op, (M, Reset)) or (isinstance(op, Gate) and op.condition is not None)
            for op in c.gates))

    @property
    def operations(self) -> list[Operation]:
        """Every operation in order: the gates, then the measurements that close the circuit
        (what qibo calls the queue)."""
        return [*self.gates, *(m for m in self.measurements if not m.collapse)]

    @property
    def ngates(self) -> int:
        """How many operations, measurements and channels included (as qibo counts)."""
        return len(self.operations)

    @property
    def depth(self) -> int:
        """Layers of operations, each placed in the earliest layer free on its qubits (its
        controls included), as qibo counts them, and after the measurement a condition reads;
        0 for an empty circuit."""
        return metrics.depth(self)

    @property
    def gate_types(self) -> Counter[str]:
        """How many operations of each name (`H`, `CNOT`, `M`, `Reset`, a channel's name; `SDG`
        for `S(q).dagger()`, as qibo)."""
        return metrics.gate_types(self)

    def count_ops(self) -> dict[str, int]:
        """`gate_types`, the most common first (Qiskit's name)."""
        return dict(self.gate_types.most_common())

    @property
    def parameters(self) -> list[Parameter]:
        """The Parameters its gates take, in first-use order: the order of a set of values."""
        return list(self._fact("parameters", _parameters))

    def bind(self, values: Any) -> Circuit:
        """This circuit with its Parameters valued: one set, a sequence in `parameters` order
        or a dict by name."""
        parameters = self.parameters
        sets, single = parameter_sets(parameters, values)
        if not single:
            raise CircuitError("bind takes one set of values; run many sets with "
                               "Handle.expectation(..., parameters=sets)")
        return self.bound(dict(zip([p.name for p in parameters], sets[0].tolist(),
                                   strict=True)))

    def bound(self, values: dict[str, float]) -> Circuit:
        """This circuit with the Parameters named in `values` valued from it (a copy)."""
        other = self.copy()
        other.gates = [op.bound(values) if isinstance(op, Gate) and op.slots else op
                       for op in self.gates]
        return other

    def copy(self) -> Circuit:
        """A circuit to change (add to, edit its lists) without changing this one; the
        gates themselves are shared: a gate's methods return new gates."""
        other = copy.copy(self)
        other.gates = list(self.gates)
        other.measurements = list(self.measurements)
        other._measured = set(self._measured)
        other._facts = {}
        return other

    def frozen(self) -> Circuit:
        """This circuit as it is now, as a copy never changed: the same object until this
        circuit changes, so that what is derived from it (its parameters, its JSON, what a
        backend compiled for it) is computed once however often it runs. Operations are values
        (their methods return new ones), so checking costs one comparison of two lists of the
        same objects."""
        snap = self._frozen
        if snap is self:
            return snap
        if (snap is None or snap.gates != self.gates or snap.measurements != self.measurements
                or snap.nqubits != self.nqubits or snap.density_matrix != self.density_matrix):
            snap = self.copy()
            snap._frozen, snap._facts = snap, {}
            self._frozen = snap
        return snap

    def _fact(self, name: str, derive: Callable[[Circuit], T]) -> T:
        """`derive(circuit)`, computed once while the circuit does not change."""
        snap = self.frozen()
        try:
            return cast(T, snap._facts[name])
        except KeyError:
            value = snap._facts[name] = derive(snap)
            return value

    def encoded(self) -> msgspec.Raw:
        """This circuit's JSON (what the encoder writes for it), encoded once while it does not
        change."""
        return self._fact("encoded", lambda c: msgspec.Raw(encoder.encode(c.to_data())))

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (by Dask, say) without what was derived from it."""
        return {**self.__dict__, "_frozen": None, "_facts": {}}

    def invert(self) -> Circuit:
        """The inverse: the gates daggered in reverse order, then the closing measurements
        (as qibo's `invert`). Collapsing measurements, resets and channels have no inverse:
        CircuitError names the first."""
        inverse = Circuit(self.nqubits, density_matrix=self.density_matrix)
        inverse.add(inverse_gates(self))
        inverse.add(self.measurements)
        return inverse

    inverse = invert
    """Qiskit's name for `invert`."""

    def compose(self, other: Circuit, qubits: Sequence[int] | None = None) -> Circuit:
        """A new circuit: this one, then `other` with its qubit k on `qubits[k]` (default: on
        the first qubits). A default register name (`register<k>`) both use is renamed in the
        new circuit; a name given by hand that both use raises."""
        return self._composed(other, qubits)

    def __add__(self, other: Circuit) -> Circuit:
        """This circuit, then `other`, on as many qubits (qibo's `c1 + c2`)."""
        if not isinstance(other, Circuit):
            return NotImplemented
        if other.nqubits != self.nqubits:
            raise CircuitError(f"{self.nqubits}-qubit circuit + {other.nqubits}-qubit circuit: "
                               "add circuits of as many qubits, or place the smaller with "
                               "compose(other, qubits=...)")
        return self._composed(other)

    def _composed(self, other: Circuit, qubits: Sequence[int] | None = None) -> Circuit:
        result = self.copy()
        for index, op in enumerate(placed(self, other, qubits)):
            try:
                result.add(op)
            except CircuitError as exc:
                raise CircuitError(f"compose: operation {index} of the second circuit: "
                                   f"{exc}") from None
        return result

    def unitary(self, backend: Any = None) -> np.ndarray:
        """The 2^n x 2^n matrix of its gates (qubit 0 the most significant bit), computed by
        the backend (as `execute` names it) in one run of 2n qubits (at most 12: CircuitError
        says what more would take). A circuit with measurements, resets, channels or unvalued
        Parameters has none."""
        from . import unitary  # loaded when used, as qasm
        doubled = Circuit(2 * self.nqubits)
        doubled.add(unitary.entangling(self))
        doubled.add(self.gates)
        result = _runner().execute(doubled, backend)
        return unitary.from_amplitudes(result.state(), self.nqubits)

    def draw(self, line_wrap: int = 100, legend: bool = False, parallel: bool = False) -> str:
        """A text diagram in qibo's layout: a wire per qubit, a column per operation (each
        multi-qubit one alone in its column, unless `parallel`), cut every `line_wrap`
        characters (0: never); `legend` explains the symbols of channels, collapsing
        measurements and resets."""
        from .draw import diagram
        return diagram(self, line_wrap, legend, parallel)

    def summary(self) -> str:
        """Depth, operations, qubits and counts by name (as qibo's summary), then the
        parameters, measurements and channels."""
        return metrics.summary(self)

    def to_data(self) -> CircuitData:
        return CircuitData(nqubits=self.nqubits, density_matrix=self.density_matrix,
                           gates=[_op_data(op) for op in self.gates],
                           measurements=[m.to_data() for m in self.measurements
                                         if not m.collapse])

    @classmethod
    def from_data(cls, data: CircuitData) -> Circuit:
        """The circuit a wire message describes; CircuitError names the first invalid gate."""
        circuit = cls(data.nqubits, density_matrix=data.density_matrix)
        for index, gate in enumerate(data.gates):
            try:
                circuit._add_one(operation_from_data(gate))
            except CircuitError as exc:
                raise CircuitError(f"{gate_label(index, gate.name)}: {exc}") from None
        for m in data.measurements:
            circuit._add_one(measurement_from_data(m))
        return circuit

    @classmethod
    def from_qasm(cls, text: str, source: str | None = None) -> Circuit:
        """The circuit an OpenQASM 2.0 program describes (errors name the line, and the
        `source`, a file name, when given)."""
        from .qasm import from_qasm  # loaded when used: a backend starts 4 ms faster
        return from_qasm(text, source, cls)

    def to_qasm(self) -> str:
        """This circuit as an OpenQASM 2.0 program."""
        from .qasm import to_qasm
        return to_qasm(self)

    def execute(self, backend: Any = None, **options: Any) -> Any:
        """Run on a backend: a name (a shared spawned process, restarted if it crashed; default
        "numpy"), a Backend object, or a Handle, with Handle.execute's options; a Result."""
        return _runner().execute(self, backend, **options)

    def expectation(self, observable: Any, backend: Any = None, **options: Any) -> Any:
        """The expectation value of `observable` ("Z0 Z1 + 0.5 X2", or an Observable) on the
        final state, computed by the backend (as `execute` names it); Handle.expectation's
        options (`parameters`)."""
        return _runner().expectation(self, backend, observable, **options)

    def __len__(self) -> int:
        return len(self.gates)

    def key(self) -> tuple[Any, ...]:
        """Everything that defines this circuit (gates with their values or Parameters, the
        measurements), as a hashable value: equal for circuits that run the same, whatever
        objects they are made of. What a backend keeps for a circuit is cached by it."""
        return (self.nqubits, self.density_matrix, tuple(op.key() for op in self.gates),
                tuple(m.key() for m in self.measurements))

    def __eq__(self, other: object) -> bool:
        """The same qubits, kind of simulation, gates (Parameters included) and
        measurements."""
        return isinstance(other, Circuit) and self.key() == other.key()

    def __repr__(self) -> str:
        density = ", density_matrix=True" if self.density_matrix else ""
        return (f"Circuit({self.nqubits}{density}) with {len(self.gates)} gates, "
                f"{len(self.measurements)} measurements")

    def __str__(self) -> str:
        """The one-line repr, then the diagram: what `print(circuit)` shows."""
        return f"{self!r}\n{self.draw()}"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """What IPython and Jupyter show: the diagram, under the counts."""
        printer.text(repr(self) if cycle else str(self))


def _parameters(circuit: Circuit) -> tuple[Parameter, ...]:
    seen: dict[Parameter, None] = {}
    for op in circuit.gates:
        if isinstance(op, Gate) and op.slots:
            seen.update(dict.fromkeys(op.slots.values()))
    return tuple(seen)


def _op_data(op: Operation) -> GateData:
    return op.to_data() if isinstance(op, Gate) else op.to_gate_data()


def _runner() -> Runner:
    if Circuit.runner is None:
        raise UsageError("no client runs circuits in this process: import qibo_core (which "
                         "installs it) rather than qibo_core.circuit alone")
    return Circuit.runner
