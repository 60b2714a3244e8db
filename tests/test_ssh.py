"""Backends through a real ssh tunnel: an OpenSSH server the test starts on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import alive, bell, eventually

from qibo_core import BackendCrashed, Handle, connect, gates
from qibo_core.client.discovery import find_backend

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ssh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """An ssh command prefix reaching a fresh sshd on 127.0.0.1 with keys made here."""
    if not os.path.exists(SSHD):
        pytest.skip(f"needs an OpenSSH server at {SSHD}: scripts/test.sh installs "
                    "openssh-server when run as root")
    if os.geteuid() != 0:
        pytest.skip("sshd needs root here")
    folder = tmp_path_factory.mktemp("ssh")
    for key in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)],
                       check=True)
    (folder / "authorized_keys").write_text((folder / "user.pub").read_text())
    port = free_port()
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {folder / 'host'}",
        f"PidFile {folder / 'sshd.pid'}", f"AuthorizedKeysFile {folder / 'authorized_keys'}",
        "StrictModes no", "PermitRootLogin prohibit-password", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "LogLevel ERROR", ""]))
    os.makedirs("/run/sshd", exist_ok=True)  # its privilege-separation directory
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield ["ssh", "-i", str(folder / "user"), "-p", str(port), "-o", "BatchMode=yes",
           "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
           "-o", "LogLevel=ERROR", "root@127.0.0.1"]
    server.terminate()
    server.wait(10)
    assert server.stderr is not None
    server.stderr.close()


def remote(ssh: list[str], backend: str, *, private_shm: bool = False) -> list[str]:
    """The command running `backend` on the far side; it names its pid on stderr first.
    `private_shm` gives it a /dev/shm of its own, as on another machine."""
    script = f"echo remote-pid $$ >&2; exec {find_backend(backend)}"
    if private_shm:
        script = f"mount -t tmpfs tmpfs /dev/shm && {script}"
        return [*ssh, f"unshare --mount --propagation private sh -c '{script}'"]
    return [*ssh, script]


def remote_pid(handle: Handle) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in handle.transport.stderr_tail:  # type: ignore[attr-defined]
            if line.startswith("remote-pid "):
                return int(line.split()[1])
        time.sleep(0.05)
    raise AssertionError("the remote backend never named its pid")


@pytest.mark.parametrize("backend", ["numpy", "qulacs"])
def test_execute_stream_and_read_through_ssh(ssh: list[str], backend: str) -> None:
    with connect(backend, command=remote(ssh, backend)) as handle:
        assert set(handle.execute(bell(), nshots=200, seed=1).frequencies()) <= {"00", "11"}
        state = handle.new_state(17).apply(*[gates.H(q) for q in range(17)])
        np.testing.assert_allclose(state.read(), np.full(2**17, 2**-8.5), atol=1e-12)


def test_a_backend_on_another_host_falls_back_to_binary_frames(ssh: list[str]) -> None:
    """No descriptor socket crosses ssh and the far side's /dev/shm is its own: arrays cross the
    tunnel as raw bytes after their message, both ways."""
    with connect("numpy", command=remote(ssh, "numpy", private_shm=True)) as handle:
        capabilities = handle.info.capabilities
        assert capabilities.binary_frames and not capabilities.descriptors
        state = handle.new_state(17).apply(*[gates.X(q) for q in range(17)])
        amplitudes = state.read()
        assert amplitudes[-1] == 1 and np.count_nonzero(amplitudes) == 1
        assert handle.arrays.segments is not None and not handle.arrays.segments.enabled
        uploaded = handle.new_state(17, initial=amplitudes)
        np.testing.assert_array_equal(uploaded.read(), amplitudes)


def test_a_crash_on_the_far_side(ssh: list[str]) -> None:
    with connect("numpy", command=remote(ssh, "numpy")) as handle:
        pid = remote_pid(handle)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(BackendCrashed, match="exited with code"):
            handle.execute(bell())
        assert not handle.alive


@pytest.mark.backends("qulacs")
def test_the_tunnel_dropping(ssh: list[str]) -> None:
    with connect("qulacs", command=remote(ssh, "qulacs")) as handle:
        pid = remote_pid(handle)
        os.kill(handle.transport.pid, signal.SIGKILL)  # type: ignore[attr-defined]
        with pytest.raises(BackendCrashed, match="killed by SIGKILL"):
            handle.execute(bell())
    assert eventually(lambda: not alive(pid), 5), "the far side's backend outlived its tunnel"


def test_trace_shows_the_tunnelled_exchange(ssh: list[str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "trace.log"
    monkeypatch.setenv("QIBO_CORE_TRACE", str(log))
    with connect("numpy", command=remote(ssh, "numpy")) as handle:
        handle.execute(bell(), nshots=10)
    assert '"method":"execute"' in log.read_text()
