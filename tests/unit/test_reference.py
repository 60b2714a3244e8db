"""The reference simulator's two formulations hold each other to account."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from qibo_core import Circuit
from qibo_core.testing.reference import apply_gate, operator
from qibo_core.testing.strategies import circuits


@settings(max_examples=60, deadline=None)
@given(circuits(max_qubits=6, max_gates=20))
def test_the_contraction_equals_the_dense_operator(circuit: Circuit) -> None:
    dense = np.zeros(2**circuit.nqubits, dtype=complex)
    dense[0] = 1
    contracted = dense.copy()
    for gate in circuit.gates:
        dense = operator(gate, circuit.nqubits) @ dense
        contracted = apply_gate(contracted, gate)
    np.testing.assert_allclose(contracted, dense, atol=1e-12)
