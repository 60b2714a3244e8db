"""Each class of bug a backend can have in versions 2 and 3, planted one at a time in the
reference (tests/backends/planted.py): the check written for it fails, naming the rule, with
the exchange that shows it. Without a bug every check passes (the NumPy backend's own tests run
the whole kit on it)."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from qibo_core.testing.conformance import run_checks
from qibo_core.testing.negotiation_checks import Negotiation, negotiate
from qibo_core.testing.report import Outcome, Status

PLANTED = Path(__file__).parent / "backends" / "planted.py"
WORKERS = 4
"""Backends checked at once: each check mostly waits for a process to start."""

CAUGHT = [
    # bug planted, a text of the check's name, a text its message must hold
    ("y-sign", "every Pauli factor", "opposite sign"),
    ("mirrored-pauli", "every Pauli factor", "qubit n-1-q"),
    ("density-as-vector", "state/expectation on a density matrix", "on a 3-qubit density"),
    ("shared-ids", "id of its own", "both prepared as"),
    ("complex-coefficient", "observables: real coefficients", "complex coefficient"),
    ("reset-ignored", "RESET returns", "RESET after X"),
    ("conditions-ignored", "a condition applies", "m reading 0"),
    ("no-collapse", "collapses the state", "probability 1/4"),
    ("no-collapse", "collapsed and renormalised", "did not collapse"),
    ("not-renormalised", "collapsed and renormalised", "not renormalised"),
    ("trajectory-not-renormalised", "K_i psi renormalised", "not renormalised"),
    ("transposed-density", "not transposed", "rows and columns swapped"),
    ("grouped-samples", "order the shots were drawn", "grouped by outcome"),
    ("closing-bits-first", "M entries' bits first", "then qubits 1 and 3"),
    ("streamed-density-refused", "streamed into a density matrix", "state/apply failed"),
    ("fields-ignored", "M takes only register", "does not take"),
    ("fields-ignored", "a channel takes no controls", "a channel with"),
    ("i-factors-unchecked", "observables: real coefficients", "I5 on 2 qubits"),
    ("leading-zeros", "observables: real coefficients", "'Z00'"),
    ("tab-accepted", "observables: real coefficients", "a tab"),
    ("psd-unchecked", "eigenvalue below -1e-6", "eigenvalue -0.2"),
    ("segment-without-samples", "samplesSegment without samples", "without samples"),
    ("data-and-segment", "both data and segment", "'data' and 'segment'"),
    ("squared-norm", "2-norm", "must be taken"),
    ("density-counts-n", "maxQubits bounds a density matrix", "past maxQubits"),
    ("default-registers-elsewhere", "register<k>", "register1"),
    ("measured-midway-closes", "measured midway may be acted on", "already measured"),
]
NEGOTIATION = [
    ("higher-version", "session at version 2", "not the 2 asked for"),
    ("expectation-in-v2", "session at version 2", "'expectation', a feature of version 3"),
    ("v3-methods-in-v2", "session at version 2", "answers it MethodNotFound"),
    ("v2-fields-in-v1", "session at version 1", "a feature of version 2"),
    ("device-before-v3", "session at version 1", "options.device"),
]


def planted(bug: str) -> list[str]:
    return [sys.executable, str(PLANTED), bug]


@pytest.fixture(scope="module")
def found() -> Negotiation:
    """What the sessions at every version find on the backend without a bug."""
    negotiation = negotiate(planted("none"), None)
    assert all(o.passed for o in negotiation.outcomes), negotiation.outcomes
    return negotiation


@pytest.fixture(scope="module")
def caught(found: Negotiation) -> dict[tuple[str, str], list[Outcome]]:
    """The outcomes of each case of CAUGHT."""
    cases = {(bug, check) for bug, check, _ in CAUGHT}
    with ThreadPoolExecutor(WORKERS) as pool:
        running = {case: pool.submit(run_checks, planted(case[0]), found, [case[1]])
                   for case in sorted(cases)}
        return {case: future.result() for case, future in running.items()}


@pytest.fixture(scope="module")
def sessions() -> dict[str, list[Outcome]]:
    """The outcomes of the sessions at every version of each backend of NEGOTIATION."""
    with ThreadPoolExecutor(WORKERS) as pool:
        running = {bug: pool.submit(negotiate, planted(bug), None)
                   for bug in sorted({bug for bug, _, _ in NEGOTIATION})}
        return {bug: future.result().outcomes for bug, future in running.items()}


def failure(outcomes: list[Outcome]) -> Outcome:
    failed = [o for o in outcomes if o.status is Status.FAIL]
    assert len(failed) == 1, [(o.name, o.status, o.message) for o in outcomes]
    return failed[0]


@pytest.mark.parametrize(("bug", "check", "says"), CAUGHT)
def test_the_check_catches_the_planted_bug(
        bug: str, check: str, says: str, caught: dict[tuple[str, str], list[Outcome]]) -> None:
    failed = failure(caught[bug, check])
    assert says in failed.message, failed.message
    assert failed.message.startswith("§"), failed.message  # the section whose rule it broke
    assert any(line.startswith("< ") for line in failed.exchange)  # the exchange shows it


@pytest.mark.parametrize(("bug", "session", "says"), NEGOTIATION)
def test_a_session_at_each_version_catches_the_planted_bug(
        bug: str, session: str, says: str, sessions: dict[str, list[Outcome]],
        found: Negotiation) -> None:
    failed = next(o for o in sessions[bug] if session in o.name)
    assert failed.status is Status.FAIL and says in failed.message, failed
    assert any(line.startswith("< ") for line in failed.exchange)
    assert next(o for o in found.outcomes if session in o.name).passed


def test_a_version_1_backend_is_held_to_version_1_and_security_rules() -> None:
    """A backend that speaks only version 1 skips the rules later versions brought (an H with a
    theta, qubits []), and is still held to the security rule of 2.5."""
    negotiation = negotiate(planted("version-1-only"), None)
    assert negotiation.profile.newest == 1
    outcomes = {o.name: o for o in run_checks(planted("version-1-only"), negotiation,
                                              ["parameter a gate does not take", "qubits is "
                                               "InvalidParams", "shm/attach", "4.11"])}
    skipped = [o for o in outcomes.values() if o.status is Status.SKIP]
    assert len(skipped) >= 3 and all("protocol version" in o.message for o in skipped)
    assert any("[security]" in name and o.passed for name, o in outcomes.items())
