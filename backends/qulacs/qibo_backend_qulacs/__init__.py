"""qibo-backend-qulacs: the Qulacs simulator, served over the qibo-core protocol.

`QulacsBackend` can also be used in process: `circuit.execute(backend=QulacsBackend())`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["QulacsBackend", "main"]


def main() -> None:
    """The qibo-backend-qulacs executable."""
    from qibo_core.server import idle_threads_sleep, serve

    idle_threads_sleep()  # before the simulator's OpenMP runtime loads
    from .simulator import QulacsBackend
    serve(QulacsBackend, name="qulacs", version=__version__)


def __getattr__(name: str) -> Any:
    if name == "QulacsBackend":
        from .simulator import QulacsBackend
        return QulacsBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
