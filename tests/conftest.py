"""Fixtures: every backend handle, in process and spawned, and the reference."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import HANDLES, make_handle

from qibo_core import Handle, connect
from qibo_core.testing import ReferenceBackend


@pytest.fixture(scope="module", params=HANDLES)
def handle(request: pytest.FixtureRequest) -> Iterator[Handle]:
    """Each backend, spawned and in process: code under test never asks which."""
    with make_handle(request.param) as h:
        yield h


@pytest.fixture(scope="session")
def reference() -> Iterator[Handle]:
    """The dense reference simulator every backend is checked against, in process."""
    with connect(ReferenceBackend()) as h:
        yield h

