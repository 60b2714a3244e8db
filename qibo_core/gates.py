"""Gates: their qubits, parameters and matrices. The single source of truth for every gate.

Conventions are qibo's: qubit 0 is the most significant bit, RX(t) = exp(-i t X / 2), and so on.
A gate is a matrix on its `targets`, applied where every qubit in `controls` is |1>. Controlled
gates (CNOT, CRX, TOFFOLI...) reuse their base gate's matrix and only add built-in controls.
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from .errors import CircuitError
from .protocol import GateData, MeasurementData

__all__ = [
    "CCZ", "CH", "CNOT", "CRX", "CRY", "CRZ", "CSX", "CU1", "CU2", "CU3", "CY", "CZ", "ECR",
    "FSWAP", "GATES", "GPI", "GPI2", "Gate", "GateReader", "H", "I", "M", "PRX", "RX", "RXX",
    "RY", "RYY", "RZ", "RZX", "RZZ", "S", "SDG", "SWAP", "SX", "SXDG", "T", "TDG", "TOFFOLI",
    "U1", "U2", "U3", "Unitary", "X", "Y", "Z", "fSim", "from_data", "iSWAP",
]

GATES: dict[str, type[Gate]] = {}
"""Every gate class by its wire name."""

UNITARY_TOLERANCE = 1e-8

Entries = tuple[Any, ...]
"""A matrix's entries in row-major order: numbers, or arrays with one value per gate."""

_X = np.array([[0, 1], [1, 0]], dtype=complex)
_Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
_Z = np.array([[1, 0], [0, -1]], dtype=complex)


def _rotation(pauli: np.ndarray, theta: float) -> np.ndarray:
    """exp(-i theta P / 2) for any P with P @ P = I."""
    return math.cos(theta / 2) * np.eye(len(pauli)) - 1j * math.sin(theta / 2) * pauli


def _u3(theta: Any, phi: Any, lam: Any) -> Entries:
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    return (np.exp(-0.5j * (phi + lam)) * c, -np.exp(-0.5j * (phi - lam)) * s,
            np.exp(0.5j * (phi - lam)) * s, np.exp(0.5j * (phi + lam)) * c)


def _check_qubit(q: object, limit: float = math.inf) -> int:
    if type(q) is int and 0 <= q < limit:
        return q
    if isinstance(q, bool) or not isinstance(q, (int, np.integer)):
        raise CircuitError(f"qubit indices must be integers, got {q!r}")
    if q < 0:
        raise CircuitError(f"qubit index {q} is negative")
    if q >= limit:
        raise CircuitError(f"qubit {q} is out of range for a {limit}-qubit state")
    return int(q)


def _check_param(name: str, value: object) -> float:
    if type(value) is float and math.isfinite(value):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise CircuitError(f"parameter {name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise CircuitError(f"parameter {name} must be finite, got {value}")
    return float(value)


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

    qubits: tuple[int, ...]
    params: dict[str, float]
    extra_controls: tuple[int, ...] = ()
    is_dagger: bool = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.name = cls.__dict__.get("name", cls.__name__)
        cls.arity = cls.ncontrols + cls.ntargets if cls.ntargets else 0
        GATES[cls.name] = cls
        for param in cls.param_names:  # read as attributes (gate.theta), as in qibo
            setattr(cls, param, _param_attribute(param))

    def __init__(self, *args: float, **params: float) -> None:
        nqubits = self.arity or len(args)
        values: Sequence[float] = args[nqubits:]
        if params or len(args) != nqubits + len(self.param_names) or not nqubits:
            values = self._bind(args, nqubits, params)
        self._set(args[:nqubits], dict(zip(self.param_names, values, strict=True)))

    def _set(self, qubits: Sequence[Any], params: dict[str, float],
             limit: float = math.inf) -> None:
        """Check and keep the qubits (each below `limit`) and the parameters (already keyed by
        `param_names`)."""
        for q in qubits:
            if type(q) is not int or not 0 <= q < limit:
                qubits = [_check_qubit(q, limit) for q in qubits]
                break
        self.qubits = tuple(qubits)
        if len(qubits) > 1:
            _check_distinct(self.qubits, self.name)
        for value in params.values():
            if type(value) is not float or not math.isfinite(value):
                params = {p: _check_param(p, v) for p, v in params.items()}
                break
        self.params = params

    def _bind(self, args: tuple[float, ...], nqubits: int,
              params: dict[str, float]) -> list[float]:
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
        other.extra_controls = self.extra_controls + tuple(_check_qubit(q) for q in qubits)
        _check_distinct(other.all_qubits, f"{self.name} controlled by {list(qubits)}")
        return other

    def to_data(self) -> GateData:
        return GateData(self.name, self.qubits, dict(self.params), self.extra_controls,
                        self.is_dagger)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Gate) and self.to_data() == other.to_data()

    def __hash__(self) -> int:
        return hash((self.name, self.all_qubits))

    def __repr__(self) -> str:
        args = [str(q) for q in self.qubits] + [f"{k}={v!r}" for k, v in self.params.items()]
        text = f"{self.name}({', '.join(args)})"
        if self.extra_controls:
            text += f".controlled_by({', '.join(map(str, self.extra_controls))})"
        return text + (".dagger()" if self.is_dagger else "")


