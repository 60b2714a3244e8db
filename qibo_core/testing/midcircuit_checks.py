"""Mid-circuit measurement (2.3.1; version 2, feature "midCircuitMeasurement"): `"M"` entries
collapse and record, `"RESET"` returns qubits to |0>, conditions read registers; most of it
checked with circuits whose every shot gives the same outcome, so that a wrong rule shows in
one shot, without statistics."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..protocol import ErrorCode, Feature
from .checks import kit_check
from .exchange import Exchange, frequencies
from .report import CheckFailed
from .sample_checks import rows

MID = (Feature.MID_CIRCUIT_MEASUREMENT,)
COLLAPSE_SHOTS = 1000


def x(q: int, **extra: Any) -> dict[str, Any]:
    return {"name": "X", "qubits": [q], **extra}


def m(*qubits: int, register: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": "M", "qubits": list(qubits)}
    return entry if register is None else {**entry, "register": register}


def when(register: str, value: int | None = None) -> dict[str, Any]:
    """A condition on `register` (without `value` when None)."""
    return {"condition": {"register": register} if value is None else
            {"register": register, "value": value}}


def always(s: Exchange, nqubits: int, gates: list[dict[str, Any]], closing: list[int],
           expected: str, rule: str) -> None:
    """Every one of 20 shots must give `expected` (the M entries' bits, then `closing`'s)."""
    circuit = {"nqubits": nqubits, "gates": gates, "measurements": [{"qubits": closing}]}
    result = s.object("execute", {"circuit": circuit, "nshots": 20, "seed": 4})
    counts = frequencies(result, 20, len(expected), f"§2.3.1 {rule}")
    if counts != {expected: 20}:
        raise CheckFailed(f"§2.3.1: {rule}: every shot of {gates} measuring {closing} at the "
                          f"end gives {expected!r}; the backend answered {counts}")


@kit_check("2.3.1", "RESET returns its qubits to |0>", since=2, features=MID)
def _reset(s: Exchange) -> None:
    s.initialize()
    reset = {"name": "RESET", "qubits": [0]}
    always(s, 1, [x(0), reset], [0], "0", "RESET after X")
    bell = [{"name": "H", "qubits": [0]}, {"name": "CNOT", "qubits": [0, 1]}]
    circuit = {"nqubits": 2, "gates": [*bell, reset], "measurements": [{"qubits": [0, 1]}]}
    counts = frequencies(s.object("execute", {"circuit": circuit, "nshots": 40, "seed": 2}), 40,
                         2, "§2.3.1 RESET of half a Bell pair")
    if any(key[0] != "0" for key in counts):
        raise CheckFailed(f"§2.3.1: RESET of qubit 0 of a Bell pair left it reading 1: {counts}")
    state = s.state({"circuit": {"nqubits": 1, "gates": [{"name": "H", "qubits": [0]}, reset]}})
    amplitudes = np.abs(s.read(state, [2]))
    if not np.allclose(amplitudes, [1, 0], atol=1e-10):
        raise CheckFailed(f"§2.3.1: RESET of |+> holds |amplitudes| {amplitudes}, not |0> "
                          "(projected, renormalised, then flipped where it read 1)")


@kit_check("2.3.1", "a condition applies a gate where its register reads value (default 1)",
           since=2, features=MID)
def _conditions(s: Exchange) -> None:
    s.initialize()
    always(s, 2, [x(0), m(0, register="m"), x(1, **when("m", 1))], [1], "11",
           "X conditioned on register m reading 1, after m read 1")
    always(s, 2, [x(0), m(0, register="m"), x(1, **when("m", 0))], [1], "10",
           "X conditioned on m reading 0, after m read 1")
    always(s, 2, [x(0), m(0, register="m"), x(1, **when("m"))], [1], "11",
           "a condition without value means value 1")
    always(s, 3, [x(0), m(0, 1, register="r"), x(2, **when("r", 2))], [2], "101",
           "register r of qubits 0, 1 reads 10 = 2 (its first qubit the most significant)")
    always(s, 3, [x(0), m(0, 1, register="r"), x(2, **when("r", 1))], [2], "100",
           "register r reads 2, not 1")


@kit_check("2.3.1", "M entries without a register are named register<k>, counting every "
           "measurement before them", since=3, features=MID)
def _default_registers(s: Exchange) -> None:
    s.initialize()
    always(s, 3, [x(1), m(0), m(1), x(2, **when("register1", 1))], [2], "011",
           "the second M entry, without a register, is register1")


@kit_check("2.3.1", "a qubit measured midway may be acted on and measured again", since=3,
           features=MID)
def _measured_again(s: Exchange) -> None:
    s.initialize()
    always(s, 1, [x(0), m(0, register="m"), x(0)], [0], "10",
           "X, M, X on qubit 0, then qubit 0 measured at the end")


@kit_check("2.3.1", "an M entry collapses the state: later gates act on what it left "
           "[statistical]", since=2, features=MID)
def _collapse(s: Exchange) -> None:
    """H, M, H on one qubit: collapsed, the last outcome is a fair coin whatever the record;
    not collapsed, H H is the identity and it always reads 0."""
    s.initialize()
    hadamard = {"name": "H", "qubits": [0]}
    circuit = {"nqubits": 1, "gates": [hadamard, m(0, register="m"), hadamard],
               "measurements": [{"qubits": [0]}]}
    result = s.object("execute", {"circuit": circuit, "nshots": COLLAPSE_SHOTS, "seed": 3})
    counts = frequencies(result, COLLAPSE_SHOTS, 2, "§2.3.1 H, M, H, then M")
    problem = s.tally.misfit(counts, np.full(4, 0.25), COLLAPSE_SHOTS)
    if problem:
        raise CheckFailed(f"§2.3.1: H, M (collapsing), H, then a measurement: each of the four "
                          f"(record, outcome) pairs has probability 1/4; {problem}")


@kit_check("2.3.1", "the state execute holds is its shot's: collapsed and renormalised",
           since=2, features=MID)
def _held_state(s: Exchange) -> None:
    s.initialize()
    circuit = {"nqubits": 1, "gates": [{"name": "H", "qubits": [0]}, m(0, register="m")]}
    for seed in range(1, 5):
        result = s.object("execute", {"circuit": circuit, "nshots": 1, "seed": seed})
        record = int(next(iter(frequencies(result, 1, 1, "§2.3.1 H then M, one shot"))))
        amplitudes = np.abs(s.read(result["state"], [2]))
        expected = np.eye(2)[record]
        if np.allclose(amplitudes, expected, atol=1e-10):
            continue
        norm = float(np.linalg.norm(amplitudes))
        why = (f"its norm is {norm:.4f}: the collapsed state was not renormalised"
               if abs(norm - 1) > 1e-6 else
               "it keeps amplitude on the outcome not recorded: M did not collapse it"
               if amplitudes[1 - record] > 1e-6 else "")
        raise CheckFailed(f"§2.3.1: H then M with one shot recorded {record}; the state held "
                          f"has |amplitudes| {amplitudes}, not |{record}> {why}")


@kit_check("4.1", "samples and outcomes list the M entries' bits first, in circuit order",
           since=2, features=(Feature.MID_CIRCUIT_MEASUREMENT, Feature.SAMPLES))
def _sample_columns(s: Exchange) -> None:
    s.initialize()
    gates = [x(0), x(1), x(3), m(2, register="a"), m(0, register="b")]
    circuit = {"nqubits": 4, "gates": gates, "measurements": [{"qubits": [1, 3]}]}
    result = s.object("execute", {"circuit": circuit, "nshots": 10, "samples": True})
    bits = rows(result, 10, 4)
    if not (bits == [0, 1, 1, 1]).all():  # reversed, or closing bits first, reads otherwise
        raise CheckFailed(f"§4.1: X(0), X(1), X(3), M(2) into a, M(0) into b, then measuring "
                          f"[1, 3] gave rows {bits[0].tolist()}..., not [0, 1, 1, 1] (a, b, "
                          "then qubits 1 and 3)")


@kit_check("2.3.1", "conditions name an earlier M entry's register; streams carry no M, "
           "RESET or condition", since=2, features=MID)
def _where_they_stand(s: Exchange) -> None:
    s.initialize()
    for gates, what in (([x(0, **when("nowhere", 1))], "a condition on no register"),
                        ([m(0, register="m"), x(0, **when("m", 2))],
                         "a condition on a 1-qubit register reading 2")):
        s.error("execute", {"circuit": {"nqubits": 1, "gates": gates}},
                ErrorCode.INVALID_PARAMS, f"§2.3.1 {what}")
    state = s.object("state/new", {"nqubits": 1})["state"]
    for gate in (m(0, register="m"), {"name": "RESET", "qubits": [0]}, x(0, **when("m", 1))):
        s.error("state/apply", {"state": state, "gates": [gate]}, ErrorCode.INVALID_PARAMS,
                f"§2.3.2 a stream has no shots: {gate}")


@kit_check("2.2", "M takes only register, RESET nothing but its qubits, a gate no register",
           since=3, features=MID)
def _entry_fields(s: Exchange) -> None:
    s.initialize()
    for entry in ({**m(0, register="m"), "params": {"theta": 0.5}},
                  {**m(0, register="m"), "controls": [1]},
                  {"name": "RESET", "qubits": [0], "params": {"theta": 0.5}},
                  {"name": "RESET", "qubits": [0], "dagger": True},
                  {"name": "H", "qubits": [0], "register": "m"}):
        s.error("execute", {"circuit": {"nqubits": 2, "gates": [entry]}},
                ErrorCode.INVALID_PARAMS, f"§2.2 a field the entry does not take: {entry}")
