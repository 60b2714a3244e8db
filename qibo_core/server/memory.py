"""How much memory a backend may take (its container's, cgroup v2 or v1, or the machine's) and
what each kind of request takes of it: the budget every request is checked against."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from functools import partial

from ..errors import StateTooLarge
from . import density
from .backend import Backend, Work

CGROUP_ROOT = "/sys/fs/cgroup"
BUDGET_SHARE = 0.9
"""Of the memory this process may use (its cgroup's limit, or the machine's), the share its
states may be promised: the rest is the interpreter's and the messages'."""
SMALL_STATE_BYTES = 2**26
"""States smaller than this are allocated without reading how much memory is free now (they
still count against the budget)."""


BASE64_REPLY = 4.0
"""Memory per byte of an array answered inline, measured: its bytes, their base64 as bytes and
as text, and the reply's line twice (encoded, then with its newline)."""
OBSERVABLE_COPIES = 2
"""Arrays of the state's size an expectation value makes at once (Observable.expectation: a
term's signed copy and the flattened flip vdot takes)."""
PREPARED_GATE_BYTES = 256
"""The memory a prepared circuit keeps a gate in, its matrices apart (its Python objects;
measured: about 100 B)."""
FREQUENCY_BYTES = 240
"""Memory per outcome of a reply's frequencies beyond its bits (twice: the text in the dict and
in the reply): its counts, its dict entry, key and value, its JSON."""


What = str | Callable[[], str]
"""What a request holds or needs, in words for an error: or what makes them, called only when
the error is raised (a request that fits formats nothing)."""


def said(what: What) -> str:
    return what if isinstance(what, str) else what()


class Budget:
    """The memory a backend's states may take, and the most any one request on them may need at
    once. States count when promised, not when touched (NumPy zeroes lazily), so that many large
    states cannot be accepted on memory they have not used yet; each keeps room for the work a
    request does on it (its `reserve`), so that a state accepted can be worked on."""

    def __init__(self, baseline: int = 0) -> None:
        self.limit = int(BUDGET_SHARE * memory_limit()) - baseline
        """What may be promised: a share of the memory this process may use, less what the
        simulator takes holding nothing (`baseline`)."""
        self.promised = 0
        """Bytes of what is held: states, prepared circuits, the shot engine's branches."""
        self._reserves: Counter[int] = Counter()

    @property
    def reserve(self) -> int:
        """The most memory a request on anything held may need beyond what is held."""
        return max(self._reserves, default=0)

    def hold(self, nbytes: int, reserve: int = 0) -> None:
        self.promised += nbytes
        self._reserves[reserve] += 1

    def release(self, nbytes: int, reserve: int = 0) -> None:
        self.promised -= nbytes
        self._reserves[reserve] -= 1
        if not self._reserves[reserve]:
            del self._reserves[reserve]

    def clear(self) -> None:
        self.promised = 0
        self._reserves.clear()

    def check_hold(self, nbytes: int, reserve: int, what: What, nqubits: int) -> None:
        """StateTooLarge unless `nbytes` more can be held with room for a request that needs
        `reserve` (or the reserve of anything held) beyond what is held: in the budget, and
        (when it is large) in the memory free now."""
        room = max(reserve, self.reserve)
        if self.promised + nbytes + room > self.limit:
            held = (f"; {format_bytes(self.promised)} is held already" if self.promised
                    else "")
            raise StateTooLarge(
                f"{said(what)} needs {format_bytes(nbytes)} held and {format_bytes(room)} while a "
                f"request works on it: {format_bytes(nbytes + room)} of the "
                f"{format_bytes(self.limit)} this backend may use{held}",
                {"nqubits": nqubits, "bytesNeeded": nbytes + room,
                 "bytesAvailable": max(0, self.limit - self.promised)})
        self._check_free(nbytes + reserve, what, nqubits)

    def room(self) -> int:
        """The bytes a request may take beyond what is held: in the budget, and free now."""
        return max(0, min(self.limit - self.promised, available_memory()))

    def check(self, need: int, what: What, nqubits: int) -> None:
        """StateTooLarge unless `need` more bytes fit for the length of a request."""
        if self.promised + need > self.limit:
            held = (f"; what is held takes {format_bytes(self.promised)}: free some"
                    if self.promised else "")
            raise StateTooLarge(
                f"{said(what)} needs {format_bytes(need)} of the {format_bytes(self.limit)} this "
                f"backend may use{held}",
                {"nqubits": nqubits, "bytesNeeded": need,
                 "bytesAvailable": max(0, self.limit - self.promised)})
        self._check_free(need, what, nqubits)

    @staticmethod
    def _check_free(need: int, what: What, nqubits: int) -> None:
        if need < SMALL_STATE_BYTES:
            return  # reading /proc/meminfo would cost more than the state
        have = available_memory()
        if need > have:
            raise StateTooLarge(f"{said(what)} needs {format_bytes(need)}; only "
                                f"{format_bytes(have)} of memory is available",
                                {"nqubits": nqubits, "bytesNeeded": need, "bytesAvailable": have})


