"""Finding qibo-backend-<name> executables, as kubectl finds its plugins.

The running interpreter's scripts folder is searched first (so a backend installed in a venv
works even when the venv is not activated), then each PATH entry. The first executable of a name
wins; later ones are listed as shadowed.
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig
from dataclasses import dataclass

from .errors import BackendNotFound

PREFIX = "qibo-backend-"
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
            name = entry[len(PREFIX):]
            if entry.startswith(PREFIX) and _NAME.fullmatch(name):
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
    raise BackendNotFound(f"{PREFIX}{name} not found on PATH or in {sysconfig.get_path('scripts')};"
                          f" installed backends: {installed}")


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)
