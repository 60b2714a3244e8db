"""The operations of new circuits made of others (Circuit builds them): the inverse of one, and
one composed onto another.

Gates are values (every method of a Gate returns a new one), so the new circuits share them;
their Parameters stay, so an inverted or composed circuit binds the same names.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence

from ..errors import CircuitError
from .channels import Channel
from .gate import Gate, M
from .operation import CircuitParts, Operation

DEFAULT_REGISTER = re.compile(r"register\d+")
"""The names Circuit gives measurements added without one: renamed when two circuits meet."""


def inverse_gates(circuit: CircuitParts) -> list[Gate]:
    """Its gates daggered in reverse order (its closing measurements follow them, as in qibo's
    `invert`); an operation without an inverse raises, named."""
    for index, op in enumerate(circuit.gates):
        if not isinstance(op, Gate):
            raise CircuitError(f"invert: gate {index}, {op!r}, has no inverse "
                               f"({_kind(op)})")
    return [op.dagger() for op in reversed(circuit.gates)]  # type: ignore[union-attr]


def placed(first: CircuitParts, second: CircuitParts,
           qubits: Sequence[int] | None = None) -> list[Operation]:
    """`second`'s operations to add after `first`'s, with its qubit k on `qubits[k]` (default:
    on the first qubits); registers of default names that both use are renamed, with the
    conditions that read them."""
    if second.density_matrix != first.density_matrix:
        raise CircuitError("compose: one circuit simulates a density matrix and the other a "
                           "state vector; build both with the same density_matrix")
    onto = _placement(first.nqubits, second.nqubits, qubits)
    names = _register_names(first, second)
    return [_renamed(_moved(op, onto), names) for op in second.operations]


def _kind(op: Operation) -> str:
    if isinstance(op, Channel):
        return "a noise channel"
    if isinstance(op, M):
        return "a collapsing measurement"
    return "a reset"


def _placement(nqubits: int, count: int, qubits: Sequence[int] | None) -> list[int]:
    """Where each of `count` qubits goes in a circuit of `nqubits`, checked."""
    if qubits is None:
        if count > nqubits:
            raise CircuitError(f"compose: a {count}-qubit circuit does not fit on "
                               f"{nqubits} qubits")
        return list(range(count))
    onto = list(qubits)
    if len(onto) != count:
        raise CircuitError(f"compose: qubits={onto} names {len(onto)} qubits for a circuit of "
                           f"{count}")
    if any(type(q) is not int or not 0 <= q < nqubits for q in onto):
        raise CircuitError(f"compose: qubits={onto} must be qubits of this {nqubits}-qubit "
                           "circuit")
    if len(set(onto)) != len(onto):
        raise CircuitError(f"compose: qubits={onto} repeats a qubit")
    return onto


def _register_names(first: CircuitParts, second: CircuitParts) -> dict[str, str]:
    """New names for `second`'s registers that `first` uses: a default name becomes the next
    default name free in both; a name someone chose raises."""
    taken = set(first.registers) | set(second.registers)
    names: dict[str, str] = {}
    count = len(first.measurements)
    for name in second.registers:
        if name not in first.registers:
            continue
        if not DEFAULT_REGISTER.fullmatch(name):
            raise CircuitError(f"compose: both circuits have a register {name!r}; give one "
                               "of them another name (M(..., register_name=...))")
        while f"register{count}" in taken:
            count += 1
        names[name] = f"register{count}"
        taken.add(names[name])
    return names


def _moved(op: Operation, onto: list[int]) -> Operation:
    """`op` on qubits `onto[q]` for each of its qubits q."""
    if onto == list(range(len(onto))):
        return op
    moved = copy.copy(op)
    moved.qubits = tuple(onto[q] for q in op.qubits)
    if isinstance(op, Gate) and isinstance(moved, Gate):
        moved.extra_controls = tuple(onto[q] for q in op.extra_controls)
    return moved


def _renamed(op: Operation, names: dict[str, str]) -> Operation:
    """`op` reading or writing registers under their new `names`."""
    if isinstance(op, M) and op.register_name in names:
        return M(*op.qubits, register_name=names[op.register_name], collapse=op.collapse)
    if isinstance(op, Gate) and op.condition is not None and op.condition[0] in names:
        return op.c_if(names[op.condition[0]], op.condition[1])
    return op
