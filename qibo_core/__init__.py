"""qibo-core: run quantum circuits on simulators that live in their own processes.

    from qibo_core import Circuit, gates
    c = Circuit(2); c.add(gates.H(0)); c.add(gates.CNOT(0, 1)); c.add(gates.M(0, 1))
    c.execute(backend="numpy", nshots=1000).frequencies()

The packages, by role: `circuit` (the model), `protocol` (what both ends share), `client`,
`server` (the framework a backend is written with), `testing` (the conformance kit), `interop`.
"""

from typing import TYPE_CHECKING, Any

from .circuit import Circuit, Observable, Parameter, gates
from .errors import (
    BackendCrashed,
    BackendError,
    BackendHung,
    BackendNotFound,
    CircuitError,
    ConfigError,
    ConnectionFailed,
    GateFailed,
    HandleClosed,
    InternalError,
    InvalidGate,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    ParseError,
    ProtocolError,
    QiboCoreError,
    RequestCancelled,
    RequestTimeout,
    ServerNotInitialized,
    StateLost,
    StateTooLarge,
    UnknownState,
    UnsupportedProtocolVersion,
    UsageError,
)
from .protocol import PROTOCOL_VERSION
from .server import Backend
from .version import __version__

if TYPE_CHECKING:
    from .client import (
        AsyncHandle,
        BackendExecutable,
        Handle,
        Result,
        State,
        aconnect,
        connect,
        execute_many,
        list_backends,
    )
    from .interop.qibo import MetaBackend

# The client loads on first use: a backend process (which imports this package for its server)
# starts faster without subprocess, threads and shared-memory machinery.
_LAZY = {name: "client" for name in ("AsyncHandle", "BackendExecutable", "Handle", "Result",
                                      "State", "aconnect", "connect", "execute_many",
                                      "list_backends")}
_LAZY["MetaBackend"] = "interop.qibo"  # what qibo.set_backend("qibo_core") loads


class _Client:
    """The runner of `Circuit.execute` and `Circuit.expectation`: the client's, loaded on
    first use."""

    def execute(self, circuit: Circuit, backend: Any, **options: Any) -> Any:
        from .client import api
        return api.execute(circuit, backend, **options)

    def expectation(self, circuit: Circuit, backend: Any, observable: Any,
                    **options: Any) -> Any:
        from .client import api
        return api.expectation(circuit, backend, observable, **options)


Circuit.runner = _Client()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AsyncHandle",
    "Backend",
    "BackendCrashed",
    "BackendError",
    "BackendExecutable",
    "BackendHung",
    "BackendNotFound",
    "Circuit",
    "CircuitError",
    "ConfigError",
    "ConnectionFailed",
    "GateFailed",
    "Handle",
    "HandleClosed",
    "InternalError",
    "InvalidGate",
    "InvalidParams",
    "InvalidRequest",
    "MetaBackend",
    "MethodNotFound",
    "Observable",
    "PROTOCOL_VERSION",
    "Parameter",
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
    "UsageError",
    "__version__",
    "aconnect",
    "connect",
    "execute_many",
    "gates",
    "list_backends",
]
