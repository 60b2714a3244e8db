"""A third-party backend whose simulator writes to stdout from Python and through fd 1."""

import os

from qibo_backend_numpy.simulator import NumpyBackend
from qibo_core.server import no_checkpoint, serve


class NoisyBackend(NumpyBackend):
    name = "noisy"

    def apply(self, state, gates, checkpoint=no_checkpoint):  # type: ignore[no-untyped-def]
        print("print() from the simulator")
        os.write(1, b"os.write(1) from the simulator\n")
        return super().apply(state, gates, checkpoint)


serve(NoisyBackend())
