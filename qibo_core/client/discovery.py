"""Finding backends: qibo-backend-<name> executables, as kubectl finds its plugins, and
commands named in a configuration file (a backend on another machine, through ssh).

The running interpreter's scripts folder is searched first (so a backend installed in a venv
works even when the venv is not activated), then each PATH entry. The first executable of a name
wins; later ones are listed as shadowed. A name in the configuration file wins over both:

    {"backends": {"gpu-box-qulacs": {"command": ["ssh", "gpu-box", "qibo-backend-qulacs"]}}}

in $QIBO_CORE_CONFIG, or else $XDG_CONFIG_HOME/qibo-core/backends.json (~/.config/...).
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from ..errors import BackendNotFound, ConfigError
from ..protocol import EXECUTABLE_PREFIX

CONFIG_MAX_BYTES = 2**20
CONFIG_VARIABLE = "QIBO_CORE_CONFIG"
logger = logging.getLogger("qibo_core.client")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class BackendExecutable:
    """An installed backend: its name, the executable used, and the ones it shadows."""

    name: str
    path: str
    shadowed: tuple[str, ...] = ()


def search_path() -> list[str]:
    """The folders searched, in order, without repeats."""
    folders = [sysconfig.get_path("scripts"), os.path.dirname(sys.executable)]
    folders += os.environ.get("PATH", "").split(os.pathsep)
    seen: set[str] = set()
    unique = []
    for folder in folders:
        real = os.path.realpath(folder) if folder else ""
        if real and real not in seen:
            seen.add(real)
            unique.append(folder)
    return unique


def list_backends() -> list[BackendExecutable]:
    """Every installed backend, by name."""
    found: dict[str, list[str]] = {}
    for name, path in _candidates():
        if _is_executable(path):
            found.setdefault(name, []).append(path)
    return [BackendExecutable(name, paths[0], tuple(paths[1:]))
            for name, paths in sorted(found.items())]


def not_executable() -> list[str]:
    """Files named like a backend that cannot be run (a missing chmod +x, a directory)."""
    return [path for _, path in _candidates() if not _is_executable(path)]


def _candidates() -> list[tuple[str, str]]:
    """(name, path) of every qibo-backend-<name> entry on the search path, in order."""
    candidates = []
    for folder in search_path():
        try:
            entries = sorted(os.listdir(folder))
        except OSError:
            continue
        for entry in entries:
            name = entry[len(EXECUTABLE_PREFIX):]
            if entry.startswith(EXECUTABLE_PREFIX) and _NAME.fullmatch(name):
                candidates.append((name, os.path.join(folder, entry)))
    return candidates


def find_backend(name: str) -> str:
    """The path of qibo-backend-<name>; BackendNotFound lists what is installed instead."""
    if not _NAME.fullmatch(name):
        raise BackendNotFound(f"{name!r} is not a backend name (letters, digits, _ . -)")
    for backend in list_backends():
        if backend.name == name:
            return backend.path
    installed = ", ".join(b.name for b in list_backends()) or "none"
    configured = ", ".join(configured_backends()) or "none"
    raise BackendNotFound(f"{EXECUTABLE_PREFIX}{name} not found on PATH or in "
                          f"{sysconfig.get_path('scripts')}; installed backends: {installed}; "
                          f"configured: {configured}")


def backend_command(name: str) -> list[str]:
    """The command that starts backend `name`: configured, or else the executable found. A
    configuration file that cannot be read leaves the installed backends working."""
    try:
        configured = configured_backends()
    except ConfigError as exc:
        try:
            path = find_backend(name)
        except BackendNotFound as missing:
            raise BackendNotFound(f"{missing} (and {exc})") from None
        logger.warning("%s; using %s", exc, path)
        return [path]
    return configured.get(name) or [find_backend(name)]


def config_path() -> Path:
    if CONFIG_VARIABLE in os.environ:
        return Path(os.environ[CONFIG_VARIABLE])
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "qibo-core" / "backends.json"


def configured_backends() -> dict[str, list[str]]:
    """Each configured backend's command; ConfigError says what is wrong with the file."""
    path = config_path()
    try:
        text = _read_config(path)
    except FileNotFoundError:
        if CONFIG_VARIABLE in os.environ:  # named on purpose: a typo must not go unnoticed
            raise ConfigError(f"{CONFIG_VARIABLE} names {path}, which does not exist") from None
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        entries = json.loads(text).get("backends", {})
        commands = {name: entry["command"] for name, entry in entries.items()}
    except RecursionError:
        raise ConfigError(f"{path}: the JSON is nested too deeply") from None
    except (ValueError, AttributeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: expected {{\"backends\": {{name: {{\"command\": [...]}}}}}} "
                          f"({type(exc).__name__}: {exc})") from None
    for name, command in commands.items():
        if not (isinstance(command, list) and command and all(isinstance(a, str) for a in command)):
            raise ConfigError(f"{path}: the command of {name!r} must be a list of strings")
    return commands


def _read_config(path: Path) -> str:
    """The file's text: only a regular file of at most CONFIG_MAX_BYTES (a FIFO would hang)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path} is not a regular file")
        if info.st_size > CONFIG_MAX_BYTES:
            raise ConfigError(f"{path} is {info.st_size} bytes; at most {CONFIG_MAX_BYTES}")
        return f.read(CONFIG_MAX_BYTES).decode("utf-8")


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)
