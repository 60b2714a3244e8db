"""What a backend answered, checked against what was asked before the user sees it.

A backend is a program we did not write: one that answers samples of the wrong shape, an
unnormalised state or an expectation value no observable can have would otherwise hand the
user a plausible wrong answer. Each check raises ProtocolError naming the field. Tolerances are
loose (REPLY_TOLERANCE): they catch answers that are wrong, not rounding.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..circuit import Observable
from ..errors import ProtocolError
from ..protocol import InitializeOptions, InitializeResult
from ..protocol.state_maths import positive_semidefinite

REPLY_TOLERANCE = 1e-4
"""How far a norm, a trace or a sum of probabilities may be from 1, a probability or an
eigenvalue below 0, and an expectation value beyond the sum of its coefficients' sizes."""
PSD_MAX_QUBITS = 10
"""Density matrices of up to this many qubits are checked positive semidefinite (a Cholesky
factorisation: 0.05 s at 10 qubits, 8^n beyond); larger ones are checked Hermitian, of trace 1,
with a non-negative diagonal."""


def _refuse(backend: str, what: str) -> ProtocolError:
    return ProtocolError(f"backend {backend!r} answered {what}")


def checked_initialize(info: InitializeResult, backend: str, version: int,
                       precision: str, options: InitializeOptions) -> InitializeResult:
    """The handshake's answer, if it is one to the version and options asked for."""
    if info.protocol_version != version:
        raise _refuse(backend, f"'initialize' with protocol version {info.protocol_version} when "
                      f"version {version} was asked for: a backend that does not speak a "
                      "version refuses it with UnsupportedProtocolVersion, listing the ones "
                      "it speaks (docs/protocol.md 3.1)")
    capabilities = info.capabilities
    if capabilities.devices is not None and not capabilities.devices:
        raise _refuse(backend, "an empty 'devices' list: it lists at least the one it runs on")
    if precision not in capabilities.precisions:
        raise _refuse(backend, f"'initialize' for precision {precision!r} with 'precisions' "
                      f"{capabilities.precisions}, which does not offer it")
    agreed = {"binaryFrames": (capabilities.binary_frames, options.binary_frames),
              "descriptors": (capabilities.descriptors, options.descriptors is not None)}
    for field, (said, asked) in agreed.items():
        if said and not asked:
            raise _refuse(backend, f"'initialize' with '{field}' true, which was not asked for")
    return info


def checked_state(array: np.ndarray, backend: str, nqubits: int, density: bool) -> np.ndarray:
    """Amplitudes of the right shape and norm, or a density matrix that is one."""
    dim = 2**nqubits
    shape = (dim, dim) if density else (dim,)
    if array.shape != shape:
        raise _refuse(backend, f"a state of shape {list(array.shape)} for {nqubits} qubits "
                      f"(expected {list(shape)})")
    if density:
        return _checked_density(array, backend)
    norm = float(np.sqrt(abs(np.vdot(array, array))))  # one pass; NaN and infinity show
    if not abs(norm - 1) <= REPLY_TOLERANCE:
        raise _refuse(backend, f"a state of norm {norm:.6g}, not 1")
    return array


def _checked_density(rho: np.ndarray, backend: str) -> np.ndarray:
    trace = complex(np.trace(rho))
    if not abs(trace - 1) <= REPLY_TOLERANCE:
        raise _refuse(backend, f"a density matrix of trace {trace:.6g}, not 1")
    if not float(np.abs(rho - rho.conj().T).max()) <= REPLY_TOLERANCE:
        raise _refuse(backend, "a density matrix that is not Hermitian")
    if np.real(np.diagonal(rho)).min() < -REPLY_TOLERANCE or (
            len(rho) <= 2**PSD_MAX_QUBITS
            and not positive_semidefinite(rho.astype(np.complex128), REPLY_TOLERANCE)):
        raise _refuse(backend, "a density matrix that is not positive semidefinite")
    return rho


def checked_probabilities(array: np.ndarray, backend: str, nqubits: int,
                          qubits: list[int] | None) -> np.ndarray:
    """Probabilities of every outcome of the qubits asked for: 2^k of them, each in [0, 1],
    adding up to 1."""
    size = 2 ** (nqubits if qubits is None else len(qubits))
    if array.shape != (size,):
        raise _refuse(backend, f"probabilities of shape {list(array.shape)} (expected "
                      f"[{size}])")
    total = float(array.sum())
    if not (array.min() >= -REPLY_TOLERANCE and array.max() <= 1 + REPLY_TOLERANCE
            and abs(total - 1) <= REPLY_TOLERANCE):
        raise _refuse(backend, f"probabilities that are not a distribution (from "
                      f"{array.min():.6g} to {array.max():.6g}, adding up to {total:.6g})")
    return array


def checked_frequencies(frequencies: dict[str, int] | None, backend: str, nshots: int,
                        width: int) -> dict[str, int] | None:
    """Counts of outcomes of `width` bits adding up to `nshots` (present when nshots > 0)."""
    if not nshots:
        return frequencies
    if frequencies is None:
        raise _refuse(backend, f"no 'frequencies' for {nshots} shots")
    digits = "".join(frequencies)
    if (set(map(len, frequencies)) - {width} or digits.count("0") + digits.count("1")
            != len(digits) or min(frequencies.values(), default=0) < 0):
        outcome, count = next((o, c) for o, c in frequencies.items()
                              if len(o) != width or o.strip("01") or c < 0)
        shown = outcome if len(outcome) <= 40 else outcome[:40] + "..."
        raise _refuse(backend, f"frequencies with {shown!r}: {count} for outcomes of "
                      f"{width} bits")
    total = sum(frequencies.values())
    if total != nshots:
        raise _refuse(backend, f"frequencies adding up to {total} shots, not {nshots}")
    return frequencies


def checked_samples(samples: np.ndarray, backend: str, nshots: int, width: int) -> np.ndarray:
    """One row of `width` bits, 0 or 1, per shot."""
    if samples.shape != (nshots, width):
        raise _refuse(backend, f"samples of shape {list(samples.shape)} (expected "
                      f"[{nshots}, {width}])")
    if samples.size and samples.max() > 1:
        raise _refuse(backend, f"samples holding {int(samples.max())}: each is 0 or 1")
    return samples


def checked_expectations(values: Any, backend: str, observable: Observable,
                         sets: int | None = None) -> Any:
    """Expectation values an observable can have: finite and at most the sum of its
    coefficients' sizes; `sets` of them (an array), or one number."""
    array = np.asarray(values, dtype=float)
    if sets is not None and array.shape != (sets,):
        raise _refuse(backend, f"{list(array.shape)} expectation values for {sets} sets")
    bound = math.fsum(abs(c) for c, _ in observable.terms) * (1 + REPLY_TOLERANCE)
    if array.size and not float(np.abs(array).max()) <= bound + REPLY_TOLERANCE:
        raise _refuse(backend, f"an expectation value of {float(np.abs(array).max()):.6g} for "
                      f"{observable}, whose values lie within +-{bound:.6g}")
    return values
