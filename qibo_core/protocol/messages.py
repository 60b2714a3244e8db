"""A msgspec Struct for every message of the protocol, and the limits on their values.

docs/protocol.md is the contract in prose; this module is the same contract in code. Field names
are camelCase on the wire (`rename="camel"`); a missing optional field means "absent", and unknown
fields are ignored so that later versions can add them.

Params that carry gates or a circuit are generic in what they carry: on the wire (and to the
server's decoder) it is `GateData` / `CircuitData`; a client may put Gate and Circuit objects in
their place, which the encoder turns into data (`to_data()`) and an in-process backend takes as
they are.
"""

from __future__ import annotations

from typing import Any, Final, Generic, TypeVar

import msgspec
import numpy as np
from msgspec import UNSET, Raw, Struct, UnsetType

JSONRPC: Final = "2.0"
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


class Feature:
    """Optional features, listed in `capabilities.features` (from protocol version 2)."""

    INITIAL_STATE: Final = "initialState"
    SAMPLES: Final = "samples"
    MID_CIRCUIT_MEASUREMENT: Final = "midCircuitMeasurement"
    DENSITY_MATRIX: Final = "densityMatrix"
    CHANNELS: Final = "channels"
    EXPECTATION: Final = "expectation"
    """Version 3: prepared circuits and their expectation values (circuit/*)."""


FEATURE_VERSIONS: Final = {Feature.INITIAL_STATE: 2, Feature.SAMPLES: 2,
                           Feature.MID_CIRCUIT_MEASUREMENT: 2, Feature.DENSITY_MATRIX: 2,
                           Feature.CHANNELS: 2, Feature.EXPECTATION: 3}
"""The protocol version that brought each feature: a session of an older one leaves it out."""
DEVICES_SINCE: Final = 3
"""The protocol version that brought `options.device` and `capabilities.devices`."""
RUNS_SINCE: Final = 4
"""The protocol version that brought execute's `read`, `keep`, `prepared` and `parameters`,
and `execute/many`."""
TRANSFER_SINCE: Final = 4
"""The protocol version that brought binary frames and sealed arrays: `options.binaryFrames`,
`options.descriptors`, the capabilities of the same names, an Array's `attachment` and
`descriptor`."""


class Precision:
    """The state precisions a backend may offer."""

    COMPLEX128: Final = "complex128"
    COMPLEX64: Final = "complex64"


class _Message(Struct, rename="camel", omit_defaults=True):
    """Base of every params and result Struct."""


# ---- circuits -------------------------------------------------------------------------------

class ConditionData(_Message):
    """Version 2: apply the gate only in the shots whose `register` read `value` (its bits as an
    integer, the first measured qubit most significant)."""

    register: str
    value: int = 1


class GateData(_Message, gc=False):
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


class MeasurementData(_Message):
    """Measure `qubits`; the register name defaults to `register<k>` for the k-th measurement."""

    qubits: list[int]
    register: str | None = None


class CircuitData(_Message):
    nqubits: int
    density_matrix: bool = False
    """Version 2 (feature "densityMatrix"): simulate a density matrix, not a state vector."""
    gates: list[GateData] = []
    measurements: list[MeasurementData] = []


# ---- arrays ---------------------------------------------------------------------------------

class ArrayData(_Message, dict=True):
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


# ---- initialize -----------------------------------------------------------------------------

class ClientInfo(_Message):
    name: str
    version: str | None = None


class DescriptorOffer(_Message):
    """Version 4: a Unix socket (SOCK_SEQPACKET) the client left open in the backend at
    descriptor `fd`, on which it wrote `token` as the first message."""

    fd: int
    token: str


class InitializeOptions(_Message):
    precision: str = Precision.COMPLEX128
    threads: int | None = None
    """Threads the simulator may use; absent means the backend's default."""
    device: str | None = None
    """Version 3: one of `capabilities.devices` to simulate on; absent: the first of them."""
    binary_frames: bool = False
    """Version 4: arrays may travel as raw bytes after their message (attachments)."""
    descriptors: DescriptorOffer | None = None
    """Version 4: where to pass sealed memfds (arrays as sealed memory)."""


class InitializeParams(_Message):
    protocol_version: int
    client_info: ClientInfo | None = None
    options: InitializeOptions = msgspec.field(default_factory=InitializeOptions)


class ServerInfo(_Message):
    name: str
    version: str


class Capabilities(_Message):
    gates: list[str]
    """Every gate name the backend accepts."""
    native_gates: list[str]
    """Gates the simulator runs with a kernel of its own, not as a generic matrix."""
    max_qubits: int
    precisions: list[str]
    state_encodings: list[str]
    threads: int
    max_message_bytes: int | None = None
    """The longest input line the backend reads; absent: no stated limit."""
    features: list[str] = []
    """Version 2: the optional features the backend implements (`Feature`)."""
    devices: list[str] | None = None
    """Version 3: the devices `options.device` may name, the default first; absent means
    ["CPU"]."""
    binary_frames: bool = False
    """Version 4: the client asked for binary frames and the backend agrees: from the next
    message on, both sides send arrays as attachments."""
    descriptors: bool = False
    """Version 4: the backend found the client's descriptor socket and can seal memory: from
    the next message on, arrays may travel as sealed memfds, both ways."""


