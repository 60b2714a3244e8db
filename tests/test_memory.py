"""Memory: each backend in a small memory cgroup, driven by every kind of request up to the
largest state its budget accepts, is refused with StateTooLarge and never killed; the shot
engine's memory does not grow with the number of shots; plans, copies and superoperators are
counted or bounded."""

from __future__ import annotations

import os
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import bell

from qibo_backend_numpy import NumpyBackend
from qibo_core import Circuit, Handle, StateTooLarge, connect, gates
from qibo_core.client.discovery import find_backend
from qibo_core.protocol import (
    CircuitRef,
    InitializeParams,
    Method,
    PrepareParams,
    ReadParams,
    decode_array,
)
from qibo_core.server import density, no_checkpoint
from qibo_core.server.memory import Budget
from qibo_core.server.session import Session

CGROUP_ROOT = Path("/sys/fs/cgroup")
LIMIT = 384 * 2**20
"""The memory the backends under test may use: the largest state each accepts is of 20 or 21
qubits."""
BACKENDS = ["numpy", "qulacs", "aer", "qibojit"]


class Cgroup:
    """A memory cgroup of our own (v2 or v1) with a limit and no swap."""

    def __init__(self, folder: Path, version: int) -> None:
        self.folder, self.version = folder, version

    def limit(self, nbytes: int) -> None:
        if self.version == 2:
            (self.folder / "memory.max").write_text(str(nbytes))
            with suppress(OSError):  # no swap accounting: nothing to turn off
                (self.folder / "memory.swap.max").write_text("0")
        else:
            (self.folder / "memory.limit_in_bytes").write_text(str(nbytes))
            with suppress(OSError):
                (self.folder / "memory.memsw.limit_in_bytes").write_text(str(nbytes))

    def command(self, name: str, *args: str) -> list[str]:
        """A backend's command that starts it inside this cgroup."""
        procs = self.folder / "cgroup.procs"
        return ["sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh", find_backend(name), *args]

    def oom_kills(self) -> int:
        """How many processes the kernel killed here for want of memory."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        for line in (self.folder / name).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def remove(self) -> None:
        """Remove the cgroup, killing any process of ours still in it."""
        for _ in range(100):
            try:
                self.folder.rmdir()
                return
            except OSError:
                for pid in (self.folder / "cgroup.procs").read_text().split():
                    with suppress(ProcessLookupError):
                        os.kill(int(pid), 9)
                time.sleep(0.05)  # the exit is still being accounted
        self.folder.rmdir()


def _own_cgroup() -> tuple[Path, int] | None:
    """Where this process's memory cgroup is: v2's unified folder, else v1's memory folder."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        number, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return CGROUP_ROOT / "memory" / path.lstrip("/"), 1
    for line in lines:
        number, controllers, path = line.split(":", 2)
        if number == "0" and not controllers:
            return CGROUP_ROOT / path.lstrip("/"), 2
    return None


def _make_cgroup() -> Cgroup | str:
    """A fresh memory cgroup under ours, or why none can be made here."""
    own = _own_cgroup()
    if own is None:
        return "no memory cgroup is mounted"
    parent, version = own
    if version == 2:
        controllers = (parent / "cgroup.subtree_control")
        try:
            if "memory" not in controllers.read_text().split():
                controllers.write_text("+memory")
        except OSError as exc:
            return (f"cgroup v2: the memory controller cannot be given to children of {parent}: "
                    f"{exc}")
    folder = parent / f"qibo-core-memory-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        folder.mkdir()
    except OSError as exc:
        return f"cgroup v{version}: cannot make a cgroup under {parent}: {exc}"
    return Cgroup(folder, version)


@contextmanager
def memory_cgroup(nbytes: int) -> Iterator[Cgroup]:
    """A memory cgroup limited to `nbytes`, removed afterwards (skips where none can be made:
    cgroups are writable as root, as CI runs)."""
    made = _make_cgroup()
    if isinstance(made, str):
        pytest.skip(made)
    try:
        made.limit(nbytes)
        yield made
    finally:
        made.remove()


@dataclass
class Confined:
    """A spawned backend in a memory cgroup, and the largest state its budget accepts."""

    handle: Handle
    cgroup: Cgroup
    largest: int


@pytest.fixture(scope="module", params=BACKENDS)
def confined(request: pytest.FixtureRequest) -> Iterator[Confined]:
    """Each backend spawned in a cgroup of LIMIT bytes; afterwards it must be alive, answering,
    and the kernel must have killed nothing in the cgroup."""
    name = request.param
    with memory_cgroup(LIMIT) as cgroup:
        with connect(name, command=cgroup.command(name)) as handle:
            yield Confined(handle, cgroup, largest_state(handle))
            assert handle.alive and handle.execute(bell(), nshots=5).frequencies()
        assert cgroup.oom_kills() == 0


