"""The handlers of a session's life: `initialize`, `shutdown`, and the shared-memory segments
it attaches (`shm/attach`, `shm/detach`)."""

from __future__ import annotations

from ..errors import InvalidParams, InvalidRequest, UnsupportedProtocolVersion
from ..protocol import (
    DEVICES_SINCE,
    STATE_ENCODINGS,
    SUPPORTED_VERSIONS,
    TRANSFER_SINCE,
    AttachParams,
    Capabilities,
    InitializeParams,
    InitializeResult,
    Method,
    SegmentRef,
    ServerInfo,
    sealed,
)
from .registry import handles
from .session import Session


@handles(Method.INITIALIZE)
def initialize(session: Session, params: InitializeParams) -> InitializeResult:
    if session.initialized:
        raise InvalidRequest("'initialize' was already received")
    if params.protocol_version not in SUPPORTED_VERSIONS:
        raise UnsupportedProtocolVersion(
            f"protocol version {params.protocol_version} is not supported; this backend "
            f"speaks {list(SUPPORTED_VERSIONS)}",
            {"supported": list(SUPPORTED_VERSIONS), "requested": params.protocol_version})
    backend, options = session.backend, params.options
    if options.precision not in backend.precisions:
        raise InvalidParams(f"precision {options.precision!r} is not offered; choose one of "
                            f"{list(backend.precisions)}")
    if options.threads is not None and options.threads < 1:
        raise InvalidParams(f"threads must be at least 1, got {options.threads}")
    devices = list(backend.devices)
    if options.device is not None and params.protocol_version < DEVICES_SINCE:
        raise InvalidParams(f"options.device is a field of protocol version {DEVICES_SINCE}; "
                            f"a session of version {params.protocol_version} has no devices")
    later = [name for name, used in (("binaryFrames", options.binary_frames),
                                     ("descriptors", options.descriptors is not None)) if used]
    if later and params.protocol_version < TRANSFER_SINCE:
        raise InvalidParams(f"options.{later[0]} is a field of protocol version {TRANSFER_SINCE}; "
                            f"a session of version {params.protocol_version} moves arrays as "
                            "version 3 does")
    if options.device is not None and options.device not in devices:
        raise InvalidParams(f"device {options.device!r} is not available here; this backend "
                            f"offers {devices}")
    backend.configure(options)
    session.initialized = True
    session.version = version = params.protocol_version
    encodings = [e for e in STATE_ENCODINGS if e != "shm" or session.segments.enabled]
    transfer = session.transfer
    if version >= TRANSFER_SINCE:
        transfer.agree(options)
        # where sealed memory does not pay (the client then offers no socket, unless told to),
        # states stay in NumPy's memory, whose huge pages simulate faster
        backend.sharable = transfer.socket is not None and sealed.worthwhile()
    return InitializeResult(
        protocol_version=version,
        server_info=ServerInfo(name=backend.name, version=backend.version),
        capabilities=Capabilities(
            gates=backend.gates, native_gates=sorted(backend.native_gates),
            max_qubits=backend.max_qubits, precisions=list(backend.precisions),
            state_encodings=encodings, threads=backend.threads,
            max_message_bytes=session.max_message_bytes,
            features=session.features,
            devices=devices if version >= DEVICES_SINCE else None,
            binary_frames=transfer.binary, descriptors=transfer.socket is not None))


@handles(Method.SHUTDOWN)
def shutdown(session: Session, params: None) -> None:
    session.states.clear()
    session.prepared.clear()
    session.circuits.clear()
    session.budget.clear()
    session.segments.close()


@handles(Method.SHM_ATTACH)
def attach(session: Session, params: AttachParams) -> SegmentRef:
    return SegmentRef(session.segments.attach(params.path, params.size))


@handles(Method.SHM_DETACH)
def detach(session: Session, params: SegmentRef) -> None:
    session.segments.detach(params.segment)
