"""qibo-backend-aer on its own: qibo's conventions over Qiskit's little-endian order, both
precisions, and the conformance kit."""

from __future__ import annotations

import numpy as np
import pytest

from qibo_backend_aer import AerBackend
from qibo_backend_aer.simulator import _NATIVE
from qibo_core import Circuit, connect, gates
from qibo_core.circuit import GATES
from qibo_core.client.discovery import find_backend
from qibo_core.testing import Report
from qibo_core.testing.reference import final_state


def test_qubit_0_is_the_most_significant_bit() -> None:
    circuit = Circuit(3)
    circuit.add(gates.X(0))
    state = circuit.execute(backend=AerBackend()).state()
    assert np.argmax(np.abs(state)) == 0b100


def test_every_native_gate_keeps_qibos_matrix_and_qubit_order() -> None:
    """Each gate Aer runs natively, on qubits in an order that tells them apart."""
    rng = np.random.default_rng(3)
    for name in _NATIVE:
        cls = GATES[name]
        size = cls.ncontrols + cls.ntargets
        qubits = [3, 0, 2][:size]
        gate = cls(*qubits, *rng.uniform(-3, 3, len(cls.param_names)))
        circuit = Circuit(4)
        circuit.add([gates.U3(q, *rng.uniform(-3, 3, 3)) for q in range(4)])
        circuit.add(gate)
        np.testing.assert_allclose(circuit.execute(backend=AerBackend()).state(),
                                   final_state(circuit), atol=1e-12, err_msg=name)


def test_single_precision_is_complex64() -> None:
    circuit = Circuit(2)
    circuit.add([gates.H(0), gates.CNOT(0, 1), gates.RY(1, 0.3)])
    with connect("aer", precision="complex64") as handle:
        state = handle.execute(circuit).state()
    assert state.dtype == np.complex64
    np.testing.assert_allclose(state, final_state(circuit), atol=1e-6)


def test_devices_are_what_aer_finds_and_others_are_refused() -> None:
    from qibo_core import InvalidParams

    with connect("aer", device="CPU") as handle:
        assert handle.info.capabilities.devices[0] == "CPU"
        offered = handle.info.capabilities.devices
        assert handle.execute(Circuit(1)).state().tolist() == [1, 0]
    if "GPU" not in offered:  # this machine: no CUDA device
        with pytest.raises(InvalidParams, match=r"device 'GPU' is not available here; .*'CPU'"):
            connect("aer", device="GPU")


def test_the_conformance_kit_passes(conformance) -> None:  # type: ignore[no-untyped-def]
    report: Report = conformance([find_backend("aer")])
    assert report.passed, report.text()


def test_a_missing_qiskit_aer_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "qiskit_aer" else real(name, *a))
    with pytest.raises(ImportError, match="pip install qiskit-aer"):
        AerBackend()
