"""Suite-wide guards, for every test folder (tests/, and each backend's tests/): the suite's own
temporary directory, and no process, file, segment or thread of ours left behind."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator

import pytest

from qibo_core.client import close_shared, list_backends
from qibo_core.protocol import SHM_DIR, SHM_PREFIX


def children() -> set[int]:
    """Pids of this process's live children (zombies included: an unreaped child is a leak),
    except multiprocessing's resource tracker, which Dask starts and Python ends at exit."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if (int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid()
                    and b"multiprocessing.resource_tracker" not in cmdline):
                found.add(int(entry))
    return found


def pytest_configure(config: pytest.Config) -> None:
    """The suite's own temporary directory: TMPDIR for this process and every process it starts
    (backends, Dask workers, sshd), removed at the end. The leak guard looks only there. And the
    `backends` mark."""
    config.addinivalue_line("markers", "backends(*names): the test needs these of our backends "
                                       "installed; without them it is skipped, naming them")
    global SESSION_TMP
    SESSION_TMP = tempfile.mkdtemp(prefix="qibo-core-tests-")
    os.environ["TMPDIR"] = tempfile.tempdir = SESSION_TMP


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(SESSION_TMP, ignore_errors=True)


SESSION_TMP = ""


def our_leftovers() -> list[str]:
    """What the project may leave behind: entries in the suite's temporary directory (pytest's
    own left out), and shared-memory segments this process created (named with its pid)."""
    entries = [os.path.join(SESSION_TMP, e) for e in os.listdir(SESSION_TMP)
               if not e.startswith("pytest-of-")]
    if os.path.isdir(SHM_DIR):
        entries += [os.path.join(SHM_DIR, e) for e in os.listdir(SHM_DIR)
                    if e.startswith(f"{SHM_PREFIX}{os.getpid()}-")]
    return sorted(entries)


@pytest.fixture(scope="session", autouse=True)
def no_leaked_files_or_threads() -> Iterator[None]:
    """After the whole suite, no temporary file, shared-memory segment or thread of ours is
    left behind."""
    yield
    close_shared()
    gc.collect()
    leaked = our_leftovers()
    assert not leaked, f"temporary files left behind: {leaked}"
    ours = [t.name for t in threading.enumerate()
            if t.name.startswith(("qibo-backend-", "numpy-kernel")) and t.is_alive()]
    assert not ours, f"threads left running: {ours}"


@pytest.fixture(scope="module", autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """After each test module, every backend it spawned has been reaped."""
    before = children()
    yield
    close_shared()
    leaked = children() - before
    assert not leaked, f"backend processes left running: {sorted(leaked)}"


BACKENDS = ("numpy", "qulacs", "aer", "qibojit")
"""Our backends: the suite runs with any of them installed, and skips, naming it, what needs
one that is not."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip, saying which, the tests that need a backend not installed: named by a `backends`
    mark, or by a parameter (a backend's name, or a handle kind such as "qulacs-local")."""
    installed = {backend.name for backend in list_backends()}
    for item in items:
        marker = item.get_closest_marker("backends")
        needed = set(marker.args) if marker else set()
        callspec = getattr(item, "callspec", None)
        for value in (callspec.params.values() if callspec else ()):
            if isinstance(value, str) and value.split("-")[0] in BACKENDS:
                needed.add(value.split("-")[0])
        missing = sorted(needed - installed)
        if missing:
            names = ", ".join(f"qibo-backend-{name}" for name in missing)
            item.add_marker(pytest.mark.skip(reason=f"needs {names}, not installed"))
