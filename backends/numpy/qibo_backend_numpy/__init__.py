"""qibo-backend-numpy: a state-vector simulator in NumPy, served over the qibo-core protocol.

`NumpyBackend` can also be used in process: `circuit.execute(backend=NumpyBackend())`.
"""

from __future__ import annotations

import os
from typing import Any

__version__ = "0.1.0"
__all__ = ["NumpyBackend", "main"]


def main() -> None:
    """The qibo-backend-numpy executable."""
    # Before NumPy loads: OpenBLAS's own threads made runs erratic.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from qibo_core.server import serve

    from .simulator import NumpyBackend
    serve(NumpyBackend())


def __getattr__(name: str) -> Any:
    # NumpyBackend loads on first use, so that main() can set the environment before NumPy does.
    if name == "NumpyBackend":
        from .simulator import NumpyBackend
        return NumpyBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
