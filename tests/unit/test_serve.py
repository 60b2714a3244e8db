"""The backend executable's set-up that runs before its simulator loads."""

from __future__ import annotations

import os

import pytest

from qibo_core.server import idle_threads_sleep


def test_openmp_threads_sleep_when_idle_unless_the_user_chose(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    idle_threads_sleep()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"

    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    idle_threads_sleep()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"

    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("GOMP_SPINCOUNT", "300000")
    idle_threads_sleep()
    assert "OMP_WAIT_POLICY" not in os.environ