def largest_state(handle: Handle, start: int = 30) -> int:
    """The most qubits of a state the backend accepts (counting down from `start`); the next
    is refused naming the bytes it needs."""
    for n in range(start, 0, -1):
        try:
            handle.new_state(n).free()
        except StateTooLarge as exc:
            assert "needs" in str(exc) and "may use" in str(exc), exc
            assert exc.data["bytesNeeded"] > exc.data["bytesAvailable"]
            continue
        assert n < start, "the limit was not reached: raise `start`"
        return n
    raise AssertionError("no state fits")


def largest_density_matrix(handle: Handle, start: int) -> int:
    """The most qubits of a density matrix the backend accepts (counting down from `start`)."""
    for n in range(start, 0, -1):
        try:
            handle.execute(Circuit(n, density_matrix=True)).final_state.free()  # type: ignore[union-attr]
        except StateTooLarge:
            continue
        return n
    raise AssertionError("no density matrix fits")


def read_inline(handle: Handle, state_id: int) -> np.ndarray:
    """A state read as base64, as a client without shared memory reads it."""
    data = handle.request(Method.STATE_READ, ReadParams(state_id))
    return decode_array(data)


def random_unitary(k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.linalg.qr(rng.normal(size=(2**k, 2**k)) + 1j * rng.normal(size=(2**k, 2**k)))[0]


# ---- every kind of request, up to the limit --------------------------------------------------

def test_every_request_on_the_largest_state_fits_and_one_qubit_more_is_refused(
        confined: Confined) -> None:
    handle, n = confined.handle, confined.largest
    assert n >= 19
    state = handle.new_state(n)
    state.apply(*[gates.H(q) for q in range(n)], *[gates.CNOT(q, q + 1) for q in range(n - 1)],
                gates.Unitary(random_unitary(2, 1), 0, n - 1),
                gates.Unitary(random_unitary(3, 2), 1, n // 2, n - 2),
                gates.Unitary(random_unitary(2, 3), 2, 5).controlled_by(0),
                gates.TOFFOLI(0, 3, 6), gates.RZ(4, 0.3), gates.SWAP(1, 7))
    amplitudes = state.read()  # through shared memory
    assert np.isclose(np.vdot(amplitudes, amplitudes).real, 1)
    np.testing.assert_array_equal(read_inline(handle, state.id), amplitudes)
    del amplitudes
    assert np.isclose(state.probabilities().sum(), 1)
    assert sum(state.sample(10, seed=1).values()) == 10
    assert sum(state.sample(10**5, seed=1).values()) == 10**5
    assert -3 <= state.expectation("Z0 Z1 + X2 + Y3") <= 3
    state.free()

    circuit = Circuit(n)
    circuit.add([gates.H(q) for q in range(n)])
    circuit.add(gates.Unitary(random_unitary(3, 4), 0, 3, n - 1))
    circuit.add(gates.M(*range(n)))
    result = handle.execute(circuit, nshots=1000, seed=1)
    assert sum(result.frequencies().values()) == 1000
    result.final_state.free()  # type: ignore[union-attr]

    m = largest_density_matrix(handle, n // 2)
    rho = Circuit(m, density_matrix=True)
    rho.add([gates.H(q) for q in range(m)])
    rho.add([gates.DepolarizingChannel((0, 1), 0.1), gates.AmplitudeDampingChannel(2, 0.3)])
    rho.add(gates.M(0, 1))
    result = handle.execute(rho, nshots=100, seed=1)
    assert np.isclose(np.trace(result.state()).real, 1)
    assert np.isclose(result.probabilities([0]).sum(), 1)
    result.final_state.free()  # type: ignore[union-attr]

    ansatz = Circuit(n)
    ansatz.add(gates.RY(q, 0.1 * q) for q in range(n))
    ansatz.add(gates.CZ(q, q + 1) for q in range(n - 1))
    assert abs(handle.expectation(ansatz, "Z0 Z1 + X2", parameters=None)) <= 2


def test_the_shot_engine_copies_within_the_budget_on_the_largest_state(
        confined: Confined) -> None:
    """A collapse and a channel on the largest state: each copy is checked before it is made,
    so the run answers or is refused with StateTooLarge naming the copy; twelve nested
    collapses are refused before the twelfth copy at the latest."""
    handle, n = confined.handle, confined.largest
    once = Circuit(n)
    once.add([gates.H(q) for q in range(n)])
    once.add([gates.M(0, collapse=True), gates.AmplitudeDampingChannel(1, 0.3), gates.M(0, 1)])
    try:
        result = handle.execute(once, nshots=100, seed=1)
        assert sum(result.frequencies().values()) == 100
        result.final_state.free()  # type: ignore[union-attr]
    except StateTooLarge as exc:
        assert "copy" in str(exc), exc
    nested = Circuit(n)
    nested.add([gates.H(q) for q in range(12)])
    nested.add(gates.M(q, collapse=True) for q in range(12))
    nested.add(gates.M(12))
    with pytest.raises(StateTooLarge, match=f"a copy of a {n}-qubit state"):
        handle.execute(nested, nshots=10**4, seed=1)


def test_a_seven_qubit_channel_on_seven_qubits_is_applied_or_refused(confined: Confined) -> None:
    """Its superoperator is 4 GiB: the session applies the Kraus operators one by one; Aer,
    which takes superoperators, is refused by the budget."""
    kraus = [np.sqrt(0.5) * np.eye(128), np.sqrt(0.5) * np.diag(np.exp(1j * np.arange(128)))]
    circuit = Circuit(7, density_matrix=True)
    circuit.add([gates.H(0), gates.KrausChannel(tuple(range(7)), kraus), gates.M(0)])
    try:
        result = confined.handle.execute(circuit, nshots=10)
        assert sum(result.frequencies().values()) == 10
        result.final_state.free()  # type: ignore[union-attr]
    except StateTooLarge as exc:
        assert confined.handle.name == "aer", exc


# ---- shots: memory independent of nshots, iterative ------------------------------------------

def test_shots_in_bounded_memory(confined: Confined) -> None:
    """2**40 shots with a collapse and with a channel: counted by branch."""
    collapse = Circuit(2)
    collapse.add([gates.H(0), gates.M(0, collapse=True), gates.CNOT(0, 1), gates.M(1)])
    channel = Circuit(2)
    channel.add([gates.H(0), gates.AmplitudeDampingChannel(0, 0.5), gates.M(0, 1)])
    for circuit in (collapse, channel):
        counts = confined.handle.execute(circuit, nshots=2**40, seed=1).frequencies()
        assert sum(counts.values()) == 2**40 and len(counts) == 2


def test_the_shot_engine_nests_no_calls_and_counts_sparsely() -> None:
    """A noise model on 600 gates, 1200 resets (each a level of the old recursion), and 33
    collapsing measurements of one qubit (outcomes of 34 bits: no array of 2**34 counts). The
    engine is the session's, the same for every backend."""
    with connect(NumpyBackend()) as handle:
        long = Circuit(2)
        for _ in range(300):
            long.add([gates.H(0), gates.CNOT(0, 1)])
        long.add(gates.M(0, 1))
        noise = gates.NoiseModel().add(lambda q: gates.DepolarizingChannel(q, 0.01),
                                       gates=["H", "CNOT"])
        assert sum(handle.execute(noise.apply(long), nshots=10, seed=1)
                   .frequencies().values()) == 10
        resets = Circuit(1)
        resets.add([gates.H(0)] + [gates.Reset(0)] * 1200 + [gates.M(0)])
        assert handle.execute(resets, nshots=10, seed=1).frequencies() == {"0": 10}

        repeated = Circuit(1)
        repeated.add([gates.H(0)])
        for k in range(33):
            repeated.add([gates.M(0, collapse=True, register_name=f"m{k}"), gates.H(0)])
        repeated.add(gates.M(0))
        result = handle.execute(repeated, nshots=10, seed=1, samples=True)
        counts = result.frequencies()
        assert sum(counts.values()) == 10 and all(len(key) == 34 for key in counts)
        rows = ["".join(map(str, row)) for row in result.samples()]
        assert {k: rows.count(k) for k in set(rows)} == dict(counts)


@pytest.mark.parametrize("confined", ["numpy"], indirect=True)
def test_samples_are_answered_or_refused_in_words(confined: Confined) -> None:
    """3 * 10**7 shots of 4 qubits, every shot answered: 120 MB of bits (and four times as
    much for the reply inline), never an int64 per bit (1 GB). The session draws them the same
    way for every backend."""
    four = Circuit(4)
    four.add([gates.H(q) for q in range(4)] + [gates.M(0, 1, 2, 3)])
    try:
        result = confined.handle.execute(four, nshots=3 * 10**7, seed=1, samples=True)
    except StateTooLarge as exc:
        assert "(frequencies, samples) of 30000000 shots of 4 bits needs" in str(exc), exc
        return
    samples = result.samples()
    assert isinstance(samples, np.ndarray) and samples.shape == (3 * 10**7, 4)
    assert abs(int(samples[:, 0].sum()) - 15 * 10**6) < 10**5


@pytest.mark.parametrize("confined", ["numpy"], indirect=True)
def test_numpy_plans_are_bounded_and_counted(confined: Confined) -> None:
    """A 14-qubit circuit of CZ and H in turn: its plan would keep a 14-qubit diagonal (256
    KiB) per CZ, 250 MiB for 2000 gates; bounded (32 MiB, else no plan), three are kept
    prepared in 384 MiB. What a prepared circuit keeps is counted until it is freed."""
    circuits = []
    for copy in range(3):
        circuits.append(Circuit(14))
        circuits[-1].add(gates.RY(q, 0.1 * copy) for q in range(14))
        for k in range(1000):
            circuits[-1].add([gates.CZ(k % 13, k % 13 + 1), gates.H(k % 13)])
        value = confined.handle.expectation(circuits[-1], "Z0", parameters=None)
        assert abs(value) < 1 + 1e-9

    session = Session(NumpyBackend())
    session.call(Method.INITIALIZE, InitializeParams(protocol_version=3))
    small = Circuit(14)
    small.add([gates.RZ(q, 0.1) for q in range(14)] + [gates.CNOT(0, 1), gates.CZ(2, 3)])
    ref = session.call(Method.CIRCUIT_PREPARE, PrepareParams(small, [], 0))
    assert session.budget.promised > 2**18  # a diagonal of 14 qubits at least
    session.call(Method.CIRCUIT_FREE, CircuitRef(ref.circuit))
    assert session.budget.promised == 0


@pytest.mark.parametrize("confined", ["numpy"], indirect=True)
def test_states_count_when_promised_until_freed(confined: Confined) -> None:
    """NumPy zeroes lazily: the largest states are refused after a few though none was
    touched; small states touched one after another are refused before the kernel would
    kill, naming what is held; freed, the budget comes back."""
    handle = confined.handle
    states = []
    with pytest.raises(StateTooLarge, match="is held already"):
        for _ in range(20):
            states.append(handle.new_state(confined.largest))
    assert 1 <= len(states) < 5
    for state in states:
        state.free()
    states = []
    with pytest.raises(StateTooLarge, match="is held already"):
        for _ in range(200):  # 8 MiB promised each, 16 MiB kept for the work on one
            states.append(handle.new_state(18).apply(gates.RZ(0, 0.1)))
            states[-1].probabilities([0])  # RZ touched every amplitude, in place
    assert 20 < len(states) < 40
    for state in states:
        state.free()
    assert handle.new_state(confined.largest).probabilities([0])[0] == 1


def test_a_wide_channel_on_a_density_matrix_acts_by_kraus_operators() -> None:
    """A 5-qubit channel of two Kraus operators on 5 qubits: its superoperator would take 32
    MiB; applied operator by operator it takes a few copies of rho (32 KiB each), and gives
    the same matrix."""
    backend = NumpyBackend()
    phases = np.diag(np.exp(1j * np.arange(32)))
    channel = gates.KrausChannel(tuple(range(5)), [np.sqrt(0.3) * np.eye(32),
                                                   np.sqrt(0.7) * phases])
    circuit = Circuit(5, density_matrix=True)
    circuit.add([gates.H(q) for q in range(5)] + [channel])
    vectors = density.Vectorized(backend)
    tracemalloc.start()
    try:
        rho = vectors.matrix(vectors.apply(vectors.start(5, None), circuit.gates, 5,
                                           no_checkpoint), 5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**21
    plus = np.full((32, 32), 1 / 32)
    np.testing.assert_allclose(rho, 0.3 * plus + 0.7 * phases @ plus @ phases.conj().T,
                               atol=1e-12)


def test_the_budget_keeps_room_for_the_work_on_what_it_holds() -> None:
    budget = Budget()
    budget.limit = 1000
    budget.check_hold(100, 500, "a state", 1)
    budget.hold(100, 500)
    with pytest.raises(StateTooLarge, match="needs 450.0 B held and 500.0 B while a request"):
        budget.check_hold(450, 10, "a state", 1)  # 100 + 450 + the other's 500 > 1000
    budget.check_hold(400, 10, "a state", 1)
    budget.release(100, 500)
    assert budget.promised == 0 and budget.reserve == 0
