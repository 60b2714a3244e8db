"""The conformance kit: does an executable implement the protocol, and agree with the reference?

`qibo-core check BACKEND` runs it from the command line; from a third party's own tests:

    from qibo_core.testing import check
    def test_conformance():
        report = check(["qibo-backend-foo"])
        assert report.passed, report.text()

Protocol checks (protocol_checks.py) talk raw JSON lines to fresh processes, so a failure shows
the exchange. Agreement checks (agreement.py) drive the backend through a client handle and
compare every state with the reference simulator's, gate kind by gate kind, then on random
circuits and in sampling statistics.
"""

from __future__ import annotations

from ..client import Handle, connect
from ..client.spawned import ProcessChannel
from ..errors import QiboCoreError, RequestTimeout
from .agreement import agreement_checks
from .contract_checks import CONTRACT_CHECKS
from .protocol_checks import PROTOCOL_CHECKS, REPLY_TIMEOUT, Exchange
from .reference import ReferenceBackend
from .report import CheckFailed, Hung, Outcome, Report


def check(executable: list[str]) -> Report:
    """Run every check against `executable` (an argv); a report of what passed and why not.

    Each request has REPLY_TIMEOUT seconds: a backend that hangs fails the check where it hung,
    and the checks after it are reported as not run."""
    report = Report(executable)
    hung = ""
    for name, run in [*PROTOCOL_CHECKS, *CONTRACT_CHECKS]:
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
    try:
        handle = Handle(ProcessChannel(executable, name="under test"), timeout=REPLY_TIMEOUT)
    except QiboCoreError as exc:
        report.outcomes.append(Outcome("connect through the client", False, str(exc)))
        return report
    with handle, connect(ReferenceBackend()) as reference:
        for name, agree in agreement_checks(handle, reference):
            try:
                agree()
                report.outcomes.append(Outcome(name, True))
            except (CheckFailed, QiboCoreError) as exc:
                report.outcomes.append(Outcome(name, False, str(exc)[:3000]))
                if isinstance(exc, RequestTimeout):
                    break
    return report
