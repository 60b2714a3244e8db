"""Gate, the base of every gate: qubits, parameters, a matrix, `dagger` and `controlled_by`;
and M, the measurement. The gates themselves are defined in gates.py.

Conventions are qibo's: qubit 0 is the most significant bit. A gate is a matrix on its
`targets`, applied where every qubit in `controls` is |1>.
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Final

import numpy as np

from ..errors import CircuitError
from ..protocol.messages import ConditionData, GateData, MeasurementData
from .parameter import Parameter, check_value

GATES: dict[str, type[Gate]] = {}
"""Every gate class by its wire name."""

UNITARY_TOLERANCE = 1e-8

Entries = tuple[Any, ...]
"""A matrix's entries in row-major order: numbers, or arrays with one value per gate."""

MAX_QUBIT_INDEX: Final = 2**31 - 1
"""No qubit index is larger (nor any circuit wider): the largest simulators hold 50."""
NO_LIMIT: Final = MAX_QUBIT_INDEX + 1
"""The qubit limit of a gate not placed in a circuit yet."""


def check_qubit(q: object, limit: int = NO_LIMIT) -> int:
    if type(q) is int and 0 <= q < limit:
        return q
    if isinstance(q, bool) or not isinstance(q, (int, np.integer)):
        raise CircuitError(f"qubit indices must be integers, got {q!r}")
    if q < 0:
        raise CircuitError(f"qubit index {shown(q)} is negative")
    if limit == NO_LIMIT and q >= limit:
        raise CircuitError(f"qubit index {shown(q)} is over the largest, 2**31 - 1")
    if q >= limit:
        raise CircuitError(f"qubit {shown(q)} is out of range for a {limit}-qubit state")
    return int(q)


def shown(n: int | np.integer) -> str:
    """An integer as an error message shows it: Python refuses to print one of over 4300
    digits, and nobody reads one of 30."""
    n = int(n)
    return str(n) if abs(n) < 2**64 else f"an integer of {n.bit_length()} bits"


def _check_distinct(qubits: tuple[int, ...], what: str) -> None:
    if len(set(qubits)) != len(qubits):
        raise CircuitError(f"{what} acts on repeated qubits {list(qubits)}")


def _param_attribute(name: str) -> property:
    """`gate.theta` for `gate.params["theta"]`, as in qibo. A property per parameter, not a
    `__getattr__`: that would slow every attribute read of every gate (CPython 3.11)."""
    return property(lambda gate: gate.params[name], doc=f"The parameter {name!r}.")


