"""qibo-backend-numpy as a separate executable: the conformance kit, through its pytest fixture."""

from __future__ import annotations

from qibo_core.client.discovery import find_backend
from qibo_core.testing import Report


def test_the_conformance_kit_passes(conformance) -> None:  # type: ignore[no-untyped-def]
    report: Report = conformance([find_backend("numpy")])
    assert report.passed, report.text()
