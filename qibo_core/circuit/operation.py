"""What a circuit's list of gates may hold, and what a circuit is made of for the modules that
read circuits without building them (draw.py, transforms.py, unitary.py)."""

from __future__ import annotations

from typing import Protocol

from .channels import Channel
from .gate import Gate, M, Reset
from .parameter import Parameter

Operation = Gate | M | Reset | Channel
"""Gates, and measurements with collapse=True, resets and noise channels where they stand."""


class CircuitParts(Protocol):
    """What a circuit is made of (circuit.Circuit is one)."""

    nqubits: int
    density_matrix: bool
    gates: list[Operation]
    measurements: list[M]

    @property
    def operations(self) -> list[Operation]: ...

    @property
    def registers(self) -> dict[str, tuple[int, ...]]: ...

    @property
    def parameters(self) -> list[Parameter]: ...


def condition_qubits(op: Operation, registers: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    """The qubits of the register a conditioned gate reads: it comes after their
    measurement."""
    if isinstance(op, Gate) and op.condition is not None:
        return registers.get(op.condition[0], ())
    return ()
