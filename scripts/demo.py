"""A circuit executed on spawned backends: the README's first command runs this."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from circuits import qft

import qibo_core
from qibo_core import Circuit, gates


def main() -> None:
    print("installed backends:")
    for backend in qibo_core.list_backends():
        print(f"  {backend.name:8} {backend.path}")

    c = Circuit(3)
    c.add([gates.H(0), gates.CNOT(0, 1), gates.RY(2, theta=0.3), gates.M(0, 1, 2)])
    for name in ("numpy", "qulacs"):
        r = c.execute(backend=name, nshots=1000, seed=7)
        print(f"\n{name}: frequencies {dict(sorted(r.frequencies().items()))}")
        print(f"{name}: P(q0, q1) = {np.round(r.probabilities([0, 1]), 4)}")
    print(f"state: {np.round(c.execute(backend='qulacs').state(), 4)}")

    circuit = qft(20)
    start = time.perf_counter()
    state = circuit.execute(backend="qulacs").state()
    elapsed = time.perf_counter() - start
    uniform = np.allclose(np.abs(state), 2 ** -10)
    print(f"\nQFT on 20 qubits ({len(circuit)} gates) on a spawned qibo-backend-qulacs: "
          f"{elapsed * 1000:.0f} ms, state of {state.size} amplitudes, uniform: {uniform}")


if __name__ == "__main__":
    main()
