"""A third-party backend with the classic Qulacs pitfall: RX rotates the wrong way."""

from qibo_backend_numpy.simulator import NumpyBackend
from qibo_core import gates
from qibo_core.server import no_checkpoint, serve


class WrongRX(NumpyBackend):
    name = "wrong-rx"

    def apply(self, state, gates_, checkpoint=no_checkpoint):  # type: ignore[no-untyped-def]
        flipped = [gates.RX(*g.qubits, -g.params["theta"]) if type(g) is gates.RX else g
                   for g in gates_]
        return super().apply(state, flipped, checkpoint)


serve(WrongRX())
