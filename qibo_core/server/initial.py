"""The state a circuit starts from, when it is not |0...0>: read and checked once, for every
backend."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidParams
from ..protocol import ArrayData, decode_array
from ..protocol.arrays import checked_shape
from .segments import Segments

NORM_TOLERANCE = 1e-6
"""How far from 1 the norm of an initial state may be."""


def initial_amplitudes(initial: ArrayData | np.ndarray, nqubits: int, segments: Segments,
                       dtype: np.dtype, *, density: bool = False) -> np.ndarray:
    """The amplitudes of an initial state, in `dtype`, once they are checked: inline (base64),
    in a segment the client wrote, or an array (in process). With `density`, a density matrix
    (2^n x 2^n, Hermitian, of trace 1) is taken too."""
    if isinstance(initial, ArrayData):
        if initial.dtype not in ("complex128", "complex64"):
            raise InvalidParams(f"an initial state is complex128 or complex64, not "
                                f"{initial.dtype!r}")
        try:
            if initial.segment is None:
                array = decode_array(initial)
            else:
                shape = checked_shape(initial.shape)
                array = segments.view(initial.segment, np.dtype(initial.dtype),
                                      int(np.prod(shape, dtype=np.int64))).reshape(shape)
        except ValueError as exc:
            raise InvalidParams(f"invalid initial state: {exc}") from None
    else:
        array = np.asarray(initial)
        if array.dtype.kind not in "fc":
            raise InvalidParams(f"an initial state is an array of complex numbers, not of "
                                f"{array.dtype}")
    dim = 2**nqubits
    if density and array.shape == (dim, dim):
        return _density_matrix(array).astype(dtype, copy=True)
    if array.shape != (dim,):
        shapes = f"({dim},) or ({dim}, {dim})" if density else f"({dim},)"
        raise InvalidParams(f"an initial state of {nqubits} qubits has shape {shapes}, not "
                            f"{array.shape}")
    norm = float(np.sqrt(abs(np.vdot(array, array))))  # one pass, no temporary; NaN shows
    if not np.isfinite(norm):
        raise InvalidParams("the initial state has NaN or infinite amplitudes")
    if abs(norm - 1) > NORM_TOLERANCE:
        raise InvalidParams(f"the initial state's norm is {norm:.12g}, not 1 (within "
                            f"{NORM_TOLERANCE})")
    return array.astype(dtype, copy=True)


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
    return rho
