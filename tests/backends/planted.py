"""The NumPy backend with one bug planted, named by argv[1] ("none" plants nothing): what
tests/test_planted_bugs.py shows each conformance check catches. Each plant patches the
reference server or a library function it calls, in this process only."""

import importlib
import re
import sys
from typing import Any

import msgspec
import numpy as np

from qibo_backend_numpy import NumpyBackend
from qibo_core.circuit import Observable, gates
from qibo_core.errors import CircuitError, InvalidParams
from qibo_core.protocol import METHODS
from qibo_core.server.operators import Matrix

circuit, decode, gate_module, observable_module, execution, initial, lifecycle, registry, \
    serve, session, shots, states = (importlib.import_module(f"qibo_core.{name}") for name in (
        "circuit.circuit", "circuit.decode", "circuit.gate", "circuit.observable",
        "server.execution", "server.initial", "server.lifecycle", "server.registry",
        "server.serve", "server.session", "server.shots", "server.states"))

HANDLERS = registry.HANDLERS
BUGS = {}


def plant(function: Any) -> Any:
    BUGS[function.__name__.replace("_", "-")] = function
    return function


def wrap(method: str, before: Any) -> None:
    """`before(session, params)` runs ahead of the handler of `method`."""
    handler = HANDLERS[method]

    def wrapped(s: Any, params: Any) -> Any:
        before(s, params)
        return handler(s, params)
    HANDLERS[method] = wrapped


def terms_changed(change: Any) -> None:
    """Observable.expectation on terms changed by change(letter, qubit, n) -> (letter, qubit,
    sign)."""
    original = Observable.expectation

    def expectation(self: Observable, state: np.ndarray) -> float:
        n = state.shape[0].bit_length() - 1
        other = Observable.__new__(Observable)
        terms = []
        for coefficient, pauli in self.terms:
            changed = [change(letter, q, n) for letter, q in pauli]
            sign = np.prod([s for _, _, s in changed]) if changed else 1
            terms.append((coefficient * sign, tuple((letter, q) for letter, q, _ in changed)))
        other.terms = tuple(terms)
        return original(other, state)
    Observable.expectation = expectation  # type: ignore[method-assign]


@plant
def y_sign() -> None:
    terms_changed(lambda letter, q, n: (letter, q, -1 if letter == "Y" else 1))


@plant
def mirrored_pauli() -> None:
    terms_changed(lambda letter, q, n: (letter, n - 1 - q, 1))


@plant
def density_as_vector() -> None:
    original = Observable.expectation
    Observable.expectation = lambda self, state: original(  # type: ignore[method-assign]
        self, state.reshape(-1) if state.ndim == 2 else state)


@plant
def shared_ids() -> None:
    original = session.Session.next_id
    session.Session.next_id = lambda self, kind: (  # type: ignore[method-assign]
        1 if kind == "circuit" else original(self, kind))


@plant
def complex_coefficient() -> None:
    decode = serve.decode_params

    def lenient(message: Any) -> Any:
        if message.method in ("state/expectation", "circuit/expectation"):
            text = re.sub(rb'"coefficient":\s*\[([^,\]]+),[^\]]*\]', rb'"coefficient": \1',
                          bytes(message.params))
            message.params = msgspec.Raw(text)
        return decode(message)
    serve.decode_params = lenient


@plant
def reset_ignored() -> None:
    original = circuit.operation_from_data
    circuit.operation_from_data = lambda data: (gates.I(*data.qubits) if data.name == "RESET"
                                          else original(data))


@plant
def conditions_ignored() -> None:
    gate_module.Gate.c_if = lambda self, register, value=1: self  # type: ignore[method-assign]


@plant
def no_collapse() -> None:
    shots.projector = lambda qubits, outcome, probability: Matrix(
        np.eye(2 ** len(qubits)), qubits)


@plant
def not_renormalised() -> None:
    original = shots.projector
    shots.projector = lambda qubits, outcome, probability: original(qubits, outcome, 1.0)


@plant
def trajectory_not_renormalised() -> None:
    shots.kraus_branch = lambda kraus, qubits, probability: Matrix(kraus, qubits)


@plant
def transposed_density() -> None:
    checked = initial._density_matrix
    initial._density_matrix = lambda rho: checked(rho).T


@plant
def grouped_samples() -> None:
    execution.shot_bits = lambda counts, width, rng: np.repeat(
        shots.outcome_bits(counts.outcomes, width), counts.counts, axis=0)


@plant
def closing_bits_first() -> None:
    original = shots.run_shots

    def closing_first(backend: Any, circuit: Any, *args: Any) -> Any:
        state, counts = original(backend, circuit, *args)
        closing = sum(len(m.qubits) for m in circuit.measurements if not m.collapse)
        mid = len(circuit.measured_qubits) - closing
        swapped = [(o & ((1 << closing) - 1)) << mid | o >> closing
                   for o in counts.outcomes.tolist()]
        return state, type(counts)(np.array(swapped, dtype=np.int64), counts.counts)
    execution.run_shots = closing_first


