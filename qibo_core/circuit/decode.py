"""Gates from wire data: the one decoder, with one error format (`gate 3 (RX): ...`).

`from_data` builds a gate exactly as the constructor would check it; `GateReader` reads the
gates streamed into one state, checking what depends only on a gate's name and qubits once per
pair. Both take Gate objects too (from an in-process client): those were checked when built,
and only their range is left to check. `operation_from_data` and `measurement_from_data` read
the rest of a circuit's data (Circuit.from_data).
"""

from __future__ import annotations

import math
from typing import Any, Final, Protocol

import numpy as np

from ..errors import CircuitError, InvalidGate
from ..protocol.messages import GateData, MeasurementData
from .channels import Channel
from .gate import GATES, NO_LIMIT, Gate, M, Reset, check_qubit
from .gates import Unitary
from .operation import Operation

__all__ = ["GateReader", "from_data", "gate_label", "measurement_from_data", "operation_from_data",
           "read_gates"]


def gate_label(index: int, name: str) -> str:
    """How errors name a gate: `gate 3 (RX)`."""
    return f"gate {index} ({name if len(name) <= 40 else name[:40] + '...'})"


class Reader(Protocol):
    """What reads gates for a state: a GateReader, or one that refuses every gate."""

    def read(self, data: GateData | Gate) -> Gate: ...


def read_gates(items: list[Any], reader: Reader, start: int = 0) -> list[Gate]:
    """Every gate of `items`; the first invalid one raises InvalidGate naming it by its index
    (counted from `start`)."""
    try:
        return list(map(reader.read, items))
    except CircuitError:
        pass
    for index, item in enumerate(items, start):
        try:
            reader.read(item)
        except CircuitError as exc:
            raise InvalidGate(f"{gate_label(index, item.name)}: {exc}", index) from None
    raise AssertionError("unreachable: a gate failed once and passed the second time")


def from_data(data: GateData | Gate, nqubits: int | None = None) -> Gate:
    """The gate a wire message describes, validated exactly as if built in Python; given
    `nqubits`, also that every qubit it acts on is below it."""
    limit = NO_LIMIT if nqubits is None else nqubits
    if isinstance(data, Gate):
        if data.slots:
            data.to_data()  # raises: a gate with unbound parameters cannot run
        for q in data.all_qubits:
            check_qubit(q, limit)
        return data
    if data.name in ("M", "RESET"):
        raise CircuitError(f"{data.name!r} is not a gate but a measurement or reset: it stands in "
                           "a circuit's list of gates, not in a stream of them")
    if data.kraus is not None or data.register is not None:
        raise CircuitError(f"{data.name!r}: 'kraus' and 'register' belong to channels and "
                           "measurements in a circuit's list of gates, not to a gate")
    cls = GATES.get(data.name)
    if (cls is None or not cls.arity or len(data.qubits) != cls.arity
            or tuple(data.params) != cls.param_names or data.matrix is not None):
        gate = _from_other_data(data, cls)
        for q in gate.qubits:
            check_qubit(q, limit)
    else:  # the common case, kept fast: checked as __init__ checks
        gate = cls.__new__(cls)
        gate._set(data.qubits, data.params, limit)
    if data.controls:
        gate = gate.controlled_by(*(check_qubit(q, limit) for q in data.controls))
    if data.dagger:
        gate = gate.dagger()
    if data.condition is not None:
        gate = gate.c_if(data.condition.register, data.condition.value)
    return gate


def operation_from_data(data: GateData) -> Operation:
    """An operation of a circuit's list of gates: a gate, a collapsing M, a RESET or a
    channel."""
    if data.kraus is not None:
        _only(data, "a channel")
        return Channel.from_data(data)
    if data.name == "M":
        _only(data, "M")
        return M(*data.qubits, register_name=data.register, collapse=True)
    if data.name == "RESET":
        _only(data, "RESET")
        return Reset(*data.qubits)
    _only(data, "gate")
    return from_data(data)


_OPTIONAL_FIELDS = ("params", "controls", "dagger", "matrix", "register", "condition", "kraus")
_TAKES: Final = {"a channel": {"kraus"}, "M": {"register"}, "RESET": set(),
                 "gate": {"params", "controls", "dagger", "matrix", "condition"}}
"""The optional fields each kind of operation takes."""
_REFUSES: Final = {what: [name for name in _OPTIONAL_FIELDS if name not in takes]
                   for what, takes in _TAKES.items()}


def _only(data: GateData, what: str) -> None:
    """CircuitError naming the first optional field `data` sets that `what` does not take: a
    field dropped silently would run another circuit than the one sent."""
    for name in _REFUSES[what]:
        if getattr(data, name) not in (None, False, (), {}):
            shown = f"gate {data.name!r}" if what == "gate" else what
            raise CircuitError(f"{shown} takes no {name!r}")


def measurement_from_data(data: MeasurementData) -> M:
    try:
        return M(*data.qubits, register_name=data.register)
    except CircuitError as exc:
        raise CircuitError(f"measurement {data.qubits}: {exc}") from None


class GateReader:
    """`from_data` for the gates streamed into one state, with what depends only on a gate's
    name and qubits (its kind, its qubit count, each qubit's range, repeats) checked once per
    pair: a stream repeats the same few pairs, with new parameters every time."""

    MAX_PAIRS = 4096
    """The most pairs remembered, so that a stream cannot grow the memory without bound."""

    def __init__(self, nqubits: int) -> None:
        self.nqubits = nqubits
        self._kinds: dict[tuple[str, tuple[int, ...]], type[Gate]] = {}

    def read(self, data: GateData | Gate) -> Gate:
        if data.condition is not None:
            raise CircuitError("a gate with a condition needs the measurement it depends on: "
                               "execute a circuit; a streamed state has no shots")
        if isinstance(data, Gate):
            return from_data(data, self.nqubits)
        name, qubits, params = data.name, data.qubits, data.params
        kind = self._kinds.get((name, qubits)) if type(qubits) is tuple else None
        if (kind is not None and tuple(params) == kind.param_names and not data.controls
                and not data.dagger and data.matrix is None and data.kraus is None
                and data.register is None):
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
