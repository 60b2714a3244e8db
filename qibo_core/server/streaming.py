"""A streamed batch that holds an invalid gate: the gates before it are applied, and the state
keeps the failure, to report at the next request naming it (protocol.md 4.3)."""

from __future__ import annotations

from typing import Any

import msgspec

from ..circuit import Gate, gate_label
from ..errors import CircuitError, GateFailed
from ..protocol import ApplyParams


def until_invalid(held: Any, params: ApplyParams[Any]) -> list[Gate]:
    """The streamed gates before the first invalid one, which becomes the state's failure
    (read one by one only once a batch is known to hold one)."""
    valid: list[Gate] = []
    for data in params.gates:
        try:
            valid.append(held.reader.read(data))
        except CircuitError as exc:
            index = held.streamed + len(valid)
            gate = data.to_data() if isinstance(data, Gate) else data
            held.failure = GateFailed(
                f"streamed {gate_label(index, gate.name)} of state {params.state} failed: "
                f"{exc}",
                {"state": params.state, "index": index, "gate": msgspec.to_builtins(gate)})
            held.dropped = len(params.gates) - len(valid) - 1
            break
    return valid
