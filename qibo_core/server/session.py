"""Session: one backend's states and prepared circuits by id, the protocol's methods run on
them, and the checks they share.

The server decodes a message and calls `call` or `notify`; an in-process connection calls them
directly with the same Structs (holding Gate and Circuit objects instead of their data). So
validation is written once, for every backend. The handlers live by area (lifecycle.py,
execution.py, states.py, prepared.py) and register in registry.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..circuit import GateReader
from ..errors import (
    GateFailed,
    InvalidParams,
    MethodNotFound,
    ServerNotInitialized,
    StateTooLarge,
    UnknownState,
)
from ..protocol import FEATURE_VERSIONS, METHODS, PROTOCOL_VERSION, Method, shots_problem
from . import density
from .backend import Backend, Checkpoint, Work, no_checkpoint
from .known import Known, KnownCircuits
from .memory import Budget, format_bytes, request_bytes
from .registry import HANDLERS, NOTIFIED, method_not_found
from .segments import Segments
from .transfer import Transfer


@dataclass
class HeldState:
    """A state the backend holds for the client, by id."""

    native: Any
    nqubits: int
    reader: GateReader
    nbytes: int = 0
    """What the backend promised this state (it may not have touched it all yet)."""
    reserve: int = 0
    """The most a request on it takes beyond what is held (memory.request_bytes)."""
    is_density: bool = False
    """A density matrix of `nqubits`, held as density.of(backend) holds them."""
    streamed: int = 0
    """Gates received by state/apply so far: the index a GateFailed error names."""
    failure: GateFailed | None = None
    dropped: int = 0
    """Gates skipped after a failure, until the failure is reported."""


class Session:
    """One backend's states and prepared circuits, and the protocol's methods on them."""

    def __init__(self, backend: Backend, *, shared_memory: bool = True,
                 max_message_bytes: int | None = None) -> None:
        self.backend = backend
        self.max_message_bytes = max_message_bytes
        self.checkpoint: Checkpoint = no_checkpoint
        """Handed to the backend to call between gates; the server's raises RequestCancelled."""
        self.initialized = False
        self.version = PROTOCOL_VERSION
        """The protocol version `initialize` agreed on."""
        self.segments = Segments(enabled=shared_memory)
        self.transfer = Transfer(shared_memory=shared_memory)
        """How arrays may cross, as `initialize` agreed (version 4)."""
        self.states: dict[int, HeldState] = {}
        self.prepared: dict[int, Any] = {}
        """Prepared circuits (prepared.Prepared) by id."""
        self._next_id = {"state": 1, "circuit": 1}
        self.circuits = KnownCircuits(backend)
        self._request_bytes: dict[tuple[int, bool], int] = {}
        self.budget = Budget(backend.baseline_bytes)

    def serves(self, method: str) -> bool:
        """Whether `method` is one of the protocol's that this session's version has (before
        `initialize`, any of them: the request is then refused as premature)."""
        return method in HANDLERS and (not self.initialized
                                       or METHODS[method].since <= self.version)

    def call(self, method: str, params: Any) -> Any:
        """Run a request; BackendError subclasses carry what the caller must be told. An Array
        result comes back as a NumPy array (maybe the backend's own memory: the caller encodes
        or copies it)."""
        handler = HANDLERS.get(method)
        if handler is None:
            raise method_not_found(method)
        if not self.initialized and method != Method.INITIALIZE:
            raise ServerNotInitialized(f"{method!r} before 'initialize': send 'initialize' first")
        since = METHODS[method].since
        if since > self.version:
            raise MethodNotFound(f"{method!r} is a method of protocol version {since}; this "
                                 f"session speaks version {self.version}")
        return handler(self, params)

    def notify(self, method: str, params: Any) -> None:
        """Run a notification: no reply, so a streamed gate's error waits on its state."""
        handler = NOTIFIED.get(method)
        if handler is not None and self.initialized:
            handler(self, params)
        else:
            self.call(method, params)

    def next_id(self, kind: str) -> int:
        """A new id for a held "state" or a prepared "circuit"."""
        number = self._next_id[kind]
        self._next_id[kind] = number + 1
        return number

    # ---- held states -------------------------------------------------------------------

    def state(self, state_id: int) -> HeldState:
        """The held state `state_id`; the failure of a gate streamed into it is raised here,
        once."""
        held = self.states.get(state_id)
        if held is None:
            raise UnknownState(f"no state {state_id} is held (never created, or freed); "
                               f"held states: {sorted(self.states) or 'none'}")
        if held.failure is not None:
            failure, held.failure = held.failure, None
            if held.dropped:
                failure.message += f"; the {held.dropped} gates streamed after it were skipped"
                failure.args = (failure.message,)
                held.dropped = 0
            raise failure
        return held

    def hold(self, native: Any, nqubits: int, *, is_density: bool = False) -> int:
        """Keep `native` as a state of `nqubits` (a density matrix's) under a new id."""
        state_id = self.next_id("state")
        nbytes = self.backend.state_bytes(2 * nqubits if is_density else nqubits)
        reserve = self.request_bytes(nqubits, is_density)
        self.states[state_id] = HeldState(native, nqubits, GateReader(nqubits), nbytes, reserve,
                                          is_density)
        self.budget.hold(nbytes, reserve)
        return state_id

    def drop(self, state_id: int) -> None:
        held = self.states.pop(state_id)
        self.budget.release(held.nbytes, held.reserve)
        if not held.is_density:
            self.backend.free(held.native)

    def apply(self, held: HeldState, gates: Sequence[Any]) -> None:
        """Gates applied to a held state: U psi, or U rho U^dagger to a density matrix."""
        if held.is_density:
            held.native = density.of(self.backend).apply(held.native, gates, held.nqubits,
                                                         self.checkpoint)
        else:
            held.native = self.backend.apply(held.native, gates, self.checkpoint)

    def amplitudes(self, state_id: int) -> np.ndarray:
        """A held state's amplitudes, or its density matrix (maybe the backend's memory)."""
        held = self.state(state_id)
        if held.is_density:
            return density.of(self.backend).matrix(held.native, held.nqubits)
        return self.backend.to_array(held.native)

    def run(self, start: Any, known: Known) -> Any:
        """The circuit's gates applied to `start`, through what the backend compiled for it."""
        return self.circuits.run(start, known, self.checkpoint)

    # ---- checks ------------------------------------------------------------------------

    @property
    def features(self) -> list[str]:
        """The optional features this session offers: the backend's, of the version agreed."""
        return [f for f in self.backend.features if FEATURE_VERSIONS[f] <= self.version]

    def require(self, features: Iterable[str], what: str) -> None:
        """InvalidParams unless this session offers every one of `features`: a request never
        uses a feature its session did not list, be it of a later version (protocol.md 3.1)."""
        for feature in sorted(set(features) - set(self.features)):
            since = FEATURE_VERSIONS[feature]
            why = (f"a feature of protocol version {since}, and this session speaks version "
                   f"{self.version}" if since > self.version else
                   f"which the {self.backend.name} backend does not offer")
            raise InvalidParams(f"{what} uses {feature!r}, {why}")

    def check_fits(self, nqubits: int, *, is_density: bool = False, initial: bool = False,
                   extra: int = 0) -> None:
        """StateTooLarge unless a state of `nqubits` (a density matrix: 2n as a vector) can be
        held with room for the largest of: any request on it (memory.request_bytes), taking an
        `initial` state in (the array read and from_array's work; on a density matrix also
        |psi><psi| and its reordered copy), and `extra` bytes (this request's own work)."""
        if nqubits <= 0:
            raise InvalidParams(f"nqubits must be positive, got {nqubits}")
        bits = 2 * nqubits if is_density else nqubits
        limit = self.backend.max_qubits
        if bits > limit:
            size = (format_bytes(2.0**bits * self.backend.dtype.itemsize) if bits < 1000
                    else "more than any machine has")
            raise StateTooLarge(f"{bits} qubits exceed this backend's maximum of {limit}; a "
                                f"{self.backend.dtype.name} state would need {size}",
                                {"nqubits": bits, "maxQubits": limit})
        if initial:
            array = self.backend.dtype.itemsize << bits
            extra = max(extra, (2 if is_density else 1) * array
                        + self.backend.working_bytes(Work.LOAD, bits))
        self.budget.check_hold(
            self.backend.state_bytes(bits), max(self.request_bytes(nqubits, is_density), extra),
            lambda: (f"a {nqubits}-qubit {self.backend.dtype.name} "
                     f"{'density matrix' if is_density else 'state'}"), nqubits)

    def request_bytes(self, nqubits: int, is_density: bool = False) -> int:
        """memory.request_bytes, computed once a size: it depends only on the backend and the
        precision `initialize` set."""
        key = (nqubits, is_density)
        nbytes = self._request_bytes.get(key)
        if nbytes is None:
            nbytes = self._request_bytes[key] = request_bytes(self.backend, nqubits,
                                                              is_density=is_density)
        return nbytes

    @staticmethod
    def check_shots(nshots: int, seed: int | None) -> None:
        problem = shots_problem(nshots, seed)
        if problem:
            raise InvalidParams(problem)

    @staticmethod
    def qubits(qubits: Sequence[int] | None, nqubits: int) -> list[int]:
        """`qubits` of a state of `nqubits`, checked (None: all of them)."""
        if qubits is None:
            return list(range(nqubits))
        if not qubits:
            raise InvalidParams("qubits is empty: name at least one, or leave it out for all")
        bad = [q for q in qubits if not 0 <= q < nqubits]
        if bad:
            raise InvalidParams(f"qubit {bad[0]} is out of range for a {nqubits}-qubit state")
        if len(set(qubits)) != len(qubits):
            raise InvalidParams(f"qubits {list(qubits)} has repeats")
        return list(qubits)

