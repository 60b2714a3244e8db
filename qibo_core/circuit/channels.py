"""Noise channels, with qibo's names, parameters and conventions; each is its Kraus operators.

A channel K_i on `qubits` maps a density matrix rho to sum_i K_i rho K_i^dagger (qubit order as
in `qubits`, the first the most significant). On the wire every channel travels as its Kraus
operators, so a backend needs to know only one kind. On a state vector with shots, a channel
picks one K_i per shot, with probability ||K_i psi||^2: sampled trajectories, as qibo does.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from functools import reduce
from typing import Any

import numpy as np

from ..errors import CircuitError
from ..protocol.messages import GateData
from .gate import Gate, check_qubit

TRACE_TOLERANCE = 1e-8
_PAULI = {"I": np.eye(2), "X": np.array([[0, 1], [1, 0]]), "Y": np.array([[0, -1j], [1j, 0]]),
          "Z": np.diag([1, -1])}


class Channel:
    """A completely positive, trace-preserving map, given by its Kraus operators."""

    def __init__(self, qubits: Sequence[int], kraus: Sequence[object], *,
                 name: str = "KrausChannel", params: dict[str, object] | None = None) -> None:
        self.name = name
        self.qubits = tuple(check_qubit(q) for q in qubits)
        if not self.qubits or len(set(self.qubits)) != len(self.qubits):
            raise CircuitError(f"{name}: needs distinct qubits, got {list(self.qubits)}")
        dim = 2 ** len(self.qubits)
        try:
            ops = tuple(np.array(k, dtype=complex) for k in kraus)
        except (TypeError, ValueError) as exc:
            raise CircuitError(f"{name}: a Kraus operator is not a complex matrix: {exc}") from None
        if not ops or any(k.shape != (dim, dim) for k in ops):
            raise CircuitError(f"{name} on {len(self.qubits)} qubits needs {dim}x{dim} Kraus "
                               f"operators, got {[k.shape for k in ops]}")
        if not all(np.isfinite(k).all() for k in ops):
            raise CircuitError(f"{name}: a Kraus operator has NaN or infinite entries")
        error = float(np.abs(sum(k.conj().T @ k for k in ops) - np.eye(dim)).max())
        if error > TRACE_TOLERANCE:
            raise CircuitError(f"{name}: not trace-preserving (|sum K^dagger K - I| = "
                               f"{error:.2e} > {TRACE_TOLERANCE})")
        self.kraus = ops
        self.params = dict(params or {})

    def to_gate_data(self) -> GateData:
        return GateData(self.name, self.qubits, kraus=[
            [[(z.real, z.imag) for z in row] for row in k.tolist()] for k in self.kraus])

    @classmethod
    def from_data(cls, data: GateData) -> Channel:
        if not data.kraus:
            raise CircuitError(f"{data.name}: a channel needs its 'kraus' operators")
        try:
            ops = [np.array(k, dtype=float) for k in data.kraus]
        except (TypeError, ValueError):
            ops = []
        if not ops or any(k.ndim != 3 or k.shape[-1] != 2 for k in ops):
            raise CircuitError(f"{data.name}: 'kraus' must be matrices of [re, im] pairs")
        return cls(data.qubits, [k[..., 0] + 1j * k[..., 1] for k in ops], name=data.name)

    def key(self) -> tuple[Any, ...]:
        """As Gate.key: the name, the qubits and the Kraus operators' bytes."""
        return (Channel, self.name, self.qubits, tuple(k.tobytes() for k in self.kraus))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Channel) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash((self.name, self.qubits))

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(map(str, self.qubits))}, {len(self.kraus)} Kraus ops)"


def _probability(name: str, what: str, p: float) -> float:
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
        raise CircuitError(f"{name}: {what} must be a probability in [0, 1], got {p!r}")
    return float(p)


def KrausChannel(qubits: int | Sequence[int], operators: Sequence[object]) -> Channel:
    """Any channel, by its Kraus operators on `qubits`."""
    return Channel([qubits] if isinstance(qubits, int) else qubits, operators)


