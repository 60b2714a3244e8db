"""Agreement checks: a backend, driven through a client handle, against the reference.

Every gate it advertises (at random placements, daggered, with extra controls), random circuits
and sampling statistics. The builders here are shared with qibo-core's own test suite.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import cast

import msgspec
import numpy as np

from ..circuit import GATES, Circuit, Gate, gates
from ..client import Handle
from ..protocol import Feature
from .report import CheckFailed
from .statistics import Tally

ATOL = 1e-10
SHOTS = 20000
"""Shots of each statistical agreement check."""


def random_gate(name: str, qubits: Sequence[int], rng: np.random.Generator) -> Gate:
    """The gate `name` on the first of `qubits` it needs, with random parameters."""
    cls = GATES[name]
    if cls is gates.Unitary:
        z = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
        return gates.Unitary(np.linalg.qr(z)[0], *qubits[:2])
    size = cls.ncontrols + (cls.ntargets or 2)
    return cls(*qubits[:size], **{p: float(rng.uniform(-math.pi, math.pi))
                                  for p in cls.param_names})


def gate_variants(name: str, nqubits: int, rng: np.random.Generator) -> Iterator[Gate]:
    """The gate at a random placement with random parameters, its dagger, and it controlled by
    one and by every spare qubit (nqubits must leave one spare)."""
    for _, gate in labelled_variants(name, nqubits, rng):
        yield gate


def labelled_variants(name: str, nqubits: int,
                      rng: np.random.Generator) -> Iterator[tuple[str, Gate]]:
    """`gate_variants`, each with what it varies."""
    qubits = [int(q) for q in rng.permutation(nqubits)]
    gate = random_gate(name, qubits, rng)
    size = len(gate.qubits)
    yield "placement", gate
    yield "dagger", gate.dagger()
    yield "an extra control", gate.controlled_by(qubits[size])
    yield "dagger with every spare qubit a control", gate.dagger().controlled_by(*qubits[size:])


def scrambled(nqubits: int, rng: np.random.Generator) -> Circuit:
    """A circuit whose final state has distinct, generic amplitudes (no accidental agreement)."""
    circuit = Circuit(nqubits)
    for q in range(nqubits):
        circuit.add(gates.U3(q, *rng.uniform(-math.pi, math.pi, 3)))
    for q in range(nqubits - 1):
        circuit.add(gates.CNOT(q, q + 1))
    for q in range(nqubits):
        circuit.add(gates.U3(q, *rng.uniform(-math.pi, math.pi, 3)))
    return circuit


def random_circuit(nqubits: int, ngates: int, rng: np.random.Generator,
                   names: Sequence[str] | None = None) -> Circuit:
    """Random gates of the given kinds (default: all), with random daggers and controls."""
    kinds = [n for n in sorted(names or GATES)
             if GATES[n].ncontrols + (GATES[n].ntargets or 2) <= nqubits]
    circuit = Circuit(nqubits)
    for _ in range(ngates):
        qubits = [int(q) for q in rng.permutation(nqubits)]
        gate = random_gate(kinds[int(rng.integers(len(kinds)))], qubits, rng)
        if rng.integers(2):
            gate = gate.dagger()
        spare = qubits[len(gate.qubits):]
        if spare and rng.integers(2):
            gate = gate.controlled_by(*spare[:int(rng.integers(1, len(spare) + 1))])
        circuit.add(gate)
    return circuit


Agree = Callable[[Handle, Handle], None]
"""An agreement check: run on the backend's handle and the reference's."""


def agreement_checks(gates_offered: Sequence[str], features: Sequence[str],
                     tally: Tally | None = None) -> list[tuple[str, Agree]]:
    """Each agreement check's name and what runs it, for a backend that offers these gates and
    features; statistical tests are counted in `tally`."""
    rng = np.random.default_rng(2024)
    tally = tally or Tally()
    advertised = [n for n in gates_offered if n in GATES]
    uploads = Feature.INITIAL_STATE in features
    checks: list[tuple[str, Agree]] = []

    def same_state(handle: Handle, reference: Handle, circuit: Circuit) -> None:
        actual = handle.execute(circuit).state()
        expected = reference.execute(circuit).state()
        error = _difference(actual, expected)
        if error > ATOL:
            raise CheckFailed(f"amplitudes differ by {error:.2e} from the reference's for "
                              f"{circuit.gates}")

    for name in advertised:
        def check_gate(handle: Handle, reference: Handle, name: str = name) -> None:
            for variant, gate in labelled_variants(name, 5, rng):
                _same_gate(handle, reference, name, variant, gate, rng, uploads)
        checks.append((f"§7 gate {name} (placements, dagger, controls) agrees with the "
                       "reference", check_gate))

    def random_circuits(handle: Handle, reference: Handle) -> None:
        for nqubits in (1, 3, 6, 10):
            same_state(handle, reference, random_circuit(nqubits, 25, rng, advertised))

    def sampling(handle: Handle, reference: Handle) -> None:
        circuit = scrambled(4, rng)
        circuit.add(gates.M(2, 0, 3))
        exact = reference.execute(circuit).probabilities([2, 0, 3])
        first = cast("dict[str, int]", handle.execute(circuit, nshots=SHOTS, seed=11)
                     .frequencies())
        problem = tally.misfit(first, exact, SHOTS)
        if problem:
            raise CheckFailed(f"§4.1: measuring qubits 2, 0, 3 of a generic state: {problem}")
        if handle.execute(circuit, nshots=SHOTS, seed=11).frequencies() != first:
            raise CheckFailed("§4.1: the same seed gave different frequencies")

    checks.append(("§7 random circuits up to 10 qubits agree with the reference",
                   random_circuits))
    checks.append(("§4.1 sampling fits the exact probabilities and repeats under a seed "
                   "[statistical]", sampling))
    if Feature.DENSITY_MATRIX in features and Feature.CHANNELS in features:
        checks += _noisy(advertised, rng, tally)
    if Feature.MID_CIRCUIT_MEASUREMENT in features:
        def collapse(handle: Handle, reference: Handle) -> None:
            circuit, exact = collapsing(reference)
            counts = cast("dict[str, int]",
                          handle.execute(circuit, nshots=SHOTS, seed=5).frequencies())
            problem = tally.misfit(counts, exact, SHOTS)
            if problem:
                raise CheckFailed(f"§2.3.1: with a measurement that collapses midway: {problem}")

        checks.append(("§2.3.1 a measurement that collapses midway gives the right statistics "
                       "[statistical]", collapse))
    return checks


def _noisy(advertised: list[str], rng: np.random.Generator,
           tally: Tally) -> list[tuple[str, Agree]]:
    """The agreement checks of density matrices and channels."""
    def noisy_density_matrix(handle: Handle, reference: Handle) -> None:
        for name in [None, *advertised]:
            circuit = scrambled_density(4, rng)
            if name is not None:  # the gate's variants act on the mixed state
                circuit.add(gate for _, gate in labelled_variants(name, 4, rng))
            actual = handle.execute(circuit).state()
            expected = reference.execute(circuit).state()
            error = _difference(actual, expected)
            if error > ATOL:
                after = f" then {name} (placements, dagger, controls)" if name else ""
                raise CheckFailed(f"§2.3.2: a noisy density matrix{after} differs by "
                                  f"{error:.2e} from the reference's; circuit: {circuit.gates}")

    def trajectories(handle: Handle, reference: Handle) -> None:
        noisy = scrambled_density(4, rng)
        exact = reference.execute(noisy).probabilities([3, 1, 0, 2])
        circuit = Circuit(4)
        circuit.add([*noisy.gates, gates.M(3, 1, 0, 2)])
        counts = cast("dict[str, int]",
                      handle.execute(circuit, nshots=SHOTS, seed=3).frequencies())
        problem = tally.misfit(counts, exact, SHOTS)
        if problem:
            raise CheckFailed(f"§2.3.2: with channels on a state vector, the frequencies do "
                              f"not fit the density matrix's probabilities: {problem}")

    return [("§2.3.2 a noisy density matrix agrees with the reference, then under every gate",
             noisy_density_matrix),
            ("§2.3.2 channels on a state vector give the density matrix's statistics "
             "[statistical]", trajectories)]


def _same_gate(handle: Handle, reference: Handle, name: str, variant: str, gate: Gate,
               rng: np.random.Generator, uploads: bool) -> None:
    """One gate variant from a generic state: uploaded as an initial state when the backend
    takes one (so that no other gate under test is involved), else made by `scrambled`."""
    n = 5
    if uploads:
        start = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
        start /= np.linalg.norm(start)
        circuit = Circuit(n)
        circuit.add(gate)
        actual = handle.execute(circuit, initial_state=start).state()
        prepared = "from a random state uploaded as initialState"
    else:
        circuit = scrambled(n, rng)
        start = reference.execute(circuit).state()
        circuit.add(gate)
        actual = handle.execute(circuit).state()
        prepared = "from a state made with U3 and CNOT (the backend takes no initial states)"
    expected = _run(reference, [gate], start)
    error = _difference(actual, expected)
    if error <= ATOL:
        return
    data = msgspec.json.encode(gate.to_data()).decode()
    shape = _diagnosis(reference, gate, start, actual, expected)
    raise CheckFailed(f"{name}, variant {variant}: {data} {prepared} gives amplitudes that "
                      f"differ from the reference's by up to {error:.2e}"
                      f"{'; ' + shape if shape else ''}")


def _difference(actual: np.ndarray, expected: np.ndarray) -> float:
    """The largest difference between two states' entries; 1 when their shapes differ."""
    return float(np.abs(actual - expected).max()) if actual.shape == expected.shape else 1.0


