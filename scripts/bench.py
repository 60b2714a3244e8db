"""Benchmarks: each figure side by side with its anchor, measured in the same run.

    .venv/bin/python scripts/bench.py            # full sizes (20-24 qubits)
    .venv/bin/python scripts/bench.py --quick    # small sizes, for CI: fails only on errors

Prints one table per target (median, min, max, ratio to the anchor) and writes the same as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import msgspec
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from circuits import layered, qft
from small_circuits import small_circuits
from suite_circuits import suite_circuits
from timing import Row, Seconds, measure, measure_pair, row

from qibo_backend_aer import AerBackend
from qibo_backend_numpy import NumpyBackend
from qibo_backend_qulacs import QulacsBackend
from qibo_core import Circuit, Observable, Parameter, connect, gates
from qibo_core.client import Handle
from qibo_core.client.state import State
from qibo_core.protocol import ApplyParams, Method, ReadParams, sealed
from qibo_core.server import Backend, idle_threads_sleep, no_checkpoint


def in_process(backend: Backend, circuit: Circuit) -> np.ndarray:
    """The simulation alone: no handle, no session; Qulacs' state copied out by get_vector()."""
    state = backend.apply(backend.zero_state(circuit.nqubits), circuit.gates)
    return backend.to_array(state)


def rpc_overhead(n: int, repeats: int) -> list[Row]:
    rows = []
    local = QulacsBackend()
    with connect("qulacs") as spawned:
        for name, circuit in (("QFT", qft(n)), ("layered", layered(n))):
            times, anchor = measure_pair(lambda c=circuit: spawned.execute(c).state(),
                                         lambda c=circuit: in_process(local, c), repeats)
            rows.append(row("1 rpc overhead", f"{name} {n}q spawned qulacs", times,
                            "qulacs in process", anchor))
        small = qft(10)
        times, anchor = measure_pair(lambda: spawned.execute(small).state(),
                                     lambda: in_process(local, small), repeats * 20)
    overhead_us = (statistics.median(times) - statistics.median(anchor)) * 1e6
    rows.append(row("1 rpc overhead", "QFT 10q spawned qulacs", times, "qulacs in process",
                    anchor, note=f"{overhead_us:.0f} us per execute+read"))
    return rows