class Gate:
    """A unitary gate. Subclasses declare their shape and matrix; `__init__` validates for all.

    Positional arguments are the qubits (built-in controls first), then the parameters in
    `param_names` order; parameters may also be given by name: `RX(0, 0.3)` == `RX(0, theta=0.3)`.
    """

    name: ClassVar[str]
    ntargets: ClassVar[int] = 1
    """Target qubits; 0 means any number of at least one (I, Unitary)."""
    ncontrols: ClassVar[int] = 0
    """Built-in controls: the leading qubits of the constructor (CNOT's first qubit)."""
    arity: ClassVar[int]
    """ncontrols + ntargets: the qubits the constructor takes (0: any number)."""
    param_names: ClassVar[tuple[str, ...]] = ()
    entries_for: ClassVar[Callable[..., Entries] | None] = None
    """How single-qubit gates define their matrix: its entries for arrays of parameter values
    (one array per name in `param_names`), so that fusion builds the matrices of a thousand
    gates in a few NumPy calls. Other gates define `base_matrix`."""
    hermitian: ClassVar[bool] = False
    """True when the gate is its own inverse, so `dagger()` returns an equal gate."""
    shifted: ClassVar[tuple[str, ...]] = ()
    """Parameters p whose gate is exp(-i p G / 2), G^2 = I, up to a global phase (without
    controls): the derivative of an expectation value in p is half the difference of its values
    at p + pi/2 and p - pi/2 (the parameter-shift rule)."""

    qubits: tuple[int, ...]
    params: dict[str, float]
    """Values by name; NaN for those given as a Parameter (in `slots`)."""
    slots: dict[str, Parameter] = {}  # replaced, never changed in place
    """The parameters given as a Parameter, by name: the gate is valued when bound."""
    extra_controls: tuple[int, ...] = ()
    is_dagger: bool = False
    condition: tuple[str, int] | None = None
    """(register, value): applied only in shots whose register read that value."""

    def __init_subclass__(cls, *, public: bool = True, **kwargs: object) -> None:
        """Every gate class is a gate of the protocol (in GATES), unless `public=False`: one
        only the simulation itself makes."""
        super().__init_subclass__(**kwargs)
        cls.name = cls.__dict__.get("name", cls.__name__)
        cls.arity = cls.ncontrols + cls.ntargets if cls.ntargets else 0
        if public:
            GATES[cls.name] = cls
        for param in cls.param_names:  # read as attributes (gate.theta), as in qibo
            setattr(cls, param, _param_attribute(param))

    def __init__(self, *args: float | Parameter, **params: float | Parameter) -> None:
        nqubits = self.arity or len(args)
        values: Sequence[float | Parameter] = args[nqubits:]
        if params or len(args) != nqubits + len(self.param_names) or not nqubits:
            values = self._bind(args, nqubits, params)
        self._set(args[:nqubits], dict(zip(self.param_names, values, strict=True)))

    def _set(self, qubits: Sequence[Any], params: dict[str, Any],
             limit: int = NO_LIMIT) -> None:
        """Check and keep the qubits (each below `limit`) and the parameters (already keyed by
        `param_names`)."""
        for q in qubits:
            if type(q) is not int or not 0 <= q < limit:
                qubits = [check_qubit(q, limit) for q in qubits]
                break
        self.qubits = tuple(qubits)
        if len(qubits) > 1:
            _check_distinct(self.qubits, self.name)
        for value in params.values():
            if type(value) is not float or not math.isfinite(value):
                checked = {p: check_value(p, v) for p, v in params.items()}
                self.slots = {p: v for p, v in checked.items() if isinstance(v, Parameter)}
                params = {p: math.nan if isinstance(v, Parameter) else v
                          for p, v in checked.items()}
                break
        self.params = params

    def _bind(self, args: tuple[float | Parameter, ...], nqubits: int,
              params: dict[str, float | Parameter]) -> list[float | Parameter]:
        """The parameter values in `param_names` order, from positions and keywords."""
        if len(args) < nqubits or len(args) > nqubits + len(self.param_names):
            raise CircuitError(self._usage(f"got {len(args)} positional arguments"))
        if not nqubits:
            raise CircuitError(self._usage("got no qubits"))
        given = dict(zip(self.param_names, args[nqubits:], strict=False))
        for key, value in params.items():
            if key not in self.param_names:
                raise CircuitError(self._usage(f"got an unexpected parameter {key!r}"))
            if key in given:
                raise CircuitError(self._usage(f"got parameter {key!r} twice"))
            given[key] = value
        missing = [p for p in self.param_names if p not in given]
        if missing:
            raise CircuitError(self._usage(f"missing parameter {missing[0]!r}"))
        return [given[p] for p in self.param_names]

    @classmethod
    def _usage(cls, problem: str) -> str:
        qubits = "q, ..." if not cls.ntargets else ", ".join(
            ["c"] * cls.ncontrols + ["q"] * cls.ntargets)
        return f"{cls.name}({', '.join([qubits, *cls.param_names])}): {problem}"

    @property
    def targets(self) -> tuple[int, ...]:
        return self.qubits[self.ncontrols:]

    @property
    def controls(self) -> tuple[int, ...]:
        return self.qubits[:self.ncontrols] + self.extra_controls

    @property
    def all_qubits(self) -> tuple[int, ...]:
        return self.qubits + self.extra_controls

    def base_matrix(self) -> np.ndarray:
        """The matrix on the targets, before `dagger`. A gate defines this or `entries_for`."""
        if self.entries_for is None:
            raise NotImplementedError(f"{self.name} defines neither base_matrix nor entries_for")
        entries = self.entries_for(*self.params.values())  # in param_names order
        dim = math.isqrt(len(entries))
        return np.array(entries, dtype=complex).reshape(dim, dim)

    @classmethod
    def matrices(cls, gates: Sequence[Gate]) -> np.ndarray:
        """`base_matrix()` of many gates of this kind, shape (n, dim, dim): a few NumPy calls
        for any n when the kind defines `entries_for` (one gate alone: a quicker few)."""
        if cls.entries_for is None or len(gates) == 1:
            return np.array([gate.base_matrix() for gate in gates], dtype=complex)
        names, n = cls.param_names, len(gates)
        values: Any = ()
        if names:
            rows = map(operator.itemgetter(*names), map(operator.attrgetter("params"), gates))
            values = ([np.fromiter(rows, float, n)] if len(names) == 1
                      else np.array(list(rows), dtype=float).T)
        entries = cls.entries_for(*values)
        stacked = np.empty((n, len(entries)), dtype=complex)
        for k, entry in enumerate(entries):
            stacked[:, k] = entry
        dim = math.isqrt(len(entries))
        return stacked.reshape(n, dim, dim)

    def matrix(self) -> np.ndarray:
        """The complex128 matrix applied to the targets (qubit order as in `targets`)."""
        m = self.base_matrix()
        return m.conj().T if self.is_dagger else m

    def dagger(self) -> Gate:
        """The inverse gate."""
        other = copy.copy(self)
        other.is_dagger = self.is_dagger ^ (not self.hermitian)
        return other

    def controlled_by(self, *qubits: int) -> Gate:
        """This gate applied only where every one of `qubits` is |1>."""
        other = copy.copy(self)
        other.extra_controls = self.extra_controls + tuple(check_qubit(q) for q in qubits)
        _check_distinct(other.all_qubits, f"{self.name} controlled by {list(qubits)}")
        return other

    def c_if(self, register: str, value: int = 1) -> Gate:
        """This gate applied only in the shots whose `register` (measured earlier with
        `M(..., collapse=True)`) read `value`: its bits as an integer, the first measured qubit
        most significant."""
        if not isinstance(register, str) or type(value) is not int or value < 0:
            raise CircuitError(f"{self.name}.c_if(register, value): a register name and a "
                               f"non-negative integer, got {register!r}, {value!r}")
        other = copy.copy(self)
        other.condition = (register, value)
        return other

    def bound(self, values: dict[str, float]) -> Gate:
        """This gate with its Parameters named in `values` valued from it (others stay)."""
        other = copy.copy(self)
        other.params = {**self.params, **{k: values[p.name] for k, p in self.slots.items()
                                          if p.name in values}}
        other.slots = {k: p for k, p in self.slots.items() if p.name not in values}
        return other

    def to_data(self) -> GateData:
        if self.slots:
            raise CircuitError(f"{self!r} has unbound parameters: give their values "
                               "(parameters=...)")
        return self._data()

    def _data(self) -> GateData:
        data = GateData(self.name, self.qubits, dict(self.params), self.extra_controls,
                        self.is_dagger)
        if self.condition is not None:
            data.condition = ConditionData(*self.condition)
        return data

    def key(self) -> tuple[Any, ...]:
        """What makes this gate what it is, as a hashable value (a Parameter where a value is
        not bound): equal keys, equal gates. What a backend built from a circuit is cached by
        its gates' keys."""
        params = tuple(self.params.values()) if not self.slots else tuple(
            self.slots.get(name, value) for name, value in self.params.items())
        return (type(self), self.qubits, params, self.extra_controls, self.is_dagger,
                self.condition)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Gate) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash((self.name, self.all_qubits))

    def __repr__(self) -> str:
        args = [str(q) for q in self.qubits] + [f"{k}={self.slots.get(k, v)!r}"
                                                for k, v in self.params.items()]
        text = f"{self.name}({', '.join(args)})"
        if self.extra_controls:
            text += f".controlled_by({', '.join(map(str, self.extra_controls))})"
        if self.condition is not None:
            text += f".c_if({self.condition[0]!r}, {self.condition[1]})"
        return text + (".dagger()" if self.is_dagger else "")


