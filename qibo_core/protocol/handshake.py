"""What `initialize` negotiates: the client's options, the backend's capabilities, and the
optional features and protocol versions that decide what a session offers."""

from __future__ import annotations

from typing import Final

import msgspec

from .messages import Message


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


class ClientInfo(Message):
    name: str
    version: str | None = None


class DescriptorOffer(Message):
    """Version 4: a Unix socket (SOCK_SEQPACKET) the client left open in the backend at
    descriptor `fd`, on which it wrote `token` as the first message."""

    fd: int
    token: str


class InitializeOptions(Message):
    precision: str = Precision.COMPLEX128
    threads: int | None = None
    """Threads the simulator may use; absent means the backend's default."""
    device: str | None = None
    """Version 3: one of `capabilities.devices` to simulate on; absent: the first of them."""
    binary_frames: bool = False
    """Version 4: arrays may travel as raw bytes after their message (attachments)."""
    descriptors: DescriptorOffer | None = None
    """Version 4: where to pass sealed memfds (arrays as sealed memory)."""


class InitializeParams(Message):
    protocol_version: int
    client_info: ClientInfo | None = None
    options: InitializeOptions = msgspec.field(default_factory=InitializeOptions)


class ServerInfo(Message):
    name: str
    version: str


class Capabilities(Message):
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


class InitializeResult(Message):
    protocol_version: int
    server_info: ServerInfo
    capabilities: Capabilities
