"""The wire protocol, version 1: method names, error codes and a msgspec Struct for every message.

docs/protocol.md is the contract in prose; this module is the same contract in code. Field names
are camelCase on the wire (`rename="camel"`); a missing optional field means "absent", and unknown
fields are ignored so that later versions can add them.
"""

from __future__ import annotations

import base64
import enum
from typing import Any, Final

import msgspec
import numpy as np
from msgspec import UNSET, Raw, Struct, UnsetType

PROTOCOL_VERSION: Final = 1
SUPPORTED_VERSIONS: Final = (1,)
JSONRPC: Final = "2.0"


class Method:
    """Every method name, defined once."""

    INITIALIZE: Final = "initialize"
    SHUTDOWN: Final = "shutdown"
    EXIT: Final = "exit"
    EXECUTE: Final = "execute"
    STATE_NEW: Final = "state/new"
    STATE_APPLY: Final = "state/apply"
    STATE_READ: Final = "state/read"
    STATE_PROBABILITIES: Final = "state/probabilities"
    STATE_SAMPLE: Final = "state/sample"
    STATE_FREE: Final = "state/free"
    SHM_ATTACH: Final = "shm/attach"
    SHM_DETACH: Final = "shm/detach"
    CANCEL_REQUEST: Final = "$/cancelRequest"
    PROGRESS: Final = "$/progress"


class ErrorCode(enum.IntEnum):
    """JSON-RPC's standard codes, then ours in -32000..-32099."""

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    UNSUPPORTED_PROTOCOL_VERSION = -32001
    SERVER_NOT_INITIALIZED = -32002
    UNKNOWN_STATE = -32003
    GATE_FAILED = -32004
    STATE_TOO_LARGE = -32005
    REQUEST_CANCELLED = -32006


MAX_SHOTS: Final = 2**40
SEED_LIMIT: Final = 2**63
"""Shots are 0..MAX_SHOTS; a seed is 0 <= seed < SEED_LIMIT."""


def shots_problem(nshots: object, seed: object) -> str:
    """What is wrong with `nshots` and `seed`, in words ("" when nothing): both ends check."""
    if type(nshots) is not int and not isinstance(nshots, np.integer):
        return f"nshots must be an integer, got {nshots!r}"
    if not 0 <= nshots <= MAX_SHOTS:
        return f"nshots must be between 0 and 2**40, got {nshots}"
    if seed is not None and type(seed) is not int and not isinstance(seed, np.integer):
        return f"seed must be an integer or None, got {seed!r}"
    if seed is not None and not 0 <= seed < SEED_LIMIT:  # type: ignore[operator]
        return f"seed must be between 0 and 2**63 - 1, got {seed}"
    return ""


STATE_ENCODINGS: Final = ("base64", "shm")
"""How arrays may cross: inline base64 (every backend), or shared-memory segments."""
SHM_DIR: Final = "/dev/shm"
SHM_PREFIX: Final = "qibo-core-"
"""Segments are files in SHM_DIR whose names start with this: a backend attaches no other."""


class Precision:
    """The state precisions a backend may offer."""

    COMPLEX128: Final = "complex128"
    COMPLEX64: Final = "complex64"


class _Message(Struct, rename="camel", omit_defaults=True):
    """Base of every params and result Struct."""


# ---- circuits -------------------------------------------------------------------------------

class GateData(_Message, gc=False):
    """One gate. `params` by name (RX: theta); `matrix` only for Unitary, as rows of [re, im]."""

    name: str
    qubits: tuple[int, ...]
    params: dict[str, float] = {}
    controls: tuple[int, ...] = ()
    dagger: bool = False
    matrix: list[list[tuple[float, float]]] | None = None


class MeasurementData(_Message):
    """Measure `qubits`; the register name defaults to `register<k>` for the k-th measurement."""

    qubits: list[int]
    register: str | None = None


class CircuitData(_Message):
    nqubits: int
    gates: list[GateData] = []
    measurements: list[MeasurementData] = []


