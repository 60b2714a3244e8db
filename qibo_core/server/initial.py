"""The state a circuit starts from, when it is not |0...0>: read and checked once, for every
backend."""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidParams
from ..protocol import ArrayData, decode_array, sealed
from ..protocol.arrays import checked_shape
from ..protocol.state_maths import positive_semidefinite
from .segments import Segments

NORM_TOLERANCE = 1e-6
"""How far from 1 the norm of an initial state may be."""


def initial_amplitudes(initial: ArrayData | np.ndarray, nqubits: int, segments: Segments,
                       dtype: np.dtype, *, density: bool = False,
                       keep_mapping: bool = False) -> np.ndarray:
    """The amplitudes of an initial state, in `dtype`, once they are checked: inline (base64),
    attached, in a sealed memfd or a segment the client wrote, or an array (in process). With
    `density`, a density matrix (2^n x 2^n, Hermitian, positive semidefinite, of trace 1) is
    taken too. A sealed memfd stays mapped, as the state, only with `keep_mapping` (the backend
    keeps its states in memfds); else it is copied into NumPy's memory, where a simulation runs
    faster (huge pages)."""
    dim = 2**nqubits
    shapes: list[tuple[int, ...]] = [(dim,), (dim, dim)] if density else [(dim,)]
    owned = False  # whether `array` is ours to hand to the backend without a copy
    if isinstance(initial, ArrayData):
        if initial.dtype not in ("complex128", "complex64"):
            raise InvalidParams(f"an initial state is complex128 or complex64, not "
                                f"{initial.dtype!r}")
        _check_shape(tuple(initial.shape), shapes, nqubits)
        if initial.data is not None and initial.segment is not None:
            raise InvalidParams("an initial state has 'data' or 'segment', not both")
        try:
            if initial.segment is None:
                # inline: a read-only view of the message; an attachment, or a sealed memfd
                # mapped copy-on-write (or copied): memory of our own
                array = decode_array(initial)
                owned = array.flags.writeable and (keep_mapping or not sealed.mapped(array))
            else:
                count = math.prod(checked_shape(initial.shape))
                array = segments.read(initial.segment, np.dtype(initial.dtype), count)
                array, owned = array.reshape(initial.shape), True
        except ValueError as exc:
            raise InvalidParams(f"invalid initial state: {exc}") from None
    else:
        array = np.asarray(initial)
        if array.dtype.kind not in "fc":
            raise InvalidParams(f"an initial state is an array of complex numbers, not of "
                                f"{array.dtype}")
        _check_shape(array.shape, shapes, nqubits)
    if array.ndim == 2:
        return _density_matrix(array).astype(dtype, copy=not owned)
    norm = float(np.sqrt(abs(np.vdot(array, array))))  # one pass, no temporary; NaN shows
    if not np.isfinite(norm):
        raise InvalidParams("the initial state has NaN or infinite amplitudes")
    if abs(norm - 1) > NORM_TOLERANCE:
        raise InvalidParams(f"the initial state's norm is {norm:.12g}, not 1 (within "
                            f"{NORM_TOLERANCE})")
    return array.astype(dtype, copy=not owned)


def _check_shape(shape: tuple[int, ...], shapes: list[tuple[int, ...]], nqubits: int) -> None:
    """InvalidParams, before anything is read, unless `shape` is one of `shapes`."""
    if shape not in shapes:
        expected = " or ".join(map(str, shapes))
        shown = shape if len(shape) <= 4 else f"{shape[:4]}..."
        raise InvalidParams(f"an initial state of {nqubits} qubits has shape {expected}, not "
                            f"{shown}")


def _density_matrix(rho: np.ndarray) -> np.ndarray:
    if not np.isfinite(rho).all():
        raise InvalidParams("the initial density matrix has NaN or infinite entries")
    error = float(np.abs(rho - rho.conj().T).max())
    if error > NORM_TOLERANCE:
        raise InvalidParams(f"the initial density matrix is not Hermitian (|rho - rho^dagger| "
                            f"= {error:.2e})")
    trace = complex(np.trace(rho))
    if abs(trace - 1) > NORM_TOLERANCE:
        raise InvalidParams(f"the initial density matrix's trace is {trace.real:.12g}, not 1")
    if not positive_semidefinite(rho, NORM_TOLERANCE):
        raise InvalidParams(f"the initial density matrix is not positive semidefinite (it has "
                            f"an eigenvalue below -{NORM_TOLERANCE})")
    return rho
