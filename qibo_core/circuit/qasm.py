"""OpenQASM 2.0: read a program into a Circuit, write a Circuit as a program.

A small parser of our own (no maintained package reads OpenQASM 2.0 without pulling in a whole
SDK). It takes the qelib1.inc gate set, user `gate` definitions (expanded where used), register
broadcasting (`h q;`), parameter expressions (pi, + - * / ^, sin cos tan exp ln sqrt),
`measure` into `creg`s (each creg becomes a measurement register) and `barrier` (ignored).
Gates map to qibo's gates of the same name, as qibo's own QASM support does: where qelib1.inc
differs from qibo by a global phase (u1, u2, u3, rz), qibo's definition is used.
Errors name the line: `line 7: unknown gate 'foo'`. The reader is qasm_parser.py.
"""

from __future__ import annotations

from ..errors import CircuitError
from . import gates
from .channels import Channel
from .gate import M, Reset
from .qasm_parser import QELIB_GATES, QasmCircuit, from_qasm

__all__ = ["QASM_NAMES", "from_qasm", "to_qasm"]

QASM_NAMES: dict[str, str] = {}
"""Our gate names that OpenQASM 2.0 can express, with their qelib1.inc names."""
for _qasm, _cls in QELIB_GATES.items():
    QASM_NAMES.setdefault(_cls.name, _qasm)
# The inverse of these has a name of its own, so `dagger()` can be written.
_INVERSES = {"S": "sdg", "SDG": "s", "T": "tdg", "TDG": "t", "SX": "sxdg", "SXDG": "sx"}


def to_qasm(circuit: QasmCircuit) -> str:
    """The circuit as an OpenQASM 2.0 program; CircuitError for gates QASM cannot express."""
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{circuit.nqubits}];"]
    lines += [f"creg {name}[{len(qubits)}];" for name, qubits in circuit.registers.items()]
    for op in circuit.gates:
        if isinstance(op, M):
            lines += _measure_lines(op)
        elif isinstance(op, Reset):
            lines += [f"reset q[{q}];" for q in op.qubits]
        elif isinstance(op, Channel):
            raise CircuitError(f"{op!r}: OpenQASM 2.0 has no noise channels")
        else:
            lines.append(_gate_line(op, circuit.registers))
    for m in circuit.measurements:
        if not m.collapse:
            lines += _measure_lines(m)
    return "\n".join(lines) + "\n"


def _measure_lines(m: M) -> list[str]:
    return [f"measure q[{q}] -> {m.register_name}[{bit}];" for bit, q in enumerate(m.qubits)]


def _gate_line(gate: gates.Gate, registers: dict[str, tuple[int, ...]]) -> str:
    name = QASM_NAMES.get(gate.name)
    if gate.is_dagger:
        name = _INVERSES.get(gate.name)
    if name is None or gate.extra_controls:
        raise CircuitError(f"{gate!r} has no OpenQASM 2.0 equivalent in qelib1.inc")
    params = f"({', '.join(repr(v) for v in gate.params.values())})" if gate.params else ""
    line = f"{name}{params} {', '.join(f'q[{q}]' for q in gate.qubits)};"
    if gate.condition is None:
        return line
    register, value = gate.condition
    width = len(registers[register])  # QASM reads c[0] as the least significant bit
    return f"if({register}=={int(format(value, f'0{width}b')[::-1], 2)}) {line}"
