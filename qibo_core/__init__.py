"""qibo-core: run quantum circuits on simulators that live in their own processes.

    from qibo_core import Circuit, gates
    c = Circuit(2); c.add(gates.H(0)); c.add(gates.CNOT(0, 1)); c.add(gates.M(0, 1))
    c.execute(backend="numpy", nshots=1000).frequencies()
"""

__version__ = "0.1.0"

from . import gates
from .backend import Backend
from .circuit import Circuit
from .discovery import BackendExecutable, list_backends
from .errors import (
    BackendCrashed, BackendError, BackendNotFound, CircuitError, ConnectionFailed, GateFailed,
    InternalError, InvalidParams, InvalidRequest, MethodNotFound, ParseError, ProtocolError,
    QiboCoreError, RequestCancelled, RequestTimeout, ServerNotInitialized, StateTooLarge,
    UnknownState, UnsupportedProtocolVersion,
)
from .handle import Handle, State, connect
from .protocol import PROTOCOL_VERSION
from .result import Result

__all__ = [
    "Backend",
    "BackendCrashed",
    "BackendError",
    "BackendExecutable",
    "BackendNotFound",
    "Circuit",
    "CircuitError",
    "ConnectionFailed",
    "GateFailed",
    "Handle",
    "InternalError",
    "InvalidParams",
    "InvalidRequest",
    "MethodNotFound",
    "PROTOCOL_VERSION",
    "ParseError",
    "ProtocolError",
    "QiboCoreError",
    "RequestCancelled",
    "RequestTimeout",
    "Result",
    "ServerNotInitialized",
    "State",
    "StateTooLarge",
    "UnknownState",
    "UnsupportedProtocolVersion",
    "__version__",
    "connect",
    "gates",
    "list_backends",
]
