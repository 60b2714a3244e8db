"""The circuit API of a user's first hour (draw, summary, depth, invert, compose, copy, ==,
unitary), each against qibo's result for the same circuit; `unitary` also against the product
of the gates' matrices, on every backend kind."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest
import qibo
from qibo import gates as qibo_gates
from qibo.backends import NumpyBackend as QiboNumpy

from qibo_core import Circuit, CircuitError, Handle, Parameter, UsageError, gates
from qibo_core.circuit import GATES, Channel, Gate, M, Operation
from qibo_core.client import close_shared
from qibo_core.testing.strategies import random_unitary

SHARED = sorted(name for name in GATES if hasattr(qibo_gates, name))
CHANNELS = [
    lambda q: gates.DepolarizingChannel(q, 0.1),
    lambda q: gates.AmplitudeDampingChannel(q[0], 0.2),
    lambda q: gates.PhaseDampingChannel(q[0], 0.3),
    lambda q: gates.ResetChannel(q[0], [0.1, 0.2]),
    lambda q: gates.ThermalRelaxationChannel(q[0], [1.0, 0.5, 0.1]),
    lambda q: gates.PauliNoiseChannel(q, [("X" * len(q), 0.1)]),
]
NOT_ISWAP = [name for name in SHARED if name != "iSWAP"]
QIBO = QiboNumpy()


def random_gate(rng: np.random.Generator, n: int, *, dagger: bool = True,
                controls: bool = True, names: list[str] = SHARED) -> Gate:
    """Any gate kind of `names` on random qubits, maybe with extra controls, maybe
    daggered."""
    while True:
        cls = GATES[str(rng.choice(names))]
        size = cls.ncontrols + (cls.ntargets or int(rng.integers(1, min(3, n) + 1)))
        if size <= n:
            break
    qubits = [int(q) for q in rng.permutation(n)]
    if cls is gates.Unitary:
        gate: Gate = gates.Unitary(random_unitary(size, int(rng.integers(2**31))),
                                   *qubits[:size])
    else:
        gate = cls(*qubits[:size], *rng.uniform(-math.pi, math.pi, len(cls.param_names)))
    if controls and not cls.ncontrols and cls is not gates.I and size < n and rng.random() < 0.3:
        gate = gate.controlled_by(*qubits[size:size + int(rng.integers(1, n - size + 1))])
    if dagger and rng.random() < 0.3:
        gate = gate.dagger()
    return gate


def random_circuit(rng: np.random.Generator, n: int, size: int, *, dagger: bool = True,
                   controls: bool = True, noise: bool = False, measure: bool = False,
                   names: list[str] = SHARED) -> Circuit:
    c = Circuit(n)
    for _ in range(size):
        if noise and rng.random() < 0.15:
            q = [int(x) for x in rng.permutation(n)[:int(rng.integers(1, min(2, n) + 1))]]
            c.add(CHANNELS[int(rng.integers(len(CHANNELS)))](q))
        else:
            c.add(random_gate(rng, n, dagger=dagger, controls=controls, names=names))
    if measure:
        qubits = [int(q) for q in rng.permutation(n)]
        cut = int(rng.integers(1, n + 1))
        c.add(gates.M(*qubits[:cut]))
        if cut < n:
            c.add(gates.M(*qubits[cut:]))
    return c


def to_qibo(circuit: Circuit) -> qibo.Circuit:
    """The same circuit in qibo, built gate by gate."""
    q = qibo.Circuit(circuit.nqubits)
    for op in circuit.operations:
        q.add(_qibo_op(op))
    return q


def _qibo_op(op: Operation) -> object:
    if isinstance(op, Gate):
        cls = getattr(qibo_gates, op.name)
        if op.name == "Unitary":
            gate = cls(op.base_matrix(), *op.qubits)
        else:
            gate = cls(*op.qubits, *op.params.values())
        if op.extra_controls:
            gate = gate.controlled_by(*op.extra_controls)
        return gate.dagger() if op.is_dagger else gate
    if isinstance(op, M):
        return qibo_gates.M(*op.qubits, register_name=op.register_name, collapse=op.collapse)
    assert isinstance(op, Channel)
    where = op.qubits if op.name in ("DepolarizingChannel", "PauliNoiseChannel") else op.qubits[0]
    return getattr(qibo_gates, op.name)(where, *op.params.values())


def expanded(gate: Gate, n: int) -> np.ndarray:
    """The gate on all n qubits: its matrix where its controls are 1 (the last block, with the
    controls first), the identity on the other qubits, axes put back in qubit order."""
    acted = [*gate.controls, *gate.targets]
    block = np.eye(2 ** len(acted), dtype=complex)
    m = gate.matrix()
    block[-len(m):, -len(m):] = m
    rest = [q for q in range(n) if q not in acted]
    full = np.kron(block, np.eye(2 ** len(rest))).reshape((2,) * 2 * n)
    axis = [[*acted, *rest].index(q) for q in range(n)]
    return full.transpose(axis + [n + a for a in axis]).reshape(2**n, 2**n)


def product(circuit: Circuit) -> np.ndarray:
    """The product of the gates' matrices, the first gate rightmost."""
    u = np.eye(2**circuit.nqubits, dtype=complex)
    for gate in circuit.gates:
        assert isinstance(gate, Gate)
        u = expanded(gate, circuit.nqubits) @ u
    return u


