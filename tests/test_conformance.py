"""The conformance kit catches broken backends, saying why (each backend's own tests run it on
that backend)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qibo_backend_numpy import NumpyBackend
from qibo_core import connect, gates
from qibo_core.circuit import Gate
from qibo_core.client.discovery import find_backend
from qibo_core.protocol import FEATURE_VERSIONS, METHODS, SUPPORTED_VERSIONS
from qibo_core.server import Checkpoint, no_checkpoint
from qibo_core.testing import ReferenceBackend, check
from qibo_core.testing.agreement import agreement_checks
from qibo_core.testing.negotiation_checks import FEATURE_REQUESTS
from qibo_core.testing.profile import Limits
from qibo_core.testing.report import CheckFailed, Status
from qibo_core.testing.statistics import RUN_FALSE_FAILURE

BROKEN = Path(__file__).parent / "backends"
QIBO_CORE = os.path.join(sysconfig.get_path("scripts"), "qibo-core")


def test_a_wrong_gate_fails_with_the_difference() -> None:
    report = check([sys.executable, str(BROKEN / "wrong_rx.py")], only=["gate RX ", "gate RY "])
    failed = {o.name.split(" (")[0]: o.message for o in report.outcomes if not o.passed}
    exchange = next(o.exchange for o in report.outcomes if o.name.startswith("§7 gate RX "))
    assert any(line.startswith("> ") and '"name":"RX"' in line for line in exchange)
    assert "amplitudes that differ" in failed["§7 gate RX"]
    assert "angles negated" in failed["§7 gate RX"]
    assert set(failed) == {"§7 gate RX"}


def test_stdout_pollution_fails_the_protocol_checks_with_the_exchange() -> None:
    report = check([sys.executable, str(BROKEN / "banner.py")])
    first = report.outcomes[0]
    assert first.status is Status.FAIL and "not JSON" in first.message
    assert first.exchange[0].startswith('> {"jsonrpc": "2.0", "id": 1, "method": "initialize"')
    assert "< Welcome to my simulator!" in first.exchange[1]
    assert not report.passed and report.count(Status.PASS) == 0


def test_what_cannot_run_is_never_reported_passed() -> None:
    """cat echoes every request: no session opens, so nothing else is tried, and nothing
    passes."""
    report = check(["cat"])
    failed = len(SUPPORTED_VERSIONS) + 1  # a session at each version, and their agreement
    assert report.count(Status.PASS) == 0 and report.count(Status.FAIL) == failed
    assert report.count(Status.NOT_RUN) > 40 and not report.passed
    assert report.text().splitlines()[-1] == f"0 passed, {failed} failed, " \
        f"{report.count(Status.NOT_RUN)} not run"


def test_the_command_reports_and_sets_the_exit_code() -> None:
    good = subprocess.run([QIBO_CORE, "check", find_backend("numpy")], capture_output=True,
                          text=True, timeout=600)
    lines = good.stdout.splitlines()
    assert good.returncode == 0 and lines[-1].endswith(" passed, 0 failed"), good.stdout
    bound = next(line for line in lines if "statistical tests" in line)
    assert float(bound.rsplit(" ", 1)[1]) <= RUN_FALSE_FAILURE
    bad = subprocess.run([QIBO_CORE, "check", sys.executable, str(BROKEN / "wrong_rx.py"),
                          "--only", "gate rx"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "FAIL    §7 gate RX" in bad.stdout
    assert "gate RY" not in bad.stdout


def test_one_check_by_name_with_a_time_limit() -> None:
    ran = subprocess.run([QIBO_CORE, "check", "numpy", "--only", "4.6 state/sample",
                          "--timeout", "30"], capture_output=True, text=True, timeout=300)
    outcomes = [line for line in ran.stdout.splitlines() if line.startswith("  PASS")]
    assert ran.returncode == 0 and "30 s allowed per request" in ran.stdout
    assert len(outcomes) == 1 and "§4.6 state/sample" in outcomes[0]


def test_every_feature_of_every_version_is_tried_in_older_sessions() -> None:
    """A feature is a method's (MethodNotFound in older sessions) or has a request that uses it
    (InvalidParams there): a new version's feature needs one or the other."""
    of_methods = {spec.feature for spec in METHODS.values() if spec.feature}
    assert set(FEATURE_VERSIONS) <= of_methods | set(FEATURE_REQUESTS)


def test_time_limits_scale_with_the_start() -> None:
    """A backend that takes a second to start is given 10 s plus 4 times its start for each
    request."""
    slow = [sys.executable, "-c", "import runpy, sys, time; time.sleep(1); "
            f"sys.argv = ['planted', 'none']; runpy.run_path({str(BROKEN / 'planted.py')!r}, "
            "run_name='__main__')"]
    report = check(slow, only=["4.6 state/sample"])
    assert report.passed, report.text()
    assert report.start_seconds is not None and report.start_seconds >= 1
    assert report.reply_limit == Limits.after_start(report.start_seconds).reply


class _Rewriting(NumpyBackend):
    """A NumPy backend that rewrites gates before applying them: a planted bug."""

    def rewrite(self, gate: Gate, n: int) -> list[Gate]:
        raise NotImplementedError

    def apply(self, state: Any, gates_: Sequence[Gate],
              checkpoint: Checkpoint = no_checkpoint) -> Any:
        rewritten = [g for gate in gates_ for g in self.rewrite(gate, state.nqubits)]
        return super().apply(state, rewritten, checkpoint)


class _Mirrored(_Rewriting):
    def rewrite(self, gate: Gate, n: int) -> list[Gate]:
        other = copy.copy(gate)
        other.qubits = tuple(n - 1 - q for q in gate.qubits)
        other.extra_controls = tuple(n - 1 - q for q in gate.extra_controls)
        return [other]


class _NegatedRX(_Rewriting):
    def rewrite(self, gate: Gate, n: int) -> list[Gate]:
        if type(gate) is gates.RX:
            other = copy.copy(gate)
            other.params = {"theta": -gate.params["theta"]}
            return [other]
        return [gate]


class _CnotOnZero(_Rewriting):
    def rewrite(self, gate: Gate, n: int) -> list[Gate]:
        if type(gate) is gates.CNOT and not gate.extra_controls:
            flip = gates.X(gate.qubits[0])
            return [flip, gate, flip]
        return [gate]


def failures(backend: NumpyBackend) -> dict[str, str]:
    with connect(backend) as handle, connect(ReferenceBackend()) as reference:
        found = {}
        capabilities = handle.info.capabilities
        for name, agree in agreement_checks(capabilities.gates, capabilities.features):
            if name.startswith("§7 gate "):
                try:
                    agree(handle, reference)
                except CheckFailed as exc:
                    found[name.split(" ")[2]] = str(exc)
        return found


def test_gate_failures_name_the_variant_and_the_shape_of_the_error() -> None:
    negated = failures(_NegatedRX())
    assert set(negated) == {"RX"}
    assert "variant placement" in negated["RX"] and '{"name":"RX"' in negated["RX"]
    assert "angles negated" in negated["RX"] and "initialState" in negated["RX"]
    assert "qubit order reversed" in failures(_Mirrored())["H"]
    on_zero = failures(_CnotOnZero())
    assert set(on_zero) == {"CNOT"}  # inputs are uploaded: no other gate check depends on it
    assert "controls are 0" in on_zero["CNOT"]
