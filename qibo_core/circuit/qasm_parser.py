"""Reading OpenQASM 2.0 (what is read, and how errors name the line: qasm.py): the program's
tokens, then a recursive descent over them that builds the circuit as it goes."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from ..errors import CircuitError
from . import gates
from .gate import M
from .operation import Operation
from .qasm_expressions import Expression, Token


class QasmCircuit(Protocol):
    """What reading and writing need of a circuit (Circuit itself: these modules stay below
    it)."""

    nqubits: int
    gates: list[Operation]
    measurements: list[M]

    @property
    def registers(self) -> dict[str, tuple[int, ...]]: ...

    def add(self, gate: Operation) -> None: ...


C = TypeVar("C", bound=QasmCircuit)

# qelib1.inc names -> our gate classes. `p`/`cp` and `u` are the newer spellings of u1/cu1/u3.
QELIB_GATES: dict[str, type[gates.Gate]] = {
    "id": gates.I, "x": gates.X, "y": gates.Y, "z": gates.Z, "h": gates.H, "s": gates.S,
    "sdg": gates.SDG, "t": gates.T, "tdg": gates.TDG, "sx": gates.SX, "sxdg": gates.SXDG,
    "rx": gates.RX, "ry": gates.RY, "rz": gates.RZ, "u1": gates.U1, "p": gates.U1,
    "u2": gates.U2, "u3": gates.U3, "u": gates.U3, "cx": gates.CNOT, "CX": gates.CNOT,
    "cy": gates.CY, "cz": gates.CZ, "ch": gates.CH, "csx": gates.CSX, "swap": gates.SWAP,
    "crx": gates.CRX, "cry": gates.CRY, "crz": gates.CRZ, "cu1": gates.CU1, "cp": gates.CU1,
    "cu3": gates.CU3, "ccx": gates.TOFFOLI, "rxx": gates.RXX, "rzz": gates.RZZ,
}

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r]+) | (?P<newline>\n) | (?P<comment>//[^\n]*)
  | (?P<real>(\d+\.\d*|\.\d+)([eE][-+]?\d+)? | \d+[eE][-+]?\d+) | (?P<int>\d+)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*) | (?P<string>"[^"\n]*")
  | (?P<symbol>->|==|[;,()\[\]{}+\-*/^])
""", re.VERBOSE)


@dataclass
class _Measure:
    """A measure statement, until it is known to close the circuit or stand midway."""

    creg: str
    bits: list[int]
    qubits: list[int]


@dataclass
class _Definition:
    params: list[str]
    qubits: list[str]
    body: list[tuple[str, list[list[Token]], list[str]]] = field(default_factory=list)
    """Each call: gate name, parameter expressions (as tokens), argument names."""


def _place(source: str | None, line: int) -> str:
    """Where an error is: `ghz.qasm:6` for a named source, `line 6` otherwise."""
    return f"{source}:{line}" if source else f"line {line}"


def _tokens(text: str, source: str | None) -> list[Token]:
    tokens, line, position = [], 1, 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise CircuitError(f"{_place(source, line)}: unexpected character "
                               f"{text[position]!r}")
        kind = match.lastgroup or ""
        if kind == "newline":
            line += 1
        elif kind not in ("space", "comment"):
            tokens.append(Token(kind, match.group(), line))
        position = match.end()
    tokens.append(Token("end", "", line))
    return tokens