@pytest.fixture(autouse=True, scope="module")
def shared_backends() -> Iterator[None]:
    """`unitary(backend="numpy")` spawns a shared backend: closed with the module."""
    yield
    close_shared()


# --- draw -------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("parallel", [False, True])
def test_draw_is_qibos_layout(seed: int, parallel: bool) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 13))
    c = random_circuit(rng, n, int(rng.integers(0, 40)), dagger=False, noise=True,
                       measure=bool(seed % 2))
    q = to_qibo(c)
    for line_wrap in (100, 30, 7, 0):
        assert c.draw(line_wrap, parallel=parallel) == q.diagram(line_wrap, parallel=parallel)
    assert c.draw() == q.diagram()


def test_draw_wraps_as_qibo() -> None:
    c = Circuit(11)
    for k in range(30):
        c.add([gates.H(k % 11), gates.CNOT(k % 11, (k + 3) % 11)])
    drawn = c.draw(line_wrap=50)
    assert drawn == to_qibo(c).diagram(line_wrap=50)
    assert drawn.splitlines()[0].startswith("0 :     ─H─o") and drawn.splitlines()[0].endswith(
        " ...")
    assert "\n\n0 : ... " in drawn


def test_draw_refuses_a_line_wrap_that_is_not_a_width() -> None:
    for line_wrap in (-1, 2.5, True):
        with pytest.raises(UsageError, match="line_wrap is a number of characters"):
            Circuit(1).draw(line_wrap)  # type: ignore[arg-type]


def test_draw_legend_lists_channels_as_qibo() -> None:
    c = Circuit(2)
    c.add([gates.H(0), gates.DepolarizingChannel((0, 1), 0.05),
           gates.AmplitudeDampingChannel(1, 0.1), gates.M(0, 1)])
    ours, theirs = c.draw(legend=True).splitlines(), to_qibo(c).diagram(legend=True).splitlines()
    assert ours[:3] == theirs[:3]  # the wires and the blank line
    assert ours[4:] == theirs[4:]  # the table
    assert ours[4:] == ["| Gate                    | Symbol   |",
                        "|-------------------------+----------|",
                        "| AmplitudeDampingChannel | AD       |",
                        "| DepolarizingChannel     | D        |"]


def test_draw_shows_what_qibo_lacks_distinctly() -> None:
    c = Circuit(3)
    c.add([gates.H(0), gates.M(0, collapse=True, register_name="m"), gates.X(1).c_if("m"),
           gates.Reset(0), gates.RX(2, 0.3).dagger(), gates.S(2).dagger(), gates.CSX(1, 2).dagger(),
           gates.DepolarizingChannel(2, 0.1), gates.M(0, 1, 2)])
    assert c.draw() == ("0: ─H───MC──RST────────────M─\n"
                        "1: ─────────X[m=1]─o───────M─\n"
                        "2: ─RX†─SDG────────CSXDG─D─M─")
    assert c.depth == 6  # the conditioned X after the measurement it reads
    legend = c.draw(legend=True).splitlines()[5:]
    assert legend == ["| Gate                | Symbol   |",
                      "|---------------------+----------|",
                      "| DepolarizingChannel | D        |",
                      "| M(collapse=True)    | MC       |",
                      "| Reset               | RST      |"]


def test_print_and_jupyter_show_the_diagram_with_the_counts() -> None:
    c = Circuit(2)
    c.add([gates.H(0), gates.CNOT(0, 1), gates.M(0, 1)])
    assert repr(c) == "Circuit(2) with 2 gates, 1 measurements"
    assert str(c) == "Circuit(2) with 2 gates, 1 measurements\n0: ─H─o─M─\n1: ───X─M─"

    class Printer:  # what IPython's pretty printer offers a _repr_pretty_ (IPython is not ours)
        def __init__(self) -> None:
            self.written: list[str] = []

        def text(self, text: str) -> None:
            self.written.append(text)

    shown, cycle = Printer(), Printer()
    c._repr_pretty_(shown, False)
    c._repr_pretty_(cycle, True)
    assert shown.written == [str(c)] and cycle.written == [repr(c)]


