"""A msgspec Struct for the params and results of the protocol's methods, and the limits on their
values; `initialize`'s are in handshake.py, the JSON-RPC envelopes that carry them in
envelopes.py.

docs/protocol.md is the contract in prose; these modules are the same contract in code. Field
names are camelCase on the wire (`rename="camel"`); a missing optional field means "absent", and
unknown fields are ignored so that later versions can add them.

Params that carry gates or a circuit are generic in what they carry: on the wire (and to the
server's decoder) it is `GateData` / `CircuitData`; a client may put Gate and Circuit objects in
their place, which the encoder turns into data (`to_data()`) and an in-process backend takes as
they are.
"""

from __future__ import annotations

from typing import Final, Generic, TypeVar

import numpy as np
from msgspec import Struct

G = TypeVar("G")
"""What a gate travels as: GateData on the wire, a Gate object in process."""
C = TypeVar("C")
"""What a circuit travels as: CircuitData on the wire, a Circuit object in process."""
A = TypeVar("A")
"""What an array sent to the backend travels as: ArrayData on the wire, a NumPy array in
process."""

MAX_SHOTS: Final = 2**40
SEED_LIMIT: Final = 2**63
"""Shots are 0..MAX_SHOTS; a seed is 0 <= seed < SEED_LIMIT."""
MAX_SETS: Final = 2**24
"""The most sets of parameter values one `circuit/expectation` evaluates (a float64 each)."""


def shots_problem(nshots: object, seed: object) -> str:
    """What is wrong with `nshots` and `seed`, in words ("" when nothing): both ends check."""
    if type(nshots) is not int and not isinstance(nshots, np.integer):
        return f"nshots must be an integer, got {nshots!r}"
    if not 0 <= nshots <= MAX_SHOTS:
        return f"nshots must be between 0 and {power_of_two(MAX_SHOTS)}, got {nshots}"
    if seed is not None and type(seed) is not int and not isinstance(seed, np.integer):
        return f"seed must be an integer or None, got {seed!r}"
    if seed is not None and not 0 <= seed < SEED_LIMIT:
        return f"seed must be between 0 and {power_of_two(SEED_LIMIT)} - 1, got {seed}"
    return ""


EXECUTABLE_PREFIX: Final = "qibo-backend-"
"""A backend named `foo` is an executable called qibo-backend-foo."""

def power_of_two(n: int) -> str:
    """A limit as people read it: 2**40, not 1099511627776."""
    return f"2**{n.bit_length() - 1}" if n > 0 and n & (n - 1) == 0 else str(n)


STATE_ENCODINGS: Final = ("base64", "shm")
"""How arrays may cross: inline base64 (every backend), or shared-memory segments."""
SHM_DIR: Final = "/dev/shm"
SHM_PREFIX: Final = "qibo-core-"
"""Segments are files in SHM_DIR whose names start with this: a backend attaches no other."""


class Message(Struct, rename="camel", omit_defaults=True):
    """Base of every params and result Struct."""


# ---- circuits -------------------------------------------------------------------------------

class ConditionData(Message):
    """Version 2: apply the gate only in the shots whose `register` read `value` (its bits as an
    integer, the first measured qubit most significant)."""

    register: str
    value: int = 1


class GateData(Message, gc=False):
    """One gate. `params` by name (RX: theta); `matrix` only for Unitary, as rows of [re, im].

    Version 2 (feature "midCircuitMeasurement") adds operations to the gate list: "M" (a
    measurement that collapses the state, into `register`) and "RESET" (back to |0>); and any
    gate may carry a `condition` on a register measured before it."""

    name: str
    qubits: tuple[int, ...]
    params: dict[str, float] = {}
    controls: tuple[int, ...] = ()
    dagger: bool = False
    matrix: list[list[tuple[float, float]]] | None = None
    register: str | None = None
    condition: ConditionData | None = None
    kraus: list[list[list[tuple[float, float]]]] | None = None
    """Version 2 (feature "channels"): a noise channel's Kraus operators, each as `matrix`."""


class MeasurementData(Message):
    """Measure `qubits`; the register name defaults to `register<k>` for the k-th measurement."""

    qubits: list[int]
    register: str | None = None


class CircuitData(Message):
    nqubits: int
    density_matrix: bool = False
    """Version 2 (feature "densityMatrix"): simulate a density matrix, not a state vector."""
    gates: list[GateData] = []
    measurements: list[MeasurementData] = []


# ---- arrays ---------------------------------------------------------------------------------

class ArrayData(Message, dict=True):
    """A numeric array: `data` is base64 of its little-endian bytes in C order; or, when the
    client asked for a shared-memory segment, the same bytes are at the start of `segment`; or
    (version 4) they are the message's attachment number `attachment` (binary frames), or at the
    start of the sealed memfd passed as its descriptor number `descriptor`.

    A received ArrayData that names an attachment or a descriptor carries it, once bound
    (protocol.arrays.bind), as the attribute `payload`, which is never encoded."""

    dtype: str
    shape: list[int]
    data: str | None = None
    segment: int | None = None
    attachment: int | None = None
    descriptor: int | None = None



