"""The cross-backend checker: does a backend handle agree with the reference?

Reusable for any handle (spawned or in process, ours or a third party's). The circuit builders
and the sampling test live in qibo_core.testing (agreement.py, statistics.py), which
`qibo-core check` runs too.
"""

from __future__ import annotations

import numpy as np

from qibo_core import Circuit, Handle
from qibo_core.testing.agreement import gate_variants, scrambled
from qibo_core.testing.statistics import misfit

__all__ = ["assert_same_probabilities", "assert_same_state", "gate_variants", "misfit",
           "scrambled"]

ATOL = 1e-10


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
