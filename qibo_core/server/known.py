"""The circuits a session ran last, found again by their JSON (from a client in another process)
or by their frozen object (in process), with what the backend compiled for them: a circuit run
again is neither decoded, checked nor compiled again."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from ..circuit import Circuit
from ..errors import CircuitError, InvalidParams, ParseError
from ..protocol import CircuitData, Feature
from .backend import Backend, Checkpoint

KEPT = 64
"""Circuits a session keeps."""
MOST_GATES = 4096
"""Longer circuits are decoded and compiled each time: that costs little beside their run, and
what is kept of them may be large."""

_decoder = msgspec.json.Decoder(CircuitData)


@dataclass
class Known:
    circuit: Circuit
    """Frozen: never changed."""
    program: Any = None
    """What the backend compiled for it (Backend.compile_gates), once it ran."""
    ready: Any = None
    """Or a prepared circuit (prepared.Prepared) to run with `values` in its slots."""
    values: np.ndarray | None = None

    def gates(self) -> list[Any]:
        return self.ready.gates(self.values) if self.ready is not None else self.circuit.gates


class KnownCircuits:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._compiles = _compiles(backend)
        self._kept: OrderedDict[Any, Known] = OrderedDict()
        """By JSON bytes, or by id() of a frozen circuit (the entry keeps it alive), the most
        recent last."""

    def get(self, circuit: Circuit | CircuitData | msgspec.Raw) -> Known:
        """The circuit a request carries: its JSON (decoded and checked: InvalidParams names
        the first bad gate), its data, or, in process, the Circuit object."""
        if isinstance(circuit, Circuit):
            frozen = circuit.frozen()
            key: Any = id(frozen)
        elif isinstance(circuit, msgspec.Raw):
            key = bytes(circuit)
        else:
            return Known(checked_circuit(circuit))
        known = self._kept.get(key)
        if known is not None:
            self._kept.move_to_end(key)
            return known
        known = Known(frozen if isinstance(circuit, Circuit) else checked_circuit(
            _decoded(key)).frozen())
        if len(known.circuit.gates) <= MOST_GATES:
            if len(self._kept) >= KEPT:
                self._kept.popitem(last=False)
            self._kept[key] = known
        return known

    def run(self, start: Any, known: Known, checkpoint: Checkpoint) -> Any:
        """The circuit's gates applied to `start`, through what the backend compiled for it."""
        if known.ready is not None:
            values = known.values
            assert values is not None
            state = self.backend.run_prepared(known.ready, values, start, checkpoint)
            return state if state is not None else self.backend.apply(start, known.gates(),
                                                                      checkpoint)
        gates = known.circuit.gates
        if not self._compiles or len(gates) > MOST_GATES:
            return self.backend.apply(start, gates, checkpoint)  # type: ignore[arg-type]
        if known.program is None:
            known.program = self.backend.compile_gates(gates, known.circuit.nqubits)  # type: ignore[arg-type]
        return self.backend.run_compiled(start, known.program, checkpoint)

    def clear(self) -> None:
        self._kept.clear()


def checked_circuit(circuit: Any) -> Circuit:
    """The circuit params carry: from its data (InvalidParams names the first bad gate), or
    as it is (in process, it was checked when it was built)."""
    if isinstance(circuit, Circuit):
        return circuit
    try:
        return Circuit.from_data(circuit)
    except CircuitError as exc:
        raise InvalidParams(f"invalid circuit: {exc}") from None


def features_used(circuit: Circuit) -> set[str]:
    """The optional features a circuit needs (a session refuses those it does not offer)."""
    used = {Feature.DENSITY_MATRIX} if circuit.density_matrix else set()
    if circuit.has_channels:
        used.add(Feature.CHANNELS)
    if circuit.has_mid_circuit_measurements:
        used.add(Feature.MID_CIRCUIT_MEASUREMENT)
    return used


def _decoded(raw: bytes) -> CircuitData:
    try:
        return _decoder.decode(raw)
    except msgspec.ValidationError as exc:  # the path as the whole params' decoder names it
        raise InvalidParams(f"invalid params for 'execute': "
                            f"{str(exc).replace('at `$', 'at `$.circuit', 1)}") from None
    except msgspec.DecodeError as exc:  # invalid UTF-8 inside a string, say
        raise ParseError(f"params for 'execute' are not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidParams("params for 'execute' are nested too deeply") from None


def _compiles(backend: Backend) -> bool:
    """Whether the backend's compile_gates and run_compiled do what its apply does: a subclass
    that overrides only apply (to log, or change it) must be run by its apply."""
    def owner(name: str) -> type:
        return next(c for c in type(backend).__mro__ if name in vars(c))
    return issubclass(owner("compile_gates"), owner("apply"))
