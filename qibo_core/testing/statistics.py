"""Statistical tests whose false-failure rate is bounded, not estimated.

Each test fails a correct backend (one whose shots are independent draws from the right
distribution) with probability at most FALSE_FAILURE, whatever the distribution and the number
of shots: a count X of n draws of probability p exceeds n q (q > p), or falls below it (q < p),
with probability at most exp(-n KL(q || p)) (the Chernoff-Hoeffding bound), so flagging only
deviations with n KL(q || p) > ln(2 k / FALSE_FAILURE) over k outcomes and both sides fails a
correct backend with probability at most FALSE_FAILURE (a union bound). A run counts its tests
(Tally): with at most MAX_TESTS of them, a correct backend fails a run by chance with
probability at most RUN_FALSE_FAILURE. A seed makes a backend's draws repeatable; the bound is
over the draws a seed stands for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

FALSE_FAILURE = 1e-8
"""The most probable it is that one test fails a correct backend."""
RUN_FALSE_FAILURE = 1e-6
MAX_TESTS = round(RUN_FALSE_FAILURE / FALSE_FAILURE)
"""The most statistical tests one run may make, for RUN_FALSE_FAILURE to hold."""
IMPOSSIBLE = 1e-15
"""Outcomes less probable than this count as impossible: one seen fails the test. With n
shots over k outcomes this adds at most n k IMPOSSIBLE to the false-failure rate (2e-9 for a
million shots over 2^11 outcomes)."""


def divergence(q: float, p: float) -> float:
    """KL(q || p) of two Bernoulli distributions (0 log 0 = 0)."""
    total = 0.0
    for a, b in ((q, p), (1 - q, 1 - p)):
        if a > 0:
            total += a * math.log(a / b) if b > 0 else math.inf
    return total


def binomial_misfit(successes: int, trials: int, p: float, what: str,
                    rate: float = FALSE_FAILURE) -> str:
    """What is wrong with `successes` of `trials` draws of probability `p` ("" when it fits),
    two-sided, false-failure rate at most `rate`."""
    q = successes / trials if trials else p
    if trials * divergence(q, p) <= math.log(2 / rate):
        return ""
    return (f"{what}: {successes} of {trials} ({q:.4f}) where {p:.4f} is expected; a correct "
            f"backend strays this far with probability below {rate:.0e}")


def misfit(frequencies: Mapping[str, int], probabilities: np.ndarray, nshots: int,
           rate: float = FALSE_FAILURE) -> str:
    """What is wrong with `frequencies` (bitstring -> count) as `nshots` draws from
    `probabilities` (indexed by the bitstrings read as binary numbers): "" when they fit.
    A correct backend gets a complaint with probability at most `rate`."""
    k = len(probabilities)
    width = k.bit_length() - 1
    keys = {format(i, f"0{width}b"): i for i in range(k)}
    strange = [key for key in frequencies if key not in keys]
    if strange:
        return f"outcome {strange[0]!r} is not a bitstring of the {width} qubits measured"
    if sum(frequencies.values()) != nshots:
        return f"the counts add up to {sum(frequencies.values())}, not the {nshots} shots"
    threshold = math.log(2 * k / rate)
    for key, index in keys.items():
        seen, p = frequencies.get(key, 0), float(probabilities[index])
        if p < IMPOSSIBLE:
            if seen:
                return f"outcome {key} was seen {seen} times; its probability is {p:.1e}"
            continue
        if nshots * divergence(seen / nshots, p) > threshold:
            return (f"outcome {key} came {seen} times in {nshots} shots ({seen / nshots:.4f}) "
                    f"where its probability is {p:.4f}; a correct backend strays this far "
                    f"with probability below {rate:.0e}")
    return ""


class Tally:
    """The statistical tests of one run, counted: the bound on its false-failure rate."""

    def __init__(self) -> None:
        self.count = 0

    @property
    def false_failure(self) -> float:
        return self.count * FALSE_FAILURE

    def misfit(self, frequencies: Mapping[str, int], probabilities: np.ndarray,
               nshots: int) -> str:
        self.count += 1
        return misfit(frequencies, probabilities, nshots)

    def binomial_misfit(self, successes: int, trials: int, p: float, what: str) -> str:
        self.count += 1
        return binomial_misfit(successes, trials, p, what)
