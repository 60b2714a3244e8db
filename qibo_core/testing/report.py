"""What a conformance run reports: each check's outcome, and the exchange that failed."""

from __future__ import annotations

from dataclasses import dataclass, field


class CheckFailed(Exception):
    """A check's expectation was not met."""


class Hung(CheckFailed):
    """The backend did not answer in time: later checks would only wait too."""


@dataclass
class Outcome:
    name: str
    passed: bool
    message: str = ""
    exchange: list[str] = field(default_factory=list)


@dataclass
class Report:
    executable: list[str]
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    def text(self) -> str:
        lines = [f"conformance of {' '.join(self.executable)}"]
        for o in self.outcomes:
            lines.append(f"  {'PASS' if o.passed else 'FAIL'}  {o.name}"
                         + (f": {o.message}" if o.message else ""))
            lines += [f"          {line}" for line in o.exchange[-12:]]
        failed = sum(not o.passed for o in self.outcomes)
        lines.append(f"{len(self.outcomes) - failed} passed, {failed} failed")
        return "\n".join(lines)
