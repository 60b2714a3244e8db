#!/usr/bin/env bash
# Install what the test suite needs, then run it: the README's test command, and CI's.
set -euo pipefail
cd "$(dirname "$0")/.."

# The ssh tests start an OpenSSH server on 127.0.0.1, the Node client's test runs node, and the
# C client's tests build it (a compiler, make, jansson) and run its examples under valgrind;
# without them those tests skip and say so.
missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v node >/dev/null || missing+=(nodejs)
command -v cc >/dev/null || missing+=(gcc)
[ -f /usr/include/stdio.h ] || missing+=(libc6-dev)
command -v make >/dev/null || missing+=(make)
command -v pkg-config >/dev/null || missing+=(pkg-config)
[ -f /usr/include/jansson.h ] || missing+=(libjansson-dev)
command -v valgrind >/dev/null || missing+=(valgrind)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "scripts/test.sh: installing ${missing[*]} (Debian) for the ssh, Node and C client tests"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; } \
        >/dev/null || echo "scripts/test.sh: ${missing[*]} could not be installed; those tests will skip"
fi

bash scripts/setup.sh '[test]'
.venv/bin/python -m pytest -q "$@"
