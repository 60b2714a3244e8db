"""Circuits whose shots differ before the end (measurements with collapse=True, resets, gates
conditioned on an outcome, channels on a state vector), run on any backend, shot by shot where
they must be, not naively.

The gates before the first collapse run once. At a collapse the shots split by outcome (a
multinomial draw from the outcome probabilities); each branch continues with its own copy of
the state, projected and renormalised, with all the shots that took it: a circuit with a few
mid-circuit measurements costs a few simulations, not one per shot. Branches are walked depth
first from an explicit stack (a circuit of any length nests no calls), so at most one copy per
split on the way to the current branch is alive; each copy is counted against the memory budget
before it is made (`Branches`). A branch's shots are counted by outcome as it ends, and its
state dropped: memory grows with the outcomes seen, never with the number of shots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..circuit import Channel, Circuit, Gate, M, Reset
from ..circuit.gates import X
from ..protocol.state_maths import CHUNK_QUBITS, outcome_bits
from .backend import Backend, Checkpoint, Counts
from .memory import Budget, branch_bytes
from .operators import kraus_branch, projector


class Branches:
    """The states the shot engine holds: the start and each copy, counted against `budget`
    while alive; `close` gives back what is still counted."""

    def __init__(self, backend: Backend, budget: Budget, nqubits: int) -> None:
        self.backend, self.budget, self.nqubits = backend, budget, nqubits
        self.nbytes = backend.state_bytes(nqubits)
        self.work = branch_bytes(backend, nqubits)
        self.start: Any = None
        """The state the shots start from, until the engine takes it (so that nothing else
        keeps it alive once a branch has moved on from it)."""
        self.alive = 1
        budget.hold(self.nbytes)

    def copy(self, state: Any) -> Any:
        self.budget.check_hold(self.nbytes, self.work,
                               f"a copy of a {self.nqubits}-qubit state for a branch of shots "
                               f"({self.alive} held already)", self.nqubits)
        copied = self.backend.copy(state)
        self.alive += 1
        self.budget.hold(self.nbytes)
        return copied

    def drop(self) -> None:
        self.alive -= 1
        self.budget.release(self.nbytes)

    def close(self) -> None:
        for _ in range(self.alive):
            self.drop()


@dataclass
class _Run:
    """Shots about to run on from `position` with `state` (after `first`, the operator that
    took them to this branch): their registers read so far."""

    position: int
    state: Any
    count: int
    registers: dict[str, int]
    first: list[Gate] = field(default_factory=list)


@dataclass
class _Split:
    """Shots that parted at a collapse or a channel: each choice is (the operator to apply, the
    shots that took it, their registers). The last choice takes `state`, the others a copy."""

    position: int
    state: Any
    choices: list[tuple[list[Gate], int, dict[str, int]]] = field(default_factory=list)


def run_shots(backend: Backend, circuit: Circuit, nshots: int, rng: np.random.Generator,
              checkpoint: Checkpoint, branches: Branches) -> tuple[Any, Counts]:
    """Every branch of `circuit` taken by some of `nshots` shots (one shot when nshots is 0),
    from branches.start: the final state of the last branch walked, and the shots' outcomes of
    the measured qubits (collapsing measurements first, as circuit.measurements orders them),
    counted."""
    collapsing = [m for m in circuit.measurements if m.collapse]
    closing = [q for m in circuit.measurements if not m.collapse for q in m.qubits]
    counted: dict[int, int] = {}
    stack: list[_Run | _Split] = [_Run(0, branches.start, max(nshots, 1), {})]
    branches.start = None
    while True:
        run = _next(stack, branches)
        position, state = _run_gates(backend, circuit, run, checkpoint)
        if position < len(circuit.gates):
            op = circuit.gates[position]
            assert isinstance(op, (M, Reset, Channel))
            stack.append(_split(backend, op, state, run, position + 1, rng))
            del state
            continue
        if nshots:
            prefix = 0
            for m in collapsing:
                prefix = prefix << len(m.qubits) | run.registers[m.register_name]  # type: ignore[index]
            ends = (backend.sample(state, closing, run.count, int(rng.integers(2**63)))
                    if closing else Counts(np.zeros(1, np.int64), np.array([run.count])))
            for outcome, count in zip(ends.outcomes.tolist(), ends.counts.tolist(), strict=True):
                key = prefix << len(closing) | outcome
                counted[key] = counted.get(key, 0) + count
        if not stack:
            return state, _as_counts(counted, len(circuit.measured_qubits))
        del state
        branches.drop()


def _next(stack: list[_Run | _Split], branches: Branches) -> _Run:
    """The next branch to run: the top of the stack, or a split's next choice (on a copy of its
    state unless it is the last)."""
    item = stack.pop()
    if isinstance(item, _Run):
        return item
    after, count, registers = item.choices.pop(0)
    if item.choices:
        state = branches.copy(item.state)
        stack.append(item)
    else:
        state, item.state = item.state, None
    return _Run(item.position, state, count, registers, after)


def _run_gates(backend: Backend, circuit: Circuit, run: _Run,
               checkpoint: Checkpoint) -> tuple[int, Any]:
    """run.first, then the gates from run.position up to the next collapse, reset or channel
    (or the end), those conditioned on a register only where it reads their value, in one call
    of the backend: where it stopped, and the state."""
    ops, position = circuit.gates, run.position
    state, run.state = run.state, None
    gates = list(run.first)
    while position < len(ops) and isinstance(ops[position], Gate):
        gate = ops[position]
        assert isinstance(gate, Gate)
        if gate.condition is None or run.registers.get(gate.condition[0]) == gate.condition[1]:
            gates.append(gate)
        position += 1
    return position, backend.apply(state, gates, checkpoint) if gates else state


def _split(backend: Backend, op: M | Reset | Channel, state: Any, run: _Run, position: int,
           rng: np.random.Generator) -> _Split:
    """How `run`'s shots part at `op`: the outcomes (or Kraus operators) some of them took, in
    order, each with the operator that takes the state there, renormalised."""
    split = _Split(position, state)
    if isinstance(op, Channel):
        probabilities = kraus_probabilities(backend, op, state)
        counts = rng.multinomial(run.count, probabilities / probabilities.sum())
        for choice in np.flatnonzero(counts):
            branch = kraus_branch(op.kraus[choice], op.qubits, float(probabilities[choice]))
            split.choices.append(([branch], int(counts[choice]), run.registers))
        return split
    probabilities = backend.probabilities(state, op.qubits)
    probabilities = probabilities / probabilities.sum()
    counts = rng.multinomial(run.count, probabilities)
    width = len(op.qubits)
    for outcome in np.flatnonzero(counts):
        after: list[Gate] = [projector(op.qubits, int(outcome), float(probabilities[outcome]))]
        registers = run.registers
        if isinstance(op, Reset):
            after += [X(q) for k, q in enumerate(op.qubits) if (outcome >> (width - 1 - k)) & 1]
        else:
            registers = {**registers, op.register_name: int(outcome)}  # type: ignore[dict-item]
        split.choices.append((after, int(counts[outcome]), registers))
    return split


def kraus_probabilities(backend: Backend, channel: Channel, state: Any) -> np.ndarray:
    """||K_i psi||^2 for each Kraus operator K_i of `channel`: known without the state when
    every K_i is a multiple of a unitary (Pauli noise, depolarizing), else Tr(K_i^dagger K_i
    rho) from the reduced density matrix rho of the channel's qubits."""
    gram = [k.conj().T @ k for k in channel.kraus]
    weights = [float(np.real(np.trace(g))) / len(g) for g in gram]
    if all(np.allclose(g, w * np.eye(len(g))) for g, w in zip(gram, weights, strict=True)):
        return np.array(weights)
    rho = reduced_density_matrix(backend.to_array(state), channel.qubits)
    return np.array([max(0.0, float(np.real(np.sum(g * rho.T)))) for g in gram])