@plant
def higher_version() -> None:
    handler = HANDLERS["initialize"]

    def answer(s: Any, params: Any) -> Any:
        result = handler(s, params)
        result.protocol_version = 3
        return result
    HANDLERS["initialize"] = answer


@plant
def expectation_in_v2() -> None:
    session.Session.features = property(  # type: ignore[method-assign, assignment]
        lambda self: self.backend.features)


@plant
def v3_methods_in_v2() -> None:
    session.Session.serves = lambda self, method: method in HANDLERS  # type: ignore[method-assign]
    call = session.Session.call

    def served(self: Any, method: str, params: Any) -> Any:
        version, self.version = self.version, max(self.version, METHODS[method].since)
        try:
            return call(self, method, params)
        finally:
            self.version = version
    session.Session.call = served  # type: ignore[method-assign]


@plant
def v2_fields_in_v1() -> None:
    session.Session.require = lambda self, features, what: None  # type: ignore[method-assign]


@plant
def device_before_v3() -> None:
    def forget(s: Any, params: Any) -> None:
        if params.protocol_version < 3:
            params.options.device = None
    wrap("initialize", forget)


@plant
def streamed_density_refused() -> None:
    class Refusing:
        def read(self, data: Any) -> Any:
            raise CircuitError("gates are not streamed into a density matrix")

    hold = session.Session.hold

    def refusing(self: Any, native: Any, nqubits: int, *, is_density: bool = False) -> int:
        state_id = hold(self, native, nqubits, is_density=is_density)
        if is_density:
            self.states[state_id].reader = Refusing()
        return state_id
    session.Session.hold = refusing  # type: ignore[method-assign]


@plant
def fields_ignored() -> None:
    decode._only = lambda data, what, *allowed: None


@plant
def i_factors_unchecked() -> None:
    Observable.check = lambda self, nqubits: None  # type: ignore[method-assign]


@plant
def leading_zeros() -> None:
    observable_module._FACTOR = re.compile(r"([A-Za-z]+)([0-9]+)?", re.ASCII)


@plant
def tab_accepted() -> None:
    checked = states.checked_observable
    states.checked_observable = lambda terms, nqubits: checked(
        [msgspec.structs.replace(t, pauli=t.pauli.replace("\t", " ")) for t in terms], nqubits)


@plant
def psd_unchecked() -> None:
    initial.positive_semidefinite = lambda rho, tolerance: True


@plant
def segment_without_samples() -> None:
    def forget(s: Any, params: Any) -> None:
        if not params.samples:
            params.samples_segment = None
    wrap("execute", forget)


@plant
def data_and_segment() -> None:
    def forget(s: Any, params: Any) -> None:
        if params.initial_state is not None and params.initial_state.segment is not None:
            params.initial_state.data = None
    wrap("execute", forget)


@plant
def squared_norm() -> None:
    checked = execution.initial_amplitudes

    def squared(array: Any, nqubits: int, *args: Any, **kwargs: Any) -> np.ndarray:
        result = checked(array, nqubits, *args, **kwargs)
        if result.ndim == 1 and abs(np.vdot(result, result).real - 1) > initial.NORM_TOLERANCE:
            raise InvalidParams("the squared norm is not 1")
        return result
    execution.initial_amplitudes = squared


@plant
def density_counts_n() -> None:
    fits = session.Session.check_fits

    def halved(self: Any, nqubits: int) -> None:
        return fits(self, nqubits if nqubits <= Small.max_qubits else nqubits // 2)
    session.Session.check_fits = halved  # type: ignore[method-assign]


@plant
def default_registers_elsewhere() -> None:
    original = circuit.operation_from_data

    def named(data: Any) -> Any:
        if data.name == "M" and data.register is None:
            data = msgspec.structs.replace(data, register=f"mid{id(data)}")
        return original(data)
    circuit.operation_from_data = named


@plant
def measured_midway_closes() -> None:
    add = circuit.Circuit._add_measurement

    def closing(self: Any, m: Any) -> None:
        add(self, m)
        self._measured.update(m.qubits)
    circuit.Circuit._add_measurement = closing  # type: ignore[method-assign]


@plant
def version_1_only() -> None:
    lifecycle.SUPPORTED_VERSIONS = (1,)


@plant
def none() -> None:
    pass


class Small(NumpyBackend):
    """The NumPy backend with maxQubits 6, so that a density matrix of 4 qubits is too large."""

    name = "planted"
    max_qubits = 6


if __name__ == "__main__":
    BUGS[sys.argv[1]]()
    serve.serve(Small(), argv=[])
