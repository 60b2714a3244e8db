"""Circuits whose shots differ before the end (measurements with collapse=True, resets, gates
conditioned on an outcome), run on any backend, shot by shot where they must be, not naively.

The gates before the first collapse run once. At a collapse the shots split by outcome (a
multinomial draw from the outcome probabilities); each branch continues with its own copy of
the state, projected and renormalised, with all the shots that took it: a circuit with a few
mid-circuit measurements costs a few simulations, not one per shot. Branches are walked depth
first, so at most one copy per collapse is alive at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..circuit import Channel, Circuit, Gate, M, Operation, Reset
from ..circuit.gates import X
from .backend import Backend, Checkpoint
from .operators import Matrix, projector


@dataclass
class Leaf:
    """Shots that took the same branch to the end: their collapse outcomes, and the state."""

    count: int
    outcomes: dict[str, int]
    """Each collapsing measurement's register and what it read in these shots."""
    state: Any


def run_shots(backend: Backend, circuit: Circuit, start: Any, nshots: int,
              rng: np.random.Generator, checkpoint: Checkpoint,
              copy: Callable[[Any], Any]) -> list[Leaf]:
    """Every branch of `circuit` taken by some of `nshots` shots (one shot when nshots is 0),
    in the order walked; each leaf's state is the final state of its shots."""
    leaves: list[Leaf] = []
    _walk(backend, circuit.gates, 0, start, max(nshots, 1), {}, rng, checkpoint, copy, leaves)
    return leaves


def _walk(backend: Backend, ops: list[Operation], position: int, state: Any, count: int,
          outcomes: dict[str, int], rng: np.random.Generator, checkpoint: Checkpoint,
          copy: Callable[[Any], Any], leaves: list[Leaf]) -> None:
    gates: list[Gate] = []
    while position < len(ops) and isinstance(ops[position], Gate):
        gate = ops[position]
        assert isinstance(gate, Gate)
        if gate.condition is None or outcomes.get(gate.condition[0]) == gate.condition[1]:
            gates.append(gate)
        position += 1
    state = backend.apply(state, gates, checkpoint)
    if position == len(ops):
        leaves.append(Leaf(count, outcomes, state))
        return
    op = ops[position]
    if isinstance(op, Channel):
        _branch_kraus(backend, ops, position, op, state, count, outcomes, rng, checkpoint, copy,
                      leaves)
        return
    assert isinstance(op, (M, Reset))
    probabilities = backend.probabilities(state, op.qubits)
    probabilities = probabilities / probabilities.sum()
    counts = rng.multinomial(count, probabilities)
    taken = np.flatnonzero(counts)
    for index, outcome in enumerate(taken):
        branch = state if index == len(taken) - 1 else copy(state)  # the last takes the original
        after: list[Gate] = [projector(op.qubits, int(outcome), float(probabilities[outcome]))]
        if isinstance(op, Reset):
            width = len(op.qubits)
            after += [X(q) for k, q in enumerate(op.qubits) if (outcome >> (width - 1 - k)) & 1]
            seen = outcomes
        else:
            seen = {**outcomes, op.register_name: int(outcome)}  # type: ignore[dict-item]
        branch = backend.apply(branch, after, checkpoint)
        _walk(backend, ops, position + 1, branch, int(counts[outcome]), seen, rng, checkpoint,
              copy, leaves)


def _branch_kraus(backend: Backend, ops: list[Operation], position: int, channel: Channel,
                  state: Any, count: int, outcomes: dict[str, int], rng: np.random.Generator,
                  checkpoint: Checkpoint, copy: Callable[[Any], Any], leaves: list[Leaf]) -> None:
    """A channel on a state vector: each shot takes Kraus operator K_i with probability
    ||K_i psi||^2, and goes on with K_i psi renormalised (a sampled trajectory). When every K_i
    is a multiple of a unitary (Pauli noise, depolarizing), the probabilities are known without
    looking at the state."""
    weights = [float(np.real(np.trace(k.conj().T @ k))) / len(k) for k in channel.kraus]
    unitary_mixture = all(np.allclose(k.conj().T @ k, w * np.eye(len(k)))
                          for k, w in zip(channel.kraus, weights, strict=True))
    branches: list[Any] = []
    if unitary_mixture:
        probabilities = np.array(weights)
    else:  # try each operator on a copy: its norm is the probability
        probabilities = np.empty(len(channel.kraus))
        for i, k in enumerate(channel.kraus):
            branches.append(backend.apply(copy(state), [Matrix(k, channel.qubits)], checkpoint))
            probabilities[i] = float(backend.probabilities(branches[-1], channel.qubits).sum())
    counts = rng.multinomial(count, probabilities / probabilities.sum())
    taken = np.flatnonzero(counts)
    for index, choice in enumerate(taken):
        norm = 1 / np.sqrt(probabilities[choice])
        if branches:
            branch = backend.apply(branches[choice], [Matrix(
                norm * np.eye(2 ** len(channel.qubits)), channel.qubits)], checkpoint)
        else:
            branch = state if index == len(taken) - 1 else copy(state)
            branch = backend.apply(branch, [Matrix(norm * channel.kraus[choice],
                                                   channel.qubits)], checkpoint)
        _walk(backend, ops, position + 1, branch, int(counts[choice]), outcomes, rng,
              checkpoint, copy, leaves)


def outcomes(backend: Backend, circuit: Circuit, leaves: list[Leaf],
             rng: np.random.Generator) -> np.ndarray:
    """Every shot's bits (uint8, [nshots, measured qubits], in measurement order, shots in a
    random order): what each collapsing measurement read in its branch, then the closing
    measurements sampled from the branch's final state."""
    collapsing = [m for m in circuit.measurements if m.collapse]
    closing = [q for m in circuit.measurements if not m.collapse for q in m.qubits]
    rows = []
    for leaf in leaves:
        read = [bits(np.array([leaf.outcomes[m.register_name]]), len(m.qubits))  # type: ignore[index]
                for m in collapsing]
        prefix = np.hstack(read) if read else np.zeros((1, 0), dtype=np.uint8)
        counts = (backend.sample(leaf.state, closing, leaf.count, int(rng.integers(2**63)))
                  if closing else np.array([leaf.count]))
        ends = bits(np.repeat(np.arange(len(counts)), counts), len(closing))
        rows.append(np.hstack([np.repeat(prefix, leaf.count, axis=0), ends]))
    return rng.permutation(np.vstack(rows))


def frequencies(counts: np.ndarray, width: int) -> dict[str, int]:
    return {format(int(k), f"0{width}b"): int(counts[k]) for k in np.flatnonzero(counts)}


def bits(integers: np.ndarray, width: int) -> np.ndarray:
    """Each integer as a row of `width` bits (uint8), the first the most significant."""
    return ((integers[:, None] >> np.arange(width - 1, -1, -1)) & 1).astype(np.uint8)


def as_integers(rows: np.ndarray) -> np.ndarray:
    """`bits` undone: each row of bits as an integer, the first bit the most significant."""
    return rows.astype(np.int64) @ (1 << np.arange(rows.shape[1] - 1, -1, -1, dtype=np.int64))


def shot_bits(counts: np.ndarray, width: int, seed: int | None) -> np.ndarray:
    """Every shot's bits (uint8, [nshots, width]), in a random order: exactly the `counts`.
    Independent shots, given how many gave each outcome, are in uniformly random order."""
    outcomes = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(counts)), counts))
    return bits(outcomes, width)