def _run(reference: Handle, ops: Sequence[Gate], start: np.ndarray) -> np.ndarray:
    circuit = Circuit(start.size.bit_length() - 1)
    circuit.add(ops)
    return reference.execute(circuit, initial_state=start).state()


def _diagnosis(reference: Handle, gate: Gate, start: np.ndarray, actual: np.ndarray,
               expected: np.ndarray) -> str:
    """What a wrong answer looks like, when it has a recognisable shape."""
    def close(a: np.ndarray, b: np.ndarray) -> bool:
        return a.shape == b.shape and float(np.abs(a - b).max()) <= 1e-8

    if actual.shape != expected.shape:
        return f"its shape is {actual.shape}, not {expected.shape}"
    n = start.size.bit_length() - 1
    if close(np.abs(np.vdot(actual, expected)) * np.ones(1), np.ones(1)):
        return "it equals the reference's up to a global phase (a different convention?)"
    mirrored = _run(reference, [_reflected(gate, n)], start)  # qubit q taken as bit q
    if close(actual, mirrored) or close(_reversed(actual), expected):
        return "it matches with the qubit order reversed (qubit 0 must be the most significant bit)"
    if gate.params and not gate.slots:
        negated = gate.bound({})
        negated.params = {k: -v for k, v in gate.params.items()}
        if close(actual, _run(reference, [negated], start)):
            return "it matches the gate with its angles negated (a rotation the other way round)"
    if gate.is_dagger and close(actual, _run(reference, [gate.dagger()], start)):
        return "it matches the gate without its dagger"
    controls = gate.controls
    if controls:
        flips = [gates.X(c) for c in controls]
        if close(actual, _run(reference, [*flips, gate, *flips], start)):
            return "it matches the gate acting where its controls are 0, not 1"
        plain = gate.bound({})
        plain.extra_controls = ()
        if gate.extra_controls and close(actual, _run(reference, [plain], start)):
            return "it matches the gate with its extra controls ignored"
    if close(actual, start):
        return "the state did not change: the gate was not applied"
    return ""


