"""Density matrices and channels (2.3.2; version 2, features "densityMatrix" and "channels"):
gates act as U rho U^dagger (streamed ones too), a channel's operators are checked, a channel on
a state vector continues with one operator's result renormalised, and a density matrix of n
qubits counts as 2n against maxQubits."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..protocol import ErrorCode, Feature
from . import dense
from .checks import kit_check
from .exchange import Exchange, decoded, frequencies
from .report import CheckFailed

DENSITY = (Feature.DENSITY_MATRIX,)
CHANNELS = (Feature.CHANNELS,)
DAMPING = [np.diag([1, 0.8]), np.array([[0, 0.6], [0, 0]])]
"""Amplitude damping with gamma 0.36: K0^dagger K0 + K1^dagger K1 = I."""


def pairs(matrix: np.ndarray) -> list[list[list[float]]]:
    """A matrix as rows of [re, im] pairs (2.2)."""
    return [[[float(z.real), float(z.imag)] for z in row] for row in np.asarray(matrix, complex)]


def channel(qubits: list[int], kraus: list[np.ndarray], **extra: Any) -> dict[str, Any]:
    return {"name": "KrausChannel", "qubits": qubits, "kraus": [pairs(k) for k in kraus],
            **extra}


def rx(q: int, theta: float) -> dict[str, Any]:
    return {"name": "RX", "qubits": [q], "params": {"theta": theta}}


@kit_check("2.3.2", "a density matrix: gates act as U rho U^dagger; read, probabilities and "
           "samples from it", since=2, features=DENSITY)
def _density(s: Exchange) -> None:
    s.initialize()
    gates = [{"name": "H", "qubits": [0]}, {"name": "CNOT", "qubits": [0, 1]}, rx(1, 0.7)]
    circuit = {"nqubits": 2, "densityMatrix": True, "gates": gates,
               "measurements": [{"qubits": [1, 0]}]}
    result = s.object("execute", {"circuit": circuit, "nshots": 50, "seed": 1})
    u = dense.circuit([(dense.H, [0]), (dense.CNOT, [0, 1]), (dense.rx(0.7), [1])], 2)
    psi = u[:, 0]
    expected = np.outer(psi, psi.conj())
    actual = s.read(result["state"], [4, 4])
    if not np.allclose(actual, expected, atol=1e-10):
        raise CheckFailed(f"§2.3.2: H(0), CNOT(0, 1), RX(1, 0.7) on a density matrix read "
                          f"back {np.round(actual, 3).tolist()}, not U rho U^dagger = "
                          f"{np.round(expected, 3).tolist()}")
    answer = s.result("state/probabilities", {"state": result["state"], "qubits": [1]})
    p = decoded(answer, "float64", [2], "§4.5 state/probabilities of a density matrix")
    if not np.allclose(p, [np.sum(dense.probabilities(expected)[[0, 2]]),
                           np.sum(dense.probabilities(expected)[[1, 3]])], atol=1e-10):
        raise CheckFailed(f"§4.5: P(q1) of the density matrix is {p}")
    frequencies(result, 50, 2, "§2.3.2 shots of a density matrix")


@kit_check("4.3", "gates streamed into a density matrix act as U rho U^dagger", since=3,
           features=DENSITY)
def _streamed(s: Exchange) -> None:
    s.initialize()
    circuit = {"nqubits": 2, "densityMatrix": True, "gates": [{"name": "H", "qubits": [0]}]}
    state = s.state({"circuit": circuit})
    s.result("state/apply", {"state": state, "gates": [{"name": "CNOT", "qubits": [0, 1]},
                                                       rx(0, 0.4)]})
    s.notify("state/apply", {"state": state, "gates": [rx(1, 1.3)]})
    u = dense.circuit([(dense.H, [0]), (dense.CNOT, [0, 1]), (dense.rx(0.4), [0]),
                       (dense.rx(1.3), [1])], 2)
    expected = np.outer(u[:, 0], u[:, 0].conj())
    actual = s.read(state, [4, 4])
    if not np.allclose(actual, expected, atol=1e-10):
        raise CheckFailed(f"§4.3: CNOT(0, 1), RX(0, 0.4) applied and RX(1, 1.3) streamed into "
                          f"the density matrix of H(0) read back {np.round(actual, 3).tolist()},"
                          f" not U rho U^dagger = {np.round(expected, 3).tolist()}")


@kit_check("3.1", "maxQubits bounds a density matrix of n qubits as 2n", since=3,
           features=DENSITY)
def _max_qubits(s: Exchange) -> None:
    limit = s.initialize()["maxQubits"]
    n = limit // 2 + 1
    s.error("execute", {"circuit": {"nqubits": n, "densityMatrix": True}},
            ErrorCode.STATE_TOO_LARGE, f"§3.1 a density matrix of {n} qubits holds as much as "
            f"a vector of {2 * n}, past maxQubits ({limit})")


@kit_check("2.3.2", "collapsing measurements and RESET are refused in a density matrix",
           since=2, features=(Feature.DENSITY_MATRIX, Feature.MID_CIRCUIT_MEASUREMENT))
def _no_collapse(s: Exchange) -> None:
    s.initialize()
    for entry in ({"name": "M", "qubits": [0], "register": "m"},
                  {"name": "RESET", "qubits": [0]}):
        s.error("execute", {"circuit": {"nqubits": 1, "densityMatrix": True, "gates": [entry]}},
                ErrorCode.INVALID_PARAMS, f"§2.3.2 {entry['name']} in a density matrix")


@kit_check("2.3.2", "a channel whose operators do not preserve the trace is refused", since=2,
           features=CHANNELS)
def _trace_preserving(s: Exchange) -> None:
    s.initialize()
    lossy = channel([0], [np.eye(2) / 2])
    density = Feature.DENSITY_MATRIX in s.features
    for matrix in (False, True) if density else (False,):
        circuit = {"nqubits": 1, "gates": [lossy], **({"densityMatrix": True} if matrix else {})}
        s.error("execute", {"circuit": circuit}, ErrorCode.INVALID_PARAMS,
                "§2.3.2 sum K^dagger K = I/4, not I")


@kit_check("2.2", "a channel takes no controls, dagger or condition", since=3, features=CHANNELS)
def _channel_fields(s: Exchange) -> None:
    s.initialize()
    for extra in ({"controls": [1]}, {"dagger": True}, {"params": {"theta": 0.5}}):
        entry = channel([0], DAMPING, **extra)
        s.error("execute", {"circuit": {"nqubits": 2, "gates": [entry]}},
                ErrorCode.INVALID_PARAMS, f"§2.2 a channel with {extra}")


@kit_check("2.3.2", "a channel on a state vector continues with K_i psi renormalised", since=2,
           features=CHANNELS)
def _trajectory(s: Exchange) -> None:
    """Amplitude damping on |+>: each shot continues with K0|+> or K1|+> = |0>, normalised;
    with one shot, the state held is that shot's."""
    s.initialize()
    gates = [{"name": "H", "qubits": [0]}, channel([0], DAMPING)]
    circuit = {"nqubits": 2, "gates": gates, "measurements": [{"qubits": [1]}]}
    plus = np.array([1, 1]) / np.sqrt(2)
    branches = [np.kron(k @ plus / np.linalg.norm(k @ plus), [1, 0]) for k in DAMPING]
    for seed in range(1, 5):
        state = s.object("execute", {"circuit": circuit, "nshots": 1, "seed": seed})["state"]
        actual = s.read(state, [4])
        norm = float(np.linalg.norm(actual))
        if abs(norm - 1) > 1e-6:
            raise CheckFailed(f"§2.3.2: after amplitude damping on |+>, the state held has norm "
                              f"{norm:.6f}: K_i psi was not renormalised")
        if not any(abs(abs(np.vdot(b, actual)) - 1) < 1e-8 for b in branches):
            raise CheckFailed(f"§2.3.2: after amplitude damping on |+>, the state held is "
                              f"{np.round(actual, 4)}, neither K0|+> nor K1|+> renormalised")
