"""A pytest plugin for third-party backends: the `conformance` fixture.

Installed with qibo-core (entry point `pytest11`), so a backend's own test suite can write:

    def test_conformance(conformance):
        report = conformance(["qibo-backend-foo"])
        assert report.passed, report.text()
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .conformance import check
from .report import Report


@pytest.fixture
def conformance() -> Callable[[list[str]], Report]:
    """Runs qibo-core's conformance kit on an executable (an argv) and returns the report."""
    return check
