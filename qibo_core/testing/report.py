"""What a conformance run reports: each check's outcome, and the exchange that failed."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class CheckFailed(Exception):
    """A check's expectation was not met."""


class Hung(CheckFailed):
    """The backend did not answer in time: later checks would only wait too."""


class Skipped(Exception):
    """A check that does not apply to this backend (a feature it does not offer, a rule of a
    version it does not speak): reported as skipped, never as passed."""


class Status(enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"
    NOT_RUN = "NOT RUN"
    """Not tried: the backend hung in an earlier check."""


@dataclass
class Outcome:
    name: str
    status: Status
    message: str = ""
    exchange: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS


@dataclass
class Report:
    executable: list[str]
    outcomes: list[Outcome] = field(default_factory=list)
    start_seconds: float | None = None
    """How long the backend took to start and run its first circuit (the kit's first start)."""
    reply_limit: float | None = None
    """Seconds the backend had to answer each request (scaled from its start)."""
    statistical_tests: int = 0
    false_failure: float = 0.0
    """An upper bound on the chance that this run failed a correct backend by bad luck."""

    @property
    def passed(self) -> bool:
        """Nothing failed or went untried, and something passed."""
        return (all(o.status in (Status.PASS, Status.SKIP) for o in self.outcomes)
                and any(o.passed for o in self.outcomes))

    def count(self, status: Status) -> int:
        return sum(o.status is status for o in self.outcomes)

    def text(self) -> str:
        lines = [f"conformance of {' '.join(self.executable)}"]
        if self.start_seconds is not None and self.reply_limit is not None:
            lines.append(f"  started in {self.start_seconds:.2f} s; {self.reply_limit:.0f} s "
                         "allowed per request")
        for o in self.outcomes:
            message = f": {o.message}" if o.message else ""
            lines.append(f"  {o.status.value:<7} {o.name}{message}")
            lines += [f"          {line}" for line in o.exchange[-12:]]
        if self.statistical_tests:
            lines.append(f"{self.statistical_tests} statistical tests: a correct backend fails "
                         f"this run by chance with probability below {self.false_failure:.1e}")
        counts = [f"{self.count(s)} {word}" for s, word in (
            (Status.PASS, "passed"), (Status.FAIL, "failed"), (Status.SKIP, "skipped"),
            (Status.NOT_RUN, "not run")) if self.count(s) or s in (Status.PASS, Status.FAIL)]
        lines.append(", ".join(counts))
        return "\n".join(lines)
