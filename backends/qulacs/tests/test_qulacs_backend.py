"""qibo-backend-qulacs on its own: qibo's conventions over Qulacs' own, and the conformance kit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qibo_backend_qulacs import QulacsBackend
from qibo_core import Circuit, connect, gates
from qibo_core.client.discovery import find_backend
from qibo_core.testing import Report
from qibo_core.testing.reference import final_state


def test_qubit_0_is_the_most_significant_bit() -> None:
    circuit = Circuit(3)
    circuit.add(gates.X(0))
    state = circuit.execute(backend=QulacsBackend()).state()
    assert np.argmax(np.abs(state)) == 0b100


def test_rotations_turn_qibos_way() -> None:
    """Qulacs' RX(t) is exp(+i t X / 2); ours, qibo's, is exp(-i t X / 2)."""
    for gate in (gates.RX(0, 0.4), gates.RY(1, -1.1), gates.RZ(0, 2.5), gates.U1(1, 0.3)):
        circuit = Circuit(2)
        circuit.add([gates.H(0), gates.H(1), gate])
        np.testing.assert_allclose(circuit.execute(backend=QulacsBackend()).state(),
                                   final_state(circuit), atol=1e-12)


def test_runs_of_one_qubit_gates_are_merged_in_order() -> None:
    """Merged per qubit until another gate acts on it, in the order given (none commute)."""
    circuit = Circuit(3)
    circuit.add([gates.H(0), gates.T(0), gates.RX(1, 0.4), gates.SX(0), gates.CNOT(0, 1),
                 gates.RY(1, 0.7), gates.U3(2, 0.1, 0.2, 0.3), gates.S(1), gates.H(1),
                 gates.CZ(2, 1), gates.RZ(2, 0.5), gates.X(2).controlled_by(0), gates.Y(2)])
    backend = QulacsBackend()
    # H T SX, RX, CNOT, RY S H, U3, CZ, RZ, controlled X, Y
    assert len(backend._merged(circuit.gates, 3)) == 9
    state = backend.to_array(backend.apply(backend.zero_state(3), circuit.gates))
    np.testing.assert_allclose(state, final_state(circuit), atol=1e-12)


def test_threads_follow_the_option() -> None:
    with connect("qulacs", threads=1) as handle:
        assert handle.info.capabilities.threads == 1
        circuit = Circuit(14)
        circuit.add(gates.RY(q, math.pi / 3) for q in range(14))
        assert handle.execute(circuit).probabilities([0])[1] == pytest.approx(0.25)


def test_the_conformance_kit_passes(conformance) -> None:  # type: ignore[no-untyped-def]
    report: Report = conformance([find_backend("qulacs")])
    assert report.passed, report.text()