# --- summary, depth, counts -------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(10))
def test_depth_counts_and_summary_as_qibo(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(1, 8))
    c = random_circuit(rng, n, int(rng.integers(1, 30)), noise=True, measure=bool(seed % 2))
    q = to_qibo(c)
    assert c.depth == q.depth
    assert c.ngates == q.ngates
    # qibo renames some gates it daggers or controls (CU2 daggered is a U2, Y controlled a CY)
    c = random_circuit(rng, n, int(rng.integers(1, 30)), dagger=False, controls=False,
                       noise=True, measure=bool(seed % 2))
    q = to_qibo(c)
    assert c.gate_types == Counter({cls.__name__: k for cls, k in q.gate_types.items()})
    assert list(c.count_ops().values()) == sorted(c.count_ops().values(), reverse=True)
    assert c.summary().splitlines()[:3] == q.summary_string().splitlines()[:3]


def test_daggers_with_a_name_of_their_own_count_under_it_as_in_qibo() -> None:
    c = Circuit(2)
    c.add([gates.S(0).dagger(), gates.SDG(1).dagger(), gates.T(0).dagger(), gates.SX(1).dagger(),
           gates.CSX(0, 1).dagger(), gates.RX(0, 0.1).dagger()])
    assert c.gate_types == Counter({"SDG": 1, "S": 1, "TDG": 1, "SXDG": 1, "CSXDG": 1, "RX": 1})
    q = to_qibo(c)
    assert c.gate_types == Counter({cls.__name__: k for cls, k in q.gate_types.items()})
    assert q.diagram() == "0: ─SDG─TDG──o─────RX─\n1: ─S───SXDG─CSXDG────"
    assert c.draw() == "0: ─SDG─TDG──o─────RX†─\n1: ─S───SXDG─CSXDG─────"


def test_summary_lists_parameters_measurements_and_channels() -> None:
    t = [Parameter("t0"), Parameter("t1")]
    c = Circuit(3)
    c.add([gates.RY(0, t[0]), gates.RY(1, t[1]), gates.CNOT(0, 1), gates.RZ(0, t[1]),
           gates.DepolarizingChannel(2, 0.1), gates.M(0, 1, register_name="a"), gates.M(2)])
    assert c.depth == 4 and c.ngates == 7 and len(c) == 5
    assert c.count_ops() == {"RY": 2, "M": 2, "CNOT": 1, "RZ": 1, "DepolarizingChannel": 1}
    assert c.summary() == "\n".join([
        "Circuit depth = 4", "Total number of gates = 7", "Number of qubits = 3",
        "Most common gates:", "RY: 2", "M: 2", "CNOT: 1", "RZ: 1", "DepolarizingChannel: 1",
        "Parameters = 2: t0, t1", "Measurements = 2: a [0, 1], register1 [2]", "Channels = 1"])
    assert Circuit(2).depth == 0 and Circuit(2).ngates == 0  # qibo says depth 1 here