class M:
    """Measure `qubits` in the computational basis into a named register.

    By default measurements close a circuit: shots are sampled from the final state, so no gate
    may follow a measurement on the same qubit. With `collapse=True` the measurement happens
    where it stands: each shot's outcome collapses the state, later gates act on what is left
    and may depend on the outcome (`gate.c_if(register)`).
    """

    def __init__(self, *qubits: int, register_name: str | None = None,
                 collapse: bool = False) -> None:
        if not qubits:
            raise CircuitError("M(q, ..., register_name=None): got no qubits")
        self.qubits = tuple(check_qubit(q) for q in qubits)
        _check_distinct(self.qubits, "M")
        if register_name is not None and not isinstance(register_name, str):
            raise CircuitError(f"M: register_name must be a string, got {register_name!r}")
        self.register_name = register_name
        self.collapse = bool(collapse)

    def to_data(self) -> MeasurementData:
        return MeasurementData(qubits=list(self.qubits), register=self.register_name)

    def to_gate_data(self) -> GateData:
        """A collapsing measurement, as it stands in a circuit's list of gates."""
        return GateData("M", self.qubits, register=self.register_name)

    def key(self) -> tuple[Any, ...]:
        """As Gate.key."""
        return (M, self.qubits, self.register_name, self.collapse)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, M) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.qubits)

    def __repr__(self) -> str:
        args = ", ".join(map(str, self.qubits))
        collapse = ", collapse=True" if self.collapse else ""
        return f"M({args}, register_name={self.register_name!r}{collapse})"


class Reset:
    """Put `qubits` back to |0> wherever a circuit stands: a measurement whose outcome is
    forgotten, then X where it was 1."""

    def __init__(self, *qubits: int) -> None:
        if not qubits:
            raise CircuitError("Reset(q, ...): got no qubits")
        self.qubits = tuple(check_qubit(q) for q in qubits)
        _check_distinct(self.qubits, "Reset")

    def to_gate_data(self) -> GateData:
        return GateData("RESET", self.qubits)

    def key(self) -> tuple[Any, ...]:
        """As Gate.key."""
        return (Reset, self.qubits)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reset) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.qubits)

    def __repr__(self) -> str:
        return f"Reset({', '.join(map(str, self.qubits))})"