def _reversed(state: np.ndarray) -> np.ndarray:
    """The amplitudes with qubit order reversed."""
    n = state.size.bit_length() - 1
    return state.reshape((2,) * n).transpose(range(n - 1, -1, -1)).reshape(-1)


def _reflected(gate: Gate, n: int) -> Gate:
    """The gate on the mirrored qubits (q -> n - 1 - q)."""
    other = gate.bound({})
    other.qubits = tuple(n - 1 - q for q in gate.qubits)
    other.extra_controls = tuple(n - 1 - q for q in gate.extra_controls)
    return other


def scrambled_density(nqubits: int, rng: np.random.Generator) -> Circuit:
    """`scrambled` on a density matrix, with every kind of channel after it."""
    circuit = Circuit(nqubits, density_matrix=True)
    circuit.add(scrambled(nqubits, rng).gates)
    circuit.add([gates.DepolarizingChannel((0, 1), 0.2), gates.AmplitudeDampingChannel(2, 0.3),
                 gates.PhaseDampingChannel(3, 0.25), gates.ResetChannel(0, [0.1, 0.2]),
                 gates.PauliNoiseChannel(1, [("X", 0.1), ("Y", 0.05)]),
                 gates.ThermalRelaxationChannel(3, [1.0, 0.6, 0.2, 0.1]), gates.CNOT(3, 0)])
    # A two-qubit channel that tells its qubits apart: damping on 2, nothing on 1.
    damping = gates.AmplitudeDampingChannel(0, 0.4).kraus
    circuit.add(gates.KrausChannel((2, 1), [np.kron(k, np.eye(2)) for k in damping]))
    return circuit


def collapsing(reference: Handle) -> tuple[Circuit, np.ndarray]:
    """A circuit measuring qubit 0 midway, and the exact distribution of its outcomes: the
    record equals qubit 0's final value, so a density matrix where the measurement is a
    dephasing channel gives it."""
    ops = [gates.RY(0, 1.1), gates.H(1), gates.CNOT(0, 1), gates.RY(1, 0.4)]
    circuit = Circuit(2)
    circuit.add([*ops[:1], gates.M(0, collapse=True, register_name="m"), *ops[1:],
                 gates.M(1, register_name="end")])
    dephased = Circuit(2, density_matrix=True)
    dephased.add([ops[0], gates.KrausChannel(0, [np.diag([1, 0]), np.diag([0, 1])]), *ops[1:]])
    return circuit, reference.execute(dephased).probabilities([0, 1])
