"""The reference simulator, independent of every backend: the conformance kit and the test suite
check backends against it.

Two formulations, each obviously right, which the test suite holds to each other: `operator`
builds a gate's full 2^n x 2^n matrix entry by entry (small states), and `apply_gate` contracts
the gate's matrix with the state's target axes, written out as an einsum, on the part of the
state where the controls are 1 (any size the memory allows).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..circuit import Circuit, Gate
from ..errors import UsageError
from ..server import Backend, Checkpoint, no_checkpoint


def operator(gate: Gate, n: int) -> np.ndarray:
    """The gate on all n qubits (qubit 0 the most significant bit): its matrix where the
    controls are 1, identity elsewhere."""
    u, targets, controls = gate.matrix(), gate.targets, gate.controls
    k = len(targets)
    columns = np.arange(2**n)

    def bit(index: np.ndarray, q: int) -> np.ndarray:
        return (index >> (n - 1 - q)) & 1

    active = np.ones(2**n, dtype=bool)
    for c in controls:
        active &= bit(columns, c) == 1
    full = np.diag((~active).astype(complex))  # identity where a control is 0
    t_in = np.zeros(2**n, dtype=int)
    for i, t in enumerate(targets):
        t_in |= bit(columns, t) << (k - 1 - i)
    cleared = columns & ~sum(1 << (n - 1 - t) for t in targets)
    for t_out in range(2**k):
        rows = cleared | sum(((t_out >> (k - 1 - i)) & 1) << (n - 1 - t)
                             for i, t in enumerate(targets))
        full[rows[active], columns[active]] = u[t_out, t_in[active]]
    return full


def apply_gate(state: np.ndarray, gate: Gate) -> np.ndarray:
    """The state after `gate`, a new array (the input is left as it was)."""
    n = state.size.bit_length() - 1
    out = state.astype(complex).reshape((2,) * n)
    where = tuple(1 if q in gate.controls else slice(None) for q in range(n))
    view = out[where]  # the controls are 1 here (basic indexing: a view into `out`)
    free = [q for q in range(n) if q not in gate.controls]
    letters = {q: chr(ord("a") + i) for i, q in enumerate(free)}
    k = len(gate.targets)
    new = [chr(ord("A") + i) for i in range(k)]
    old = "".join(letters[t] for t in gate.targets)
    result = "".join(new[gate.targets.index(q)] if q in gate.targets else letters[q]
                     for q in free)
    matrix = gate.matrix().reshape((2,) * 2 * k)
    view[...] = np.einsum(f"{''.join(new)}{old},{''.join(letters[q] for q in free)}->{result}",
                          matrix, view)
    return out.reshape(-1)


def final_state(circuit: Circuit) -> np.ndarray:
    """The state a circuit of gates alone leaves |0...0> in."""
    gates = [g for g in circuit.gates if isinstance(g, Gate) and g.condition is None]
    if len(gates) != len(circuit.gates):
        raise UsageError("final_state takes a circuit of gates alone: one with collapsing "
                         "measurements, resets or conditions has a state per shot")
    backend = ReferenceBackend()
    return backend.apply(backend.zero_state(circuit.nqubits), gates)


class ReferenceBackend(Backend):
    """The reference as a backend, so that it answers through the same Session as any other."""

    name = "reference"
    version = "1"
    max_qubits = 24

    def zero_state(self, nqubits: int) -> np.ndarray:
        state = np.zeros(2**nqubits, dtype=complex)
        state[0] = 1
        return state

    def apply(self, state: np.ndarray, gates: Sequence[Gate],
              checkpoint: Checkpoint = no_checkpoint) -> np.ndarray:
        for done, gate in enumerate(gates):
            checkpoint(done, len(gates))
            state = apply_gate(state, gate)
        return state

    def from_array(self, amplitudes: np.ndarray) -> np.ndarray:
        return amplitudes.astype(complex)

    def to_array(self, state: np.ndarray) -> np.ndarray:
        return state.astype(self.dtype, copy=False)
