"""Every gate, its parameters and its matrix: the single source of truth for each of them.

Conventions are qibo's: qubit 0 is the most significant bit, RX(t) = exp(-i t X / 2), and so on.
Controlled gates (CNOT, CRX, TOFFOLI...) reuse their base gate's matrix and only add built-in
controls. `from qibo_core import gates; gates.H(0)` is how circuits are written.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..errors import CircuitError
from ..protocol.messages import GateData
from .channels import (
    AmplitudeDampingChannel,
    Channel,
    DepolarizingChannel,
    KrausChannel,
    NoiseModel,
    PauliNoiseChannel,
    PhaseDampingChannel,
    ResetChannel,
    ThermalRelaxationChannel,
)
from .gate import GATES, UNITARY_TOLERANCE, Entries, Gate, M, Reset

DAGGER_NAMES = {"S": "SDG", "SDG": "S", "T": "TDG", "TDG": "T", "SX": "SXDG", "SXDG": "SX",
                "CSX": "CSXDG"}
"""What qibo calls these gates daggered: a gate of its own (for us, the gate with `dagger()`)."""

UNITARY_MAX_QUBITS = 14
"""A 14-qubit matrix is 4 GiB; a Unitary on more qubits is refused before anything is built."""

__all__ = [
    "AmplitudeDampingChannel", "Channel", "DepolarizingChannel", "KrausChannel", "NoiseModel",
    "PauliNoiseChannel", "PhaseDampingChannel", "ResetChannel", "ThermalRelaxationChannel",
    "CCZ", "CH", "CNOT", "CRX", "CRY", "CRZ", "CSX", "CU1", "CU2", "CU3", "CY", "CZ", "ECR",
    "FSWAP", "GATES", "GPI", "GPI2", "Gate", "H", "I", "M", "PRX", "RX", "RXX", "RY", "RYY",
    "RZ", "RZX", "RZZ", "Reset", "S", "SDG", "SWAP", "SX", "SXDG", "T", "TDG", "TOFFOLI", "U1",
    "U2", "U3", "Unitary", "X", "Y", "Z", "fSim", "iSWAP",
]

_X = np.array([[0, 1], [1, 0]], dtype=complex)
_Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
_Z = np.array([[1, 0], [0, -1]], dtype=complex)


def _rotation(pauli: np.ndarray, theta: float) -> np.ndarray:
    """exp(-i theta P / 2) for any P with P @ P = I."""
    return math.cos(theta / 2) * np.eye(len(pauli)) - 1j * math.sin(theta / 2) * pauli


def _u3(theta: Any, phi: Any, lam: Any) -> Entries:
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    return (np.exp(-0.5j * (phi + lam)) * c, -np.exp(-0.5j * (phi - lam)) * s,
            np.exp(0.5j * (phi - lam)) * s, np.exp(0.5j * (phi + lam)) * c)



def _fixed(name: str, matrix: ArrayLike, *, ntargets: int = 1, ncontrols: int = 0,
           hermitian: bool = False) -> type[Gate]:
    """A gate class for a constant matrix."""
    matrix = np.array(matrix, dtype=complex)
    matrix.flags.writeable = False
    entries = tuple(matrix.ravel().tolist())
    return type(name, (Gate,), {
        "name": name, "ntargets": ntargets, "ncontrols": ncontrols, "hermitian": hermitian,
        "base_matrix": lambda self: matrix,
        "entries_for": staticmethod(lambda: entries) if ntargets == 1 else None,
        "__module__": __name__,
        "__doc__": f"The {name} gate.",
    })


_SQRT_X = 0.5 * np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]])
_H = np.array([[1, 1], [1, -1]]) / math.sqrt(2)
_SWAP = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])

H = _fixed("H", _H, hermitian=True)
X = _fixed("X", _X, hermitian=True)
Y = _fixed("Y", _Y, hermitian=True)
Z = _fixed("Z", _Z, hermitian=True)
S = _fixed("S", np.diag([1, 1j]))
SDG = _fixed("SDG", np.diag([1, -1j]))
T = _fixed("T", np.diag([1, np.exp(0.25j * math.pi)]))
TDG = _fixed("TDG", np.diag([1, np.exp(-0.25j * math.pi)]))
SX = _fixed("SX", _SQRT_X)
SXDG = _fixed("SXDG", _SQRT_X.conj().T)
CNOT = _fixed("CNOT", _X, ncontrols=1, hermitian=True)
CY = _fixed("CY", _Y, ncontrols=1, hermitian=True)
CZ = _fixed("CZ", _Z, ncontrols=1, hermitian=True)
CH = _fixed("CH", _H, ncontrols=1, hermitian=True)
CSX = _fixed("CSX", _SQRT_X, ncontrols=1)
SWAP = _fixed("SWAP", _SWAP, ntargets=2, hermitian=True)
iSWAP = _fixed("iSWAP", np.array([[1, 0, 0, 0], [0, 0, 1j, 0], [0, 1j, 0, 0], [0, 0, 0, 1]]),
               ntargets=2)
FSWAP = _fixed("FSWAP", [[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, -1]],
               ntargets=2, hermitian=True)
ECR = _fixed("ECR", np.array([[0, 0, 1, 1j], [0, 0, 1j, 1], [1, -1j, 0, 0], [-1j, 1, 0, 0]])
             / math.sqrt(2), ntargets=2, hermitian=True)
TOFFOLI = _fixed("TOFFOLI", _X, ncontrols=2, hermitian=True)
CCZ = _fixed("CCZ", _Z, ncontrols=2, hermitian=True)


class I(Gate):  # noqa: E742 - qibo's name for the identity
    """The identity on any number of qubits."""

    ntargets = 0
    hermitian = True

    def base_matrix(self) -> np.ndarray:
        return np.eye(2 ** len(self.targets), dtype=complex)


class RX(Gate):
    """exp(-i theta X / 2)."""

    param_names = ("theta",)
    shifted = ("theta",)

    @staticmethod
    def entries_for(theta: Any) -> Entries:
        c, s = np.cos(theta / 2), -1j * np.sin(theta / 2)
        return (c, s, s, c)


class RY(Gate):
    """exp(-i theta Y / 2)."""

    param_names = ("theta",)
    shifted = ("theta",)

    @staticmethod
    def entries_for(theta: Any) -> Entries:
        c, s = np.cos(theta / 2), np.sin(theta / 2)
        return (c, -s, s, c)


class RZ(Gate):
    """exp(-i theta Z / 2)."""

    param_names = ("theta",)
    shifted = ("theta",)

    @staticmethod
    def entries_for(theta: Any) -> Entries:
        phase = np.exp(-0.5j * theta)
        return (phase, 0, 0, phase.conjugate())


class U1(Gate):
    """diag(1, exp(i theta))."""

    param_names = ("theta",)
    shifted = ("theta",)

    @staticmethod
    def entries_for(theta: Any) -> Entries:
        return (1, 0, 0, np.exp(1j * theta))


class U2(Gate):
    """U3(pi/2, phi, lam)."""

    param_names = ("phi", "lam")

    @staticmethod
    def entries_for(phi: Any, lam: Any) -> Entries:
        return _u3(math.pi / 2, phi, lam)


class U3(Gate):
    """RZ(phi) RY(theta) RZ(lam)."""

    param_names = ("theta", "phi", "lam")

    entries_for = staticmethod(_u3)


class GPI(Gate):
    """The trapped-ion pi rotation about the axis at angle phi in the XY plane."""

    param_names = ("phi",)
    hermitian = True

    @staticmethod
    def entries_for(phi: Any) -> Entries:
        phase = np.exp(1j * phi)
        return (0, phase.conjugate(), phase, 0)


class GPI2(Gate):
    """The trapped-ion pi/2 rotation about the axis at angle phi in the XY plane."""

    param_names = ("phi",)

    @staticmethod
    def entries_for(phi: Any) -> Entries:
        phase = np.exp(1j * phi) / math.sqrt(2)
        return (1 / math.sqrt(2), -1j * phase.conjugate(), -1j * phase, 1 / math.sqrt(2))


class PRX(Gate):
    """exp(-i theta (cos(phi) X + sin(phi) Y) / 2): a rotation about an axis in the XY plane."""

    param_names = ("theta", "phi")
    shifted = ("theta",)

    @staticmethod
    def entries_for(theta: Any, phi: Any) -> Entries:
        c, s = np.cos(theta / 2), np.sin(theta / 2)
        phase = np.exp(1j * phi)
        return (c, -1j * s * phase.conjugate(), -1j * s * phase, c)


class CRX(RX):
    """RX on the second qubit, controlled by the first."""

    ncontrols = 1


class CRY(RY):
    """RY on the second qubit, controlled by the first."""

    ncontrols = 1


class CRZ(RZ):
    """RZ on the second qubit, controlled by the first."""

    ncontrols = 1


class CU1(U1):
    """U1 on the second qubit, controlled by the first."""

    ncontrols = 1


class CU2(U2):
    """U2 on the second qubit, controlled by the first."""

    ncontrols = 1


class CU3(U3):
    """U3 on the second qubit, controlled by the first."""

    ncontrols = 1


class RXX(Gate):
    """exp(-i theta X⊗X / 2)."""

    ntargets = 2
    param_names = ("theta",)
    shifted = ("theta",)

    def base_matrix(self) -> np.ndarray:
        return _rotation(np.kron(_X, _X), self.params["theta"])


class RYY(Gate):
    """exp(-i theta Y⊗Y / 2)."""

    ntargets = 2
    param_names = ("theta",)
    shifted = ("theta",)

    def base_matrix(self) -> np.ndarray:
        return _rotation(np.kron(_Y, _Y), self.params["theta"])


class RZZ(Gate):
    """exp(-i theta Z⊗Z / 2)."""

    ntargets = 2
    param_names = ("theta",)
    shifted = ("theta",)

    def base_matrix(self) -> np.ndarray:
        return _rotation(np.kron(_Z, _Z), self.params["theta"])


class RZX(Gate):
    """exp(-i theta Z⊗X / 2)."""

    ntargets = 2
    param_names = ("theta",)
    shifted = ("theta",)

    def base_matrix(self) -> np.ndarray:
        return _rotation(np.kron(_Z, _X), self.params["theta"])


class fSim(Gate):
    """The fermionic simulation gate: an iSWAP-like rotation by theta and a phase phi on |11>."""

    ntargets = 2
    param_names = ("theta", "phi")

    def base_matrix(self) -> np.ndarray:
        c, s = math.cos(self.params["theta"]), math.sin(self.params["theta"])
        return np.array([[1, 0, 0, 0], [0, c, -1j * s, 0], [0, -1j * s, c, 0],
                         [0, 0, 0, np.exp(-1j * self.params["phi"])]])


class Unitary(Gate):
    """Any unitary matrix on any number of qubits: `Unitary(matrix, *qubits)`."""

    ntargets = 0

    def __init__(self, matrix: object, *qubits: int) -> None:
        super().__init__(*qubits)
        if len(self.qubits) > UNITARY_MAX_QUBITS:
            raise CircuitError(f"Unitary on {len(self.qubits)} qubits: at most "
                               f"{UNITARY_MAX_QUBITS} are supported (its matrix would not fit)")
        try:
            m = np.array(matrix, dtype=np.complex128)
        except (TypeError, ValueError) as exc:
            raise CircuitError(f"Unitary: the matrix is not a complex array: {exc}") from None
        k = len(self.qubits)
        dim = 2**k
        if m.shape != (dim, dim):
            raise CircuitError(f"Unitary on {k} qubits needs a {dim}x{dim} matrix, got shape "
                               f"{m.shape}")
        if not np.isfinite(m).all():
            raise CircuitError("Unitary: the matrix has NaN or infinite entries")
        error = np.abs(m.conj().T @ m - np.eye(dim)).max()
        if error > UNITARY_TOLERANCE:
            raise CircuitError(f"Unitary: the matrix is not unitary (|U^dagger U - I| = "
                               f"{error:.2e} > {UNITARY_TOLERANCE})")
        m.flags.writeable = False
        self._matrix = m

    def base_matrix(self) -> np.ndarray:
        return self._matrix

    def key(self) -> tuple[Any, ...]:
        return (*super().key(), self._matrix.tobytes())

    def to_data(self) -> GateData:
        data = super().to_data()
        data.matrix = [[(z.real, z.imag) for z in row] for row in self._matrix.tolist()]
        return data

    def __repr__(self) -> str:
        return super().__repr__().replace("Unitary(", "Unitary(<matrix>, ", 1)
