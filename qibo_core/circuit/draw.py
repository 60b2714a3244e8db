"""A circuit as a text diagram in qibo's layout: a wire per qubit, a column per operation.

Gates qibo also has are drawn with qibo's symbols (a control is `o`, a wire a gate spans is
`|`), so that a qibo user reads the same picture. What qibo lacks is drawn so that it cannot be
taken for a gate: a collapsing measurement `MC`, a reset `RST`, a conditioned gate `X[m=1]`, a
daggered gate without a name of its own `RX†` (with one, that name: `SDG`).
"""

from __future__ import annotations

from ..errors import UsageError
from .channels import Channel
from .gate import Gate, M, Reset
from .gates import DAGGER_NAMES
from .operation import CircuitParts, Operation, condition_qubits

GATE_SYMBOLS = {
    "CNOT": "X", "CY": "Y", "CZ": "Z", "CH": "H", "TOFFOLI": "X", "CCZ": "Z", "CRX": "RX",
    "CRY": "RY", "CRZ": "RZ", "CU1": "U1", "CU2": "U2", "CU3": "U3", "SWAP": "x", "iSWAP": "i",
    "FSWAP": "fx", "fSim": "f", "Unitary": "U", "PRX": "prx",
}
"""qibo's symbol on the targets, where it is not the gate's name."""

CHANNEL_SYMBOLS = {
    "KrausChannel": "K", "PauliNoiseChannel": "PN", "DepolarizingChannel": "D",
    "AmplitudeDampingChannel": "AD", "PhaseDampingChannel": "PD",
    "ThermalRelaxationChannel": "TR", "ResetChannel": "R",
}
COLLAPSE_SYMBOL = "MC"
RESET_SYMBOL = "RST"


def symbol(op: Operation) -> str:
    """What stands on the targets of `op`."""
    if isinstance(op, Gate):
        if op.is_dagger:
            text = DAGGER_NAMES.get(op.name) or GATE_SYMBOLS.get(op.name, op.name) + "†"
        else:
            text = GATE_SYMBOLS.get(op.name, op.name)
        if op.condition is not None:
            text += f"[{op.condition[0]}={op.condition[1]}]"
        return text
    if isinstance(op, Channel):
        return CHANNEL_SYMBOLS.get(op.name, "K")
    if isinstance(op, M):
        return COLLAPSE_SYMBOL if op.collapse else "M"
    return RESET_SYMBOL


def legend_entry(op: Operation) -> tuple[str, str] | None:
    """(name, symbol) of what the legend explains: channels, collapses and resets."""
    if isinstance(op, Channel):
        return op.name, symbol(op)
    if isinstance(op, M) and op.collapse:
        return "M(collapse=True)", COLLAPSE_SYMBOL
    if isinstance(op, Reset):
        return "Reset", RESET_SYMBOL
    return None


def diagram(circuit: CircuitParts, line_wrap: int = 100, legend: bool = False,
            parallel: bool = False) -> str:
    """The diagram of `circuit`'s operations (see Circuit.draw)."""
    if isinstance(line_wrap, bool) or not isinstance(line_wrap, int) or line_wrap < 0:
        raise UsageError(f"draw: line_wrap is a number of characters (0: never wrap), got "
                         f"{line_wrap!r}")
    n = circuit.nqubits
    columns = _columns(circuit, parallel)
    rows = ["─" + "".join(cells[q] for cells in columns) for q in range(n)]
    names = [str(q).ljust(len(str(n - 1))) for q in range(n)]
    lines = _wrapped(names, rows, line_wrap)
    if legend:
        entries = sorted({e for op in circuit.operations if (e := legend_entry(op))})
        lines += ["", " Legend for channels, collapsing measurements and resets: ",
                  *_table(["Gate", "Symbol"], entries)]
    return "\n".join(lines)


def _columns(circuit: CircuitParts, parallel: bool) -> list[list[str]]:
    """Each column's cell on every wire, padded with `─` to the widest symbol plus one: an
    operation goes in the first column free on the wires it spans (on every wire, when it spans
    more than one and not `parallel`), after the measurement its condition reads."""
    n, registers = circuit.nqubits, circuit.registers
    columns: list[list[str]] = []
    free = [0] * n
    for op in circuit.operations:
        controls = op.controls if isinstance(op, Gate) else ()
        targets = op.targets if isinstance(op, Gate) else op.qubits
        low, high = min((*controls, *targets)), max((*controls, *targets))
        blocked = range(low, high + 1) if parallel or low == high else range(n)
        column = max(free[q] for q in (*blocked, *condition_qubits(op, registers)))
        while len(columns) <= column:
            columns.append([""] * n)
        text = symbol(op)
        for q in range(low, high + 1):
            columns[column][q] = text if q in targets else "o" if q in controls else "|"
        for q in blocked:
            free[q] = column + 1
    for cells in columns:
        width = max(map(len, cells)) + 1
        cells[:] = [cell + "─" * (width - len(cell)) for cell in cells]
    return columns


def _wrapped(names: list[str], rows: list[str], line_wrap: int) -> list[str]:
    """The wires as lines, cut into blocks of `line_wrap` characters (none: one block), each
    cut marked `...` as qibo marks it."""
    if not line_wrap or len(rows[0]) <= line_wrap:
        return [f"{name}: {row}" for name, row in zip(names, rows, strict=True)]
    lines: list[str] = []
    starts = range(0, len(rows[0]), line_wrap)
    for start in starts:
        if start:
            lines.append("")
        for name, row in zip(names, rows, strict=True):
            before = "    " if start == 0 else "... "
            after = "" if start == starts[-1] else " ..."
            lines.append(f"{name}: {before}{row[start:start + line_wrap]}{after}")
    return lines


def _table(headers: list[str], entries: list[tuple[str, str]]) -> list[str]:
    """An org-mode table, as qibo prints its legend."""
    widths = [max([len(h) + 2, *(len(e[k]) for e in entries)]) for k, h in enumerate(headers)]
    rule = "|" + "+".join("-" * (w + 2) for w in widths) + "|"
    return [_row(headers, widths), rule, *(_row(list(e), widths) for e in entries)]


def _row(cells: list[str], widths: list[int]) -> str:
    return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"
