"""The conformance kit: does an executable implement the protocol, and agree with NumPy?

`qibo-core check EXECUTABLE` runs it from the command line; from a third party's own tests:

    from qibo_core.conformance import check
    def test_conformance():
        report = check(["qibo-backend-foo"])
        assert report.passed, report.text()

Protocol checks talk raw JSON lines to fresh processes, so a failure shows the exchange.
Agreement checks drive the backend through a client handle and compare every state with the
NumPy backend's, gate kind by gate kind, then on random circuits and in sampling statistics.
"""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from . import gates
from .circuit import Circuit
from .client import ProcessChannel
from .errors import QiboCoreError, RequestTimeout
from .gates import GATES, Gate
from .handle import Handle, connect
from .protocol import PROTOCOL_VERSION, SHM_DIR, SHM_PREFIX, ErrorCode
from .transport import TIMEOUT, LineReader

ATOL = 1e-10
REPLY_TIMEOUT = 10.0
"""Seconds a backend has to answer one request of a check; one that does not is hung, and the
checks after it are not run."""


# ---- what the checks share with the test suite ---------------------------------------------

def random_gate(name: str, qubits: Sequence[int], rng: np.random.Generator) -> Gate:
    """The gate `name` on the first of `qubits` it needs, with random parameters."""
    cls = GATES[name]
    if cls is gates.Unitary:
        z = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
        return gates.Unitary(np.linalg.qr(z)[0], *qubits[:2])
    size = cls.ncontrols + (cls.ntargets or 2)
    return cls(*qubits[:size], **{p: float(rng.uniform(-math.pi, math.pi))
                                  for p in cls.param_names})


def gate_variants(name: str, nqubits: int, rng: np.random.Generator) -> Iterator[Gate]:
    """The gate at a random placement with random parameters, its dagger, and it controlled by
    one and by every spare qubit (nqubits must leave one spare)."""
    qubits = [int(q) for q in rng.permutation(nqubits)]
    gate = random_gate(name, qubits, rng)
    size = len(gate.qubits)
    yield gate
    yield gate.dagger()
    yield gate.controlled_by(qubits[size])
    yield gate.dagger().controlled_by(*qubits[size:])


def scrambled(nqubits: int, rng: np.random.Generator) -> Circuit:
    """A circuit whose final state has distinct, generic amplitudes (no accidental agreement)."""
    circuit = Circuit(nqubits)
    for q in range(nqubits):
        circuit.add(gates.U3(q, *rng.uniform(-math.pi, math.pi, 3)))
    for q in range(nqubits - 1):
        circuit.add(gates.CNOT(q, q + 1))
    for q in range(nqubits):
        circuit.add(gates.U3(q, *rng.uniform(-math.pi, math.pi, 3)))
    return circuit


def random_circuit(nqubits: int, ngates: int, rng: np.random.Generator,
                   names: Sequence[str] | None = None) -> Circuit:
    """Random gates of the given kinds (default: all), with random daggers and controls."""
    kinds = [n for n in sorted(names or GATES)
             if GATES[n].ncontrols + (GATES[n].ntargets or 2) <= nqubits]
    circuit = Circuit(nqubits)
    for _ in range(ngates):
        qubits = [int(q) for q in rng.permutation(nqubits)]
        gate = random_gate(kinds[int(rng.integers(len(kinds)))], qubits, rng)
        if rng.integers(2):
            gate = gate.dagger()
        spare = qubits[len(gate.qubits):]
        if spare and rng.integers(2):
            gate = gate.controlled_by(*spare[:int(rng.integers(1, len(spare) + 1))])
        circuit.add(gate)
    return circuit


