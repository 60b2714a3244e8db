"""A third-party backend that greets on stdout before serving: a protocol violation."""

print("Welcome to my simulator!", flush=True)

from qibo_backend_numpy.simulator import NumpyBackend  # noqa: E402
from qibo_core.server import serve  # noqa: E402

serve(NumpyBackend())