def _fixed(name: str, matrix: ArrayLike, *, ntargets: int = 1, ncontrols: int = 0,
           hermitian: bool = False) -> type[Gate]:
    """A gate class for a constant matrix."""
    matrix = np.array(matrix, dtype=complex)
    matrix.flags.writeable = False
    entries = tuple(matrix.ravel().tolist())
    return type(name, (Gate,), {
        "name": name, "ntargets": ntargets, "ncontrols": ncontrols, "hermitian": hermitian,
        "base_matrix": lambda self: matrix,
        "entries_for": staticmethod(lambda: entries) if ntargets == 1 else None,
        "__module__": __name__,
        "__doc__": f"The {name} gate.",
    })


_SQRT_X = 0.5 * np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]])
_H = np.array([[1, 1], [1, -1]]) / math.sqrt(2)
_SWAP = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])

H = _fixed("H", _H, hermitian=True)
X = _fixed("X", _X, hermitian=True)
Y = _fixed("Y", _Y, hermitian=True)
Z = _fixed("Z", _Z, hermitian=True)
S = _fixed("S", np.diag([1, 1j]))
SDG = _fixed("SDG", np.diag([1, -1j]))
T = _fixed("T", np.diag([1, np.exp(0.25j * math.pi)]))
TDG = _fixed("TDG", np.diag([1, np.exp(-0.25j * math.pi)]))
SX = _fixed("SX", _SQRT_X)
SXDG = _fixed("SXDG", _SQRT_X.conj().T)
CNOT = _fixed("CNOT", _X, ncontrols=1, hermitian=True)
CY = _fixed("CY", _Y, ncontrols=1, hermitian=True)
CZ = _fixed("CZ", _Z, ncontrols=1, hermitian=True)
CH = _fixed("CH", _H, ncontrols=1, hermitian=True)
CSX = _fixed("CSX", _SQRT_X, ncontrols=1)
SWAP = _fixed("SWAP", _SWAP, ntargets=2, hermitian=True)
iSWAP = _fixed("iSWAP", np.array([[1, 0, 0, 0], [0, 0, 1j, 0], [0, 1j, 0, 0], [0, 0, 0, 1]]),
               ntargets=2)
FSWAP = _fixed("FSWAP", [[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, -1]],
               ntargets=2, hermitian=True)
ECR = _fixed("ECR", np.array([[0, 0, 1, 1j], [0, 0, 1j, 1], [1, -1j, 0, 0], [-1j, 1, 0, 0]])
             / math.sqrt(2), ntargets=2, hermitian=True)
TOFFOLI = _fixed("TOFFOLI", _X, ncontrols=2, hermitian=True)
CCZ = _fixed("CCZ", _Z, ncontrols=2, hermitian=True)


class I(Gate):  # noqa: E742 - qibo's name for the identity
    """The identity on any number of qubits."""

    ntargets = 0
    hermitian = True

    def base_matrix(self) -> np.ndarray:
        return np.eye(2 ** len(self.targets), dtype=complex)


class RX(Gate):
    """exp(-i theta X / 2)."""

    param_names = ("theta",)

    @staticmethod
    def entries_for(theta: Any) -> Entries:
        c, s = np.cos(theta / 2), -1j * np.sin(theta / 2)
        return (c, s, s, c)


class RY(Gate):
    """exp(-i theta Y / 2)."""

    param_names = ("theta",)

    @staticmethod
    def entries_for(theta: Any) -> Entries:
        c, s = np.cos(theta / 2), np.sin(theta / 2)
        return (c, -s, s, c)


class RZ(Gate):
    """exp(-i theta Z / 2)."""

    param_names = ("theta",)

    @staticmethod
    def entries_for(theta: Any) -> Entries:
        phase = np.exp(-0.5j * theta)
        return (phase, 0, 0, phase.conjugate())


class U1(Gate):
    """diag(1, exp(i theta))."""

    param_names = ("theta",)

    @staticmethod
    def entries_for(theta: Any) -> Entries:
        return (1, 0, 0, np.exp(1j * theta))


class U2(Gate):
    """U3(pi/2, phi, lam)."""

    param_names = ("phi", "lam")

    @staticmethod
    def entries_for(phi: Any, lam: Any) -> Entries:
        return _u3(math.pi / 2, phi, lam)


