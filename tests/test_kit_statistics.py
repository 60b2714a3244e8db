"""The kit's statistical tests: the false-failure rate they state is a true bound, and they
catch what they are for."""

from __future__ import annotations

import math

import numpy as np

from qibo_core.testing import conformance
from qibo_core.testing.checks import CHECKS
from qibo_core.testing.statistics import (
    MAX_TESTS,
    binomial_misfit,
    misfit,
)


def flagged_probability(n: int, p: float, rate: float) -> float:
    """The exact chance that binomial_misfit flags binomial(n, p) draws."""
    return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k)
               for k in range(n + 1) if binomial_misfit(k, n, p, "x", rate))


def test_the_stated_rate_bounds_the_exact_chance_of_a_false_failure() -> None:
    for n, p, rate in ((40, 0.5, 0.05), (200, 0.1, 0.01), (1000, 0.5, 1e-4), (500, 0.02, 1e-3)):
        assert 0 < flagged_probability(n, p, rate) <= rate


def test_deviations_are_caught() -> None:
    rng = np.random.default_rng(1)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    counts = rng.multinomial(5000, p)
    fair = {format(k, "02b"): int(c) for k, c in enumerate(counts) if c}
    assert not misfit(fair, p, 5000)
    assert "outcome 00" in misfit(fair, p[::-1], 5000)
    assert "its probability is 0.0e+00" in misfit({"00": 5, "01": 4, "11": 1},
                                                  np.array([0.5, 0.5, 0, 0]), 10)
    assert "not a bitstring" in misfit({"2": 5000}, p, 5000)
    assert "add up to" in misfit(fair, p, 4999)
    assert binomial_misfit(1, 1999, 0.5, "changes")  # samples grouped by outcome


def test_a_run_makes_few_enough_tests_for_its_bound() -> None:
    assert conformance.CHECK_MODULES  # imported: every check is registered
    statistical = [c for c in CHECKS if "[statistical]" in c.title]
    agreement = 3  # sampling, trajectories, collapse (agreement.py)
    assert len(statistical) + agreement <= MAX_TESTS
