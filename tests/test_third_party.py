"""The example third-party backend, installed as a third party would install it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qibo_core import Circuit, Handle, gates, list_backends
from qibo_core.client import close_shared
from qibo_core.testing import check

EXAMPLE = Path(__file__).parent.parent / "examples" / "qibo-backend-dense"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package pip-installed into a folder of its own (nothing else touched)."""
    target = tmp_path_factory.mktemp("dense")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), str(EXAMPLE)], check=True, capture_output=True)
    return target


@pytest.fixture
def on_path(installed: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATH", f"{installed / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", str(installed))
    return installed


def test_it_is_found_and_runs_circuits(on_path: Path, reference: Handle) -> None:
    assert "dense" in {b.name for b in list_backends()}
    circuit = Circuit(3)
    circuit.add([gates.H(0), gates.CRY(0, 2, 0.4), gates.SWAP(1, 2), gates.M(0, 1, 2)])
    result = circuit.execute(backend="dense", nshots=100, seed=2)
    np.testing.assert_allclose(result.state(), reference.execute(circuit).state(), atol=1e-12)
    assert sum(result.frequencies().values()) == 100
    close_shared()


def test_it_passes_the_conformance_kit(on_path: Path) -> None:
    report = check([str(on_path / "bin" / "qibo-backend-dense")])
    assert report.passed, report.text()