# ---- execution and states -------------------------------------------------------------------

class ExecuteParams(Message, Generic[C, A]):
    circuit: C = None  # type: ignore[assignment]  # C | None, but msgspec.Raw takes no union
    """The circuit to run; required unless `prepared` names one."""
    nshots: int = 0
    seed: int | None = None
    work_done_token: int | str | None = None
    """When set, the backend reports progress with `$/progress` notifications carrying it."""
    initial_state: A | None = None
    """Version 2 (feature "initialState"): the state the circuit starts from, not |0...0>."""
    samples: bool = False
    """Version 2 (feature "samples"): also answer every shot's outcome."""
    samples_segment: int | None = None
    """Version 2, with `samples`: a shared-memory segment (from shm/attach) to write them into,
    as `state/read` writes amplitudes."""
    prepared: int | None = None
    """Version 4 (feature "expectation"): run this prepared circuit (circuit/prepare) instead
    of `circuit`, its slots valued from `parameters`."""
    parameters: list[float] | None = None
    """Version 4, with `prepared`: one value per parameter of the prepared circuit."""
    read: bool = False
    """Version 4: also answer the final state's amplitudes (a density matrix's entries) inline,
    as `state/read` would, in `amplitudes`."""
    keep: bool = True
    """Version 4: false holds no final state (`state` is absent from the reply)."""


class ExecuteResult(Message, Generic[A]):
    """`state` holds the final state until `state/free` (absent when `keep` is false);
    `frequencies` counts the measured qubits' outcomes (in measurement order) when
    nshots > 0."""

    state: int | None = None
    frequencies: dict[str, int] | None = None
    samples: A | None = None
    """Version 2: when asked for, uint8 of shape [nshots, measured qubits], 0 or 1, in
    measurement order; the frequencies count exactly these shots."""
    amplitudes: A | None = None
    """Version 4: with `read`, the final state's amplitudes (a density matrix's entries)."""


class ExecuteManyParams(Message, Generic[C, A]):
    """Version 4: several executions in one request, run in order."""

    runs: list[ExecuteParams[C, A]]
    work_done_token: int | str | None = None
    """When set, progress counts the runs done."""


class ExecuteManyResult(Message, Generic[A]):
    results: list[ExecuteResult[A]]
    """One per run, in order."""


class NewStateParams(Message, Generic[A]):
    nqubits: int
    initial: A | None = None
    """Version 2 (feature "initialState"): the amplitudes to start from, not |0...0>."""


class StateRef(Message):
    """A state the backend holds, by id: the result of `state/new` and params of several methods."""

    state: int


class ApplyParams(Message, Generic[G]):
    state: int
    gates: list[G]


class ReadParams(Message):
    state: int
    segment: int | None = None
    """A shared-memory segment (from shm/attach) to write the amplitudes into."""


class AttachParams(Message):
    """A file the client created in SHM_DIR (named SHM_PREFIX...), of at least `size` bytes,
    to map."""

    path: str
    size: int


class SegmentRef(Message):
    segment: int


class ProbabilitiesParams(Message):
    state: int
    qubits: list[int] | None = None
    """Qubits to keep, in this order; absent means all."""


class SampleParams(Message):
    state: int
    nshots: int
    qubits: list[int] | None = None
    seed: int | None = None


class SampleResult(Message):
    frequencies: dict[str, int]


# ---- prepared circuits (version 3, feature "expectation") -----------------------------------

class SlotData(Message):
    """Gate `gate` (an index into the circuit's gates) takes its parameter `param` from
    `parameter`, an index into each set of values."""

    gate: int
    param: str
    parameter: int


class PrepareParams(Message, Generic[C]):
    circuit: C
    """Its slotted parameters carry any number (0.0): `slots` says where the values go."""
    slots: list[SlotData]
    parameters: int
    """How many values a set has."""


class CircuitRef(Message):
    """A prepared circuit, by id: the result of `circuit/prepare`, params of `circuit/free`."""

    circuit: int


class TermData(Message):
    """`coefficient` times a Pauli string: `"Z0 Z1"` (letters X, Y, Z and qubits), `""` the
    identity."""

    coefficient: float
    pauli: str


class ExpectationParams(Message, Generic[A]):
    circuit: int
    parameters: A
    """float64 of shape [sets, parameters]: one row per set of values."""
    observable: list[TermData]
    work_done_token: int | str | None = None
    """When set, `$/progress` reports sets done of all."""


class StateExpectationParams(Message):
    state: int
    observable: list[TermData]


class CancelParams(Message):
    id: int | str


class ProgressValue(Message):
    done: int
    total: int


class ProgressParams(Message):
    """Sent by the backend while a request with a workDoneToken runs: `done` of `total` gates."""

    token: int | str
    value: ProgressValue
