"""The cross-backend checker: does a backend handle agree with the NumPy reference?

Reusable for any handle (spawned or in process, ours or a third party's).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from qibo_core import Circuit, Handle, gates
from qibo_core.gates import GATES, Gate

ATOL = 1e-10


def gate_variants(name: str, nqubits: int, rng: np.random.Generator) -> Iterator[Gate]:
    """The gate at a random placement with random parameters, its dagger, and it controlled by
    a random spare qubit."""
    cls = GATES[name]
    size = cls.ncontrols + (cls.ntargets or 2)
    qubits = [int(q) for q in rng.permutation(nqubits)]
    if cls is gates.Unitary:
        z = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
        gate: Gate = gates.Unitary(np.linalg.qr(z)[0], *qubits[:2])
    else:
        gate = cls(*qubits[:size], **{p: float(rng.uniform(-math.pi, math.pi))
                                      for p in cls.param_names})
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


def assert_same_state(handle: Handle, reference: Handle, circuit: Circuit) -> None:
    actual = handle.execute(circuit).state()
    expected = reference.execute(circuit).state()
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=ATOL, err_msg=f"on {handle.name}")


def assert_same_probabilities(handle: Handle, reference: Handle, circuit: Circuit,
                              qubits: list[int]) -> None:
    actual = handle.execute(circuit).probabilities(qubits)
    expected = reference.execute(circuit).probabilities(qubits)
    np.testing.assert_allclose(actual, expected, atol=ATOL, err_msg=f"qubits {qubits}")


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
