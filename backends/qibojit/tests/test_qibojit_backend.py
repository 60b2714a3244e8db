"""qibo-backend-qibojit on its own: every gate qibo shares with us, both precisions, the
conformance kit, and a Python without qibojit. The backend runs in its own environment
(scripts/setup.sh), so these tests spawn it and never import qibojit here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qibo_core import Circuit, connect, gates
from qibo_core.circuit import GATES
from qibo_core.client.discovery import find_backend
from qibo_core.testing import Report
from qibo_core.testing.agreement import gate_variants
from qibo_core.testing.reference import final_state

pytestmark = pytest.mark.backends("qibojit")


def test_every_gate_kind_and_variant_matches_the_reference() -> None:
    rng = np.random.default_rng(5)
    with connect("qibojit") as handle:
        assert set(handle.info.capabilities.native_gates) == set(GATES) - {"Unitary"}
        for name in sorted(GATES):
            for gate in gate_variants(name, 5, rng):
                circuit = Circuit(5)
                circuit.add([gates.U3(q, *rng.uniform(-3, 3, 3)) for q in range(5)])
                circuit.add(gate)
                np.testing.assert_allclose(handle.execute(circuit).state(),
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


def test_a_python_without_qibojit_is_told_what_to_install() -> None:
    """The test suite's own Python has no qibojit: the backend started there exits at once."""
    package = Path(__file__).parent.parent
    start = f"import sys; sys.path.insert(0, {str(package)!r}); " \
            "from qibo_backend_qibojit import main; main()"
    run = subprocess.run([sys.executable, "-c", start], input="", capture_output=True,
                         text=True, timeout=60)
    assert run.returncode != 0 and "pip install qibojit" in run.stderr
    assert run.stdout == ""
