"""Circuit: a number of qubits, an ordered list of gates, and the measurements that close it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from ..errors import CircuitError
from ..protocol.messages import CircuitData, MeasurementData
from .decode import from_data, gate_label
from .gate import Gate, M


class Circuit:
    """Gates on `nqubits` qubits, checked as they are added."""

    runner: ClassVar[Callable[..., Any] | None] = None
    """What `execute` calls: set by the `qibo_core` package, which holds the client; the model
    itself never imports the runtime."""

    def __init__(self, nqubits: int) -> None:
        if isinstance(nqubits, bool) or not isinstance(nqubits, int) or nqubits <= 0:
            raise CircuitError(f"a circuit needs a positive number of qubits, got {nqubits!r}")
        self.nqubits = nqubits
        self.gates: list[Gate] = []
        self.measurements: list[M] = []
        self._measured: set[int] = set()

    def add(self, gate: Gate | M | Iterable[Gate | M]) -> None:
        """Append a gate or measurement, or each of an iterable of them."""
        if isinstance(gate, (Gate, M)):
            self._add_one(gate)
        else:
            for g in gate:
                self.add(g)

    def _add_one(self, gate: Gate | M) -> None:
        qubits = gate.all_qubits if isinstance(gate, Gate) else gate.qubits
        outside = [q for q in qubits if q >= self.nqubits]
        if outside:
            raise CircuitError(f"{gate!r} acts on qubit {outside[0]}, outside this "
                               f"{self.nqubits}-qubit circuit")
        measured = sorted(self._measured.intersection(qubits))
        if measured:
            raise CircuitError(f"{gate!r} acts on qubit {measured[0]}, which is already measured;"
                               " measurements must close the circuit")
        if isinstance(gate, M):
            self._add_measurement(gate)
        else:
            self.gates.append(gate)

    def _add_measurement(self, m: M) -> None:
        if m.register_name is None:
            m = M(*m.qubits, register_name=f"register{len(self.measurements)}")
        if m.register_name in self.registers:
            raise CircuitError(f"register {m.register_name!r} is already used")
        self.measurements.append(m)
        self._measured.update(m.qubits)

    @property
    def registers(self) -> dict[str, tuple[int, ...]]:
        """Each measurement register's qubits, in the order they were added."""
        return {m.register_name: m.qubits for m in self.measurements}  # type: ignore[misc]

    @property
    def measured_qubits(self) -> tuple[int, ...]:
        """Every measured qubit, in measurement order: the bit order of `frequencies` keys."""
        return tuple(q for m in self.measurements for q in m.qubits)

    def to_data(self) -> CircuitData:
        return CircuitData(nqubits=self.nqubits, gates=[g.to_data() for g in self.gates],
                           measurements=[m.to_data() for m in self.measurements])

    @classmethod
    def from_data(cls, data: CircuitData) -> Circuit:
        """The circuit a wire message describes; CircuitError names the first invalid gate."""
        circuit = cls(data.nqubits)
        for index, gate in enumerate(data.gates):
            try:
                circuit.add(from_data(gate))
            except CircuitError as exc:
                raise CircuitError(f"{gate_label(index, gate.name)}: {exc}") from None
        for m in data.measurements:
            circuit.add(_measurement_from_data(m))
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

    def execute(self, backend: Any = "numpy", *, nshots: int = 0, seed: int | None = None,
                timeout: float | None = None) -> Any:
        """Run on a backend: a name (a shared spawned process, restarted if it crashed), a
        Backend object, or a Handle; a qibo_core.Result."""
        assert Circuit.runner is not None, "set by qibo_core/__init__.py"
        return Circuit.runner(self, backend, nshots=nshots, seed=seed, timeout=timeout)

    def __len__(self) -> int:
        return len(self.gates)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Circuit) and self.to_data() == other.to_data()

    def __repr__(self) -> str:
        return (f"Circuit({self.nqubits}) with {len(self.gates)} gates, "
                f"{len(self.measurements)} measurements")


def _measurement_from_data(data: MeasurementData) -> M:
    try:
        return M(*data.qubits, register_name=data.register)
    except CircuitError as exc:
        raise CircuitError(f"measurement {data.qubits}: {exc}") from None
