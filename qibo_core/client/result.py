"""Result: what executing a circuit returns. The final state stays on the backend until read."""

from __future__ import annotations

from collections import Counter
from typing import Protocol

import numpy as np

from ..errors import UsageError
from ..protocol.state_maths import as_integers, marginal, marginal_probabilities


class HeldState(Protocol):
    """What a Result needs of the state it came with (a State)."""

    def read(self) -> np.ndarray: ...
    def probabilities(self, qubits: list[int] | None = None) -> np.ndarray: ...


class Result:
    """The final state of a circuit (read on demand) and the sampled measurement outcomes."""

    def __init__(self, state: HeldState | None, frequencies: dict[str, int] | None,
                 registers: dict[str, tuple[int, ...]], nshots: int,
                 amplitudes: np.ndarray | None = None, samples: np.ndarray | None = None) -> None:
        self.final_state = state
        self.nshots = nshots
        self.registers = registers
        self._frequencies = frequencies
        self._amplitudes = amplitudes
        self._samples = samples

    @classmethod
    def computed(cls, amplitudes: np.ndarray, frequencies: dict[str, int] | None,
                 registers: dict[str, tuple[int, ...]], nshots: int) -> Result:
        """A result that arrived whole (from a Dask worker): no backend behind it."""
        return cls(None, frequencies, registers, nshots, amplitudes)

    def state(self) -> np.ndarray:
        """The final amplitudes (a density matrix's entries), qubit 0 the most significant:
        as they came with the reply, or read from the backend once."""
        if self._amplitudes is None:
            self._amplitudes = self._held("state()").read()
        return self._amplitudes

    def probabilities(self, qubits: list[int] | None = None) -> np.ndarray:
        """Outcome probabilities of `qubits` (default: all): from the amplitudes when they are
        here, else computed by the backend."""
        if self._amplitudes is None:
            return self._held("probabilities()").probabilities(qubits)
        amplitudes = self._amplitudes
        n = len(amplitudes).bit_length() - 1
        qubits = list(range(n)) if qubits is None else qubits
        if amplitudes.ndim == 2:  # a density matrix: the probabilities are its diagonal
            return marginal(np.diagonal(amplitudes).real.copy(), qubits)
        return marginal_probabilities(amplitudes, qubits)

    def _held(self, what: str) -> HeldState:
        if self.final_state is None:
            raise UsageError(f"{what}: the backend kept no final state for this result "
                             "(execute_many keeps none; only small states come back with it, "
                             "with nshots=0): run the circuit with execute")
        return self.final_state

    def samples(self, *, binary: bool = True,
                registers: bool = False) -> np.ndarray | dict[str, np.ndarray]:
        """Every shot's outcome: an array of shape (nshots, measured qubits) of 0 and 1, in
        measurement order (`binary=False`: each row as an integer, the first qubit most
        significant); per register with `registers=True`. Kept when executed with
        `samples=True`."""
        if self._samples is None:
            raise UsageError("no samples were kept: execute with nshots > 0 and samples=True")
        if not registers:
            return self._samples if binary else as_integers(self._samples)
        per_register, start = {}, 0
        for name, qubits in self.registers.items():
            bits = self._samples[:, start:start + len(qubits)]
            per_register[name] = bits if binary else as_integers(bits)
            start += len(qubits)
        return per_register

    def frequencies(self, *, binary: bool = True,
                    registers: bool = False
                    ) -> Counter[str] | Counter[int] | dict[str, Counter[str] | Counter[int]]:
        """Counts of each outcome of the measured qubits, in measurement order; per register
        with `registers=True`; keys as integers with `binary=False`."""
        if self._frequencies is None:
            raise UsageError("no shots were sampled: execute with nshots > 0 and an M gate")
        if not registers:
            return _keys(Counter(self._frequencies), binary)
        per_register = {}
        start = 0
        for name, qubits in self.registers.items():
            counts: Counter[str] = Counter()
            for bits, count in self._frequencies.items():
                counts[bits[start:start + len(qubits)]] += count
            per_register[name] = _keys(counts, binary)
            start += len(qubits)
        return per_register

    def __repr__(self) -> str:
        return f"<Result of {self.final_state!r}, nshots={self.nshots}>"


def _keys(counts: Counter[str], binary: bool) -> Counter[str] | Counter[int]:
    return counts if binary else Counter({int(k, 2): v for k, v in counts.items()})