def reply_bytes(nbytes: int) -> int:
    """The memory answering an array of `nbytes` inline takes (in a segment: none of ours, the
    client made and reserved it)."""
    return int(BASE64_REPLY * nbytes)


def request_bytes(backend: Backend, nqubits: int, *, is_density: bool = False) -> int:
    """The most memory one request on a held state of `nqubits` (a vector, or a density matrix)
    takes beyond what is held: its gates, reading it inline, its probabilities, sampling it (the
    counts apart), an expectation value on it."""
    if is_density:
        densities = density.of(backend)
        work = partial(densities.working_bytes, nqubits=nqubits)
        dim = 1 << 2 * nqubits
    else:
        work = partial(backend.working_bytes, nqubits=nqubits)
        dim = 1 << nqubits
    array = dim * backend.dtype.itemsize
    return max(work(Work.GATES),
               work(Work.READ) + reply_bytes(array),
               work(Work.PROBABILITIES) + reply_bytes(8 << nqubits),
               work(Work.SAMPLE),
               work(Work.READ) + OBSERVABLE_COPIES * array)


def branch_bytes(backend: Backend, nqubits: int) -> int:
    """The most memory the shot engine's work on one branch of `nqubits` takes beyond what is
    held: its gates, copying it, a measurement's probabilities, a channel's reduced density
    matrix (a read), sampling it."""
    return max(backend.working_bytes(work, nqubits)
               for work in (Work.GATES, Work.COPY, Work.SAMPLE, Work.READ))


def counts_bytes(nshots: int, width: int) -> int:
    """The memory the frequencies of `nshots` shots of `width` bits take (at most one outcome
    per shot, at most 2**width)."""
    outcomes = min(nshots, 2**width) if width < 64 else nshots
    return outcomes * (FREQUENCY_BYTES + 2 * width)


def samples_bytes(nshots: int, width: int, *, inline: bool) -> int:
    """The memory every shot's bits take: the array, and the reply."""
    array = nshots * width
    return array + (reply_bytes(array) if inline else 0)


def memory_limit() -> int:
    """The most memory this process may use: its cgroup's limit when it has one, else the
    machine's memory."""
    total = _meminfo("MemTotal") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = _cgroup_value("memory.max", "memory.limit_in_bytes")
    return min(total, limit) if limit is not None else total


def available_memory() -> int:
    """Bytes a new allocation may take now: MemAvailable, or less when the cgroup is nearer its
    limit (its usage less the file cache the kernel would drop first)."""
    have = _meminfo("MemAvailable")
    if have is None:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    limit = _cgroup_value("memory.max", "memory.limit_in_bytes")
    used = _cgroup_value("memory.current", "memory.usage_in_bytes")
    if limit is not None and used is not None:
        used -= _cgroup_stat("inactive_file", "total_inactive_file")
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


def _cgroup_stat(v2_key: str, v1_key: str) -> int:
    """A count from this process's memory cgroup's memory.stat (v2, else v1); 0 if unknown."""
    for folder, key in _cgroup_folders(v2_key, v1_key):
        try:
            with open(os.path.join(folder, "memory.stat")) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        values = dict(line.partition(" ")[::2] for line in lines)
        value = values.get(key, "0")
        return int(value) if value.isdigit() else 0
    return 0


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
