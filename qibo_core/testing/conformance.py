"""The conformance kit: does an executable implement the protocol, and agree with the reference?

`qibo-core check BACKEND` runs it from the command line; from a third party's own tests:

    from qibo_core.testing import check
    def test_conformance():
        report = check(["qibo-backend-foo"])
        assert report.passed, report.text()

A run first opens a session at every protocol version (negotiation_checks.py): that measures
how long the backend takes to start, which scales every later time limit, and finds the
versions and features it offers, which decide the checks that apply (the others are skipped,
never passed). The checks of CHECK_MODULES then talk raw JSON lines to a fresh process each, so
a failure shows the exchange. Agreement checks (agreement.py) drive the backend through a
client handle, its lines traced so that a failure shows the last of them too, and compare
states with the reference simulator's, gate kind by gate kind, then on random circuits and in
sampling statistics.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Sequence

from ..client import Handle, connect
from ..client.spawned import ProcessTransport
from ..client.trace import Trace
from ..errors import QiboCoreError, RequestTimeout
from .agreement import agreement_checks
from .checks import CHECKS, Check
from .exchange import Exchange
from .negotiation_checks import Negotiation, negotiate
from .profile import Limits, Profile
from .reference import ReferenceBackend
from .report import CheckFailed, Hung, Outcome, Report, Skipped, Status
from .statistics import Tally

CHECK_MODULES = ("base_checks", "contract_checks", "shm_checks", "initial_checks",
                 "sample_checks", "midcircuit_checks", "density_checks", "expectation_checks",
                 "run_checks", "transfer_checks")
"""The modules whose checks a run makes, in order (each registers its own: checks.py)."""
for _module in CHECK_MODULES:
    importlib.import_module(f".{_module}", __package__)
EXCHANGE_LINES = 12
"""The last lines of a failed agreement check's exchange that its report shows."""


def check(executable: list[str], *, timeout: float | None = None,
          only: Sequence[str] = ()) -> Report:
    """Run every check against `executable` (an argv); a report of what passed and why not.

    `timeout`: the seconds a backend has to answer each request (default: 10 plus 4 times its
    start, as measured). `only`: run just the checks whose names contain one of these texts
    (the sessions at every version always run: the others depend on them)."""
    report, tally = Report(executable), Tally()
    found = negotiate(executable, timeout)
    report.outcomes += [o for o in found.outcomes if _chosen(o.name, only) or not o.passed]
    report.start_seconds, report.reply_limit = found.profile.start_seconds, found.limits.reply
    report.outcomes += run_checks(executable, found, only, tally)
    stopped = found.hung or not found.profile.known or any(
        o.status is Status.NOT_RUN for o in report.outcomes)
    if not stopped:
        with tempfile.TemporaryDirectory(prefix="qibo-core-check-") as folder:
            _agreement(executable, report, os.path.join(folder, "trace"), found, tally, only)
    report.statistical_tests, report.false_failure = tally.count, tally.false_failure
    return report


def run_checks(executable: list[str], found: Negotiation, only: Sequence[str] = (),
               tally: Tally | None = None) -> list[Outcome]:
    """The registered checks (those whose names contain a text of `only`, if any), each on a
    fresh process, for a backend whose sessions at every version found what `found` holds."""
    tally = tally or Tally()
    hung = found.hung or ("" if found.profile.known else
                          "the backend opened no session at any version")
    outcomes = []
    for one in CHECKS:
        if not _chosen(one.name, only):
            continue
        if hung:
            outcomes.append(Outcome(one.name, Status.NOT_RUN, hung))
            continue
        outcome, timed_out = _run(one, executable, found.limits, found.profile, tally)
        outcomes.append(outcome)
        if timed_out:
            hung = f"the backend hung in the check {one.name!r}"
    return outcomes


def _chosen(name: str, only: Sequence[str]) -> bool:
    return not only or any(text.lower() in name.lower() for text in only)


def _run(one: Check, executable: list[str], limits: Limits, profile: Profile,
         tally: Tally) -> tuple[Outcome, bool]:
    """One check on a fresh process: its outcome, with the exchange when it failed; and
    whether the backend hung."""
    reason = one.reason_to_skip(profile)
    if reason:
        return Outcome(one.name, Status.SKIP, reason), False
    session = Exchange(executable, limits, profile, tally)
    passed = False
    try:
        one.run(session)
        passed = True
        return Outcome(one.name, Status.PASS), False
    except Skipped as exc:
        passed = True
        return Outcome(one.name, Status.SKIP, str(exc)), False
    except Exception as exc:  # anything a reply made us trip on is the backend's failure
        message = str(exc) if isinstance(exc, (CheckFailed, OSError)) else (
            f"unexpected reply ({type(exc).__name__}: {exc})")
        if not message.startswith("§"):  # the rule broken is the check's
            message = f"§{one.section}: {message}"
        return Outcome(one.name, Status.FAIL, message, session.exchange), isinstance(exc, Hung)
    finally:
        if session.process.poll() is None:  # after a failure, waiting would only be slow
            session.close(wait=limits.reply if passed else 0)


def _agreement(executable: list[str], report: Report, trace_path: str, found: Negotiation,
               tally: Tally, only: Sequence[str]) -> None:
    """The agreement checks through the client, every line exchanged recorded, so that a
    failure shows the last of its own."""
    newest = found.profile.newest
    offered = found.profile.capabilities[newest] if newest is not None else {}
    chosen = [(name, agree) for name, agree in agreement_checks(
        offered.get("gates", []), found.profile.features(), tally) if _chosen(name, only)]
    if not chosen:
        return
    trace = Trace(trace_path)
    try:
        handle = Handle(ProcessTransport(executable, name="under test", trace=trace),
                        timeout=found.limits.reply)
    except QiboCoreError as exc:
        trace.close()
        report.outcomes.append(Outcome("connect through the client", Status.FAIL, str(exc)))
        return
    with handle, connect(ReferenceBackend()) as reference:
        for name, agree in chosen:
            start = os.path.getsize(trace_path)
            try:
                agree(handle, reference)
                report.outcomes.append(Outcome(name, Status.PASS))
            except (CheckFailed, QiboCoreError) as exc:
                with open(trace_path, "rb") as f:
                    f.seek(start)
                    lines = f.read().decode(errors="replace").splitlines()
                exchange = [_cut(line) for line in lines[-EXCHANGE_LINES:]]
                report.outcomes.append(Outcome(name, Status.FAIL, str(exc)[:3000], exchange))
                if isinstance(exc, RequestTimeout):
                    break


def _cut(line: str) -> str:
    """A traced line as the report shows it: direction and message, 300 characters at most."""
    text = line.split("] ", 1)[-1]  # after "time name[pid] "
    return text if len(text) <= 300 else text[:300] + "..."
