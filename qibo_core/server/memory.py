"""How much memory a backend may take: the machine's, or its container's (cgroup v2 or v1)."""

from __future__ import annotations

import os

from ..errors import StateTooLarge

CGROUP_ROOT = "/sys/fs/cgroup"
BUDGET_SHARE = 0.9
"""Of the memory this process may use (its cgroup's limit, or the machine's), the share its
states may be promised: the rest is the interpreter's and the messages'."""
SMALL_STATE_BYTES = 2**26
"""States smaller than this are allocated without reading how much memory is free now (they
still count against the budget)."""


class Budget:
    """The memory a backend's states may take. States count when promised, not when touched
    (NumPy zeroes lazily), so that many large states cannot be accepted on memory they have not
    used yet."""

    def __init__(self) -> None:
        self.limit = int(BUDGET_SHARE * memory_limit())
        self.promised = 0
        """Bytes of the states held."""

    def check(self, need: int, what: str, nqubits: int) -> None:
        """StateTooLarge unless `need` more bytes fit: in the budget, and (when it is large) in
        the memory free now."""
        if self.promised + need > self.limit:
            raise StateTooLarge(
                f"{what} needs {format_bytes(need)}; the states held take "
                f"{format_bytes(self.promised)} of the {format_bytes(self.limit)} this backend "
                "may use: free some",
                {"nqubits": nqubits, "bytesNeeded": need,
                 "bytesAvailable": max(0, self.limit - self.promised)})
        if need < SMALL_STATE_BYTES:
            return  # reading /proc/meminfo would cost more than the state
        have = available_memory()
        if need > have:
            raise StateTooLarge(f"{what} needs {format_bytes(need)}; only {format_bytes(have)} "
                                "of memory is available",
                                {"nqubits": nqubits, "bytesNeeded": need, "bytesAvailable": have})


def memory_limit() -> int:
    """The most memory this process may use: its cgroup's limit when it has one, else the
    machine's memory."""
    total = _meminfo("MemTotal") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = _cgroup_value("memory.max", "memory.limit_in_bytes")
    return min(total, limit) if limit is not None else total


def available_memory() -> int:
    """Bytes a new allocation may take now: MemAvailable, or less when the cgroup is nearer its
    limit."""
    have = _meminfo("MemAvailable")
    if have is None:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    limit = _cgroup_value("memory.max", "memory.limit_in_bytes")
    used = _cgroup_value("memory.current", "memory.usage_in_bytes")
    if limit is not None and used is not None:
        have = min(have, max(0, limit - used))
    return have


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"


def _meminfo(key: str) -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _cgroup_value(v2_name: str, v1_name: str) -> int | None:
    """A number from this process's memory cgroup (v2, else v1); None when there is no limit or
    no cgroup to read."""
    for folder, name in _cgroup_folders(v2_name, v1_name):
        try:
            with open(os.path.join(folder, name)) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text == "max" or not text.isdigit() or int(text) >= 2**60:  # v1 writes ~2^63 for none
            return None
        return int(text)
    return None


def _cgroup_folders(v2_name: str, v1_name: str) -> list[tuple[str, str]]:
    """Where this process's memory cgroup files may be: its own folder, then the root (a
    container often sees its cgroup as the root)."""
    folders = []
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        number, controllers, path = line.split(":", 2)
        if number == "0" and not controllers:
            folders.append((os.path.join(CGROUP_ROOT, path.lstrip("/")), v2_name))
        elif "memory" in controllers.split(","):
            folders.append((os.path.join(CGROUP_ROOT, "memory", path.lstrip("/")), v1_name))
    folders += [(CGROUP_ROOT, v2_name), (os.path.join(CGROUP_ROOT, "memory"), v1_name)]
    return folders
