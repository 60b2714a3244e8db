"""Parameter: a named placeholder for a gate's parameter, valued at run time, so that a
variational circuit is built (and sent to a backend) once and run with many sets of values."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import CircuitError, UsageError


class Parameter:
    """`RX(0, Parameter("t0"))`: parameters are the same when their names are."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise CircuitError(f"a Parameter's name is a non-empty string, got {name!r}")
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Parameter) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("Parameter", self.name))

    def __repr__(self) -> str:
        return f"Parameter({self.name!r})"


def parameter_sets(parameters: Sequence[Parameter], values: Any) -> tuple[np.ndarray, bool]:
    """`values` as float64 rows, one set per row in `parameters` order, and whether one set was
    given (a 1-D array or a dict by name) rather than a 2-D array of sets. None is the one empty
    set of a circuit without parameters."""
    names = [p.name for p in parameters]
    if values is None:
        if names:
            raise UsageError(f"the circuit has {len(names)} parameters ({_listed(names)}): give "
                             "their values (parameters=...)")
        values = []
    if isinstance(values, Mapping):
        unknown = sorted(set(values) - set(names))
        missing = [n for n in names if n not in values]
        if unknown or missing:
            raise UsageError(f"parameters by name: {'unknown ' + repr(unknown) if unknown else ''}"
                             f"{'; ' if unknown and missing else ''}"
                             f"{'missing ' + repr(missing) if missing else ''}")
        values = [values[n] for n in names]
    try:
        array = np.array(values, dtype=float)
    except (TypeError, ValueError):
        raise UsageError(f"parameters must be real numbers, got {values!r}") from None
    single = array.ndim == 1
    sets = array.reshape(1, -1) if single else array
    if sets.ndim != 2 or sets.shape[1] != len(names):
        raise UsageError(f"the circuit has {len(names)} parameters ({_listed(names)}); got "
                         f"values of shape {array.shape}: give one per parameter, or a row "
                         "of them per set")
    if not np.isfinite(sets).all():
        raise UsageError("parameter values must be finite")
    return sets, single


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def check_value(name: str, value: object) -> float | Parameter:
    """A gate's parameter as kept: a finite float, or a Parameter."""
    if isinstance(value, Parameter):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise CircuitError(f"parameter {name} must be a real number or a Parameter, got "
                           f"{value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond the floats
        number = math.inf
    if not math.isfinite(number):
        raise CircuitError(f"parameter {name} must be finite, got "
                           f"{value if isinstance(value, float) else 'a larger number'}")
    return number
