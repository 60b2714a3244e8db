"""State vectors that Aer works on in place: complex128 NumPy arrays on the CPU, handed to an
AerState without a copy (`initialize(array, copy=False)`). The AerState buffers gates and
applies them at `flush`, fused as an AerSimulator run fuses them; `move_to_ndarray` hands the
array back. Gates go in flushes cut between the groups Aer fuses, with the request's checkpoint
in between.

Aer does this for double precision on the CPU only: `initialize` refuses other precisions and
devices, and a single-precision AerState hands back an empty array (qiskit-aer 0.18.2); those
states, and density matrices, go by runs.py. Qubit q here is Aer's n-1-q, so Aer's index equals
ours.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from qibo_core.circuit import Gate
from qibo_core.server import Checkpoint
from qibo_core.server.backend import Counts

FUSED_QUBITS = 5
"""Aer fuses gates into operations on up to this many qubits (its default)."""
GROUP_WORK = 2**26
"""Groups of gates times amplitudes per flush, a group being consecutive gates on at most
FUSED_QUBITS qubits, which Aer can fuse into one pass over the state: 4 groups at 24 qubits
(about 35 gates of the layered circuit, 16 of the QFT; 0.5-1 s on this machine's two cores).
A cancelled request stops after the flush under way."""
MAX_FLUSH = 4096
"""Gates per flush at most: Aer fuses 10,000 operations or more on several threads."""
FUSION_THRESHOLD = 14
"""Aer fuses gates on states of more qubits than this (its default). An AerState compares it
with the qubits a flush's gates reach, not the state's: it is applied per state here."""
_END = np.eye(2, dtype=complex)
"""What ends every flush: Aer 0.18.2's diagonal fusion reads past the end of a flush whose
last gates are diagonal (a crash or std::bad_alloc, now and then). An identity matrix costs Aer
nothing."""

HALF_PI = math.pi / 2
_U: dict[str, Callable[[dict[str, float]], tuple[float, float, float, float]]] = {
    "H": lambda p: (HALF_PI, 0.0, math.pi, 0.0),
    "SX": lambda p: (HALF_PI, -HALF_PI, HALF_PI, math.pi / 4),
    "SXDG": lambda p: (-HALF_PI, -HALF_PI, HALF_PI, -math.pi / 4),
    "RX": lambda p: (p["theta"], -HALF_PI, HALF_PI, 0.0),
    "RY": lambda p: (p["theta"], 0.0, 0.0, 0.0),
    "U2": lambda p: (HALF_PI, p["phi"], p["lam"], -(p["phi"] + p["lam"]) / 2),
    "U3": lambda p: (p["theta"], p["phi"], p["lam"], -(p["phi"] + p["lam"]) / 2),
}
"""Gates on one target that are qiskit's U(theta, phi, lambda) times exp(i gamma) with qibo's
phase: (theta, phi, lambda, gamma) from their parameters. Aer's multi-controlled U takes any
controls, so CH, CRX... are the same."""
_U.update({"C" + name: _U[name] for name in ("H", "SX", "RX", "RY", "U2", "U3")})
_DIAGONAL = frozenset({"Z", "S", "SDG", "T", "TDG", "RZ", "U1", "CZ", "CCZ", "CRZ", "CU1", "RZZ"})
"""Gates with a diagonal matrix: Aer's diagonal operation, which Aer fuses into diagonals (as it
does qiskit's p, cp, rz and rzz)."""
_MULTI_CONTROLLED = {"X": "mcx", "CNOT": "mcx", "TOFFOLI": "mcx", "Y": "mcy", "CY": "mcy",
                     "SWAP": "mcswap"}
"""Gates that are Aer's multi-controlled X, Y or SWAP, with any controls."""
NATIVE = _DIAGONAL | frozenset(_MULTI_CONTROLLED) | frozenset(_U) | {"I"}
"""The gates that go as Aer's own operations rather than as unitary matrices."""


class Zero:
    """|0...0> of `nqubits`, not made into an array until it is read: Aer makes it."""

    def __init__(self, nqubits: int) -> None:
        self.nqubits = nqubits


def flushes(gates: Sequence[Gate], n: int) -> list[int]:
    """Where each flush starts, then the end: GROUP_WORK / 2**n groups a flush, cut between
    groups (a group split across two flushes costs Aer a pass more), MAX_FLUSH gates at most."""
    per_flush = max(1, GROUP_WORK >> n)
    starts = [0]
    groups, support = 0, frozenset[int]()  # groups begun in this flush; the last one's qubits
    for i, gate in enumerate(gates):
        joined = support.union(gate.all_qubits)
        if groups and len(joined) <= FUSED_QUBITS and i - starts[-1] < MAX_FLUSH:
            support = joined
            continue
        if groups == per_flush or i - starts[-1] >= MAX_FLUSH:
            starts.append(i)
            groups = 0
        groups, support = groups + 1, frozenset(gate.all_qubits)
    return [*starts, len(gates)]


def evolve(state: np.ndarray | Zero, gates: Sequence[Gate], n: int, threads: int | None,
           checkpoint: Checkpoint) -> np.ndarray:
    """`gates` applied to `state` in place (|0...0> becomes an array Aer allocated)."""
    aer = _open(state, n, threads)
    try:
        bounds = flushes(gates, n)
        for start, end in zip(bounds, bounds[1:], strict=False):
            checkpoint(start, len(gates))
            for gate in gates[start:end]:
                _buffer(aer, gate, n)
            aer.apply_unitary([0], _END)
            aer.flush()
    except BaseException:
        _release(aer)
        raise
    array: np.ndarray = aer.move_to_ndarray()
    return array


def probabilities(state: np.ndarray, qubits: Sequence[int], threads: int | None) -> np.ndarray:
    """The outcome probabilities of `qubits` (the first most significant), summed by Aer in one
    pass over the state."""
    n = state.size.bit_length() - 1
    aer = _open(state, n, threads)
    try:
        return np.array(aer.probabilities([n - 1 - q for q in reversed(qubits)]))
    finally:
        _release(aer)


def sample(state: np.ndarray, qubits: Sequence[int], nshots: int, seed: int | None,
           threads: int | None) -> Counts:
    """Counts of each outcome of `qubits` over `nshots` shots drawn by Aer's sampler, which
    needs memory for the shots, not for the probabilities of every outcome."""
    n = state.size.bit_length() - 1
    aer = _open(state, n, threads)
    try:
        aer.set_seed(int(np.random.default_rng(seed).integers(2**63)))  # Aer's are 64-bit
        drawn = aer.sample_counts([n - 1 - q for q in reversed(qubits)], nshots)
    finally:
        _release(aer)
    outcomes = sorted(drawn)
    return Counts(np.array(outcomes, dtype=np.int64),
                  np.array([drawn[o] for o in outcomes], dtype=np.int64))


_stranded: list[Any] = []
"""AerStates that could not hand their array back (_release)."""


def _open(state: np.ndarray | Zero, n: int, threads: int | None) -> Any:
    """An AerState holding `state` without a copy, or |0...0> it allocates."""
    from qiskit_aer.quantum_info.states.aer_state import AerState

    aer = AerState(method="statevector")
    if threads:
        aer.configure("parallel_state_update", threads)
    if n > FUSION_THRESHOLD:
        aer.configure("fusion_threshold", 0)
    if isinstance(state, Zero):
        aer.allocate_qubits(n)
        aer.initialize()
    else:
        aer.initialize(state, copy=False)
    return aer


def _release(aer: Any) -> None:
    """Hand the array back to NumPy, also after a failure (Aer first applies what it still
    buffers). An AerState that cannot is kept for ever: collected, it would free NumPy's
    memory."""
    try:
        aer.move_to_ndarray()
    except Exception:
        _stranded.append(aer)


def _buffer(aer: Any, gate: Gate, n: int) -> None:
    """`gate` buffered in `aer` (qubit q is Aer's n-1-q): one of Aer's own operations where it
    has qibo's matrix and phase, a unitary otherwise (controls folded in)."""
    if gate.name == "I":
        return
    controls = [n - 1 - q for q in gate.controls]
    targets = [n - 1 - q for q in gate.targets]
    # Aer takes a matrix's or diagonal's first qubit as the least significant: reversed.
    reversed_qubits = [*reversed(targets), *reversed(controls)]
    if gate.name in _DIAGONAL:
        diagonal = np.ones(2 ** len(reversed_qubits), dtype=complex)
        diagonal[-2 ** len(targets):] = np.diagonal(gate.matrix())
        aer.apply_diagonal(reversed_qubits, diagonal)
    elif gate.name in _MULTI_CONTROLLED:
        getattr(aer, f"apply_{_MULTI_CONTROLLED[gate.name]}")(controls, *targets)
    elif gate.name in _U:
        theta, phi, lam, gamma = _U[gate.name](gate.params)
        if gate.is_dagger:  # (exp(i gamma) U(theta, phi, lambda))^dagger
            theta, phi, lam, gamma = -theta, -lam, -phi, -gamma
        aer.apply_mcu(controls, targets[0], theta, phi, lam, gamma)
    else:
        matrix = gate.matrix()
        if controls:
            full = np.eye(2 ** len(reversed_qubits), dtype=complex)
            full[-len(matrix):, -len(matrix):] = matrix
            matrix = full
        aer.apply_unitary(reversed_qubits, np.array(matrix, dtype=complex, order="C"))