class U3(Gate):
    """RZ(phi) RY(theta) RZ(lam)."""

    param_names = ("theta", "phi", "lam")

    entries_for = staticmethod(_u3)


class GPI(Gate):
    """The trapped-ion pi rotation about the axis at angle phi in the XY plane."""

    param_names = ("phi",)
    hermitian = True

    @staticmethod
    def entries_for(phi: Any) -> Entries:
        phase = np.exp(1j * phi)
        return (0, phase.conjugate(), phase, 0)


class GPI2(Gate):
    """The trapped-ion pi/2 rotation about the axis at angle phi in the XY plane."""

    param_names = ("phi",)

    @staticmethod
    def entries_for(phi: Any) -> Entries:
        phase = np.exp(1j * phi) / math.sqrt(2)
        return (1 / math.sqrt(2), -1j * phase.conjugate(), -1j * phase, 1 / math.sqrt(2))


class PRX(Gate):
    """exp(-i theta (cos(phi) X + sin(phi) Y) / 2): a rotation about an axis in the XY plane."""

    param_names = ("theta", "phi")

    @staticmethod
    def entries_for(theta: Any, phi: Any) -> Entries:
        c, s = np.cos(theta / 2), np.sin(theta / 2)
        phase = np.exp(1j * phi)
        return (c, -1j * s * phase.conjugate(), -1j * s * phase, c)


class CRX(RX):
    """RX on the second qubit, controlled by the first."""

    ncontrols = 1


class CRY(RY):
    """RY on the second qubit, controlled by the first."""

    ncontrols = 1


class CRZ(RZ):
    """RZ on the second qubit, controlled by the first."""

    ncontrols = 1


class CU1(U1):
    """U1 on the second qubit, controlled by the first."""

    ncontrols = 1


class CU2(U2):
    """U2 on the second qubit, controlled by the first."""

    ncontrols = 1


class CU3(U3):
    """U3 on the second qubit, controlled by the first."""

    ncontrols = 1


class RXX(Gate):
    """exp(-i theta X⊗X / 2)."""

    ntargets = 2
    param_names = ("theta",)

    def base_matrix(self) -> np.ndarray:
        return _rotation(np.kron(_X, _X), self.params["theta"])


class RYY(Gate):
    """exp(-i theta Y⊗Y / 2)."""

    ntargets = 2
    param_names = ("theta",)

    def base_matrix(self) -> np.ndarray:
        return _rotation(np.kron(_Y, _Y), self.params["theta"])


class RZZ(Gate):
    """exp(-i theta Z⊗Z / 2)."""

    ntargets = 2
    param_names = ("theta",)

    def base_matrix(self) -> np.ndarray:
        return _rotation(np.kron(_Z, _Z), self.params["theta"])


class RZX(Gate):
    """exp(-i theta Z⊗X / 2)."""

    ntargets = 2
    param_names = ("theta",)

    def base_matrix(self) -> np.ndarray:
        return _rotation(np.kron(_Z, _X), self.params["theta"])


class fSim(Gate):  # noqa: N801 - qibo's name
    """The fermionic simulation gate: an iSWAP-like rotation by theta and a phase phi on |11>."""

    ntargets = 2
    param_names = ("theta", "phi")

    def base_matrix(self) -> np.ndarray:
        c, s = math.cos(self.params["theta"]), math.sin(self.params["theta"])
        return np.array([[1, 0, 0, 0], [0, c, -1j * s, 0], [0, -1j * s, c, 0],
                         [0, 0, 0, np.exp(-1j * self.params["phi"])]])


class Unitary(Gate):
    """Any unitary matrix on any number of qubits: `Unitary(matrix, *qubits)`."""

    ntargets = 0

    def __init__(self, matrix: object, *qubits: int) -> None:
        super().__init__(*qubits)
        try:
            m = np.array(matrix, dtype=np.complex128)
        except (TypeError, ValueError) as exc:
            raise CircuitError(f"Unitary: the matrix is not a complex array: {exc}") from None
        dim = 2 ** len(self.qubits)
        if m.shape != (dim, dim):
            raise CircuitError(f"Unitary on {len(self.qubits)} qubits needs a {dim}x{dim} "
                               f"matrix, got shape {m.shape}")
        if not np.isfinite(m).all():
            raise CircuitError("Unitary: the matrix has NaN or infinite entries")
        error = np.abs(m.conj().T @ m - np.eye(dim)).max()
        if error > UNITARY_TOLERANCE:
            raise CircuitError(f"Unitary: the matrix is not unitary (|U^dagger U - I| = "
                               f"{error:.2e} > {UNITARY_TOLERANCE})")
        m.flags.writeable = False
        self._matrix = m

    def base_matrix(self) -> np.ndarray:
        return self._matrix

    def to_data(self) -> GateData:
        data = super().to_data()
        data.matrix = [[(z.real, z.imag) for z in row] for row in self._matrix.tolist()]
        return data

    def __repr__(self) -> str:
        return super().__repr__().replace("Unitary(", "Unitary(<matrix>, ", 1)


