#!/usr/bin/env bash
# Install what the test suite needs, then run it: the README's test command, and CI's.
set -euo pipefail
cd "$(dirname "$0")/.."

# The ssh tests start an OpenSSH server on 127.0.0.1; without one they skip and say so.
if [ ! -x /usr/sbin/sshd ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "scripts/test.sh: installing openssh-server (Debian) for the ssh tests"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server; } \
        >/dev/null || echo "scripts/test.sh: openssh-server could not be installed; the ssh tests will skip"
fi

python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]' -e backends/numpy -e backends/qulacs
.venv/bin/python -m pytest -q "$@"
