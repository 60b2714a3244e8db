"""qibo-backend-aer: Qiskit Aer's state-vector and density-matrix simulators, served over the
qibo-core protocol.

`AerBackend` can also be used in process: `circuit.execute(backend=AerBackend())`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["AerBackend", "main"]


def main() -> None:
    """The qibo-backend-aer executable."""
    from qibo_core.server import idle_threads_sleep, serve

    idle_threads_sleep()  # before the simulator's OpenMP runtime loads
    from .simulator import AerBackend
    serve(AerBackend, name="aer", version=__version__)


def __getattr__(name: str) -> Any:
    if name == "AerBackend":
        from .simulator import AerBackend
        return AerBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