def streaming(count: int, repeats: int) -> list[Row]:
    stream = [gates.RX(i % 2, 0.1) for i in range(count)]

    def streamed() -> None:
        for g in stream:
            state.apply(g)
        state.read()

    def synchronous() -> None:
        for g in stream[: count // 10]:
            handle.transport.request(Method.STATE_APPLY, ApplyParams(state.id, [g]))

    rows = []
    with connect("numpy") as handle:
        state = handle.new_state(2)
        times = measure(streamed, repeats)
        sync = measure(synchronous, repeats)
    rate = count / statistics.median(times)
    sync_rate = count // 10 / statistics.median(sync)
    rows.append(row("2 streaming", f"{count} gates streamed, 2 qubits", times,
                    note=f"{rate:,.0f} gates/s streamed vs {sync_rate:,.0f} gates/s one round "
                         "trip each"))
    return rows


def state_transfer(n: int, tunnel_qubits: int, repeats: int, ssh: list[str] | None
                   ) -> list[Row]:
    """Reading and uploading a state with real amplitudes (no zero pages) by every path, each
    against a memcpy of the same bytes in the same run; the NumPy backend's states in memfds
    against NumPy memory; a state through an ssh tunnel against `ssh cat` of as many bytes."""
    source = np.full(2**n, 2**-n / 2, dtype=np.complex128)
    target = np.ones_like(source)

    def memcpy() -> None:
        np.copyto(target, source)

    rows = []
    paths = [("sealed memfds (QIBO_CORE_SEALED_MEMORY=1: states in memfds)",
              {"sealed_memory": "1"}),
             ("segments, copied (the default with 4 KiB shared pages, and version 3's)",
              {"sealed_memory": "0"}),
             ("binary frames, shared memory off (--no-shm)", {"shm": False}),
             ("base64, shared memory off (version 3's path)",
              {"shm": False, "binary_frames": False})]
    for how, options in paths:
        with transport_handle("numpy", **options) as handle:
            state = handle.new_state(n).apply(*[gates.H(q) for q in range(n)])
            runs = max(1, repeats // 3) if "base64" in how else repeats
            times, anchor = measure_pair(fresh_read(state), memcpy, runs)
            rows.append(transfer_row(f"read {n}q via {how}", times, anchor))
            if "sealed" in how:
                times, anchor = measure_pair(fresh_read(state, checked=False), memcpy, repeats)
                rows.append(transfer_row(f"read {n}q via a sealed memfd of the state's own "
                                         "pages: the transfer alone, without the client's "
                                         "check of the norm", times, anchor))
                rows.append(first_pass(state, repeats))
    initial = np.full(2**n, 2 ** (-n / 2), dtype=complex)
    for how, options in paths[:3]:
        with transport_handle("numpy", **options) as handle:
            times, anchor = measure_pair(
                lambda h=handle: h.new_state(n, initial=initial), memcpy, repeats)
            rows.append(transfer_row(f"upload {n}q via {how}", times, anchor))
    rows.append(bare_pipe(source.nbytes, memcpy, repeats))
    rows += allocation(20, repeats)
    rows += tunnel_read(tunnel_qubits, repeats, ssh)
    return rows


PIPE_WRITER = """
import os, sys
data = memoryview(bytes(int(sys.argv[1])))
for _ in sys.stdin:
    done = 0
    while done < len(data):
        done += os.write(1, data[done:])
"""


def bare_pipe(nbytes: int, memcpy: Callable[[], None], repeats: int) -> Row:
    """The floor under binary frames: a child process writing `nbytes` into a pipe widened as
    ours are, read into a new array, with no protocol at all."""
    child = subprocess.Popen([sys.executable, "-c", PIPE_WRITER, str(nbytes)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    assert child.stdin is not None and child.stdout is not None
    stdin, fd = child.stdin, child.stdout.fileno()
    fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 2**20)

    def read() -> None:
        stdin.write(b"x\n")
        view, done = memoryview(np.empty(nbytes, np.uint8)), 0
        while done < nbytes:
            done += os.readv(fd, [view[done:]])

    try:
        times, anchor = measure_pair(read, memcpy, repeats)
    finally:
        stdin.close()
        child.wait()
        child.stdout.close()
    return transfer_row(f"{nbytes / 2**20:g} MiB through a bare pipe from a child process (no "
                        "protocol: the floor under binary frames)", times, anchor)


def transfer_row(case: str, times: list[float], anchor: list[float]) -> Row:
    ratio = statistics.median(anchor) / statistics.median(times)
    return row("3 state transfer", case, times, "np.copyto of the same bytes", anchor,
               note=f"{ratio:.1%} of memcpy bandwidth")


def transport_handle(name: str, *, shm: bool = True, binary_frames: bool = True,
                     descriptors: bool = True, argv: list[str] | None = None,
                     sealed_memory: str | None = None) -> Handle:
    """A spawned backend whose client asks only for some of version 4's ways (both off: the
    paths of version 3); `sealed_memory` "1" or "0" decides, for both ends, whether sealed
    memory is worthwhile (by default the kernel's huge pages for shared memory decide)."""
    from qibo_core.client.discovery import find_backend
    from qibo_core.client.spawned import ProcessTransport
    argv = argv or [find_backend(name), *([] if shm else ["--no-shm"])]
    saved = dict(os.environ)
    if sealed_memory is not None:
        os.environ[sealed.VARIABLE] = sealed_memory
    sealed.worthwhile.cache_clear()  # the client decides once, in the handshake
    try:
        return Handle(ProcessTransport(argv, name=name, binary_frames=binary_frames,
                                       descriptors=descriptors))
    finally:
        os.environ.clear()
        os.environ.update(saved)
        sealed.worthwhile.cache_clear()


def fresh_read(state: State, *, checked: bool = True) -> Callable[[], Seconds]:
    """A read of a state changed since its last read (a gate applied first, untimed): reading
    the same state twice would hand over nothing new. `checked`: state.read(), whose reply is
    checked (its norm: one pass over the array); else the request and the array alone."""
    handle = state.handle

    def read() -> Seconds:
        handle.transport.request(Method.STATE_APPLY, ApplyParams(state.id, [gates.H(0)]))
        start = time.perf_counter()
        if checked:
            state.read()
        else:
            reply = handle.transport.request(Method.STATE_READ, ReadParams(state.id))
            handle.arrays.received(reply, handle.precision)
        return Seconds(time.perf_counter() - start)

    return read


def first_pass(state: State, repeats: int) -> Row:
    """The user's first pass over an array read as a sealed memfd (its pages are mapped as it
    goes), against a pass over memory of its own: what a mapping costs later, when touched."""
    handle = state.handle
    own = np.full(2**state.nqubits, 0.5, dtype=complex)

    def mapped() -> Seconds:
        handle.transport.request(Method.STATE_APPLY, ApplyParams(state.id, [gates.H(0)]))
        reply = handle.transport.request(Method.STATE_READ, ReadParams(state.id))
        array = handle.arrays.received(reply, handle.precision)
        start = time.perf_counter()
        np.vdot(array, array)
        return Seconds(time.perf_counter() - start)

    times, anchor = measure_pair(mapped, lambda: np.vdot(own, own), repeats)
    return row("3 state transfer", "first pass (np.vdot) over an array read as a sealed memfd",
               times, "np.vdot over memory of our own", anchor)


def allocation(n: int, repeats: int) -> list[Row]:
    """QFT on spawned NumPy and the state read back: its states in memfds (read as their own
    pages; 4 KiB pages here) against NumPy memory (read through the pipe), and the same
    simulation alone in this process."""
    circuit = qft(n)
    with transport_handle("numpy", sealed_memory="1") as memfds, \
            transport_handle("numpy", sealed_memory="0") as numpy:
        times, anchor = measure_pair(lambda: memfds.execute(circuit).state(),
                                     lambda: numpy.execute(circuit).state(), repeats)
    rows = [row("3 state transfer", f"QFT {n}q on spawned numpy + read, states in memfds",
                times, "states in NumPy memory", anchor)]
    in_memfds, in_numpy = NumpyBackend(), NumpyBackend()
    in_memfds.sharable = True  # what the session sets where it is worthwhile
    times, anchor = measure_pair(lambda: in_process(in_memfds, circuit),
                                 lambda: in_process(in_numpy, circuit), repeats)
    rows.append(row("3 state transfer", f"QFT {n}q, numpy in process, states in memfds",
                    times, "states in NumPy memory", anchor))
    return rows


def tunnel_read(n: int, repeats: int, ssh: list[str] | None) -> list[Row]:
    """A state read through ssh to this host with shared memory off (as from another machine),
    against `ssh cat` of as many bytes: binary frames and base64."""
    from qibo_core.client.discovery import find_backend
    with contextlib.ExitStack() as stack:
        if ssh is None:
            ssh = stack.enter_context(local_sshd())
        if ssh is None:
            return [row("3 state transfer", "ssh rows: no sshd (run as root with "
                        "openssh-server, or pass --ssh)", [0.0])]
        nbytes = 2**n * 16
        rows = []
        stream = stack.enter_context(SshStream(ssh))
        for how, binary in (("binary frames", True), ("base64", False)):
            argv = [*ssh, find_backend("numpy"), "--no-shm"]
            with transport_handle("numpy", argv=argv, binary_frames=binary) as handle:
                state = handle.new_state(n).apply(*[gates.H(q) for q in range(n)])
                times, anchor = measure_pair(state.read, lambda: stream.fetch(nbytes), repeats)
            size = f"{nbytes >> 20} MiB" if nbytes >= 2**20 else f"{nbytes >> 10} KiB"
            rows.append(row("3 state transfer", f"read {n}q ({size}) through ssh to 127.0.0.1, "
                            f"{how}", times, f"ssh cat of {size} (one connection)", anchor))
        return rows


class SshStream:
    """`ssh 127.0.0.1 cat` of n bytes, on one connection opened once (as the backend's is): the
    tunnel's own speed, without setting up a connection each time."""

    def __init__(self, ssh: list[str]) -> None:
        self.process = subprocess.Popen(
            [*ssh, 'while read n; do head -c "$n" /dev/zero; done'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def fetch(self, nbytes: int) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(b"%d\n" % nbytes)
        self.process.stdin.flush()
        got = 0
        while got < nbytes:
            chunk = self.process.stdout.read1(nbytes - got)
            assert chunk, "the ssh stream ended"
            got += len(chunk)

    def __enter__(self) -> SshStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(10)
        self.process.stdout.close()


@contextlib.contextmanager
def local_sshd() -> Iterator[list[str] | None]:
    """An OpenSSH server of our own on 127.0.0.1 (keys made here, gone afterwards), as the test
    suite starts one; None where there is none to start (not root, no sshd)."""
    sshd = "/usr/sbin/sshd"
    if not os.path.exists(sshd) or os.geteuid() != 0:
        yield None
        return
    with tempfile.TemporaryDirectory() as folder:
        for key in ("host", "user"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            f"{folder}/{key}"], check=True)
        Path(folder, "authorized_keys").write_text(Path(folder, "user.pub").read_text())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        Path(folder, "sshd_config").write_text("\n".join([
            f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {folder}/host",
            f"PidFile {folder}/sshd.pid", f"AuthorizedKeysFile {folder}/authorized_keys",
            "StrictModes no", "PermitRootLogin prohibit-password", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no", "LogLevel ERROR", ""]))
        os.makedirs("/run/sshd", exist_ok=True)
        server = subprocess.Popen([sshd, "-D", "-e", "-f", f"{folder}/sshd_config"])
        ssh = ["ssh", "-i", f"{folder}/user", "-p", str(port), "-o", "BatchMode=yes",
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", "root@127.0.0.1"]
        try:
            deadline = time.monotonic() + 10
            while subprocess.run([*ssh, "true"], capture_output=True).returncode != 0:
                if time.monotonic() > deadline:
                    raise RuntimeError("the sshd of the benchmark did not answer within 10 s")
                time.sleep(0.1)
            yield ssh
        finally:
            server.terminate()
            server.wait(10)


def numpy_speed(n: int, repeats: int, qibo_python: str | None) -> list[Row]:
    rows = []
    numpy, qulacs = NumpyBackend(), QulacsBackend()
    cases = {"QFT": qft(n), "layered": layered(n)}
    qibo_times = qibo_numpy_times(qibo_python, cases, repeats) if qibo_python else {}
    for name, circuit in cases.items():
        times, anchor = measure_pair(lambda c=circuit: in_process(numpy, c),
                                     lambda c=circuit: in_process(qulacs, c), repeats)
        rows.append(row("4 numpy speed", f"{name} {n}q numpy backend", times,
                        "qulacs in process", anchor))
        if name in qibo_times:
            rows.append(row("4 numpy speed", f"{name} {n}q qibo's numpy backend",
                            qibo_times[name], "our numpy backend", times))
    return rows


def qibo_numpy_times(python: str, cases: dict[str, Circuit], repeats: int,
                     nshots: int = 0) -> dict[str, list[float]]:
    """Seconds per run on qibo's NumPy backend, measured by `python` (qibo's environment)."""
    request = {"repeats": repeats, "cases": [
        {"name": name, "circuit": msgspec.to_builtins(c.to_data()), "nshots": nshots}
        for name, c in cases.items()]}
    script = Path(__file__).parent / "qibo_timing.py"
    run = subprocess.run([python, str(script)], input=json.dumps(request), capture_output=True,
                         text=True, check=True)
    return json.loads(run.stdout.splitlines()[-1])


def depth(sizes: tuple[int, int], trajectory_qubits: int, upload_qubits: int, repeats: int,
          qibo_python: str | None) -> list[Row]:
    """Density matrices with noise (a depolarizing channel after every gate of the layered
    circuit), sampled trajectories, and an initial state uploaded through shared memory."""
    rows = []
    cases = {f"noisy density matrix {n}q": noisy_layered(n, layers, density_matrix=True)
             for n, layers in zip(sizes, (2, 1), strict=True)}
    qibo_times = qibo_numpy_times(qibo_python, cases, 1) if qibo_python else {}
    with connect("numpy") as numpy, connect("qulacs") as qulacs, \
            connect(QulacsBackend()) as local:
        for name, circuit in cases.items():
            # Qulacs' own CPTP maps take a minute a run at 12 qubits: few repeats here.
            repeats = min(repeats, 3 if circuit.nqubits <= 10 else 1)
            native = measure(lambda c=circuit: qulacs_density(c), repeats)
            for label, handle in (("our numpy, spawned", numpy), ("our qulacs, spawned", qulacs)):
                times = measure(lambda c=circuit, h=handle: h.execute(c).state(), repeats)
                rows.append(row("7 depth", f"{name}, {label}", times,
                                "qulacs DensityMatrix in process", native))
            ours_local = measure(lambda c=circuit: local.execute(c).state(), repeats)
            rows.append(row("7 depth", f"{name}, our qulacs, in process", ours_local,
                            "qulacs DensityMatrix in process", native))
            if name in qibo_times:
                rows.append(row("7 depth", f"{name}, qibo's numpy", qibo_times[name],
                                "our numpy", measure(lambda c=circuit: numpy.execute(c).state(),
                                                     repeats)))
        trajectories = noisy_layered(trajectory_qubits, 1, density_matrix=False, p=0.002)
        trajectories.add(gates.M(*range(trajectory_qubits)))
        times = measure(lambda: numpy.execute(trajectories, nshots=1000, seed=1).frequencies(),
                        repeats)
        label = f"1000 noisy shots (trajectories), {trajectory_qubits}q, our numpy"
        rows.append(row("7 depth", label, times))
        if qibo_python:
            theirs = qibo_numpy_times(qibo_python, {"t": trajectories}, 1, nshots=1000)["t"]
            rows.append(row("7 depth", "the same on qibo's numpy", theirs, "our numpy", times))
        initial = np.full(2**upload_qubits, 2 ** (-upload_qubits / 2), dtype=complex)
        target, source = np.empty_like(initial), initial.copy()
        upload, anchor = measure_pair(lambda: numpy.new_state(upload_qubits, initial=initial),
                                      lambda: np.copyto(target, source), repeats)
        ratio = statistics.median(anchor) / statistics.median(upload)
        rows.append(row("7 depth", f"initial state {upload_qubits}q up through shared memory",
                        upload, "np.copyto", anchor, note=f"{ratio:.1%} of memcpy bandwidth"))
    return rows


def noisy_layered(n: int, layers: int, *, density_matrix: bool, p: float = 0.01) -> Circuit:
    """The layered circuit with a depolarizing channel after every gate."""
    noise = gates.NoiseModel().add(lambda qubits: gates.DepolarizingChannel(qubits, p))
    circuit = noise.apply(layered(n, layers))
    noisy = Circuit(n, density_matrix=density_matrix)
    noisy.add(circuit.gates)
    return noisy


def qulacs_density(circuit: Circuit) -> np.ndarray:
    """The same circuit on Qulacs' own DensityMatrix, in this process: gates as our Qulacs
    backend makes them, channels as Qulacs' CPTP maps."""
    import qulacs
    from qulacs import gate as qgate

    backend = QulacsBackend()
    n = circuit.nqubits
    rho = qulacs.DensityMatrix(n)
    for op in circuit.gates:
        if isinstance(op, gates.Channel):
            targets = [n - 1 - q for q in reversed(op.qubits)]
            qgate.CPTP([qgate.DenseMatrix(targets, k) for k in op.kraus]).update_quantum_state(rho)
        else:
            backend._gate(op, n).update_quantum_state(rho)
    return rho.get_matrix()


def spawn(repeats: int) -> list[Row]:
    """From connect() to a handle ready for requests (closing is not timed)."""
    rows = []
    for name in ("numpy", "qulacs"):
        times = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            handle = connect(name)
            times.append(time.perf_counter() - start)
            handle.close()
        rows.append(row("5 spawn", f"connect({name!r}) to a ready handle", times[1:]))
    return rows


def scaling(count: int, nqubits: int, repeats: int, ssh: list[str] | None) -> list[Row]:
    """execute_many over 1 and 2 local workers and over a Dask LocalCluster of 2; round trips
    and state reads through an ssh tunnel against a local spawn."""
    from qibo_core import execute_many
    from qibo_core.client import close_shared

    batch = [layered(nqubits, layers=2, seed=k) for k in range(count)]
    for c in batch:
        c.add(gates.M(*range(nqubits)))
    one = measure(lambda: execute_many(batch, "qulacs", workers=1, nshots=100, seed=1),
                  repeats)
    two = measure(lambda: execute_many(batch, "qulacs", workers=2, nshots=100, seed=1),
                  repeats)
    close_shared()
    rows = [row("6 scaling", f"{count} circuits of {nqubits}q, 1 local worker", one),
            row("6 scaling", f"{count} circuits of {nqubits}q, 2 local workers", two,
                "1 local worker", one)]
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        rows.append(row("6 scaling", "Dask LocalCluster: dask is not installed", [0.0]))
    else:
        import dask
        # Dask keeps its scratch space in a folder of ours, removed afterwards. Its
        # LocalCluster leaves OMP_NUM_THREADS=1 (set for its workers) in this process's
        # environment, which every backend spawned later would inherit: put it back.
        environment = dict(os.environ)
        with tempfile.TemporaryDirectory() as scratch, \
                dask.config.set({"temporary-directory": scratch}), \
                LocalCluster(n_workers=2, threads_per_worker=1,
                             dashboard_address=None) as cluster, Client(cluster) as client:
            dask = measure(lambda: execute_many(batch, "qulacs", nshots=100, seed=1,
                                                client=client), repeats)
        os.environ.clear()
        os.environ.update(environment)
        rows.append(row("6 scaling", "the same on a Dask LocalCluster of 2", dask,
                        "2 local workers", two))
    if ssh:
        rows += tunnel(ssh, repeats)
    return rows


def tunnel(ssh: list[str], repeats: int) -> list[Row]:
    from qibo_core.client.discovery import find_backend
    from qibo_core.protocol import NewStateParams
    rows = []
    with connect("numpy") as local, connect("numpy", command=[*ssh, find_backend("numpy")]) as far:
        for name, handle in (("local spawn", local), ("ssh tunnel", far)):
            trip = measure(lambda h=handle: h.transport.request(
                Method.STATE_NEW, NewStateParams(1)), repeats * 100)
            state = handle.new_state(20).apply(*[gates.H(q) for q in range(20)])
            reads = measure(state.read, repeats)
            rows.append(row("6 scaling", f"round trip, {name}", trip))
            rows.append(row("6 scaling", f"read 20q (16 MiB), {name}", reads,
                            note=f"{16 / statistics.median(reads) / 1024:.2f} GiB/s"))
    return rows


def print_table(rows: list[Row]) -> None:
    print(f"\n{rows[0].target}")
    print(f"  {'case':40} {'median ms':>10} {'min':>9} {'max':>9}  {'ratio':>7}  anchor / note")
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        print(f"  {r.case:40} {r.median_ms:10.2f} {r.min_ms:9.2f} {r.max_ms:9.2f}  {ratio:>7}"
              f"  {r.anchor}{' / ' if r.anchor and r.note else ''}{r.note}")


def ansatz(n: int, layers: int = 4) -> Circuit:
    """The hardware-efficient ansatz: RY and RZ on every qubit, then a CZ chain, per layer; one
    Parameter per angle (80 at 10 qubits)."""
    t = iter([Parameter(f"t{i}") for i in range(2 * n * layers)])
    circuit = Circuit(n)
    for _ in range(layers):
        for q in range(n):
            circuit.add([gates.RY(q, next(t)), gates.RZ(q, next(t))])
        circuit.add(gates.CZ(q, q + 1) for q in range(n - 1))
    return circuit


OBSERVABLE = "Z0 Z1 + 0.5 X2 - 0.25 Y3 Z5"


def qulacs_sweep(circuit: Circuit, sets: np.ndarray) -> np.ndarray:
    """The anchor: Qulacs in this process, a ParametricQuantumCircuit made once, its angles set
    per set, an Observable evaluated (its RY(a) is our RY(-a); its qubit n-1-q is our q)."""
    import qulacs

    n = circuit.nqubits
    parametric = qulacs.ParametricQuantumCircuit(n)
    for op in circuit.gates:
        if op.name == "CZ":
            parametric.add_CZ_gate(n - 1 - op.qubits[0], n - 1 - op.qubits[1])
        else:
            getattr(parametric, f"add_parametric_{op.name}_gate")(n - 1 - op.qubits[0], 0.0)
    observable = qulacs.Observable(n)
    for coefficient, pauli in Observable(OBSERVABLE).terms:
        observable.add_operator(coefficient, " ".join(f"{p} {n - 1 - q}" for p, q in pauli))
    state = qulacs.QuantumState(n)
    values = np.empty(len(sets))
    for k, values_of_set in enumerate(sets):
        for i, value in enumerate(values_of_set):
            parametric.set_parameter(i, -value)
        state.set_zero_state()
        parametric.update_quantum_state(state)
        values[k] = observable.get_expectation_value(state).real
    return values


def variational(sizes: tuple[int, int], nsets: tuple[int, int], repeats: int) -> list[Row]:
    """Expectation values of many parameter sets of the ansatz, against Qulacs in process."""
    rows = []
    with connect("qulacs") as qulacs_handle, connect("numpy") as numpy_handle:
        for n, count in zip(sizes, nsets, strict=True):
            circuit = ansatz(n)
            sets = np.random.default_rng(n).uniform(-np.pi, np.pi,
                                                    (count, len(circuit.parameters)))
            anchor_name = f"qulacs in process ({count} sets)"
            cases = [(f"{n}q, {count} sets, spawned {name}, one call",
                      lambda h=h, c=circuit, s=sets: h.expectation(c, OBSERVABLE, parameters=s))
                     for name, h in (("qulacs", qulacs_handle), ("numpy", numpy_handle))]
            if n == sizes[0]:
                cases += [(f"{n}q, {count} sets, spawned {name}, a call per set",
                           lambda h=h, c=circuit, s=sets: [
                               h.expectation(c, OBSERVABLE, parameters=row) for row in s])
                          for name, h in (("qulacs", qulacs_handle), ("numpy", numpy_handle))]
            for case, run in cases:
                times, anchor = measure_pair(
                    run, lambda c=circuit, s=sets: qulacs_sweep(c, s), repeats)
                per_set = statistics.median(times) / count * 1e3
                rows.append(row("8 variational", case, times, anchor_name, anchor,
                                note=f"{per_set:.3f} ms per set"))
        circuit = ansatz(sizes[0])
        values = np.random.default_rng(0).uniform(-np.pi, np.pi, len(circuit.parameters))
        for name, h in (("qulacs", qulacs_handle), ("numpy", numpy_handle)):
            times = measure(lambda h=h: h.gradient(circuit, OBSERVABLE, parameters=values),
                            repeats)
            rows.append(row("8 variational", f"{sizes[0]}q gradient of {len(values)} "
                            f"parameters (parameter shift, one call), spawned {name}", times))
    return rows


BACKENDS = ("numpy", "qulacs", "aer", "qibojit")


class InProcessWorker:
    """A backend driven by the same code in a process of its own environment, run by run
    (scripts/in_process_timing.py): qibojit's (.venv-qibojit; the benchmark's has no qibojit)."""

    def __init__(self, backend: str, circuits: dict[str, Circuit]) -> None:
        python = Path(__file__).parent.parent / ".venv-qibojit" / "bin" / "python"
        script = Path(__file__).parent / "in_process_timing.py"
        self.process = subprocess.Popen([str(python), str(script)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self._ask(json.dumps({"backend": backend, "cases": {
            name: msgspec.to_builtins(c.to_data()) for name, c in circuits.items()}}))

    def _ask(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def run(self, case: str) -> Seconds:
        self._ask(case)
        assert self.process.stdout is not None
        return Seconds(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def noise_rows(n: int, handles: dict[str, Handle], local_aer: AerBackend,
               repeats: int) -> list[Row]:
    """Every backend on the layered circuit with a depolarizing channel after every gate: as a
    density matrix (Aer's own density_matrix method beside Aer in this process), and as 1000
    sampled trajectories of state vectors."""
    rows = []
    circuit = noisy_layered(n, 2, density_matrix=True)
    densities = local_aer.density_matrices()
    def in_process_aer() -> np.ndarray:
        rho = densities.apply(densities.start(n, None), circuit.gates, n, no_checkpoint)
        return densities.matrix(rho, n)

    for backend, handle in handles.items():
        local = in_process_aer if backend == "aer" else None
        times, local_times = measure_pair(lambda h=handle: h.execute(circuit).state(), local,
                                          repeats)
        rows.append(row("9 backends", f"noisy density matrix {n}q, spawned {backend}", times,
                        "aer in process" if local else "", local_times if local else None))
    trajectories = noisy_layered(n, 1, density_matrix=False, p=0.002)
    trajectories.add(gates.M(*range(n)))
    for backend, handle in handles.items():
        times = measure(lambda h=handle: h.execute(trajectories, nshots=1000,
                                                   seed=1).frequencies(), repeats)
        rows.append(row("9 backends", f"1000 noisy shots {n}q (trajectories), spawned {backend}",
                        times))
    return rows


def backends_table(sizes: tuple[int, ...], repeats: int) -> list[Row]:
    """Every backend, spawned, on the benchmark circuits (state read back; the ansatz as 10
    expectation values; noise); beside spawned Aer and qibojit, their simulators driven by the
    same code in a process (Aer in this one, qibojit in one of its environment), run for run;
    each backend's start (connect and a first small circuit: qibojit imports qibo and numba
    compiles) apart."""
    rows = []
    first = qft(4)
    for backend in BACKENDS:
        def start(b: str = backend) -> None:
            with connect(b) as handle:
                handle.execute(first).state()
        rows.append(row("9 backends", f"start: connect and a first circuit, spawned {backend}",
                        measure(start, min(repeats, 3))))
    local_aer = AerBackend()
    handles = {name: connect(name) for name in BACKENDS}
    cases = {f"{name} {n}q": circuit for n in sizes
             for name, circuit in (("QFT", qft(n)), ("layered", layered(n)))}
    local_qibojit = InProcessWorker("qibo_backend_qibojit.simulator:QibojitBackend", cases)

    def anchor(backend: str, case: str) -> tuple[str, Callable[[], object] | None]:
        """What the spawned backend's run of `case` is compared with: its simulator driven by
        the same code in a process."""
        if backend == "aer":
            return "aer in process", lambda: in_process(local_aer, cases[case])
        if backend == "qibojit":
            return "qibojit in process (its environment)", lambda: local_qibojit.run(case)
        return "", None

    try:
        for n in sizes:
            runs = 1 if n >= 24 else repeats
            for case in (f"QFT {n}q", f"layered {n}q"):
                for backend, handle in handles.items():
                    anchor_name, local = anchor(backend, case)
                    times, local_times = measure_pair(
                        lambda h=handle, c=cases[case]: h.execute(c).state(), local, runs)
                    rows.append(row("9 backends", f"{case}, spawned {backend}", times,
                                    anchor_name, local_times if local else None))
            if n == sizes[0]:
                rows += noise_rows(n, handles, local_aer, runs)
            if n <= 20:
                circuit = ansatz(n)
                sets = np.random.default_rng(n).uniform(-np.pi, np.pi,
                                                        (10, len(circuit.parameters)))
                for backend, handle in handles.items():
                    times = measure(lambda h=handle, c=circuit, s=sets: h.expectation(
                        c, OBSERVABLE, parameters=s), runs)
                    rows.append(row("9 backends", f"ansatz {n}q, 10 sets, spawned {backend}",
                                    times))
    finally:
        local_qibojit.close()
        for handle in handles.values():
            handle.close()
    return rows


def c_client(qft_qubits: int, read_qubits: int, repeats: int) -> list[Row]:
    """Target 10: the C client (clients/c, built here into a temporary folder) run for run
    beside the Python client: a QFT with 1000 shots on spawned Qulacs (the Python client's
    `execute(...).frequencies()` on a reused handle), and a state read from C beside a memcpy
    of the same bytes in the same C program (clients/c/bench/qc_bench.c: one run per line)."""
    client = Path(__file__).parent.parent / "clients" / "c"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    with tempfile.TemporaryDirectory() as build:
        subprocess.run(["make", "-C", str(client), "-j2", f"BUILD={build}", "bench"],
                       check=True, stdout=subprocess.DEVNULL)

        def start(*args: str) -> tuple[subprocess.Popen[str], Callable[[str], Seconds]]:
            process = subprocess.Popen([str(Path(build) / "qc_bench"), *args], env=env,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

            def run(what: str) -> Seconds:
                assert process.stdin is not None and process.stdout is not None
                process.stdin.write(what + "\n")
                process.stdin.flush()
                return Seconds(process.stdout.readline())
            return process, run

        circuit = qft(qft_qubits)
        circuit.add(gates.M(*range(qft_qubits)))
        process, run = start("qft", str(qft_qubits), "1000", "qulacs")
        with connect("qulacs") as handle:
            times, anchor = measure_pair(lambda: run("run"),
                                         lambda: handle.execute(circuit, nshots=1000)
                                         .frequencies(), repeats * 20)
        process.communicate()
        process, run = start("read", str(read_qubits), "numpy")
        view, memcpy = measure_pair(lambda: run("view"), lambda: run("memcpy"), repeats)
        copy, memcpy_again = measure_pair(lambda: run("copy"), lambda: run("memcpy"), repeats)
        process.communicate()
    rows = [row("10 c client", f"QFT {qft_qubits}q, 1000 shots, spawned qulacs, from C", times,
                "the same from the Python client", anchor)]
    size = 2**read_qubits * 16 / 2**20
    for how, t, base in (("a view of the mapped segment (qc_state_view)", view, memcpy),
                         ("a copy into a buffer of ours (qc_state_read)", copy, memcpy_again)):
        share = statistics.median(base) / statistics.median(t)
        rows.append(row("10 c client", f"read {read_qubits}q ({size:g} MiB) from C via {how}",
                        t, "memcpy in the same C program", base,
                        note=f"{share:.1%} of memcpy bandwidth"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (CI)")
    parser.add_argument("--json", default="bench-results.json", help="where to write the JSON")
    parser.add_argument("--ssh", metavar="COMMAND",
                        help='an ssh command prefix, e.g. "ssh -p 2222 user@host", to time a '
                             "backend through a tunnel")
    parser.add_argument("--qibo-python", metavar="PYTHON",
                        help="an interpreter with qibo installed, to time qibo's NumPy backend "
                             "(qibo is never a dependency of ours)")
    parser.add_argument("--targets", metavar="N,N", help="measure only these targets (1-12)")
    args = parser.parse_args()
    # Simulators in this process (the anchors) wait as the backend executables' do: an anchor's
    # OpenMP threads spinning after its run would take the cores of the spawned run after it.
    idle_threads_sleep()
    quick = args.quick
    repeats = 3 if quick else 7
    targets = [
        lambda: rpc_overhead(12 if quick else 20, repeats),
        lambda: streaming(2_000 if quick else 100_000, repeats),
        lambda: state_transfer(14 if quick else 24, 14 if quick else 20, repeats,
                               args.ssh.split() if args.ssh else None),
        lambda: numpy_speed(12 if quick else 20, repeats, args.qibo_python),
        lambda: spawn(repeats),
        lambda: scaling(20 if quick else 200, 10 if quick else 16, repeats,
                        args.ssh.split() if args.ssh else None),
        lambda: depth((4, 5) if quick else (10, 12), 8 if quick else 16, 14 if quick else 24,
                      repeats, args.qibo_python),
        lambda: variational((6, 8) if quick else (10, 20), (10, 2) if quick else (200, 10),
                            repeats),
        lambda: backends_table((6, 8) if quick else (10, 20, 24), repeats),
        lambda: c_client(10, 14 if quick else 24, repeats),
        lambda: small_circuits(quick, repeats),
        lambda: suite_circuits((10,) if quick else (10, 20), repeats),
    ]
    results: list[Row] = []
    chosen = {int(t) for t in args.targets.split(",")} if args.targets else None
    for index, target in enumerate(targets, 1):
        if chosen is not None and index not in chosen:
            continue
        print(f"[{index}/{len(targets)}] measuring...", file=sys.stderr, flush=True)
        rows = target()
        print_table(rows)
        results += rows
    Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