# ---- arrays ---------------------------------------------------------------------------------

class ArrayData(_Message):
    """A numeric array: `data` is base64 of its little-endian bytes in C order; or, when the
    client asked for a shared-memory segment, the same bytes are at the start of `segment`."""

    dtype: str
    shape: list[int]
    data: str | None = None
    segment: int | None = None


_WIRE_DTYPES: Final = {"complex128": "<c16", "complex64": "<c8", "float64": "<f8"}


def encode_array(array: np.ndarray) -> ArrayData:
    """The portable encoding of `array` (complex128, complex64 or float64)."""
    wire = _WIRE_DTYPES[array.dtype.name]
    raw = np.ascontiguousarray(array, dtype=wire).tobytes()
    return ArrayData(dtype=array.dtype.name, shape=list(array.shape),
                     data=base64.b64encode(raw).decode("ascii"))


def decode_array(data: ArrayData) -> np.ndarray:
    """The array an `ArrayData` holds inline; ValueError if it is malformed."""
    if data.dtype not in _WIRE_DTYPES:
        raise ValueError(f"unsupported dtype {data.dtype!r}; expected one of {list(_WIRE_DTYPES)}")
    if data.data is None:
        raise ValueError("the array has no inline 'data'")
    raw = base64.b64decode(data.data, validate=True)
    array = np.frombuffer(raw, dtype=_WIRE_DTYPES[data.dtype])
    size = int(np.prod(data.shape, dtype=np.int64))
    if array.size != size:
        raise ValueError(f"array data holds {array.size} elements, shape {data.shape} needs {size}")
    return array.reshape(data.shape).astype(data.dtype, copy=False)


# ---- initialize -----------------------------------------------------------------------------

class ClientInfo(_Message):
    name: str
    version: str | None = None


class InitializeOptions(_Message):
    precision: str = Precision.COMPLEX128
    threads: int | None = None
    """Threads the simulator may use; absent means the backend's default."""


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


class InitializeResult(_Message):
    protocol_version: int
    server_info: ServerInfo
    capabilities: Capabilities


# ---- execution and states -------------------------------------------------------------------

class ExecuteParams(_Message):
    circuit: CircuitData
    nshots: int = 0
    seed: int | None = None
    work_done_token: int | str | None = None
    """When set, the backend reports progress with `$/progress` notifications carrying it."""


class ExecuteResult(_Message):
    """`state` holds the final state until `state/free`; `frequencies` counts the measured
    qubits' outcomes (in measurement order) when nshots > 0."""

    state: int
    frequencies: dict[str, int] | None = None


class NewStateParams(_Message):
    nqubits: int


class StateRef(_Message):
    """A state the backend holds, by id: the result of `state/new` and params of several methods."""

    state: int


class ApplyParams(_Message):
    state: int
    gates: list[GateData]


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


class IncomingRequest(Struct):
    """A request or notification as received: params stay raw until the method is known."""

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


METHOD_TYPES: Final[dict[str, tuple[type | None, type | None]]] = {
    Method.INITIALIZE: (InitializeParams, InitializeResult),
    Method.SHUTDOWN: (None, None),
    Method.EXIT: (None, None),
    Method.EXECUTE: (ExecuteParams, ExecuteResult),
    Method.STATE_NEW: (NewStateParams, StateRef),
    Method.STATE_APPLY: (ApplyParams, None),
    Method.STATE_READ: (ReadParams, ArrayData),
    Method.STATE_PROBABILITIES: (ProbabilitiesParams, ArrayData),
    Method.STATE_SAMPLE: (SampleParams, SampleResult),
    Method.STATE_FREE: (StateRef, None),
    Method.SHM_ATTACH: (AttachParams, SegmentRef),
    Method.SHM_DETACH: (SegmentRef, None),
    Method.CANCEL_REQUEST: (CancelParams, None),
}
"""Each method's params and result types (None: no params / a null result)."""

encoder: Final = msgspec.json.Encoder()