class M:
    """Measure `qubits` in the computational basis into a named register.

    Measurements close a circuit: sampling happens on the final state, so no gate may follow
    a measurement on the same qubit.
    """

    def __init__(self, *qubits: int, register_name: str | None = None) -> None:
        if not qubits:
            raise CircuitError("M(q, ..., register_name=None): got no qubits")
        self.qubits = tuple(_check_qubit(q) for q in qubits)
        _check_distinct(self.qubits, "M")
        if register_name is not None and not isinstance(register_name, str):
            raise CircuitError(f"M: register_name must be a string, got {register_name!r}")
        self.register_name = register_name

    def to_data(self) -> MeasurementData:
        return MeasurementData(qubits=list(self.qubits), register=self.register_name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, M) and self.to_data() == other.to_data()

    def __hash__(self) -> int:
        return hash(self.qubits)

    def __repr__(self) -> str:
        args = ", ".join(map(str, self.qubits))
        return f"M({args}, register_name={self.register_name!r})"


def from_data(data: GateData, nqubits: int | None = None) -> Gate:
    """The gate a wire message describes, validated exactly as if built in Python; given
    `nqubits`, also that every qubit it acts on is below it."""
    limit = math.inf if nqubits is None else nqubits
    cls = GATES.get(data.name)
    if (cls is None or not cls.arity or len(data.qubits) != cls.arity
            or tuple(data.params) != cls.param_names or data.matrix is not None):
        gate = _from_other_data(data, cls)
        for q in gate.qubits:
            _check_qubit(q, limit)
    else:  # the common case, kept fast: checked as __init__ checks
        gate = cls.__new__(cls)
        gate._set(data.qubits, data.params, limit)
    if data.controls:
        gate = gate.controlled_by(*(_check_qubit(q, limit) for q in data.controls))
    if data.dagger:
        gate = gate.dagger()
    return gate


class GateReader:
    """`from_data` for the gates streamed into one state, with what depends only on a gate's
    name and qubits (its kind, its qubit count, each qubit's range, repeats) checked once per
    pair: a stream repeats the same few pairs, with new parameters every time."""

    MAX_PAIRS = 4096
    """The most pairs remembered, so that a stream cannot grow the memory without bound."""

    def __init__(self, nqubits: int) -> None:
        self.nqubits = nqubits
        self._kinds: dict[tuple[str, tuple[int, ...]], type[Gate]] = {}

    def read(self, data: GateData) -> Gate:
        name, qubits, params = data.name, data.qubits, data.params
        kind = self._kinds.get((name, qubits)) if type(qubits) is tuple else None
        if (kind is not None and tuple(params) == kind.param_names and not data.controls
                and not data.dagger and data.matrix is None):
            for value in params.values():
                if type(value) is not float or not math.isfinite(value):
                    return from_data(data, self.nqubits)  # an error, or an int made a float
            gate = kind.__new__(kind)
            gate.qubits, gate.params = qubits, params
            return gate
        gate = from_data(data, self.nqubits)
        if (not data.controls and not data.dagger and data.matrix is None
                and type(qubits) is tuple and len(self._kinds) < self.MAX_PAIRS):
            self._kinds[name, qubits] = type(gate)
        return gate


def _from_other_data(data: GateData, cls: type[Gate] | None) -> Gate:
    """Unitary, I, parameters out of order, and every error."""
    if cls is None:
        name = data.name if len(data.name) <= 40 else data.name[:40] + "..."
        raise CircuitError(f"unknown gate {name!r}; known gates: {', '.join(sorted(GATES))}")
    if cls is Unitary:
        if data.matrix is None:
            raise CircuitError("Unitary needs a 'matrix' (rows of [re, im] pairs)")
        if data.params:
            raise CircuitError("Unitary takes no params, only a 'matrix'")
        try:
            pairs = np.asarray(data.matrix, dtype=float)
        except (TypeError, ValueError):
            pairs = np.empty(0)
        if pairs.ndim != 3 or pairs.shape[-1] != 2:
            raise CircuitError("Unitary: 'matrix' must be a list of rows of [re, im] pairs")
        matrix = pairs[..., 0] + 1j * pairs[..., 1]
        return Unitary(matrix, *data.qubits)
    if data.matrix is not None:
        raise CircuitError(f"{data.name} takes no 'matrix'; only Unitary does")
    if cls.arity and len(data.qubits) != cls.arity:
        raise CircuitError(cls._usage(f"takes {cls.arity} qubit{'s' * (cls.arity > 1)}, "
                                      f"got {len(data.qubits)}"))
    return cls(*data.qubits, **data.params)  # the constructor orders them, or says why not
