"""OpenQASM 2.0 in and out."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qibo_core import Circuit, CircuitError, Handle, gates
from qibo_core.circuit.gates import GATES
from qibo_core.circuit.qasm import QASM_NAMES
from qibo_core.testing.reference import final_state

angles = st.floats(-2 * math.pi, 2 * math.pi, allow_nan=False)


@pytest.mark.parametrize("name", sorted(QASM_NAMES))
@given(data=st.data())
def test_every_expressible_gate_round_trips(name: str, data: st.DataObject) -> None:
    cls = GATES[name]
    size = cls.ncontrols + (cls.ntargets or 1)
    qubits = data.draw(st.permutations(range(4)))[:size]
    gate = cls(*qubits, *[data.draw(angles) for _ in cls.param_names])
    circuit = Circuit(4)
    circuit.add(gate)
    circuit.add(gates.M(*qubits, register_name="out"))
    again = Circuit.from_qasm(circuit.to_qasm())
    assert again == circuit


def test_daggers_of_named_inverses_round_trip() -> None:
    circuit = Circuit(1)
    circuit.add([gates.S(0).dagger(), gates.T(0).dagger(), gates.SX(0).dagger()])
    assert [g.name for g in Circuit.from_qasm(circuit.to_qasm()).gates] == ["SDG", "TDG", "SXDG"]


@pytest.mark.parametrize("gate", [gates.fSim(0, 1, 0.1, 0.2), gates.H(0).controlled_by(1),
                                  gates.RX(0, 0.2).dagger(), gates.ECR(0, 1)])
def test_gates_qasm_cannot_express(gate: gates.Gate) -> None:
    circuit = Circuit(2)
    circuit.add(gate)
    with pytest.raises(CircuitError, match="no OpenQASM 2.0 equivalent"):
        circuit.to_qasm()


PROGRAM = """
OPENQASM 2.0;
include "qelib1.inc";
// a Bell pair on register a, a rotated qubit on b, a user gate, broadcasting
qreg a[2];
qreg b[1];
creg ca[2];
creg cb[1];
gate bell(theta) x, y { h x; cx x, y; rz(theta / 2) y; barrier x, y; }
bell(-pi + 2 * pi) a[0], a[1];
ry(sin(pi / 2) * 0.5 ^ 2) b[0];
barrier a, b;
x a;
measure a -> ca;
measure b[0] -> cb[0];
"""


def test_a_program_with_definitions_expressions_and_registers(reference: Handle) -> None:
    circuit = Circuit.from_qasm(PROGRAM)
    assert circuit.nqubits == 3
    assert [g.name for g in circuit.gates] == ["H", "CNOT", "RZ", "RY", "X", "X"]
    assert circuit.gates[2].params["theta"] == pytest.approx(math.pi / 2)
    assert circuit.gates[3].params["theta"] == pytest.approx(0.25)
    assert circuit.registers == {"ca": (0, 1), "cb": (2,)}
    np.testing.assert_allclose(reference.execute(circuit).state(), final_state(circuit),
                               atol=1e-12)
    counts = reference.execute(circuit, nshots=400, seed=1).frequencies(registers=True)
    assert set(counts["ca"]) <= {"00", "11"} and sum(counts["cb"].values()) == 400


@pytest.mark.parametrize("program, message", [
    ("OPENQASM 3.0;", "line 1: only OpenQASM 2.0"),
    ('OPENQASM 2.0;\ninclude "other.inc";', "line 2: only qelib1.inc"),
    ("OPENQASM 2.0;\nqreg q[2];\nfoo q[0];", "line 3: unknown gate 'foo'"),
    ("OPENQASM 2.0;\nqreg q[2];\nh r[0];", "line 3: unknown qreg 'r'"),
    ("OPENQASM 2.0;\nqreg q[2];\nh q[5];", "line 3: index 5 out of range for q[2]"),
    ("OPENQASM 2.0;\nqreg q[2];\ncx q[0], q[0];", "line 3: cx: CNOT acts on repeated qubits"),
    ("OPENQASM 2.0;\nqreg q[2];\nrx(1/0) q[0];", "line 3: division by zero"),
    ("OPENQASM 2.0;\nqreg q[2];\nrx(theta) q[0];", "line 3: unknown name 'theta'"),
    ("OPENQASM 2.0;\nqreg q[2];\nh q[0]", "expected ',' or ';' after h's arguments, found the end"),
    ("OPENQASM 2.0;\nqreg q[2];\ncreg c[2];\nmeasure q[0] -> c[0];\nh q[0];",
     "line 4: a measure with more to come on its qubits fills a whole creg"),
    ("OPENQASM 2.0;\nqreg q[1];\nopaque g q;", "line 3: 'opaque' is not supported"),
    ("OPENQASM 2.0;\nqreg q[2];\nqreg r[3];\ncx q, r;", "line 4: registers of different sizes"),
    ("OPENQASM 2.0;\nqreg q[1];\n@", "line 3: unexpected character '@'"),
    ("OPENQASM 2.0;\ncreg c[1];", "declares no qreg"),
    ("OPENQASM 2.0;\nqreg q[2];\ngate g a { h b; }\ng q[0];",
     "line 4: gate 'g' uses an undeclared qubit 'b'"),
    ("OPENQASM 2.0;\nqreg q[2];\ngate g(t) a { rx(t) a; }\ng q[0];",
     "line 4: gate 'g' takes 1 parameters and 1 qubits"),
])
def test_errors_name_the_line(program: str, message: str) -> None:
    with pytest.raises(CircuitError, match=re.escape(message)):
        Circuit.from_qasm(program)
