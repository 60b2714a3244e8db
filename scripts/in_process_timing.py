"""Times circuits on a backend object in this process; bench.py runs it with the interpreter of
the backend's own environment (qibojit's, which the benchmark's environment does not have).

Reads {"backend": "module:Class", "cases": [{"name": ..., "circuit": <our circuit JSON>}],
"repeats": k} on stdin; prints {"name": [seconds, ...]} (after one warm-up run each).
"""

import importlib
import json
import sys
import time

import msgspec

from qibo_core.circuit import Circuit
from qibo_core.protocol import CircuitData

request = json.load(sys.stdin)
module, name = request["backend"].split(":")
backend = getattr(importlib.import_module(module), name)()
times = {}
for case in request["cases"]:
    circuit = Circuit.from_data(msgspec.convert(case["circuit"], CircuitData))
    runs = []
    for _ in range(request["repeats"] + 1):
        start = time.perf_counter()
        backend.to_array(backend.apply(backend.zero_state(circuit.nqubits), circuit.gates)).copy()
        runs.append(time.perf_counter() - start)
    times[case["name"]] = runs[1:]
print(json.dumps(times))
