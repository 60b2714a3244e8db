"""qibo's own circuit-execution tests through the qibo adapter: one line per file, passed tests
on qibo's NumPy backend and through each platform.

    .venv/bin/python scripts/qibo_suite.py /path/to/qibo/tests [numpy qibo_core-numpy ...]

`tests` is the folder of that name in qibo's repository (qiboteam/qibo); it is copied and its
conftest's backend list replaced, so the checkout is left as it is.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FILES = ["test_models_circuit_execution.py", "test_models_qft.py", "test_measurements.py",
         "test_models_circuit_features.py", "test_measurements_collapse.py",
         "test_models_circuit_noise.py", "test_measurements_probabilistic.py",
         "test_models_grover.py", "test_models_circuit_parametrized.py", "test_result.py",
         "test_models_circuit_fuse.py", "test_callbacks.py"]
BACKENDS = re.compile(r"^BACKENDS = \[.*?\]", re.M | re.S)


def passed(folder: Path, backend: str, name: str) -> int:
    conftest = folder / "tests" / "conftest.py"
    conftest.write_text(BACKENDS.sub(f"BACKENDS = [{backend!r}]", conftest.read_text(), 1))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          f"tests/{name}"], cwd=folder, capture_output=True, text=True)
    found = re.search(r"(\d+) passed", run.stdout.splitlines()[-1] if run.stdout else "")
    return int(found.group(1)) if found else 0


def main() -> None:
    source = Path(sys.argv[1])
    backends = sys.argv[2:] or ["numpy", "qibo_core-numpy", "qibo_core-qulacs"]
    totals = dict.fromkeys(backends, 0)
    print("| file | " + " | ".join(backends) + " |")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        shutil.copytree(source, folder / "tests")
        for name in FILES:
            counts = [passed(folder, backend, name) for backend in backends]
            for backend, count in zip(backends, counts, strict=True):
                totals[backend] += count
            print(f"| {name} | " + " | ".join(map(str, counts)) + " |", flush=True)
    print("| total | " + " | ".join(str(totals[b]) for b in backends) + " |")


if __name__ == "__main__":
    main()
