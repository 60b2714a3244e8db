"""The Node client under examples/ drives our backends (the protocol from another language)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

NODE = shutil.which("node")
DEMO = Path(__file__).parent.parent / "examples" / "node-client" / "demo.js"

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed on this machine")


@pytest.mark.parametrize("backend", ["numpy", "qulacs"])
def test_the_node_client_runs_streams_recovers_and_shuts_down(backend: str) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    run = subprocess.run([str(NODE), str(DEMO), backend], capture_output=True, text=True,
                         env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    steps = {s["step"]: s for s in map(json.loads, run.stdout.splitlines())}
    assert steps["connected"]["server"] == backend
    assert steps["connected"]["protocolVersion"] == 2
    frequencies = steps["execute"]["frequencies"]
    assert set(frequencies) <= {"00", "11"} and sum(frequencies.values()) == 1000
    np.testing.assert_allclose(steps["execute"]["state"],
                               [[2**-0.5, 0], [0, 0], [0, 0], [2**-0.5, 0]], atol=1e-12)
    # X on qubit 0, RY(1.2) on qubit 2: probabilities of (q0, q2) are 0, 0, cos^2, sin^2
    np.testing.assert_allclose(steps["streamed"]["probabilities"],
                               [0, 0, np.cos(0.6) ** 2, np.sin(0.6) ** 2], atol=1e-12)
    sample = steps["streamed"]["sample"]
    assert set(sample) <= {"01", "11"} and sum(sample.values()) == 100
    assert steps["gate failed"] == {"step": "gate failed", "caught": True, "code": -32004,
                                    "index": 2}
    assert steps["usable after"]["amplitudes"] == 8
    assert steps["closed"]["exitCode"] == 0
    assert steps["crash"]["caught"] and "SIGKILL" in steps["crash"]["message"]