def reduced_density_matrix(amplitudes: np.ndarray, qubits: tuple[int, ...]) -> np.ndarray:
    """rho of `qubits` (2**k x 2**k, the first qubit most significant): psi's other qubits
    traced out, summed over chunks of the state (no temporary of the state's length)."""
    n = amplitudes.size.bit_length() - 1
    k = len(qubits)
    lead = max(0, n - CHUNK_QUBITS)
    """The qubits each chunk fixes: 0 .. lead-1; chunks differing in the channel's go together,
    so more are fixed while the block they make is larger than a chunk."""
    while lead < n and sum(q < lead for q in qubits) + n - lead > max(CHUNK_QUBITS, k):
        lead += 1
    outer = [q for q in range(lead) if q in qubits]
    others_outer = [q for q in range(lead) if q not in qubits]
    inner = n - lead
    tensor_axes = len(outer) + inner
    traced = [len(outer) + q - lead for q in range(lead, n) if q not in qubits]
    rho = np.zeros((2**k, 2**k), dtype=complex)
    order = sorted(qubits)
    for rest in range(2**len(others_outer)):
        chunks = []
        for value in range(2**len(outer)):
            prefix = 0
            for q in range(lead):
                if q in outer:
                    bit = (value >> (len(outer) - 1 - outer.index(q))) & 1
                else:
                    bit = (rest >> (len(others_outer) - 1 - others_outer.index(q))) & 1
                prefix = prefix << 1 | bit
            chunks.append(amplitudes[prefix << inner:(prefix + 1) << inner])
        block = np.stack(chunks).reshape((2,) * tensor_axes)
        part = np.tensordot(block, block.conj(), axes=(traced, traced))
        rho += part.reshape(2**k, 2**k)
    # rho's axes are the channel's qubits in ascending order: put them in the channel's order
    perm = [order.index(q) for q in qubits]
    return rho.reshape((2,) * 2 * k).transpose(perm + [k + p for p in perm]).reshape(2**k, 2**k)


def _as_counts(counted: dict[int, int], width: int) -> Counts:
    outcomes = sorted(counted)
    return Counts(np.array(outcomes, dtype=np.int64 if width < 64 else object),
                  np.array([counted[o] for o in outcomes], dtype=np.int64))


def frequencies(counts: Counts, width: int) -> dict[str, int]:
    """The outcomes as strings of bits, the first the most significant, with their counts:
    written by NumPy as rows of ASCII digits (1000 outcomes of 10 bits in 0.06 ms, where a
    format() each took 0.6), 2^16 outcomes at a time so that the rows take little beside the
    answer."""
    answer: dict[str, int] = {}
    for start in range(0, len(counts.counts), 2**16):
        part = slice(start, start + 2**16)
        digits = outcome_bits(counts.outcomes[part], width) + np.uint8(ord("0"))
        keys = digits.view(f"S{width}").reshape(-1).astype(f"U{width}")
        answer.update(zip(keys.tolist(), counts.counts[part].tolist(), strict=True))
    return answer


def shot_bits(counts: Counts, width: int, rng: np.random.Generator) -> np.ndarray:
    """Every shot's bits (uint8, [nshots, width]), in a random order: exactly the `counts`.
    Independent shots, given how many gave each outcome, are in uniformly random order. The
    rows are shuffled where they are made, each as one item (NumPy's fast one-dimensional
    shuffle): the answer is the only array of the shots' number."""
    rows = np.repeat(outcome_bits(counts.outcomes, width), counts.counts, axis=0)
    if width:
        rng.shuffle(rows.view(np.dtype((np.void, width))).reshape(-1))
    return rows
