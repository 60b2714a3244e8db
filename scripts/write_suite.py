"""Write the OpenQASM of qibojit's public benchmark suite (github.com/qiboteam/qibojit-benchmarks)
into scripts/suite/, for benchmark target 12, with the suite's own code and default options.

Run it with an interpreter that has cirq-core 0.14, qiskit < 1 and sympy (the suite's own
requirements; never ours), in a checkout of the suite:

    python scripts/write_suite.py /path/to/qibojit-benchmarks 10 20
"""

from __future__ import annotations

import sys
from pathlib import Path

CIRCUITS = ("qft", "variational", "supremacy", "bv", "qv")
FOLDER = Path(__file__).parent / "suite"


def main() -> None:
    checkout, *sizes = sys.argv[1:]
    sys.path.insert(0, checkout)
    from benchmarks import circuits  # the suite's own module

    FOLDER.mkdir(exist_ok=True)
    for nqubits in map(int, sizes):
        for name in CIRCUITS:
            text = circuits.get(name, nqubits).to_qasm()
            (FOLDER / f"{name}-{nqubits}.qasm").write_text(text + "\n")


if __name__ == "__main__":
    main()
