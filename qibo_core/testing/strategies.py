"""Hypothesis strategies for gates and circuits over the whole gate set (for tests: importing
this module needs hypothesis, which qibo-core itself does not depend on)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from ..circuit import GATES, Circuit, Gate, gates

angles = st.floats(-2 * math.pi, 2 * math.pi, allow_nan=False)


def random_unitary(k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(2**k, 2**k)) + 1j * rng.normal(size=(2**k, 2**k))
    q, r = np.linalg.qr(z)
    return q * (np.diag(r) / np.abs(np.diag(r)))


@st.composite
def any_gate(draw: st.DrawFn, nqubits: int, *, variants: bool = True) -> Gate:
    """Any gate kind on random qubits, maybe daggered and maybe with extra controls."""
    cls = draw(st.sampled_from(sorted(GATES.values(), key=lambda c: c.name)))
    size = cls.ncontrols + (cls.ntargets or draw(st.integers(1, min(3, nqubits))))
    if size > nqubits:
        cls, size = gates.H, 1
    qubits = draw(st.permutations(range(nqubits)))
    if cls is gates.Unitary:
        gate: Gate = gates.Unitary(random_unitary(size, draw(st.integers(0, 2**32))),
                                   *qubits[:size])
    else:
        gate = cls(*qubits[:size], **{p: draw(angles) for p in cls.param_names})
    if variants and draw(st.booleans()):
        gate = gate.dagger()
    if variants and size < nqubits and draw(st.booleans()):
        gate = gate.controlled_by(*qubits[size:size + draw(st.integers(1, nqubits - size))])
    return gate


@st.composite
def circuits(draw: st.DrawFn, max_qubits: int = 6, max_gates: int = 12) -> Circuit:
    n = draw(st.integers(1, max_qubits))
    circuit = Circuit(n)
    circuit.add(draw(st.lists(any_gate(n), max_size=max_gates)))
    return circuit
