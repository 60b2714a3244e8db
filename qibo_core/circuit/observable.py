"""Observable: a sum of Pauli strings with real coefficients, `"Z0 Z1 + 0.5 X2 - Y3"`, and its
expectation value on a state vector or a density matrix, computed with bit flips and signs
(never a 2^n x 2^n matrix)."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from typing import Any, Union

import numpy as np

from ..errors import CircuitError
from ..protocol.messages import TermData

Pauli = tuple[tuple[str, int], ...]
"""A Pauli string: (letter, qubit) pairs, each qubit once; () is the identity."""

MAX_QUBIT_DIGITS = 6
"""A qubit index in a Pauli factor has at most this many digits (no state has a million
qubits)."""

ObservableLike = Union["Observable", str, Sequence[tuple[float, str]]]

_SIGN = re.compile(r"[+-]")
_FACTOR = re.compile(r"([A-Za-z]+)(0|[1-9][0-9]*)?", re.ASCII)
_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


class Observable:
    """`Observable("Z0 Z1 + 0.5 X2 - 0.25 Y3 Z5")`, or from terms as data:
    `Observable([(1.0, "Z0 Z1"), (0.5, "X2")])`. A term is an optional coefficient (`0.5` or
    `0.5 *`) and Pauli factors (`X`, `Y` or `Z` and a qubit); a coefficient alone is a multiple
    of the identity."""

    def __init__(self, spec: ObservableLike) -> None:
        if isinstance(spec, Observable):
            self.terms: tuple[tuple[float, Pauli], ...] = spec.terms
        elif isinstance(spec, str):
            self.terms = _parse_text(spec)
        else:
            try:
                key = tuple(tuple(term) for term in spec)
            except TypeError:
                raise CircuitError(f"an observable is text or (coefficient, 'Z0 Z1') terms, "
                                   f"got {spec!r}") from None
            self.terms = _parse_terms(key)
        if not self.terms:
            raise CircuitError("an observable needs at least one term")
        if not math.isfinite(sum(abs(c) for c, _ in self.terms)):
            raise CircuitError("the coefficients are too large: their magnitudes add up past "
                               "the largest float, so the expectation value could overflow")

    @property
    def nqubits(self) -> int:
        """The fewest qubits a state needs for it: its highest qubit + 1."""
        return 1 + max((q for _, pauli in self.terms for _, q in pauli), default=-1)

    def check(self, nqubits: int) -> None:
        for index, (_, pauli) in enumerate(self.terms):
            for _, q in pauli:
                if q >= nqubits:
                    raise CircuitError(f"term {index} ({_text(pauli)}): qubit {q} is outside "
                                       f"the {nqubits}-qubit circuit")

    def to_data(self) -> list[TermData]:
        return [TermData(c, _text(pauli)) for c, pauli in self.terms]

    @classmethod
    def from_data(cls, terms: Sequence[TermData]) -> Observable:
        return cls(tuple((t.coefficient, t.pauli) for t in terms))

    def expectation(self, state: np.ndarray) -> float:
        """<psi|O|psi> for a vector, Tr(O rho) for a density matrix (qubit 0 the most
        significant bit)."""
        n = state.shape[0].bit_length() - 1
        self.check(n)
        density = state.ndim == 2
        tensor = state.reshape((2,) * (2 * n if density else n))
        total = 0.0
        for coefficient, pauli in self.terms:
            flips = tuple(q for letter, q in pauli if letter in "XY")
            signs = [q for letter, q in pauli if letter in "YZ"]
            phase = 1j ** sum(letter == "Y" for letter, _ in pauli)
            if density:  # Tr(P rho) = i^nY sum_j (-1)^(j.z) rho[j, j ^ x]
                moved = np.flip(tensor, tuple(n + q for q in flips)).reshape(2**n, 2**n)
                diagonal = np.diagonal(moved).reshape((2,) * n)
                value = np.sum(_signed(diagonal, signs))
            else:  # <psi| X^x Z^z |psi> i^nY
                value = np.vdot(np.flip(tensor, flips), _signed(tensor, signs))
            total += coefficient * float((phase * value).real)
        return total

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Observable) and other.terms == self.terms

    def __repr__(self) -> str:
        return f"Observable({str(self)!r})"

    def __str__(self) -> str:
        return " + ".join(f"{c:g} {_text(p)}".strip() for c, p in self.terms)


def _signed(tensor: np.ndarray, qubits: Sequence[int]) -> np.ndarray:
    """`tensor` times -1 where an odd number of `qubits` are 1."""
    if not qubits:
        return tensor
    signed = tensor.copy()
    for q in qubits:
        index: list[slice | int] = [slice(None)] * tensor.ndim
        index[q] = 1
        signed[tuple(index)] *= -1
    return signed


def _text(pauli: Pauli) -> str:
    return " ".join(f"{letter}{q}" for letter, q in pauli)


@functools.lru_cache(maxsize=256)  # a sweep sends the same observable with every set
def _parse_text(text: str) -> tuple[tuple[float, Pauli], ...]:
    if not isinstance(text, str) or not text.strip():
        raise CircuitError("an observable's text is empty")
    signs, bodies = _split_terms(text.strip())
    if not bodies[0].strip():  # a leading sign
        signs, bodies = signs[1:], bodies[1:]
    terms = []
    for index, (sign, body) in enumerate(zip(signs, bodies, strict=True)):
        coefficient, pauli = _parse_term(index, body)
        terms.append((-coefficient if sign == "-" else coefficient, pauli))
    return tuple(terms)


def _split_terms(text: str) -> tuple[list[str], list[str]]:
    """The sign and the text of each term: split at every + and - but those of an exponent
    (1e-3), in one pass (a regular expression with whitespace around the sign backtracks
    quadratically on long runs of spaces)."""
    signs, bodies, start = ["+"], [], 0
    for match in _SIGN.finditer(text):
        at = match.start()
        if at >= 2 and text[at - 1] in "eE" and text[at - 2] in "0123456789.":
            continue
        bodies.append(text[start:at])
        signs.append(match.group())
        start = at + 1
    bodies.append(text[start:])
    return signs, bodies


def _parse_term(index: int, body: str) -> tuple[float, Pauli]:
    where = f"term {index} ({body.strip()!r})"
    words = body.replace("*", " ").split()
    if not words:
        raise CircuitError(f"{where}: empty (a sign with nothing after it?)")
    coefficient = 1.0
    if _NUMBER.fullmatch(words[0]):
        coefficient = float(words[0])
        words = words[1:]
        if not math.isfinite(coefficient):
            raise CircuitError(f"{where}: the coefficient is not finite")
    return coefficient, _pauli(where, words)


def _pauli(where: str, words: Sequence[str]) -> Pauli:
    factors: list[tuple[str, int]] = []
    named: set[int] = set()
    for word in words:
        match = _FACTOR.fullmatch(word)
        if match is None or len(match.group(1)) != 1 or match.group(1) not in "XYZI" \
                or match.group(2) is None or len(match.group(2)) > MAX_QUBIT_DIGITS:
            shown = word if len(word) <= 40 else word[:40] + "..."
            raise CircuitError(f"{where}: {shown!r} is not a Pauli factor (X, Y, Z or I and a "
                               "qubit written without leading zeros: 'Z0', 'X12')")
        letter, q = match.group(1), int(match.group(2))
        if q in named:
            raise CircuitError(f"{where}: qubit {q} appears twice")
        named.add(q)
        factors.append((letter, q))
    return tuple(sorted(factors, key=lambda f: f[1]))


@functools.lru_cache(maxsize=256)
def _parse_terms(terms: tuple[tuple[Any, ...], ...]) -> tuple[tuple[float, Pauli], ...]:
    parsed = []
    for index, term in enumerate(terms):
        try:
            coefficient, text = term
        except (TypeError, ValueError):
            raise CircuitError(f"term {index}: a (coefficient, 'Z0 Z1') pair, got "
                               f"{term!r}") from None
        if isinstance(coefficient, bool) or not isinstance(coefficient, (int, float)) \
                or not math.isfinite(coefficient):
            raise CircuitError(f"term {index}: the coefficient must be a finite real number, "
                               f"got {coefficient!r}")
        if not isinstance(text, str):
            raise CircuitError(f"term {index}: the Pauli string must be text, got {text!r}")
        parsed.append((float(coefficient), _pauli(f"term {index} ({text!r})", text.split())))
    return tuple(parsed)
