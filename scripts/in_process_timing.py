"""Times runs of a backend object in this process, one per request: bench.py runs it with the
interpreter of the backend's own environment (qibojit's, which the benchmark's environment does
not have) and alternates its runs with the spawned backend's.

The first line on stdin is {"backend": "module:Class", "cases": {name: <our circuit JSON>}};
each later line names a case, and the answer is a line with the seconds one run of it took.
"""

import importlib
import json
import sys
import time

import msgspec

from qibo_core.circuit import Circuit
from qibo_core.protocol import CircuitData

request = json.loads(sys.stdin.readline())
module, name = request["backend"].split(":")
backend = getattr(importlib.import_module(module), name)()
circuits = {case: Circuit.from_data(msgspec.convert(data, CircuitData))
            for case, data in request["cases"].items()}
for line in sys.stdin:
    circuit = circuits[line.strip()]
    start = time.perf_counter()
    backend.to_array(backend.apply(backend.zero_state(circuit.nqubits), circuit.gates)).copy()
    print(time.perf_counter() - start, flush=True)
