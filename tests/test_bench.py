"""The benchmark script keeps working (its figures are read by people, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "scripts" / "bench.py"


@pytest.mark.backends("qulacs", "aer")
def test_quick_benchmark_runs(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    rows = json.loads(out.read_text())
    assert {r["target"] for r in rows} == {"1 rpc overhead", "2 streaming", "3 state transfer",
                                           "4 numpy speed", "5 spawn", "6 scaling",
                                           "7 depth", "8 variational",
                                           "9 backends", "10 c client",
                                           "11 small circuits", "12 benchmark suite"}
    assert all(r["min_ms"] <= r["median_ms"] <= r["max_ms"] for r in rows)
    assert "median ms" in run.stdout
