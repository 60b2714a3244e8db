"""qibo-backend-qibojit: qibojit (qibo's numba simulator), served over the qibo-core protocol.

`QibojitBackend` can also be used in process: `circuit.execute(backend=QibojitBackend())`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["QibojitBackend", "main"]


def main() -> None:
    """The qibo-backend-qibojit executable."""
    from qibo_core.server import serve

    from .simulator import QibojitBackend
    serve(QibojitBackend, name="qibojit", version=__version__)


def __getattr__(name: str) -> Any:
    if name == "QibojitBackend":
        from .simulator import QibojitBackend
        return QibojitBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