class InitializeResult(_Message):
    protocol_version: int
    server_info: ServerInfo
    capabilities: Capabilities


# ---- execution and states -------------------------------------------------------------------

class ExecuteParams(_Message, Generic[C, A]):
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


class ExecuteResult(_Message, Generic[A]):
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


class ExecuteManyParams(_Message, Generic[C, A]):
    """Version 4: several executions in one request, run in order."""

    runs: list[ExecuteParams[C, A]]
    work_done_token: int | str | None = None
    """When set, progress counts the runs done."""


class ExecuteManyResult(_Message, Generic[A]):
    results: list[ExecuteResult[A]]
    """One per run, in order."""


class NewStateParams(_Message, Generic[A]):
    nqubits: int
    initial: A | None = None
    """Version 2 (feature "initialState"): the amplitudes to start from, not |0...0>."""


class StateRef(_Message):
    """A state the backend holds, by id: the result of `state/new` and params of several methods."""

    state: int


class ApplyParams(_Message, Generic[G]):
    state: int
    gates: list[G]


class ReadParams(_Message):
    state: int
    segment: int | None = None
    """A shared-memory segment (from shm/attach) to write the amplitudes into."""


class AttachParams(_Message):
    """A file the client created in SHM_DIR (named SHM_PREFIX...), of at least `size` bytes,
    to map."""

    path: str
    size: int


class SegmentRef(_Message):
    segment: int


class ProbabilitiesParams(_Message):
    state: int
    qubits: list[int] | None = None
    """Qubits to keep, in this order; absent means all."""


class SampleParams(_Message):
    state: int
    nshots: int
    qubits: list[int] | None = None
    seed: int | None = None


class SampleResult(_Message):
    frequencies: dict[str, int]


# ---- prepared circuits (version 3, feature "expectation") -----------------------------------

class SlotData(_Message):
    """Gate `gate` (an index into the circuit's gates) takes its parameter `param` from
    `parameter`, an index into each set of values."""

    gate: int
    param: str
    parameter: int


class PrepareParams(_Message, Generic[C]):
    circuit: C
    """Its slotted parameters carry any number (0.0): `slots` says where the values go."""
    slots: list[SlotData]
    parameters: int
    """How many values a set has."""


class CircuitRef(_Message):
    """A prepared circuit, by id: the result of `circuit/prepare`, params of `circuit/free`."""

    circuit: int


class TermData(_Message):
    """`coefficient` times a Pauli string: `"Z0 Z1"` (letters X, Y, Z and qubits), `""` the
    identity."""

    coefficient: float
    pauli: str


class ExpectationParams(_Message, Generic[A]):
    circuit: int
    parameters: A
    """float64 of shape [sets, parameters]: one row per set of values."""
    observable: list[TermData]
    work_done_token: int | str | None = None
    """When set, `$/progress` reports sets done of all."""


class StateExpectationParams(_Message):
    state: int
    observable: list[TermData]


class CancelParams(_Message):
    id: int | str


class ProgressValue(_Message):
    done: int
    total: int


class ProgressParams(_Message):
    """Sent by the backend while a request with a workDoneToken runs: `done` of `total` gates."""

    token: int | str
    value: ProgressValue


# ---- envelopes: UNSET fields are left out of the JSON ----------------------------------------

class ErrorObject(Struct):
    code: int
    message: str
    data: Any = UNSET


class Request(Struct, kw_only=True):
    """A request or notification (no id) as sent: params is any Struct."""

    jsonrpc: str = JSONRPC
    id: int | str | UnsetType = UNSET
    method: str
    params: Any = UNSET


class IncomingRequest(Struct, dict=True):
    """A request or notification as received: params stay raw until the method is known. One
    that came as a Frame (version 4) carries it as the attribute `frame` until its params are
    decoded and bound."""

    jsonrpc: str
    method: str
    id: int | str | None | UnsetType = UNSET
    params: Raw = Raw(b"null")


class Response(Struct, kw_only=True):
    """A response as sent: exactly one of result and error."""

    jsonrpc: str = JSONRPC
    id: int | str | None
    result: Any = UNSET
    error: ErrorObject | UnsetType = UNSET


class IncomingResponse(Struct):
    """Any message a client receives: a response, or a notification when `method` is set."""

    jsonrpc: str
    id: int | str | None | UnsetType = UNSET
    result: Raw | UnsetType = UNSET
    error: ErrorObject | UnsetType = UNSET
    method: str | UnsetType = UNSET
    params: Raw = Raw(b"null")