class PauliNoiseChannel(Channel):
    """Pauli strings P with probabilities p, `[("X", 0.1), ("ZZ", 0.05)]`, and the identity with
    what is left: sqrt(1 - sum p) I, sqrt(p) P."""

    def __init__(self, qubits: int | Sequence[int],
                 operators: Sequence[tuple[str, float]]) -> None:
        qubits = [qubits] if isinstance(qubits, int) else list(qubits)
        kraus, total = [], 0.0
        for pauli, p in operators:
            if not isinstance(pauli, str) or len(pauli) != len(qubits) or set(pauli) - set(_PAULI):
                raise CircuitError(f"PauliNoiseChannel: {pauli!r} is not a Pauli string of "
                                   f"{len(qubits)} letters from IXYZ")
            total += _probability("PauliNoiseChannel", f"the probability of {pauli}", p)
            kraus.append(math.sqrt(p) * reduce(np.kron, [_PAULI[c] for c in pauli]))
        if total > 1 + TRACE_TOLERANCE:
            raise CircuitError(f"PauliNoiseChannel: the probabilities sum to {total}, over 1")
        identity = math.sqrt(max(0.0, 1 - total)) * np.eye(2 ** len(qubits))
        super().__init__(qubits, [identity, *kraus], name="PauliNoiseChannel",
                         params={"operators": list(operators)})


class DepolarizingChannel(Channel):
    """rho -> (1 - lam) rho + lam I / 2^n, as every Pauli string with probability lam / 4^n."""

    def __init__(self, qubits: int | Sequence[int], lam: float) -> None:
        qubits = [qubits] if isinstance(qubits, int) else list(qubits)
        n = len(qubits)
        p = _probability("DepolarizingChannel", "lam", lam) / 4**n
        if lam * (4**n - 1) / 4**n > 1:  # lam up to 4^n / (4^n - 1) is still a channel
            raise CircuitError(f"DepolarizingChannel: lam = {lam} is too large")
        strings = ["".join(s) for s in itertools.product("IXYZ", repeat=n)][1:]
        kraus = [math.sqrt(1 - p * (4**n - 1)) * np.eye(2**n)]
        kraus += [math.sqrt(p) * reduce(np.kron, [_PAULI[c] for c in s]) for s in strings]
        super().__init__(qubits, kraus, name="DepolarizingChannel", params={"lam": lam})


class AmplitudeDampingChannel(Channel):
    """K0 = [[1, 0], [0, sqrt(1 - gamma)]], K1 = [[0, sqrt(gamma)], [0, 0]]."""

    def __init__(self, qubit: int, gamma: float) -> None:
        g = _probability("AmplitudeDampingChannel", "gamma", gamma)
        super().__init__([qubit], [np.diag([1, math.sqrt(1 - g)]),
                                   [[0, math.sqrt(g)], [0, 0]]],
                         name="AmplitudeDampingChannel", params={"gamma": gamma})


class PhaseDampingChannel(Channel):
    """K0 = [[1, 0], [0, sqrt(1 - gamma)]], K1 = [[0, 0], [0, sqrt(gamma)]]."""

    def __init__(self, qubit: int, gamma: float) -> None:
        g = _probability("PhaseDampingChannel", "gamma", gamma)
        super().__init__([qubit], [np.diag([1, math.sqrt(1 - g)]), np.diag([0, math.sqrt(g)])],
                         name="PhaseDampingChannel", params={"gamma": gamma})


class ResetChannel(Channel):
    """To |0> with probability p0, to |1> with p1, untouched otherwise."""

    def __init__(self, qubit: int, probabilities: Sequence[float]) -> None:
        if len(probabilities) != 2:
            raise CircuitError("ResetChannel: probabilities are [p0, p1]")
        p0, p1 = (_probability("ResetChannel", f"p{k}", p) for k, p in enumerate(probabilities))
        if p0 + p1 > 1 + TRACE_TOLERANCE:
            raise CircuitError(f"ResetChannel: p0 + p1 = {p0 + p1}, over 1")
        super().__init__([qubit], _reset_kraus(p0, p1, max(0.0, 1 - p0 - p1)),
                         name="ResetChannel", params={"probabilities": [p0, p1]})