class _Parser:
    """Recursive descent over the token list; builds the circuit as it goes."""

    def __init__(self, text: str, source: str | None) -> None:
        self.source = source
        self.tokens = _tokens(text, source)
        self.at = 0
        self.qregs: dict[str, tuple[int, int]] = {}  # name -> (first qubit, size)
        self.cregs: dict[str, int] = {}
        self.measured: dict[str, dict[int, int]] = {}  # creg -> bit -> qubit
        self.definitions: dict[str, _Definition] = {}
        self.calls: list[tuple[gates.Gate | gates.Reset | _Measure, int]] = []
        self.condition: tuple[str, int] | None = None
        """The condition of the `if` whose gate is being read."""

    # ---- tokens ------------------------------------------------------------------------

    @property
    def token(self) -> Token:
        return self.tokens[self.at]

    def error(self, message: str, line: int | None = None) -> CircuitError:
        return CircuitError(f"{_place(self.source, line or self.token.line)}: {message}")

    def take(self, text: str | None = None, kind: str | None = None) -> Token:
        token = self.token
        if (text is not None and token.text != text) or (kind is not None and token.kind != kind):
            wanted = repr(text) if text is not None else f"a {kind}"
            raise self.error(f"expected {wanted}, found {self.found()}")
        self.at += 1
        return token

    def found(self) -> str:
        """The current token, as an error message names it."""
        return repr(self.token.text) if self.token.kind != "end" else "the end of the program"

    def peek(self, text: str) -> bool:
        return self.token.text == text

    # ---- program -----------------------------------------------------------------------

    def parse(self, circuit_type: Callable[[int], C]) -> C:
        self.take("OPENQASM")
        version = self.take().text
        if version != "2.0":
            raise self.error(f"only OpenQASM 2.0 is supported, not {version}")
        self.take(";")
        while self.token.kind != "end":
            self.statement()
        return self.build(circuit_type)

    def statement(self) -> None:
        token = self.token
        handlers = {"include": self.include, "qreg": self.register, "creg": self.register,
                    "gate": self.definition, "measure": self.measure, "barrier": self.barrier,
                    "reset": self.reset, "if": self.conditional}
        if token.text in handlers:
            handlers[token.text]()
        elif token.text == "opaque":
            raise self.error(f"'{token.text}' is not supported")
        elif token.kind == "id":
            self.call()
        else:
            raise self.error(f"unexpected {token.text!r}")

    def include(self) -> None:
        self.take("include")
        name = self.take(kind="string").text.strip('"')
        if name != "qelib1.inc":
            raise self.error(f"only qelib1.inc can be included, not {name!r}")
        self.take(";")

    def register(self) -> None:
        kind = self.take().text
        name = self.take(kind="id").text
        self.take("[")
        size = int(self.take(kind="int").text)
        self.take("]")
        self.take(";")
        if name in self.qregs or name in self.cregs:
            raise self.error(f"register {name!r} is declared twice")
        if kind == "qreg":
            self.qregs[name] = (sum(s for _, s in self.qregs.values()), size)
        else:
            self.cregs[name] = size

    def definition(self) -> None:
        self.take("gate")
        name = self.take(kind="id").text
        params = self.names("(", ")") if self.peek("(") else []
        qubits = self.names(None, "{")
        definition = _Definition(params, qubits)
        while not self.peek("}"):
            if self.peek("barrier"):
                self.barrier()
                continue
            callee = self.take(kind="id").text
            exprs = self.expression_tokens() if self.peek("(") else []
            definition.body.append((callee, exprs, self.names(None, ";")))
        self.take("}")
        self.definitions[name] = definition

    def names(self, opening: str | None, closing: str) -> list[str]:
        if opening:
            self.take(opening)
        names = []
        while not self.peek(closing):
            names.append(self.take(kind="id").text)
            if not self.peek(closing):
                self.take(",")
        self.take(closing)
        return names

    def expression_tokens(self) -> list[list[Token]]:
        """The tokens of each parenthesised, comma-separated expression, unevaluated."""
        self.take("(")
        exprs: list[list[Token]] = [[]]
        depth = 0
        while depth or not self.peek(")"):
            token = self.take()
            if token.kind == "end":
                raise self.error("unclosed '('")
            if token.text == "," and not depth:
                exprs.append([])
                continue
            depth += {"(": 1, ")": -1}.get(token.text, 0)
            exprs[-1].append(token)
        self.take(")")
        return [e for e in exprs if e]

    def barrier(self) -> None:
        while not self.peek(";"):
            self.take()
        self.take(";")

    def measure(self) -> None:
        line = self.take("measure").line
        qubits = self.argument()
        self.take("->")
        creg = self.take(kind="id").text
        if creg not in self.cregs:
            raise self.error(f"unknown creg {creg!r}", line)
        bits = list(range(self.cregs[creg]))
        if self.peek("["):
            self.take("[")
            bits = [self.index(self.cregs[creg], creg)]
            self.take("]")
        self.take(";")
        if len(bits) != len(qubits):
            raise self.error(f"measure of {len(qubits)} qubits into {len(bits)} bits", line)
        for bit, qubit in zip(bits, qubits, strict=True):
            self.measured.setdefault(creg, {})[bit] = qubit
        self.calls.append((_Measure(creg, bits, qubits), line))

    def reset(self) -> None:
        line = self.take("reset").line
        qubits = self.argument()
        self.take(";")
        self.calls.append((gates.Reset(*qubits), line))

    def conditional(self) -> None:
        """`if (c == v) gate ...;`: the gate applies in the shots whose creg c reads v."""
        line = self.take("if").line
        self.take("(")
        creg = self.take(kind="id").text
        if creg not in self.cregs:
            raise self.error(f"unknown creg {creg!r}", line)
        self.take("==")
        value = int(self.take(kind="int").text)
        self.take(")")
        if self.peek("measure") or self.peek("reset"):
            raise self.error("only a gate can be conditioned, not a measure or reset", line)
        width = self.cregs[creg]
        if value >= 2**width:
            raise self.error(f"creg {creg}[{width}] never reads {value}", line)
        # QASM reads c[0] as the least significant bit; a register's first qubit is its most.
        self.condition = (creg, int(format(value, f"0{width}b")[::-1], 2))
        try:
            self.call()
        finally:
            self.condition = None

    # ---- gate calls --------------------------------------------------------------------

    def call(self) -> None:
        name_token = self.take(kind="id")
        exprs = self.expression_tokens() if self.peek("(") else []
        args = [self.argument()]
        while self.peek(","):
            self.take(",")
            args.append(self.argument())
        if not self.peek(";"):
            raise self.error(f"expected ',' or ';' after {name_token.text}'s arguments, found "
                             f"{self.found()}")
        self.take(";")
        values = [Expression(e, {}, self.error).value() for e in exprs]
        sizes = {len(a) for a in args if len(a) > 1}
        if len(sizes) > 1:
            raise self.error("registers of different sizes in one gate", name_token.line)
        width = sizes.pop() if sizes else 1
        for i in range(width):
            qubits = [a[i] if len(a) > 1 else a[0] for a in args]
            self.expand(name_token.text, values, qubits, name_token.line)

    def argument(self) -> list[int]:
        name = self.take(kind="id").text
        if name not in self.qregs:
            raise self.error(f"unknown qreg {name!r}")
        first, size = self.qregs[name]
        if not self.peek("["):
            return list(range(first, first + size))
        self.take("[")
        index = self.index(size, name)
        self.take("]")
        return [first + index]

    def index(self, size: int, name: str) -> int:
        index = int(self.take(kind="int").text)
        if index >= size:
            raise self.error(f"index {index} out of range for {name}[{size}]")
        return index

    def expand(self, name: str, values: list[float], qubits: list[int], line: int) -> None:
        """Append the gate `name`, or the body of its definition, with these values."""
        if name in self.definitions:
            definition = self.definitions[name]
            if len(values) != len(definition.params) or len(qubits) != len(definition.qubits):
                raise self.error(f"gate {name!r} takes {len(definition.params)} parameters and "
                                 f"{len(definition.qubits)} qubits", line)
            env = dict(zip(definition.params, values, strict=True))
            where = dict(zip(definition.qubits, qubits, strict=True))
            for callee, exprs, args in definition.body:
                inner = [Expression(e, env, self.error).value() for e in exprs]
                try:
                    inner_qubits = [where[a] for a in args]
                except KeyError as exc:
                    raise self.error(f"gate {name!r} uses an undeclared qubit {exc}",
                                     line) from None
                self.expand(callee, inner, inner_qubits, line)
            return
        cls = QELIB_GATES.get(name)
        if cls is None:
            raise self.error(f"unknown gate {name!r}", line)
        try:
            gate = cls(*qubits, *values)
        except CircuitError as exc:
            raise self.error(f"{name}: {exc}", line) from None
        if self.condition is not None:
            gate = gate.c_if(*self.condition)
        self.calls.append((gate, line))

    def build(self, circuit_type: Callable[[int], C]) -> C:
        nqubits = sum(size for _, size in self.qregs.values())
        if not nqubits:
            raise self.error("the program declares no qreg")
        circuit = circuit_type(nqubits)
        midway = self._midway()
        for index, (call, line) in enumerate(self.calls):
            try:
                if isinstance(call, _Measure):
                    if index in midway:
                        circuit.add(self._collapse(call, line))
                else:
                    circuit.add(call)
            except CircuitError as exc:
                raise self.error(str(exc), line) from None
        collapsed = {self.calls[i][0].creg for i in midway}  # type: ignore[union-attr]
        for creg in self.cregs:
            bits = self.measured.get(creg)
            if bits and creg not in collapsed:
                circuit.add(gates.M(*(bits[b] for b in sorted(bits)), register_name=creg))
        return circuit

    def _midway(self) -> set[int]:
        """The measure statements with more to come on their qubits, or read by an `if`: they
        collapse the state where they stand."""
        conditioned = {c.condition[0] for c, _ in self.calls
                       if isinstance(c, gates.Gate) and c.condition is not None}
        midway: set[int] = set()
        later: set[int] = set()
        for index in range(len(self.calls) - 1, -1, -1):
            call = self.calls[index][0]
            if isinstance(call, _Measure):
                if later.intersection(call.qubits) or call.creg in conditioned:
                    midway.add(index)
            else:
                later.update(call.all_qubits if isinstance(call, gates.Gate) else call.qubits)
        return midway

    def _collapse(self, call: _Measure, line: int) -> gates.M:
        if call.bits != list(range(self.cregs[call.creg])):
            raise self.error(f"a measure with more to come on its qubits fills a whole creg "
                             f"at once (measure q -> {call.creg};), not bits {call.bits}", line)
        if sum(isinstance(c, _Measure) and c.creg == call.creg for c, _ in self.calls) > 1:
            raise self.error(f"creg {call.creg!r} is measured more than once", line)
        return gates.M(*call.qubits, register_name=call.creg, collapse=True)


def from_qasm(text: str, source: str | None, circuit_type: Callable[[int], C]) -> C:
    """The circuit (of `circuit_type`) an OpenQASM 2.0 program describes; CircuitError names
    the line at fault (`line 6: ...`, or `ghz.qasm:6: ...` given the `source` of the text)."""
    return _Parser(text, source).parse(circuit_type)