def chi_square_passes(frequencies: dict[str, int], probabilities: np.ndarray,
                      nshots: int) -> bool:
    """Pearson's test at the 0.1% level: False means the counts do not fit the probabilities.

    Outcomes expected fewer than 5 times are pooled, as the test requires; an outcome of
    probability 0 that was seen fails outright.
    """
    width = int(math.log2(len(probabilities)))
    observed = np.array([frequencies.get(format(k, f"0{width}b"), 0)
                         for k in range(len(probabilities))], dtype=float)
    if observed.sum() != nshots or observed[probabilities < 1e-12].any():
        return False
    expected = probabilities * nshots
    large = expected >= 5
    obs = np.append(observed[large], observed[~large].sum())
    exp = np.append(expected[large], expected[~large].sum())
    keep = exp > 0
    statistic = float(((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum())
    dof = max(int(keep.sum()) - 1, 1)
    z = 3.09  # the 99.9% normal quantile; Wilson-Hilferty for the chi-square quantile
    critical = dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3
    return statistic <= critical


# ---- the report ----------------------------------------------------------------------------

class CheckFailed(Exception):
    """A check's expectation was not met."""


class Hung(CheckFailed):
    """The backend did not answer in time: later checks would only wait too."""


@dataclass
class Outcome:
    name: str
    passed: bool
    message: str = ""
    exchange: list[str] = field(default_factory=list)


@dataclass
class Report:
    executable: list[str]
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    def text(self) -> str:
        lines = [f"conformance of {' '.join(self.executable)}"]
        for o in self.outcomes:
            lines.append(f"  {'PASS' if o.passed else 'FAIL'}  {o.name}"
                         + (f": {o.message}" if o.message else ""))
            lines += [f"          {line}" for line in o.exchange[-12:]]
        failed = sum(not o.passed for o in self.outcomes)
        lines.append(f"{len(self.outcomes) - failed} passed, {failed} failed")
        return "\n".join(lines)


# ---- protocol checks: raw lines to a fresh process -----------------------------------------

class _Session:
    """A fresh backend process on pipes, recording every line both ways."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)
        assert self.process.stdout is not None
        self.lines = LineReader(self.process.stdout.fileno())
        self.exchange: list[str] = []
        self.ids = 0

    def send(self, message: dict[str, Any] | bytes) -> None:
        line = message if isinstance(message, bytes) else json.dumps(message).encode()
        self.exchange.append(f"> {line.decode(errors='replace')[:300]}")
        assert self.process.stdin is not None
        self.process.stdin.write(line + b"\n")
        self.process.stdin.flush()

    def receive(self) -> dict[str, Any]:
        line = self.lines.read_line(REPLY_TIMEOUT)
        if line is TIMEOUT:
            raise Hung(f"no reply within {REPLY_TIMEOUT} s")
        if not isinstance(line, bytes):
            raise CheckFailed("the backend closed its stdout")
        self.exchange.append(f"< {line.decode(errors='replace')[:300]}")
        try:
            message = json.loads(line)
        except ValueError:
            raise CheckFailed("stdout carried a line that is not JSON") from None
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            raise CheckFailed("stdout carried a line that is not a JSON-RPC message")
        return message

    def call(self, method: str, params: Any = None) -> dict[str, Any]:
        self.ids += 1
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": self.ids, "method": method}
        if params is not None:
            request["params"] = params
        self.send(request)
        reply = self.receive()
        if reply.get("id") != self.ids:
            raise CheckFailed(f"the reply's id is {reply.get('id')!r}, not {self.ids}")
        return reply

    def result(self, method: str, params: Any = None) -> Any:
        reply = self.call(method, params)
        if "error" in reply:
            raise CheckFailed(f"{method} failed: {reply['error']}")
        if "result" not in reply:
            raise CheckFailed(f"the reply to {method} has neither 'result' nor 'error'")
        return reply["result"]

    def object(self, method: str, params: Any = None) -> dict[str, Any]:
        """The result of a request whose result must be an object."""
        result = self.result(method, params)
        if not isinstance(result, dict):
            raise CheckFailed(f"{method} answered {result!r}, not an object")
        return result

    def error(self, method: str, params: Any, code: int) -> None:
        _expect_error(self.call(method, params), code)

    def close(self, wait: float = REPLY_TIMEOUT) -> int | None:
        """End of input, then the exit code; None if it had to be killed after `wait` s."""
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.close()
        except OSError:
            pass  # it is gone already
        try:
            return self.process.wait(wait)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
        finally:
            self.process.stdout.close()


def _expect_error(reply: dict[str, Any], code: int) -> None:
    error = reply.get("error")
    if not isinstance(error, dict) or error.get("code") != code:
        raise CheckFailed(f"expected error {code} ({ErrorCode(code).name}), got {reply}")
    if not isinstance(error.get("message"), str) or not error["message"]:
        raise CheckFailed("the error has no message")


BELL = {"nqubits": 2, "gates": [{"name": "H", "qubits": [0]}, {"name": "CNOT", "qubits": [0, 1]}],
        "measurements": [{"qubits": [0, 1]}]}
INIT = {"protocolVersion": PROTOCOL_VERSION}


def _initialize(s: _Session) -> dict[str, Any]:
    result = s.object("initialize", INIT)
    if result.get("protocolVersion") != PROTOCOL_VERSION:
        raise CheckFailed(f"protocolVersion is {result.get('protocolVersion')!r}")
    capabilities = result.get("capabilities")
    if not isinstance(capabilities, dict):
        raise CheckFailed("capabilities is missing or not an object")
    for key, kind in (("gates", list), ("nativeGates", list), ("maxQubits", int),
                      ("precisions", list), ("stateEncodings", list), ("threads", int)):
        if not isinstance(capabilities.get(key), kind):
            raise CheckFailed(f"capabilities.{key} is missing or not a {kind.__name__}")
    if "base64" not in capabilities["stateEncodings"]:
        raise CheckFailed("stateEncodings lacks 'base64', which every backend must support")
    return capabilities


def _before_initialize(s: _Session) -> None:
    s.error("execute", {"circuit": BELL}, ErrorCode.SERVER_NOT_INITIALIZED)
    s.error("initialize", {"protocolVersion": 999}, ErrorCode.UNSUPPORTED_PROTOCOL_VERSION)
    _initialize(s)


def _malformed(s: _Session) -> None:
    _initialize(s)
    s.send(b"this is not json")
    _expect_error(s.receive(), ErrorCode.PARSE_ERROR)
    s.send(b"[1, 2]")
    _expect_error(s.receive(), ErrorCode.INVALID_REQUEST)
    s.error("no/such/method", None, ErrorCode.METHOD_NOT_FOUND)
    s.send({"jsonrpc": "2.0", "method": "no/such/notification"})  # no reply to this
    s.result("state/new", {"nqubits": 1})


def _bad_params(s: _Session) -> None:
    _initialize(s)
    for params in ({"circuit": {"nqubits": 2, "gates": [{"name": "H", "qubits": [5]}]}},
                   {"circuit": {"nqubits": 1, "gates": [{"name": "Unitary", "qubits": [0],
                                                         "matrix": [[[1, 0], [1, 0]],
                                                                    [[0, 0], [1, 0]]]}]}},
                   {"circuit": {"nqubits": 1, "gates": [{"name": "RX", "qubits": [0]}]}},
                   {"circuit": {"nqubits": 0}},
                   {"circuit": BELL, "nshots": -1}):
        s.error("execute", params, ErrorCode.INVALID_PARAMS)
    s.error("state/new", {"nqubits": 10_000}, ErrorCode.STATE_TOO_LARGE)
    s.error("state/read", {"state": 987654}, ErrorCode.UNKNOWN_STATE)


def _execute_and_read(s: _Session) -> None:
    _initialize(s)
    result = s.object("execute", {"circuit": BELL, "nshots": 1000, "seed": 3})
    counts = result.get("frequencies", {})
    if sum(counts.values()) != 1000 or not set(counts) <= {"00", "11"}:
        raise CheckFailed(f"a Bell pair gave frequencies {counts}")
    state = s.object("state/read", {"state": result["state"]})
    amplitudes = np.frombuffer(base64.b64decode(state["data"]), dtype="<c16")
    if state.get("shape") != [4] or not np.allclose(amplitudes, [2**-0.5, 0, 0, 2**-0.5]):
        raise CheckFailed(f"the Bell state read back as {amplitudes}")
    probabilities = s.object("state/probabilities", {"state": result["state"], "qubits": [1]})
    p = np.frombuffer(base64.b64decode(probabilities["data"]), dtype="<f8")
    if not np.allclose(p, [0.5, 0.5]):
        raise CheckFailed(f"P(q1) of a Bell pair is {p}")
    s.result("state/free", {"state": result["state"]})
    s.error("state/read", {"state": result["state"]}, ErrorCode.UNKNOWN_STATE)


def _streaming(s: _Session) -> None:
    _initialize(s)
    state = s.object("state/new", {"nqubits": 2})["state"]
    for gate in ({"name": "H", "qubits": [0]}, {"name": "X", "qubits": [9]}):
        s.send({"jsonrpc": "2.0", "method": "state/apply",
                "params": {"state": state, "gates": [gate]}})
    s.error("state/read", {"state": state}, ErrorCode.GATE_FAILED)
    s.result("state/read", {"state": state})
    s.send({"jsonrpc": "2.0", "method": "state/apply",  # a batch that cannot be decoded
            "params": {"state": state, "gates": [{"name": "H", "qubits": ["zero"]}]}})
    s.error("state/read", {"state": state}, ErrorCode.GATE_FAILED)
    s.result("state/read", {"state": state})


def _shared_memory(s: _Session) -> None:
    """A segment of the client's is attached and written; any other path is refused untouched."""
    if "shm" not in _initialize(s)["stateEncodings"]:
        return  # base64 only: nothing to check
    with tempfile.TemporaryDirectory() as folder:
        stranger = os.path.join(folder, "not-a-segment")
        content = b"a file that is not a segment\n" * 8
        with open(stranger, "wb") as f:
            f.write(content)
        segment = _segment_file(64)
        link, small, unprefixed = _segment_file(0), _segment_file(8), _segment_file(64, prefix="x-")
        os.unlink(link)
        os.symlink(stranger, link)
        try:
            for path, size in ((stranger, 64), (link, 64), (small, 64), (unprefixed, 64),
                               (segment, 0)):
                s.error("shm/attach", {"path": path, "size": size}, ErrorCode.INVALID_PARAMS)
            with open(stranger, "rb") as f:
                if f.read() != content:
                    raise CheckFailed("a refused path was written to")
            ref = s.object("shm/attach", {"path": segment, "size": 64})
        finally:
            for path in (segment, link, small, unprefixed):
                os.unlink(path)
        state = s.object("state/new", {"nqubits": 2})["state"]
        read = s.object("state/read", {"state": state, "segment": ref["segment"]})
        if read.get("segment") != ref["segment"] or read.get("data") is not None:
            raise CheckFailed(f"state/read into a segment answered {read}")
        s.result("shm/detach", {"segment": ref["segment"]})
        s.error("state/read", {"state": state, "segment": ref["segment"]},
                ErrorCode.INVALID_PARAMS)


def _segment_file(size: int, prefix: str = SHM_PREFIX) -> str:
    """A new file of `size` zero bytes in the shared-memory folder."""
    path = os.path.join(SHM_DIR, f"{prefix}{os.getpid()}-{uuid.uuid4().hex}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.ftruncate(fd, size)
    os.close(fd)
    return path


def _shutdown(s: _Session) -> None:
    _initialize(s)
    if s.result("shutdown") is not None:
        raise CheckFailed("shutdown must answer null")
    s.send({"jsonrpc": "2.0", "method": "exit"})
    code = s.close()
    if code != 0:
        raise CheckFailed(f"after shutdown and exit the backend ended with {code}, not 0")


def _end_of_input(s: _Session) -> None:
    _initialize(s)
    if s.close() is None:
        raise CheckFailed("the backend did not exit within 10 s of end of input")


PROTOCOL_CHECKS: list[tuple[str, Callable[[_Session], None]]] = [
    ("initialize answers version, server info and capabilities", _initialize),
    ("requests before initialize, and a wrong version, are refused", _before_initialize),
    ("malformed lines get parse / invalid request / method errors", _malformed),
    ("invalid params are refused with InvalidParams, StateTooLarge, UnknownState", _bad_params),
    ("execute, state/read, state/probabilities, state/free", _execute_and_read),
    ("a failed streamed gate, or undecodable batch, surfaces at the next request", _streaming),
    ("shm/attach takes a segment of the client's and refuses any other path", _shared_memory),
    ("shutdown then exit ends the process with code 0", _shutdown),
    ("end of input ends the process", _end_of_input),
]


# ---- agreement checks: through a handle, against NumPy -------------------------------------

def _agreement_checks(handle: Handle,
                      reference: Handle) -> Iterator[tuple[str, Callable[[], None]]]:
    rng = np.random.default_rng(2024)
    advertised = [n for n in handle.info.capabilities.gates if n in GATES]

    def same_state(circuit: Circuit) -> None:
        actual = handle.execute(circuit).state()
        expected = reference.execute(circuit).state()
        error = float(np.abs(actual - expected).max()) if actual.shape == expected.shape else 1
        if error > ATOL:
            raise CheckFailed(f"amplitudes differ by {error:.2e} from NumPy's for {circuit.gates}")

    for name in advertised:
        def check_gate(name: str = name) -> None:
            for gate in gate_variants(name, 5, rng):
                circuit = scrambled(5, rng)
                circuit.add(gate)
                same_state(circuit)
        yield f"gate {name} (placements, dagger, controls) agrees with NumPy", check_gate

    def random_circuits() -> None:
        for nqubits in (1, 3, 6, 10):
            same_state(random_circuit(nqubits, 25, rng, advertised))

    def sampling() -> None:
        circuit = scrambled(4, rng)
        circuit.add(gates.M(2, 0, 3))
        exact = reference.execute(circuit).probabilities([2, 0, 3])
        first = cast("dict[str, int]", handle.execute(circuit, nshots=20000, seed=11).frequencies())
        if not chi_square_passes(first, exact, 20000):
            raise CheckFailed(f"frequencies {dict(first)} do not fit the probabilities {exact}")
        if handle.execute(circuit, nshots=20000, seed=11).frequencies() != first:
            raise CheckFailed("the same seed gave different frequencies")

    yield "random circuits up to 10 qubits agree with NumPy", random_circuits
    yield "sampling fits the exact probabilities and repeats under a seed", sampling


def check(executable: list[str]) -> Report:
    """Run every check against `executable` (an argv); a report of what passed and why not.

    Each request has REPLY_TIMEOUT seconds: a backend that hangs fails the check where it hung,
    and the checks after it are reported as not run."""
    report = Report(executable)
    hung = ""
    for name, run in PROTOCOL_CHECKS:
        if hung:
            report.outcomes.append(Outcome(name, False, f"not run: {hung}"))
            continue
        session = _Session(executable)
        passed = False
        try:
            run(session)
            passed = True
            report.outcomes.append(Outcome(name, True))
        except Exception as exc:  # anything a reply made us trip on is the backend's failure
            message = str(exc) if isinstance(exc, (CheckFailed, OSError)) else (
                f"unexpected reply ({type(exc).__name__}: {exc})")
            report.outcomes.append(Outcome(name, False, message, session.exchange))
            if isinstance(exc, Hung):
                hung = f"the backend hung in the check {name!r}"
        finally:
            if session.process.poll() is None:  # after a failure, waiting would only be slow
                session.close(wait=REPLY_TIMEOUT if passed else 0)
    if hung:
        return report
    try:
        handle = Handle(ProcessChannel(executable, name="under test"), timeout=REPLY_TIMEOUT)
    except QiboCoreError as exc:
        report.outcomes.append(Outcome("connect through the client", False, str(exc)))
        return report
    from qibo_backend_numpy import NumpyBackend
    with handle, connect(NumpyBackend(fusion=False)) as reference:
        for name, agree in _agreement_checks(handle, reference):
            try:
                agree()
                report.outcomes.append(Outcome(name, True))
            except (CheckFailed, QiboCoreError) as exc:
                report.outcomes.append(Outcome(name, False, str(exc)[:500]))
                if isinstance(exc, RequestTimeout):
                    break
    return report
