"""The circuit model: gates (the one definition of every matrix), Circuit, and OpenQASM 2.0.

Below both ends of the protocol: clients build circuits, servers read them back from data.
"""

from . import gates
from .channels import Channel
from .circuit import Circuit
from .decode import GateReader, from_data, gate_label, read_gates
from .gate import GATES, Gate, M, Reset
from .observable import Observable
from .operation import Operation
from .parameter import Parameter

__all__ = ["GATES", "Channel", "Circuit", "Gate", "GateReader", "M", "Observable", "Operation",
           "Parameter", "Reset", "from_data", "gate_label", "gates", "read_gates"]
