"""The circuit model: gates (the one definition of every matrix), Circuit, and OpenQASM 2.0.

Below both ends of the protocol: clients build circuits, servers read them back from data.
"""

from . import gates
from .circuit import Circuit
from .decode import GateReader, from_data, gate_label, read_gates
from .gate import GATES, Gate, M, Operation, Reset

__all__ = ["GATES", "Circuit", "Gate", "GateReader", "M", "Operation", "Reset", "from_data",
           "gate_label", "gates", "read_gates"]
