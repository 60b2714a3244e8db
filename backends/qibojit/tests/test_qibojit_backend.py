"""qibo-backend-qibojit on its own: every gate qibo shares with us, both precisions, and the
conformance kit."""

from __future__ import annotations

import numpy as np
import pytest

from qibo_backend_qibojit import QibojitBackend
from qibo_core import Circuit, connect, gates
from qibo_core.client.discovery import find_backend
from qibo_core.testing import Report
from qibo_core.testing.agreement import gate_variants
from qibo_core.testing.reference import final_state


def test_every_gate_kind_and_variant_matches_the_reference() -> None:
    rng = np.random.default_rng(5)
    backend = QibojitBackend()
    for name in backend.native_gates | {"Unitary"}:
        for gate in gate_variants(name, 5, rng):
            circuit = Circuit(5)
            circuit.add([gates.U3(q, *rng.uniform(-3, 3, 3)) for q in range(5)])
            circuit.add(gate)
            np.testing.assert_allclose(circuit.execute(backend=backend).state(),
                                       final_state(circuit), atol=1e-12, err_msg=repr(gate))


def test_single_precision_is_complex64() -> None:
    circuit = Circuit(2)
    circuit.add([gates.H(0), gates.CNOT(0, 1), gates.RY(1, 0.3)])
    with connect("qibojit", precision="complex64") as handle:
        state = handle.execute(circuit).state()
    assert state.dtype == np.complex64
    np.testing.assert_allclose(state, final_state(circuit), atol=1e-6)


def test_the_conformance_kit_passes(conformance) -> None:  # type: ignore[no-untyped-def]
    report: Report = conformance([find_backend("qibojit")])
    assert report.passed, report.text()


def test_a_missing_qibojit_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "qibojit" else real(name, *a))
    with pytest.raises(ImportError, match="pip install qibojit"):
        QibojitBackend()
