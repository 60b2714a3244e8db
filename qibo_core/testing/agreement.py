"""Agreement checks: a backend, driven through a client handle, against the reference.

Every gate it advertises (at random placements, daggered, with extra controls), random circuits
and sampling statistics. The builders here are shared with qibo-core's own test suite.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import cast

import numpy as np

from ..circuit import GATES, Circuit, Gate, gates
from ..client import Handle
from ..protocol import Feature
from .report import CheckFailed

ATOL = 1e-10


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
    qubits = [int(q) for q in rng.permutation(nqubits)]
    gate = random_gate(name, qubits, rng)
    size = len(gate.qubits)
    yield gate
    yield gate.dagger()
    yield gate.controlled_by(qubits[size])
    yield gate.dagger().controlled_by(*qubits[size:])


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


def chi_square_passes(frequencies: dict[str, int], probabilities: np.ndarray,
                      nshots: int) -> bool:
    """Pearson's test at the 0.1% level: False means the counts do not fit the probabilities.

    Outcomes expected fewer than 5 times are pooled, as the test requires; an outcome of
    probability 0 that was seen fails outright.
    """
    width = int(math.log2(len(probabilities)))
    observed = np.array([frequencies.get(format(k, f"0{width}b"), 0)
                         for k in range(len(probabilities))], dtype=float)
    if observed.sum() != nshots or observed[probabilities < 1e-12].any():
        return False
    expected = probabilities * nshots
    large = expected >= 5
    obs = np.append(observed[large], observed[~large].sum())
    exp = np.append(expected[large], expected[~large].sum())
    keep = exp > 0
    statistic = float(((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum())
    dof = max(int(keep.sum()) - 1, 1)
    z = 3.09  # the 99.9% normal quantile; Wilson-Hilferty for the chi-square quantile
    critical = dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3
    return statistic <= critical


def agreement_checks(handle: Handle,
                      reference: Handle) -> Iterator[tuple[str, Callable[[], None]]]:
    rng = np.random.default_rng(2024)
    advertised = [n for n in handle.info.capabilities.gates if n in GATES]

    def same_state(circuit: Circuit) -> None:
        actual = handle.execute(circuit).state()
        expected = reference.execute(circuit).state()
        error = float(np.abs(actual - expected).max()) if actual.shape == expected.shape else 1
        if error > ATOL:
            raise CheckFailed(f"amplitudes differ by {error:.2e} from the reference's for "
                              f"{circuit.gates}")

    for name in advertised:
        def check_gate(name: str = name) -> None:
            for gate in gate_variants(name, 5, rng):
                circuit = scrambled(5, rng)
                circuit.add(gate)
                same_state(circuit)
        yield f"gate {name} (placements, dagger, controls) agrees with the reference", check_gate

    def random_circuits() -> None:
        for nqubits in (1, 3, 6, 10):
            same_state(random_circuit(nqubits, 25, rng, advertised))

    def sampling() -> None:
        circuit = scrambled(4, rng)
        circuit.add(gates.M(2, 0, 3))
        exact = reference.execute(circuit).probabilities([2, 0, 3])
        first = cast("dict[str, int]", handle.execute(circuit, nshots=20000, seed=11).frequencies())
        if not chi_square_passes(first, exact, 20000):
            raise CheckFailed(f"frequencies {dict(first)} do not fit the probabilities {exact}")
        if handle.execute(circuit, nshots=20000, seed=11).frequencies() != first:
            raise CheckFailed("the same seed gave different frequencies")

    yield "random circuits up to 10 qubits agree with the reference", random_circuits
    yield "sampling fits the exact probabilities and repeats under a seed", sampling

    features = handle.info.capabilities.features
    if Feature.DENSITY_MATRIX in features and Feature.CHANNELS in features:
        def noisy_density_matrix() -> None:
            circuit = scrambled_density(4, rng)
            actual, expected = handle.execute(circuit).state(), reference.execute(circuit).state()
            error = float(np.abs(actual - expected).max()) if actual.shape == expected.shape else 1
            if error > ATOL:
                raise CheckFailed(f"a noisy density matrix differs by {error:.2e} from the "
                                  "reference's")

        yield "a noisy density matrix agrees with the reference", noisy_density_matrix
    if Feature.MID_CIRCUIT_MEASUREMENT in features:
        def collapse() -> None:
            circuit, exact = collapsing(reference)
            counts = cast("dict[str, int]",
                          handle.execute(circuit, nshots=20000, seed=5).frequencies())
            if not chi_square_passes(counts, exact, 20000):
                raise CheckFailed(f"with a measurement that collapses midway, frequencies "
                                  f"{counts} do not fit the probabilities {exact}")

        yield "a measurement that collapses midway gives the right statistics", collapse


def scrambled_density(nqubits: int, rng: np.random.Generator) -> Circuit:
    """`scrambled` on a density matrix, with every kind of channel after it."""
    circuit = Circuit(nqubits, density_matrix=True)
    circuit.add(scrambled(nqubits, rng).gates)
    circuit.add([gates.DepolarizingChannel((0, 1), 0.2), gates.AmplitudeDampingChannel(2, 0.3),
                 gates.PhaseDampingChannel(3, 0.25), gates.ResetChannel(0, [0.1, 0.2]),
                 gates.PauliNoiseChannel(1, [("X", 0.1), ("Y", 0.05)]),
                 gates.ThermalRelaxationChannel(3, [1.0, 0.6, 0.2, 0.1]), gates.CNOT(3, 0)])
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
