"""The conformance kit: does an executable implement the protocol, and agree with the reference?

`qibo-core check BACKEND` runs it from the command line; from a third party's own tests:

    from qibo_core.testing import check
    def test_conformance():
        report = check(["qibo-backend-foo"])
        assert report.passed, report.text()

Protocol and contract checks (protocol_checks.py, contract_checks.py) talk raw JSON lines to
fresh processes, so a failure shows the exchange. Agreement checks (agreement.py) drive the
backend through a client handle, its lines traced so that a failure shows the last of them too,
and compare every state with the reference simulator's, gate kind by gate kind, then on random
circuits and in sampling statistics.
"""

from __future__ import annotations

import os
import tempfile

from ..client import Handle, connect
from ..client.spawned import ProcessTransport
from ..client.trace import Trace
from ..errors import QiboCoreError, RequestTimeout
from .agreement import agreement_checks
from .contract_checks import CONTRACT_CHECKS
from .protocol_checks import PROTOCOL_CHECKS, REPLY_TIMEOUT, Exchange
from .reference import ReferenceBackend
from .report import CheckFailed, Hung, Outcome, Report
from .transfer_checks import TRANSFER_CHECKS


def check(executable: list[str]) -> Report:
    """Run every check against `executable` (an argv); a report of what passed and why not.

    Each request has REPLY_TIMEOUT seconds: a backend that hangs fails the check where it hung,
    and the checks after it are reported as not run."""
    report = Report(executable)
    hung = ""
    for name, run in [*PROTOCOL_CHECKS, *TRANSFER_CHECKS, *CONTRACT_CHECKS]:
        if hung:
            report.outcomes.append(Outcome(name, False, f"not run: {hung}"))
            continue
        session = Exchange(executable)
        passed = False
        try:
            run(session)
            passed = True
            report.outcomes.append(Outcome(name, True))
        except Exception as exc:  # anything a reply made us trip on is the backend's failure
            message = str(exc) if isinstance(exc, (CheckFailed, OSError)) else (
                f"unexpected reply ({type(exc).__name__}: {exc})")
            report.outcomes.append(Outcome(name, False, message, session.exchange))
            if isinstance(exc, Hung):
                hung = f"the backend hung in the check {name!r}"
        finally:
            if session.process.poll() is None:  # after a failure, waiting would only be slow
                session.close(wait=REPLY_TIMEOUT if passed else 0)
    if hung:
        return report
    with tempfile.TemporaryDirectory(prefix="qibo-core-check-") as folder:
        _agreement(executable, report, os.path.join(folder, "trace"))
    return report


EXCHANGE_LINES = 12
"""The last lines of a failed agreement check's exchange that its report shows."""


def _agreement(executable: list[str], report: Report, trace_path: str) -> None:
    """The agreement checks through the client, every line exchanged recorded, so that a
    failure shows the last of its own."""
    trace = Trace(trace_path)
    try:
        handle = Handle(ProcessTransport(executable, name="under test", trace=trace),
                        timeout=REPLY_TIMEOUT)
    except QiboCoreError as exc:
        trace.close()
        report.outcomes.append(Outcome("connect through the client", False, str(exc)))
        return
    with handle, connect(ReferenceBackend()) as reference:
        for name, agree in agreement_checks(handle, reference):
            start = os.path.getsize(trace_path)
            try:
                agree()
                report.outcomes.append(Outcome(name, True))
            except (CheckFailed, QiboCoreError) as exc:
                with open(trace_path, "rb") as f:
                    f.seek(start)
                    lines = f.read().decode(errors="replace").splitlines()
                exchange = [_cut(line) for line in lines[-EXCHANGE_LINES:]]
                report.outcomes.append(Outcome(name, False, str(exc)[:3000], exchange))
                if isinstance(exc, RequestTimeout):
                    break


def _cut(line: str) -> str:
    """A traced line as the report shows it: direction and message, 300 characters at most."""
    text = line.split("] ", 1)[-1]  # after "time name[pid] "
    return text if len(text) <= 300 else text[:300] + "..."