# --- invert -----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(8))
def test_invert_is_qibos_inverse(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    n = int(rng.integers(1, 5))
    c = random_circuit(rng, n, int(rng.integers(1, 20)))
    inverse = c.invert()
    assert np.allclose(product(inverse) @ product(c), np.eye(2**n), atol=1e-10)
    assert inverse.invert() == c
    assert c.inverse() == inverse  # Qiskit's name
    # qibo 0.3.6's iSWAP(...).dagger() has iSWAP's own matrix, not its inverse
    c = random_circuit(rng, n, int(rng.integers(1, 20)), names=NOT_ISWAP)
    assert np.allclose(product(c.invert()), to_qibo(c).invert().unitary(QIBO), atol=1e-10)


def test_invert_keeps_the_closing_measurements_last() -> None:
    c = Circuit(2)
    c.add([gates.H(0), gates.CNOT(0, 1), gates.M(1, register_name="b"), gates.M(0)])
    inverse = c.invert()
    assert inverse.gates == [gates.CNOT(0, 1), gates.H(0)]
    assert inverse.measurements == c.measurements and inverse.registers == c.registers
    assert inverse.draw() == to_qibo(c).invert().diagram()


@pytest.mark.parametrize("op, kind", [
    (gates.M(0, collapse=True, register_name="m"), "a collapsing measurement"),
    (gates.Reset(1), "a reset"),
    (gates.DepolarizingChannel(0, 0.1), "a noise channel"),
])
def test_invert_refuses_what_has_no_inverse_by_name(op: Operation, kind: str) -> None:
    c = Circuit(2)
    c.add([gates.H(0), op, gates.X(1)])
    with pytest.raises(CircuitError, match=rf"invert: gate 1, {re.escape(repr(op))}.*{kind}"):
        c.invert()


def test_an_inverted_parametrised_circuit_binds_the_same_names() -> None:
    t, s = Parameter("t"), Parameter("s")
    c = Circuit(2)
    c.add([gates.RX(0, t), gates.CRZ(0, 1, s), gates.U3(1, t, s, 0.4)])
    inverse = c.invert()
    assert set(inverse.parameters) == {t, s}
    values = {"t": 0.3, "s": -1.2}
    assert inverse.bind(values) == c.bind(values).invert()
    bound = inverse.bind(values)
    assert np.allclose(product(bound) @ product(c.bind(values)), np.eye(4), atol=1e-12)


# --- compose, +, copy, == ---------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_add_is_qibos_add(seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    n = int(rng.integers(1, 5))
    c1, c2 = (random_circuit(rng, n, int(rng.integers(0, 10)), dagger=False, noise=True)
              for _ in range(2))
    total = c1 + c2
    assert total.gates == c1.gates + c2.gates
    assert total.draw() == (to_qibo(c1) + to_qibo(c2)).diagram()
    c1, c2 = (random_circuit(rng, n, int(rng.integers(0, 10))) for _ in range(2))
    assert np.allclose(product(c1 + c2), (to_qibo(c1) + to_qibo(c2)).unitary(QIBO), atol=1e-10)


def test_compose_places_the_other_circuit_on_the_given_qubits() -> None:
    rng = np.random.default_rng(7)
    big, small = random_circuit(rng, 4, 6), random_circuit(rng, 2, 8)
    composed = big.compose(small, qubits=[3, 1])
    by_hand = big.copy()
    for gate in small.gates:
        assert isinstance(gate, Gate)
        moved = gates.Unitary(gate.matrix(), *([3, 1][q] for q in gate.targets))
        if gate.controls:
            moved = moved.controlled_by(*([3, 1][q] for q in gate.controls))
        by_hand.add(moved)
    assert np.allclose(product(composed), product(by_hand), atol=1e-12)
    assert composed.gates[:len(big.gates)] == big.gates
    assert big.compose(small) == big.compose(small, qubits=[0, 1])


def test_compose_keeps_registers_distinct() -> None:
    first = Circuit(2)
    first.add([gates.H(0), gates.M(0, collapse=True), gates.X(1).c_if("register0")])
    second = Circuit(1)
    second.add([gates.M(0, collapse=True), gates.X(0).c_if("register0"), gates.M(0)])
    assert second.registers == {"register0": (0,), "register1": (0,)}
    joined = first.compose(second, qubits=[1])
    assert joined.registers == {"register0": (0,), "register2": (1,), "register1": (1,)}
    assert joined.gates[-1] == gates.X(1).c_if("register2")
    assert first.registers == {"register0": (0,)}  # unchanged
    named = Circuit(1)
    named.add(gates.M(0, register_name="m"))
    with pytest.raises(CircuitError, match="both circuits have a register 'm'"):
        named + named


def test_compose_checks_qubits() -> None:
    three, two = Circuit(3), Circuit(2)
    two.add(gates.CNOT(0, 1))
    with pytest.raises(CircuitError, match="3-qubit circuit \\+ 2-qubit circuit"):
        three + two
    with pytest.raises(CircuitError, match="does not fit on 2 qubits"):
        two.compose(three)
    for qubits, problem in [([0], "names 1 qubits for a circuit of 2"),
                            ([0, 3], "must be qubits of this 3-qubit circuit"),
                            ([1, 1], "repeats a qubit")]:
        with pytest.raises(CircuitError, match=problem):
            three.compose(two, qubits=qubits)
    with pytest.raises(CircuitError, match="density matrix"):
        Circuit(2, density_matrix=True) + two
    measured = Circuit(2)
    measured.add(gates.M(0))
    with pytest.raises(CircuitError, match="operation 0 of the second circuit: .*already measured"):
        measured + two


def test_composed_parametrised_circuits_bind_the_same_names() -> None:
    t = Parameter("t")
    a, b = Circuit(2), Circuit(1)
    a.add(gates.RY(0, t))
    b.add([gates.RZ(0, Parameter("s")), gates.RX(0, t)])
    joined = a.compose(b, qubits=[1])
    assert joined.parameters == [t, Parameter("s")]
    bound = joined.bind({"t": 0.5, "s": 0.25})
    assert bound == a.bind({"t": 0.5}).compose(b.bind({"t": 0.5, "s": 0.25}), qubits=[1])


def test_copy_changes_without_changing_the_original() -> None:
    c = Circuit(2)
    c.add([gates.H(0), gates.CNOT(0, 1), gates.M(0)])
    original = c.to_data()
    other = c.copy()
    assert other == c and other is not c
    other.add(gates.X(1))
    other.gates[0] = gates.Y(0)
    other.add(gates.M(1))
    assert c.to_data() == original and other != c
    assert c.registers == {"register0": (0,)}


def test_equality_compares_parameters_matrices_and_measurements() -> None:
    def one(*ops: Operation, density: bool = False) -> Circuit:
        c = Circuit(2, density_matrix=density)
        c.add(ops)
        return c

    assert one(gates.RX(0, Parameter("t"))) == one(gates.RX(0, Parameter("t")))
    assert one(gates.RX(0, Parameter("t"))) != one(gates.RX(0, Parameter("s")))
    assert one(gates.RX(0, Parameter("t"))) != one(gates.RX(0, 0.0))
    assert one(gates.Unitary(np.eye(2), 0)) != one(gates.Unitary(np.diag([1, -1]), 0))
    assert one(gates.M(0, register_name="a")) != one(gates.M(0, register_name="b"))
    assert one(gates.M(0, collapse=True)) != one(gates.M(0))
    assert one(gates.H(0)) != one(gates.H(0), density=True)
    assert one(gates.Reset(0)) == one(gates.Reset(0))
    assert one(gates.H(0)) != "H"


# --- unitary ----------------------------------------------------------------------------------

def test_unitary_puts_qubit_0_most_significant(handle: Handle) -> None:
    c = Circuit(2)
    c.add(gates.X(0))
    assert np.allclose(c.unitary(backend=handle), np.kron([[0, 1], [1, 0]], np.eye(2)))
    c.add(gates.CNOT(0, 1))
    cnot_after_x = np.array([[0, 0, 1, 0], [0, 0, 0, 1], [0, 1, 0, 0], [1, 0, 0, 0]])
    assert np.allclose(c.unitary(backend=handle), cnot_after_x)


@pytest.mark.parametrize("seed", range(4))
def test_unitary_is_the_product_of_the_gates_and_qibos(handle: Handle, seed: int) -> None:
    rng = np.random.default_rng(400 + seed)
    n = 1 + seed % 4
    c = random_circuit(rng, n, 12)
    u = c.unitary(backend=handle)
    assert u.shape == (2**n, 2**n)
    tolerance = 1e-5 if handle.precision == "complex64" else 1e-10
    assert np.abs(u - product(c)).max() < tolerance
    assert np.abs(u - to_qibo(c).unitary(QIBO)).max() < tolerance


@pytest.mark.backends("qulacs")
def test_unitary_by_name_on_a_shared_backend() -> None:
    rng = np.random.default_rng(5)
    c = random_circuit(rng, 3, 15)
    assert np.allclose(c.unitary(), product(c), atol=1e-10)  # backend="numpy"
    assert np.allclose(c.unitary(backend="qulacs"), product(c), atol=1e-10)
    dense = Circuit(2, density_matrix=True)
    dense.add([gates.H(0), gates.CNOT(0, 1)])
    assert np.allclose(dense.unitary(), product(dense), atol=1e-12)


@pytest.mark.parametrize("ops, problem", [
    ([gates.H(0), gates.M(0)], r"unitary: M\(0, register_name='register0'\): a circuit that "
                                "measures has no unitary"),
    ([gates.M(0, collapse=True)], "a circuit that measures"),
    ([gates.H(0), gates.Reset(1)], r"unitary: gate 1, Reset\(1\), is not unitary"),
    ([gates.DepolarizingChannel(0, 0.1)], "unitary: gate 0, DepolarizingChannel"),
    ([gates.RX(0, Parameter("t")), gates.RY(1, Parameter("u"))],
     r"Parameters \(t, u\): value them first, circuit.bind\(values\).unitary\(\)"),
])
def test_unitary_refuses_what_has_none(ops: list[Operation], problem: str) -> None:
    c = Circuit(2)
    c.add(ops)
    with pytest.raises(CircuitError, match=problem):
        c.unitary()


def test_unitary_refuses_large_circuits_naming_the_memory() -> None:
    with pytest.raises(CircuitError, match="13-qubit circuit's matrix takes 1 GiB, computed as "
                                           "a 26-qubit state.*at most 12 qubits"):
        Circuit(13).unitary()
    with pytest.raises(CircuitError, match="takes 16 TiB"):
        Circuit(20).unitary()
