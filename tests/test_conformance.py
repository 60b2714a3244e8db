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
from qibo_core.server import Checkpoint, no_checkpoint
from qibo_core.testing import ReferenceBackend, check
from qibo_core.testing.agreement import agreement_checks
from qibo_core.testing.report import CheckFailed

BROKEN = Path(__file__).parent / "backends"
QIBO_CORE = os.path.join(sysconfig.get_path("scripts"), "qibo-core")


def test_a_wrong_gate_fails_with_the_difference() -> None:
    report = check([sys.executable, str(BROKEN / "wrong_rx.py")])
    failed = {o.name.split(" (")[0]: o.message for o in report.outcomes if not o.passed}
    exchange = next(o.exchange for o in report.outcomes if o.name.startswith("gate RX "))
    assert any(line.startswith("> ") and '"name":"RX"' in line for line in exchange)
    assert "amplitudes that differ" in failed["gate RX"] and "angles negated" in failed["gate RX"]
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
        for name, agree in agreement_checks(handle, reference):
            if name.startswith("gate "):
                try:
                    agree()
                except CheckFailed as exc:
                    found[name.split(" ")[1]] = str(exc)
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
