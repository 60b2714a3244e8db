"""Benchmark target 12: the circuits of qibojit's public benchmark suite (github.com/qiboteam/
qibojit-benchmarks: qft, variational, supremacy, bv, qv, with the suite's default options), read
from the OpenQASM the suite's own code wrote into scripts/suite/ (scripts/write_suite.py), on
spawned Qulacs and Aer against the same backend driven in this process, run for run."""

from __future__ import annotations

from pathlib import Path

from timing import Row, measure_pair, row

from qibo_backend_aer import AerBackend
from qibo_backend_qulacs import QulacsBackend
from qibo_core import Circuit, connect

TARGET = "12 benchmark suite"
CIRCUITS = ("qft", "variational", "supremacy", "bv", "qv")
FOLDER = Path(__file__).parent / "suite"


def suite_circuits(sizes: tuple[int, ...], repeats: int) -> list[Row]:
    """Each circuit at each size, its state read back."""
    paths = [FOLDER / f"{name}-{n}.qasm" for n in sizes for name in CIRCUITS]
    circuits = {path.stem: Circuit.from_qasm(path.read_text(), path.name) for path in paths}
    rows = []
    for backend, local in (("qulacs", QulacsBackend()), ("aer", AerBackend())):
        with connect(backend) as spawned, connect(local) as in_process:
            for name, circuit in circuits.items():
                times, anchor = measure_pair(lambda c=circuit: spawned.execute(c).state(),
                                             lambda c=circuit: in_process.execute(c).state(),
                                             repeats)
                rows.append(row(TARGET, f"{name} ({len(circuit.gates)} gates),"
                                f" spawned {backend}", times, f"{backend} in process", anchor))
    return rows
