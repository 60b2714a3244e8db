"""Ordinary mistakes caught by the model and the client before anything is sent or run: each
is an error naming the problem (what backends refuse on the wire: tests/test_mistakes.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qibo_core import Circuit, CircuitError, ConfigError, Observable, Parameter, UsageError, gates
from qibo_core.circuit.channels import ThermalRelaxationChannel
from qibo_core.client.discovery import configured_backends


@pytest.mark.parametrize("backend", [3, ["numpy"], b"numpy"])
def test_a_backend_that_is_no_backend_is_named(backend: Any) -> None:
    with pytest.raises(UsageError, match="backend must be a name"):
        Circuit(1).execute(backend=backend)


def test_long_observables_parse_in_linear_time() -> None:
    """A million spaces inside a term: a parser that backtracks over whitespace takes hours."""
    observable = Observable("0.5" + " " * 10**6 + "Z0" + " " * 10**6 + "+ X1")
    assert observable.terms == ((0.5, (("Z", 0),)), (1.0, (("X", 1),)))


@pytest.mark.parametrize("text, message", [
    ("Z\u0661", "is not a Pauli factor"),  # an Arabic-Indic digit one
    ("\u0661 Z0", "is not a Pauli factor"),
    ("Z00", "without leading zeros"),
    ("I0 Z0", "qubit 0 appears twice"),
    ("1e308 Z0 + 1e308 Z1", "could overflow"),
    ("Z" + "9" * 5000, "is not a Pauli factor"),
])
def test_malformed_observables_are_refused(text: str, message: str) -> None:
    with pytest.raises(CircuitError, match=message):
        Observable(text)


def test_identity_factors_are_checked_against_the_circuit() -> None:
    with pytest.raises(CircuitError, match="qubit 5 is outside the 2-qubit circuit"):
        Observable("Z0 I5").check(2)


@pytest.mark.parametrize("make, message", [
    (lambda: gates.H(10**5000), "an integer of 16610 bits is over the largest"),
    (lambda: gates.H(-10**5000), "an integer of 16610 bits is negative"),
    (lambda: gates.H(0).controlled_by(2**40), "over the largest"),
    (lambda: Circuit(10**5000), "an integer of 16610 bits qubits: at most 2\\*\\*31"),
    (lambda: gates.RX(0, 10**5000), "must be finite"),
])
def test_huge_numbers_are_circuit_errors(make: Any, message: str) -> None:
    with pytest.raises(CircuitError, match=message):
        make()


def test_thermal_relaxation_over_long_times_is_a_full_reset() -> None:
    channel = ThermalRelaxationChannel(0, [50e-6, 30e-6, 0.05])  # 1000 t1: exp underflows
    rho = sum(k @ np.diag([0, 1]) @ k.conj().T for k in channel.kraus)
    assert np.allclose(rho, np.diag([1, 0]))


def test_equal_circuits_have_equal_keys_and_unitaries_differ_by_their_matrix() -> None:
    a, b = Circuit(1), Circuit(1)
    a.add(gates.Unitary(np.eye(2), 0))
    b.add(gates.Unitary(np.array([[0, 1], [1, 0]]), 0))
    assert a != b and a.key() != b.key()
    b.gates[0] = gates.Unitary(np.eye(2), 0)
    assert a == b and a.key() == b.key()


def test_unbound_parameters_take_part_in_equality() -> None:
    a, b = Circuit(1), Circuit(1)
    a.add(gates.RX(0, Parameter("s")))
    b.add(gates.RX(0, Parameter("t")))
    assert a != b
    b.gates[0] = gates.RX(0, Parameter("s"))
    assert a == b


def test_a_configuration_file_named_and_missing_is_an_error(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QIBO_CORE_CONFIG", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="QIBO_CORE_CONFIG names .*missing.json, which does "
                                          "not exist"):
        configured_backends()
