"""Initial states (4.1, 4.2, 2.3.2; version 2, feature "initialState"): vectors and density
matrices start a circuit as given, in the protocol's qubit order, and are checked."""

from __future__ import annotations

import os

import numpy as np

from ..protocol import ErrorCode, Feature
from . import dense
from .checks import kit_check
from .exchange import Exchange, array, segment_file
from .report import CheckFailed

INITIAL = (Feature.INITIAL_STATE,)


def _generic(n: int, seed: int) -> np.ndarray:
    """A normalized state of n qubits with distinct complex amplitudes."""
    rng = np.random.default_rng(seed)
    psi: np.ndarray = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    psi /= np.linalg.norm(psi)
    return psi


@kit_check("4.1", "a circuit starts from an initial state, in the protocol's qubit order",
           since=2, features=INITIAL)
def _initial_states(s: Exchange) -> None:
    s.initialize()
    start = _generic(2, 5)
    flip = {"nqubits": 2, "gates": [{"name": "X", "qubits": [0]}]}
    state = s.state({"circuit": flip, "initialState": array(start, "complex128")})
    expected = dense.full(dense.X, [0], 2) @ start
    amplitudes = s.read(state, [4])
    if not np.allclose(amplitudes, expected, atol=1e-10):
        reversed_order = dense.full(dense.X, [1], 2) @ start
        hint = (" (X acted on qubit 1: the initial state was read with qubit 0 as the least "
                "significant bit)" if np.allclose(amplitudes, reversed_order, atol=1e-10) else "")
        raise CheckFailed(f"§4.1: X(0) on the initial state {np.round(start, 4)} gave "
                          f"{np.round(amplitudes, 4)}, not {np.round(expected, 4)}{hint}")
    new = s.object("state/new", {"nqubits": 2, "initial": array(start, "complex128")})["state"]
    if not np.allclose(s.read(new, [4]), start, atol=1e-12):
        raise CheckFailed("§4.2: state/new with an initial state does not read it back")


@kit_check("4.1", "initial states of the wrong dtype, shape or norm, or not finite, are refused",
           since=2, features=INITIAL)
def _initial_refused(s: Exchange) -> None:
    s.initialize()
    circuit = {"nqubits": 1}
    nan = array([np.nan, 1], "complex128")
    for start, what in ((array([0, 2], "complex128"), "norm 2"),
                        (array([1, 0, 0, 0], "complex128"), "4 amplitudes for 1 qubit"),
                        (array([1, 0], "float64"), "dtype float64"), (nan, "a NaN")):
        s.error("execute", {"circuit": circuit, "initialState": start},
                ErrorCode.INVALID_PARAMS, f"§4.1 an initial state of {what}")
        s.error("state/new", {"nqubits": 1, "initial": start}, ErrorCode.INVALID_PARAMS,
                f"§4.2 an initial state of {what}")


@kit_check("4.1", "an initial state's norm is its 2-norm, sqrt(sum |a|^2), within 1e-6",
           since=3, features=INITIAL)
def _norm_measure(s: Exchange) -> None:
    s.initialize()
    psi = _generic(2, 9)
    for scale, accepted in ((1 + 8e-7, True), (1 - 8e-7, True), (1 + 1.5e-6, False),
                            (1 - 1.5e-6, False)):
        params = {"circuit": {"nqubits": 2}, "initialState": array(psi * scale, "complex128")}
        what = f"§4.1 an initial state of norm {scale:.7f} (its squared norm {scale**2:.7f})"
        if accepted:
            reply = s.call("execute", params)
            if "result" not in reply:
                raise CheckFailed(f"{what} is within 1e-6 of 1 and must be taken; it was "
                                  f"refused: {reply.get('error')}")
        else:
            s.error("execute", params, ErrorCode.INVALID_PARAMS, what)


