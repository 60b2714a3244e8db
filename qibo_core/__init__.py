"""qibo-core: run quantum circuits on simulators that live in their own processes.

    from qibo_core import Circuit, gates
    c = Circuit(2); c.add(gates.H(0)); c.add(gates.CNOT(0, 1)); c.add(gates.M(0, 1))
    c.execute(backend="numpy", nshots=1000).frequencies()
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from . import gates
from .backend import Backend
from .circuit import Circuit
from .errors import (
    BackendCrashed, BackendError, BackendNotFound, CircuitError, ConfigError, ConnectionFailed,
    GateFailed, HandleClosed, InternalError, InvalidArgument, InvalidParams, InvalidRequest,
    MethodNotFound, ParseError, ProtocolError, QiboCoreError, RequestCancelled, RequestTimeout,
    ServerNotInitialized, StateLost, StateTooLarge, UnknownState, UnsupportedProtocolVersion,
)
from .protocol import PROTOCOL_VERSION

if TYPE_CHECKING:
    from .batch import execute_many
    from .discovery import BackendExecutable, list_backends
    from .handle import Handle, State, connect
    from .result import Result

# The client side loads on first use: a backend process (which imports this package for its
# server) starts faster without subprocess, threads and shared-memory machinery.
_CLIENT_NAMES = {"BackendExecutable": "discovery", "list_backends": "discovery",
                 "Handle": "handle", "State": "handle", "connect": "handle", "Result": "result",
                 "execute_many": "batch",
                 "MetaBackend": "qibo_backend"}  # what qibo.set_backend("qibo_core") loads


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        import importlib
        value = getattr(importlib.import_module(f".{_CLIENT_NAMES[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Backend",
    "BackendCrashed",
    "BackendError",
    "BackendExecutable",
    "BackendNotFound",
    "Circuit",
    "CircuitError",
    "ConfigError",
    "ConnectionFailed",
    "GateFailed",
    "Handle",
    "HandleClosed",
    "InternalError",
    "InvalidArgument",
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
    "StateLost",
    "StateTooLarge",
    "UnknownState",
    "UnsupportedProtocolVersion",
    "__version__",
    "connect",
    "execute_many",
    "gates",
    "list_backends",
]
