"""The conformance kit catches broken backends, saying why (each backend's own tests run it on
that backend)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from qibo_core.client.discovery import find_backend
from qibo_core.testing import check

BROKEN = Path(__file__).parent / "backends"
QIBO_CORE = os.path.join(sysconfig.get_path("scripts"), "qibo-core")


def test_a_wrong_gate_fails_with_the_difference() -> None:
    report = check([sys.executable, str(BROKEN / "wrong_rx.py")])
    failed = {o.name.split(" (")[0]: o.message for o in report.outcomes if not o.passed}
    assert "amplitudes differ by" in failed["gate RX"]
    assert "gate RY" not in failed


def test_stdout_pollution_fails_the_protocol_checks_with_the_exchange() -> None:
    report = check([sys.executable, str(BROKEN / "banner.py")])
    first = report.outcomes[0]
    assert not first.passed and "not JSON" in first.message
    assert first.exchange[0].startswith('> {"jsonrpc": "2.0", "id": 1, "method": "initialize"')
    assert "< Welcome to my simulator!" in first.exchange[1]


def test_the_command_reports_and_sets_the_exit_code() -> None:
    good = subprocess.run([QIBO_CORE, "check", find_backend("numpy")], capture_output=True,
                          text=True, timeout=300)
    assert good.returncode == 0 and good.stdout.splitlines()[-1].endswith(" passed, 0 failed")
    bad = subprocess.run([QIBO_CORE, "check", sys.executable, str(BROKEN / "wrong_rx.py")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "FAIL  gate RX" in bad.stdout
