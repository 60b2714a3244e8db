"""The `qibo-core` command: list backends, run a circuit, trace a session."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from .circuit import Circuit, M
from .client import Handle, connect
from .client.api import DEFAULT_BACKEND
from .client.discovery import (
    BackendExecutable,
    backend_command,
    configured_backends,
    list_backends,
    not_executable,
)
from .client.progress import Bar
from .client.spawned import ProcessTransport
from .client.trace import TRACE_VARIABLE
from .errors import (
    BackendCrashed,
    ConfigError,
    ProtocolError,
    QiboCoreError,
    UnsupportedProtocolVersion,
)
from .protocol import EXECUTABLE_PREFIX, PROTOCOL_VERSION, CircuitData
from .version import __version__

HISTOGRAM_WIDTH = 40
STATE_SHOWN = 8
"""Amplitudes `run --state` shows by default."""


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # the request was cancelled and the backend shut down on the way
        print("qibo-core: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="qibo-core", description="Quantum circuits on simulators in their own processes.")
    parser.add_argument("--version", action="version",
                        version=f"qibo-core {__version__} (protocol {PROTOCOL_VERSION})")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    backends = commands.add_parser(
        "backends", help="list installed backends, with a handshake with each",
        description="Every qibo-backend-<name> found, started and asked for its capabilities "
                    "(in parallel), with warnings for shadowed duplicates, files that cannot be "
                    "run and backends that speak another protocol version.")
    backends.add_argument("--json", action="store_true", help="print JSON for scripts")
    backends.set_defaults(run=_backends)

    run = commands.add_parser(
        "run", help="run a circuit file on a backend",
        description="Run an OpenQASM 2.0 program, or a circuit in qibo-core's JSON format, and "
                    "print the measured frequencies.")
    run.add_argument("circuit", type=Path, help="a .qasm file or a JSON circuit")
    run.add_argument("--backend", default=DEFAULT_BACKEND,
                     help=f"backend name (default: {DEFAULT_BACKEND})")
    run.add_argument("--shots", type=int, default=1000, help="shots to sample (default: 1000)")
    run.add_argument("--seed", type=int, help="seed for the sampling")
    run.add_argument("--state", type=int, nargs="?", const=STATE_SHOWN, metavar="K",
                     help=f"also print the K largest amplitudes (default K: {STATE_SHOWN}; "
                          "with --shots 0, shown without asking)")
    run.add_argument("--json", action="store_true", help="print JSON for scripts")
    run.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="show a progress bar on stderr (default: when stderr is a terminal)")
    run.set_defaults(run=_run)

    check = commands.add_parser(
        "check", help="the conformance kit: test any backend executable",
        description="Drive a backend through the protocol (a session at every version, every "
                    "method and feature it offers, error cases, shutdown) and check every gate "
                    "it advertises, random circuits and sampling against the reference "
                    "simulator. Each check names the section of docs/protocol.md it tests. "
                    "Exit code 1 if anything fails.")
    check.add_argument("executable", nargs="+", metavar="BACKEND",
                       help="a backend name (numpy), or a program and its arguments")
    check.add_argument("--timeout", type=float, metavar="S",
                       help="seconds the backend has to answer each request (default: 10 plus "
                            "4 times how long it took to start, as measured)")
    check.add_argument("--only", action="append", default=[], metavar="TEXT",
                       help="run only the checks whose names contain TEXT (case ignored; "
                            "repeat for more), e.g. --only '4.11' or --only 'gate RX'")
    check.set_defaults(run=_check)

    trace = commands.add_parser(
        "trace", help="record the JSON exchange of any command's backend sessions",
        description=f"Run COMMAND with {TRACE_VARIABLE} set: every message sent to and "
                    "received from a backend is appended to the output file.")
    trace.add_argument("--output", "-o", type=Path, default=Path("qibo-core-trace.log"),
                       help="where to record (default: qibo-core-trace.log)")
    trace.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    trace.set_defaults(run=_trace)

    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.run(args))
    except (QiboCoreError, OSError) as exc:
        print(f"qibo-core: error: {exc}", file=sys.stderr)
        return 1


# ---- backends ------------------------------------------------------------------------------

def _backends(args: argparse.Namespace) -> int:
    try:
        configured = configured_backends()
    except ConfigError as exc:  # the installed backends are still listed
        print(f"warning: {exc}", file=sys.stderr)
        configured = {}
    found = [BackendExecutable(name, shlex.join(command)) for name, command in configured.items()]
    found += [b for b in list_backends() if b.name not in configured]
    with ThreadPoolExecutor(max(1, len(found))) as pool:
        reports = list(pool.map(lambda b: _probe(b, configured.get(b.name, [b.path])), found))
    if args.json:
        print(json.dumps(reports, indent=2))
        return 0
    header = ("NAME", "STATUS", "VERSION", "PROTOCOL", "GATES", "NATIVE", "MAX QUBITS",
              "PRECISIONS", "ENCODINGS", "PATH")
    rows = [header] + [(r["name"], r["status"], r.get("version", "-"),
                        str(r.get("protocol", "-")), str(r.get("gates", "-")),
                        str(r.get("native", "-")), str(r.get("maxQubits", "-")),
                        ",".join(r.get("precisions", [])) or "-",
                        ",".join(r.get("encodings", [])) or "-", r["path"]) for r in reports]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        print("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)),
                         row[-1]]))
    for report in reports:
        for shadowed in report["shadowed"]:
            print(f"warning: {shadowed} is shadowed by {report['path']}")
        if "error" in report:
            print(f"warning: {report['name']}: {report['error']}")
    for path in not_executable():
        print(f"warning: {path} is not executable")
    return 0


def _probe(backend: BackendExecutable, command: list[str]) -> dict[str, Any]:
    report: dict[str, Any] = {"name": backend.name, "status": "ok", "path": backend.path,
                              "shadowed": list(backend.shadowed)}
    try:
        handle = Handle(ProcessTransport(command, name=backend.name))
    except (UnsupportedProtocolVersion, ProtocolError) as exc:
        report.update(status="incompatible", error=str(exc).splitlines()[0][:200])
        return report
    except QiboCoreError as exc:
        reason = str(exc).splitlines()[0]
        if isinstance(exc, BackendCrashed) and exc.stderr_tail:
            reason += f": {exc.stderr_tail[-1]}"  # its last words say why: a missing simulator
        report.update(status="broken", error=f"failed the handshake: {reason}")
        return report
    with handle:
        info = handle.info
        capabilities = info.capabilities
        report.update(version=info.server_info.version, protocol=info.protocol_version,
                      gates=len(capabilities.gates), native=len(capabilities.native_gates),
                      maxQubits=capabilities.max_qubits, precisions=capabilities.precisions,
                      encodings=capabilities.state_encodings, threads=capabilities.threads)
    return report


# ---- run -----------------------------------------------------------------------------------

def _run(args: argparse.Namespace) -> int:
    circuit = _load(args.circuit)
    if not args.shots and not args.state:  # without shots, the state is all there is to show
        args.state = STATE_SHOWN
    if args.shots and not circuit.measurements:
        circuit.add(M(*range(circuit.nqubits)))
        if not args.json:
            print("note: the circuit measures nothing; measuring every qubit")
    show = sys.stderr.isatty() if args.progress is None else args.progress
    with connect(args.backend) as handle:
        bar = Bar("gates") if show else None
        result = handle.execute(circuit, nshots=args.shots, seed=args.seed, progress=bar)
        if bar is not None:
            bar(1, 1)  # the backend's last report may come before the end: close the line
        frequencies: dict[str, int] = {}
        if args.shots:
            frequencies = dict(sorted(result.frequencies().items()))  # type: ignore[arg-type]
        top = _largest(result.state(), args.state) if args.state else []
    if args.json:
        print(json.dumps({"backend": args.backend, "nqubits": circuit.nqubits,
                          "nshots": args.shots, "seed": args.seed, "frequencies": frequencies,
                          "state": [[k, a.real, a.imag] for k, a in top] if args.state else None}))
        return 0
    if frequencies:
        _print_histogram(frequencies, args.shots)
    if top:
        print(f"\n{'state':<{circuit.nqubits + 2}}  {'amplitude':<24}  probability")
        for index, amplitude in top:
            text = f"{amplitude.real:+.8f}{amplitude.imag:+.8f}j"
            print(f"|{index:0{circuit.nqubits}b}>  {text:<24}  {abs(amplitude) ** 2:.6f}")
    return 0


def _load(path: Path) -> Circuit:
    text = path.read_text()
    if text.lstrip().startswith("OPENQASM"):
        return Circuit.from_qasm(text, source=str(path))
    try:
        return Circuit.from_data(msgspec.json.decode(text, type=CircuitData))
    except msgspec.DecodeError as exc:
        raise QiboCoreError(f"{path}: neither OpenQASM 2.0 nor a JSON circuit ({exc})") from None


def _largest(state: np.ndarray, k: int) -> list[tuple[int, complex]]:
    order = np.argsort(-np.abs(state), kind="stable")[:k]
    return [(int(i), complex(state[i])) for i in order]


def _print_histogram(frequencies: dict[str, int], shots: int) -> None:
    width = max(7, len(next(iter(frequencies))))
    peak = max(frequencies.values())
    print(f"{'outcome':<{width}}  {'count':>8}  {'share':>7}")
    for outcome, count in frequencies.items():
        bar = "█" * max(1, round(HISTOGRAM_WIDTH * count / peak))
        print(f"{outcome:<{width}}  {count:>8}  {count / shots:>7.2%}  {bar}")


# ---- check ---------------------------------------------------------------------------------

def _check(args: argparse.Namespace) -> int:
    from .testing.conformance import check
    command = args.executable
    if len(command) == 1 and os.sep not in command[0] and not os.path.exists(command[0]):
        # "dense", or its program's name
        command = backend_command(command[0].removeprefix(EXECUTABLE_PREFIX))
    report = check(command, timeout=args.timeout, only=args.only)
    print(report.text())
    return 0 if report.passed else 1


# ---- trace ---------------------------------------------------------------------------------

def _trace(args: argparse.Namespace) -> int:
    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not command:
        raise QiboCoreError("trace needs a command: qibo-core trace -- python my_script.py")
    output = args.output.resolve()
    size = output.stat().st_size if output.exists() else -1
    code = subprocess.call(command, env=dict(os.environ, **{TRACE_VARIABLE: str(output)}))
    if output.exists() and output.stat().st_size > size:
        print(f"qibo-core: the exchange is in {args.output}", file=sys.stderr)
    else:
        print(f"qibo-core: nothing was recorded in {args.output}: the command started no "
              "qibo-core backend (does it run a Python where qibo-core is installed?)",
              file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
