"""Times circuits on qibo's own NumPy backend; run by bench.py with qibo's interpreter.

Reads [{"name": ..., "circuit": <our circuit JSON>}, ...] and a repeat count on stdin; prints
{"name": [seconds, ...]} on stdout. qibo is never imported by qibo-core itself.
"""

import json
import sys
import time

import numpy as np
import qibo
from qibo import gates

qibo.set_backend("numpy")
request = json.load(sys.stdin)
times = {}
for case in request["cases"]:
    data = case["circuit"]
    circuit = qibo.Circuit(data["nqubits"], density_matrix=data.get("densityMatrix", False))
    for g in data.get("gates", []):
        if "kraus" in g:  # a channel: the same Kraus operators
            ops = [np.array(k)[..., 0] + 1j * np.array(k)[..., 1] for k in g["kraus"]]
            if g["name"] == "DepolarizingChannel":  # qibo's own, which also runs on vectors
                dim = len(ops[0]) ** 2
                lam = (1 - abs(ops[0][0, 0]) ** 2) * dim / (dim - 1)
                circuit.add(gates.DepolarizingChannel(tuple(g["qubits"]), lam))
            else:
                circuit.add(gates.KrausChannel(tuple(g["qubits"]), ops))
        else:
            circuit.add(getattr(gates, g["name"])(*g["qubits"], *g.get("params", {}).values()))
    for m in data.get("measurements", []):
        circuit.add(gates.M(*m["qubits"]))
    nshots = case.get("nshots", 0)
    circuit(nshots=nshots) if nshots else circuit()  # warm-up
    runs = []
    for _ in range(request["repeats"]):
        start = time.perf_counter()
        if nshots:
            circuit(nshots=nshots).frequencies()
        else:
            circuit().state()
        runs.append(time.perf_counter() - start)
    times[case["name"]] = runs
print(json.dumps(times))
