#!/usr/bin/env bash
# Create the environments and install qibo-core with our backends: the README's set-up, and the
# first step of the test command (which passes "[test]" for the test extras).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-[qibo]}"

python3 -m venv .venv
.venv/bin/pip install -q -e ".${extras}" -e backends/numpy -e backends/qulacs -e backends/aer

# qibojit pins numba, which needs NumPy 2.2 or older: it gets an environment of its own (as a
# third party's backend may), and its executable is linked where discovery looks first.
python3 -m venv .venv-qibojit
.venv-qibojit/bin/pip install -q -e . -e backends/qibojit
ln -sf ../../.venv-qibojit/bin/qibo-backend-qibojit .venv/bin/qibo-backend-qibojit
