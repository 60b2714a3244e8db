"""The server framework: the interface a simulator implements, the session that checks every
request for it, and serve(backend), the loop of a backend executable.

    from qibo_core.server import Backend, serve
    class MyBackend(Backend): ...   # zero_state, apply, to_array
    def main() -> None:             # the console script qibo-backend-mine
        serve(MyBackend())
"""

from ..protocol.state_maths import marginal_probabilities
from . import execution, lifecycle, prepared, states  # noqa: F401  (they register handlers)
from .backend import Backend, Checkpoint, DensityMatrices, no_checkpoint
from .serve import idle_threads_sleep, serve
from .session import Session

__all__ = ["Backend", "Checkpoint", "DensityMatrices", "Session", "idle_threads_sleep",
           "marginal_probabilities", "no_checkpoint", "serve"]
