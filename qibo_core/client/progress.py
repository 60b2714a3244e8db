"""A text progress bar on stderr, for long runs (`qibo-core run`, `execute_many`)."""

from __future__ import annotations

import sys

WIDTH = 40


class Bar:
    """Call with (done, total) as work advances; it redraws one line of stderr."""

    def __init__(self, unit: str) -> None:
        self.unit = unit

    def __call__(self, done: int, total: int) -> None:
        share = done / max(total, 1)
        filled = round(WIDTH * share)
        print(f"\r{'█' * filled}{'·' * (WIDTH - filled)} {share:6.1%} of {total} {self.unit}",
              end="" if done < total else "\n", file=sys.stderr, flush=True)
