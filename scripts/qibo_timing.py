"""Times circuits on qibo's own NumPy backend; run by bench.py with qibo's interpreter.

Reads [{"name": ..., "circuit": <our circuit JSON>}, ...] and a repeat count on stdin; prints
{"name": [seconds, ...]} on stdout. qibo is never imported by qibo-core itself.
"""

import json
import sys
import time

import qibo
from qibo import gates

qibo.set_backend("numpy")
request = json.load(sys.stdin)
times = {}
for case in request["cases"]:
    data = case["circuit"]
    circuit = qibo.Circuit(data["nqubits"])
    for g in data.get("gates", []):
        circuit.add(getattr(gates, g["name"])(*g["qubits"], *g.get("params", {}).values()))
    circuit()  # warm-up
    runs = []
    for _ in range(request["repeats"]):
        start = time.perf_counter()
        circuit().state()
        runs.append(time.perf_counter() - start)
    times[case["name"]] = runs
print(json.dumps(times))
