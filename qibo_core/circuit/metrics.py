"""What is read off a circuit as qibo counts it: its depth, its operations by name, and the
summary that lists them (Circuit's `depth`, `gate_types` and `summary`)."""

from __future__ import annotations

from collections import Counter

from .channels import Channel
from .gate import Gate
from .gates import DAGGER_NAMES
from .operation import CircuitParts, Operation, condition_qubits


def depth(circuit: CircuitParts) -> int:
    """Layers of operations, each in the earliest layer free on its qubits (see
    Circuit.depth)."""
    layers = [0] * circuit.nqubits
    for op in circuit.operations:
        qubits = op.all_qubits if isinstance(op, Gate) else op.qubits
        layer = max(layers[q] for q in (*qubits, *condition_qubits(op, circuit.registers))) + 1
        for q in qubits:
            layers[q] = layer
    return max(layers)


def gate_types(circuit: CircuitParts) -> Counter[str]:
    """How many operations of each name."""
    return Counter(_name(op) for op in circuit.operations)


def _name(op: Operation) -> str:
    """The name an operation is counted under: as written in `gates.<name>`, and a daggered
    gate under the name qibo gives it (`SDG` for `S(q).dagger()`)."""
    if isinstance(op, Gate) and op.is_dagger:
        return DAGGER_NAMES.get(op.name, op.name)
    if isinstance(op, (Gate, Channel)):
        return op.name
    return type(op).__name__


def summary(circuit: CircuitParts) -> str:
    """Depth, operations, qubits and counts by name, then the parameters, measurements and
    channels (see Circuit.summary)."""
    parameters = ", ".join(p.name for p in circuit.parameters)
    registers = ", ".join(f"{name} {list(qubits)}" for name, qubits in circuit.registers.items())
    return "\n".join([
        f"Circuit depth = {depth(circuit)}",
        f"Total number of gates = {len(circuit.operations)}",
        f"Number of qubits = {circuit.nqubits}",
        "Most common gates:",
        *(f"{name}: {count}" for name, count in gate_types(circuit).most_common()),
        f"Parameters = {len(circuit.parameters)}" + (f": {parameters}" if parameters else ""),
        f"Measurements = {len(circuit.measurements)}" + (f": {registers}" if registers else ""),
        f"Channels = {sum(isinstance(op, Channel) for op in circuit.gates)}",
    ])