@kit_check("2.4", "an Array with both data and segment is refused", since=3, features=INITIAL)
def _data_and_segment(s: Exchange) -> None:
    capabilities = s.initialize()
    start = np.array([0, 1], dtype="<c16")
    inline = array(start, "complex128")
    if "shm" not in capabilities["stateEncodings"]:
        s.error("execute", {"circuit": {"nqubits": 1}, "initialState": {**inline, "segment": 1}},
                ErrorCode.INVALID_PARAMS, "§2.4 an initial state with 'data' and 'segment'")
        return
    path = segment_file(start.nbytes)
    try:
        with open(path, "r+b") as f:
            f.write(start.tobytes())
        segment = s.object("shm/attach", {"path": path, "size": start.nbytes})["segment"]
    finally:
        os.unlink(path)
    s.error("execute", {"circuit": {"nqubits": 1}, "initialState": {**inline, "segment": segment}},
            ErrorCode.INVALID_PARAMS, "§2.4 an initial state with 'data' and 'segment'")
    by_segment = {**inline, "data": None, "segment": segment}
    state = s.state({"circuit": {"nqubits": 1}, "initialState": by_segment})
    if not np.allclose(s.read(state, [2]), start, atol=1e-12):
        raise CheckFailed("§2.5: an initial state written into a segment did not start the "
                          "circuit")


@kit_check("2.3.2", "a density-matrix initial state starts the circuit as given (not "
           "transposed), and is checked", since=2,
           features=(Feature.INITIAL_STATE, Feature.DENSITY_MATRIX))
def _initial_density(s: Exchange) -> None:
    s.initialize()
    s.needs_gates("RX")
    plus_i = np.array([1, 1j]) / np.sqrt(2)  # rho^T = conj(rho) would be |-i><-i|
    rho = np.kron(np.outer(plus_i, plus_i.conj()), np.diag([0, 1]))  # |+i> (x) |1>
    quarter = {"name": "RX", "qubits": [0], "params": {"theta": np.pi / 2}}
    circuit = {"nqubits": 2, "densityMatrix": True, "gates": [quarter]}
    state = s.state({"circuit": circuit, "initialState": array(rho, "complex128")})
    u = dense.full(dense.rx(np.pi / 2), [0], 2)
    expected, actual = u @ rho @ u.conj().T, s.read(state, [4, 4])
    if not np.allclose(actual, expected, atol=1e-10):
        transposed = u @ rho.T @ u.conj().T
        hint = (" (it is what rho transposed gives: the initial matrix was read with rows and "
                "columns swapped)" if np.allclose(actual, transposed, atol=1e-10) else "")
        raise CheckFailed(f"§2.3.2: RX(pi/2) on qubit 0 of rho = |+i><+i| (x) |1><1| gave "
                          f"diagonal {np.round(np.real(np.diag(actual)), 4)}, not "
                          f"{np.round(np.real(np.diag(expected)), 4)}{hint}")
    half = np.diag([0.5, 0.5]).astype(complex)
    for bad, what in ((half + np.array([[0, 0.3], [0, 0]]), "not Hermitian"),
                      (2 * half, "of trace 2"), (np.eye(4)[:, :2] / 2, "of shape [4, 2]")):
        s.error("execute", {"circuit": {"nqubits": 1, "densityMatrix": True},
                            "initialState": array(bad, "complex128")},
                ErrorCode.INVALID_PARAMS, f"§2.3.2 an initial density matrix {what}")


@kit_check("2.3.2", "an initial density matrix with an eigenvalue below -1e-6 is refused",
           since=3, features=(Feature.INITIAL_STATE, Feature.DENSITY_MATRIX))
def _positive(s: Exchange) -> None:
    s.initialize()
    circuit = {"nqubits": 1, "densityMatrix": True}
    s.error("execute", {"circuit": circuit,
                        "initialState": array(np.diag([1.2, -0.2]), "complex128")},
            ErrorCode.INVALID_PARAMS, "§2.3.2 diag(1.2, -0.2): Hermitian, trace 1, eigenvalue "
            "-0.2")
    nearly = array(np.diag([1 + 5e-7, -5e-7]), "complex128")
    reply = s.call("execute", {"circuit": circuit, "initialState": nearly})
    if "result" not in reply:
        raise CheckFailed(f"§2.3.2: diag(1 + 5e-7, -5e-7) has no eigenvalue below -1e-6 and "
                          f"must be taken; it was refused: {reply.get('error')}")