class ThermalRelaxationChannel(Channel):
    """Relaxation towards `excited_population` at rate 1/t1 and dephasing at 1/t2 for `time`,
    as qibo defines it: populations relax as by a reset channel, coherences decay by
    exp(-time / t2). For t2 <= t1 its Kraus operators are qibo's (a reset channel and a phase
    flip); for t1 < t2 <= 2 t1 they come from the channel's Choi matrix."""

    def __init__(self, qubit: int, parameters: Sequence[float]) -> None:
        if len(parameters) not in (3, 4):
            raise CircuitError("ThermalRelaxationChannel: parameters are [t1, t2, time] or "
                               "[t1, t2, time, excited_population]")
        t1, t2, time = (float(p) for p in parameters[:3])
        excited = float(parameters[3]) if len(parameters) == 4 else 0.0
        if not (t1 > 0 and t2 > 0 and time >= 0 and 0 <= excited <= 1):
            raise CircuitError(f"ThermalRelaxationChannel: t1, t2 > 0, time >= 0 and "
                               f"0 <= excited_population <= 1; got {list(parameters)}")
        if t2 > 2 * t1:
            raise CircuitError(f"ThermalRelaxationChannel: t2 = {t2} > 2 * t1 = {2 * t1} is not "
                               "a physical channel")
        reset = 1 - math.exp(-time / t1)
        p0, p1 = reset * (1 - excited), reset * excited
        if t2 > t1:
            kraus = _thermal_kraus(p0, p1, math.exp(-time / t2))
        else:
            p_z = (1 - reset) * (1 - math.exp(time / t1 - time / t2)) / 2  # no 0/0 for long times
            kraus = _reset_kraus(p0, p1, 1 - reset - p_z)
            kraus.append(math.sqrt(p_z) * _PAULI["Z"])
        super().__init__([qubit], kraus, name="ThermalRelaxationChannel",
                         params={"parameters": list(parameters)})


def _thermal_kraus(p0: float, p1: float, coherence: float) -> list[np.ndarray]:
    """Kraus operators of rho -> [[(1-p1) a + p0 d, coherence b], [coherence c, p1 a +
    (1-p0) d]], from the eigenvectors of its Choi matrix C[(i,k),(j,l)] = <k|E(|i><j|)|l>."""
    choi = np.diag([1 - p1, p1, p0, 1 - p0]).astype(complex)
    choi[0, 3] = choi[3, 0] = coherence
    values, vectors = np.linalg.eigh(choi)
    return [math.sqrt(v) * vectors[:, m].reshape(2, 2).T
            for m, v in enumerate(values) if v > 1e-15]


def _reset_kraus(p0: float, p1: float, keep: float) -> list[np.ndarray]:
    s0, s1 = math.sqrt(p0), math.sqrt(p1)
    return [np.array([[s0, 0], [0, 0]]), np.array([[0, s0], [0, 0]]),
            np.array([[0, 0], [s1, 0]]), np.array([[0, 0], [0, s1]]),
            math.sqrt(max(0.0, keep)) * np.eye(2)]


class NoiseModel:
    """Noise after gates: `noise.add(lambda qubits: DepolarizingChannel(qubits, 0.01),
    gates=["RX", "CNOT"])`, then `noise.apply(circuit)` is a new circuit with that channel after
    every RX and CNOT, on the qubits each acted on (`gates` None: after every gate)."""

    def __init__(self) -> None:
        self._rules: list[tuple[Callable[[tuple[int, ...]], Channel], frozenset[str] | None]] = []

    def add(self, channel: Callable[[tuple[int, ...]], Channel],
            gates: Sequence[str] | None = None) -> NoiseModel:
        self._rules.append((channel, None if gates is None else frozenset(gates)))
        return self

    def apply(self, circuit: Any) -> Any:
        """A copy of `circuit` with the channels inserted (its measurements kept)."""
        noisy = type(circuit)(circuit.nqubits, density_matrix=circuit.density_matrix)
        for op in circuit.gates:
            noisy.add(op)
            if isinstance(op, Gate):
                for make, names in self._rules:
                    if names is None or op.name in names:
                        noisy.add(make(op.all_qubits))
        noisy.add(m for m in circuit.measurements if not m.collapse)
        return noisy
