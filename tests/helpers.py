"""What several test modules share: a Bell circuit, process checks, deliberately broken backends."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from qibo_backend_numpy import NumpyBackend
from qibo_core import Backend, Circuit, Handle, connect, gates
from qibo_core.client.discovery import find_backend
from qibo_core.client.spawned import ProcessTransport

HANDSHAKE = """
import json, os, sys, time
request = json.loads(sys.stdin.readline())
print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {
    "protocolVersion": request["params"]["protocolVersion"],
    "serverInfo": {"name": "fake", "version": "0"},
    "capabilities": {"gates": [], "nativeGates": [], "maxQubits": 2, "precisions": ["complex128"],
                     "stateEncodings": [], "threads": 1}}}), flush=True)
"""
"""The start of a fake backend: it answers `initialize`, then runs what follows."""


HANDLES = ["numpy-spawned", "numpy-local", "numpy-unfused-local", "qulacs-spawned",
           "qulacs-local", "aer-spawned", "qibojit-spawned"]
"""Every kind of handle the suite runs code on: the backend's name, then how it is held."""


def make_handle(kind: str) -> Handle:
    """A handle of one of the HANDLES kinds."""
    if kind.endswith("-spawned"):
        return connect(kind.split("-")[0])
    return connect(in_process(kind))


def in_process(kind: str) -> Backend:
    """The backend object of a "-local" kind, imported now: its distribution may be absent."""
    if kind.startswith("qulacs"):
        from qibo_backend_qulacs import QulacsBackend
        return QulacsBackend()
    return NumpyBackend(fusion=kind != "numpy-unfused-local")


def spawned(name: str, *, binary_frames: bool = True, descriptors: bool = True,
            argv: list[str] | None = None) -> Handle:
    """A spawned backend whose client asks for only some of protocol version 4's ways of
    moving arrays (without both: segments and base64, as in version 3)."""
    transport = ProcessTransport(argv or [find_backend(name)], name=name,
                                 binary_frames=binary_frames, descriptors=descriptors)
    return Handle(transport)


def bell() -> Circuit:
    c = Circuit(2)
    c.add([gates.H(0), gates.CNOT(0, 1), gates.M(0, 1)])
    return c


def fake_program(source: str, *, handshake: bool = True) -> str:
    """An inline Python backend: the handshake (unless told not), then `source`."""
    return (HANDSHAKE if handshake else "") + textwrap.dedent(source)


def fake_backend(source: str, *, handshake: bool = True) -> Handle:
    """A deliberately broken backend on the same pipes as a real one."""
    program = fake_program(source, handshake=handshake)
    return Handle(ProcessTransport([sys.executable, "-c", program], name="fake"))


def child_pids(parent: int | None = None) -> set[int]:
    """Live children (zombies left out) of `parent`, by default this process."""
    parent = os.getpid() if parent is None else parent
    found = set()
    for entry in os.listdir("/proc"):
        try:
            stat_line = Path(f"/proc/{entry}/stat").read_text()
        except (OSError, ValueError):
            continue
        fields = stat_line.rsplit(")", 1)[1].split()
        if entry.isdigit() and int(fields[1]) == parent and fields[0] != "Z":
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    """True while the process runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def eventually(condition: Callable[[], bool], seconds: float) -> bool:
    """Whether `condition` becomes true within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def without_qulacs(folder: Path) -> list[str]:
    """qibo-backend-qulacs in a Python whose site-packages are ours minus qulacs."""
    import qulacs
    site_packages = Path(qulacs.__file__).resolve().parent.parent
    site = folder / "site"
    site.mkdir()
    for entry in site_packages.iterdir():
        if not entry.name.lower().startswith("qulacs"):
            (site / entry.name).symlink_to(entry)
    code = (f"import site, sys; site.addsitedir({str(site)!r}); sys.argv[0] = "
            "'qibo-backend-qulacs'; from qibo_backend_qulacs import main; main()")
    return [sys.executable, "-S", "-c", code]
