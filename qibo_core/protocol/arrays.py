"""Arrays on the wire: base64 of little-endian bytes (the encoding every backend supports),
attachments after the message (binary frames) or sealed memfds (descriptors); and the encoders
of every message.

Decoding trusts nothing: a malformed array (an unknown dtype, a negative or absurd shape, base64
of the wrong length, an attachment or file too short) is a ValueError saying what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Sequence
from typing import Any, Final, cast

import msgspec
import numpy as np

from . import sealed
from .framing import Frame, framed
from .messages import ArrayData

_WIRE_DTYPES: Final = {"complex128": "<c16", "complex64": "<c8", "float64": "<f8",
                       "uint8": "u1"}
MAX_ELEMENTS: Final = 2**40
"""No array of the protocol holds more (a 40-qubit state vector)."""


def encode_array(array: np.ndarray) -> ArrayData:
    """The portable encoding of `array` (complex128, complex64 or float64)."""
    wire = _WIRE_DTYPES[array.dtype.name]
    raw = np.ascontiguousarray(array, dtype=wire).tobytes()
    return ArrayData(dtype=array.dtype.name, shape=list(array.shape),
                     data=base64.b64encode(raw).decode("ascii"))


def checked_shape(shape: list[int]) -> tuple[int, ...]:
    """`shape`, if it is one an array of the protocol can have."""
    if not all(type(n) is int and n >= 0 for n in shape) or len(shape) > 64:
        raise ValueError(f"shape {shape[:8]} is not a list of non-negative integers")
    if any(n > MAX_ELEMENTS for n in shape):
        raise ValueError(f"shape {shape} has a dimension over {MAX_ELEMENTS}")
    size = 1
    for n in shape:
        size *= n
    if size > MAX_ELEMENTS:
        raise ValueError(f"shape {shape} holds {size} elements, more than {MAX_ELEMENTS}")
    return tuple(shape)


def decode_array(data: ArrayData, dtype: str | None = None) -> np.ndarray:
    """The array an `ArrayData` holds in the message (inline, as an attachment, or in a sealed
    memfd), of `dtype` when given; ValueError if it is malformed. Writable exactly when it is
    memory of its own (an attachment, a copy-on-write mapping, a copy); inline base64 gives a
    read-only view."""
    if data.dtype not in _WIRE_DTYPES:
        raise ValueError(f"unsupported dtype {data.dtype!r}; expected one of {list(_WIRE_DTYPES)}")
    if dtype is not None and data.dtype != dtype:
        raise ValueError(f"dtype {data.dtype!r} where {dtype!r} was asked for")
    wire = np.dtype(_WIRE_DTYPES[data.dtype])
    if data.attachment is not None or data.descriptor is not None:
        shape = checked_shape(data.shape)
        payload = getattr(data, "payload", None)
        if isinstance(payload, sealed.Descriptor):
            array = sealed.array_from(payload, wire, shape)
        elif isinstance(payload, np.ndarray):
            nbytes = math.prod(shape) * wire.itemsize
            if len(payload) != nbytes:
                raise ValueError(f"the attachment holds {len(payload)} bytes, shape "
                                 f"{list(shape)} of {data.dtype} needs {nbytes}")
            array = payload.view(wire).reshape(shape)
        else:
            raise ValueError("the array names an attachment or descriptor the message does not "
                             "carry")
        return array.astype(data.dtype, copy=False)
    if data.data is None:
        raise ValueError("the array has no inline 'data'")
    if data.segment is not None:
        raise ValueError("the array has both 'data' and 'segment': an array is in one place")
    shape = checked_shape(data.shape)
    try:
        raw = base64.b64decode(data.data, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"'data' is not base64: {exc}") from None
    itemsize = np.dtype(_WIRE_DTYPES[data.dtype]).itemsize
    size = int(np.prod(shape, dtype=np.int64))
    if len(raw) != size * itemsize:
        raise ValueError(f"array data holds {len(raw)} bytes, shape {list(shape)} of "
                         f"{data.dtype} needs {size * itemsize}")
    array = np.frombuffer(raw, dtype=_WIRE_DTYPES[data.dtype])
    return array.reshape(shape).astype(data.dtype, copy=False)


class _Converters(dict[type, Callable[[Any], Any]]):
    """How the encoder writes each kind of object it meets in generic params, found once per
    type (a streamed gate costs a lookup): Gate and Circuit objects as their data (a Circuit's
    JSON as it encoded it last, while it is unchanged), NumPy scalars as the numbers they are,
    NumPy arrays by `array` (base64 unless an encoder has better)."""

    def __init__(self, array: Callable[[np.ndarray], Any]) -> None:
        super().__init__()
        self.array = array

    def convert(self, value: Any) -> Any:
        """The encoder's hook: `value` as what its type is written as."""
        return self[type(value)](value)

    def __missing__(self, kind: type) -> Callable[[Any], Any]:
        self[kind] = convert = self._find(kind)
        return convert

    def _find(self, kind: type) -> Callable[[Any], Any]:
        if issubclass(kind, np.ndarray):
            return self.array
        if issubclass(kind, np.generic):
            return np.generic.item
        for method in ("encoded", "to_data"):
            if callable(getattr(kind, method, None)):
                return cast(Callable[[Any], Any], getattr(kind, method))

        def refuse(value: Any) -> Any:
            raise TypeError(f"cannot encode {kind.__name__} objects")
        return refuse


encoder: Final = msgspec.json.Encoder(enc_hook=_Converters(encode_array).convert)
"""The encoder of messages in text framing, arrays as base64 (both ends, until a session agrees
on more)."""


def bind(value: Any, frame: Frame) -> None:
    """Give each ArrayData of a decoded message (its params or result, or a field of them) the
    attachment or descriptor it names, as `payload`; ValueError for one it names that the
    message does not carry. Descriptors no array names are closed."""
    for data in _arrays(value):
        if sum(x is not None for x in (data.data, data.segment, data.attachment,
                                       data.descriptor)) > 1:
            raise ValueError("an array is in more than one place (data, segment, attachment, "
                             "descriptor)")
        if data.attachment is not None:
            vars(data)["payload"] = _item(frame.attachments, data.attachment, "attachment")
        elif data.descriptor is not None:
            vars(data)["payload"] = _item(frame.descriptors, data.descriptor, "descriptor")
    for descriptor in frame.descriptors:
        if not any(getattr(d, "payload", None) is descriptor for d in _arrays(value)):
            descriptor.close()


def _arrays(value: Any) -> list[ArrayData]:
    """The ArrayData of a decoded message, in the Structs and lists of Structs it holds
    (`execute/many`'s runs and results)."""
    if isinstance(value, ArrayData):
        return [value]
    if isinstance(value, msgspec.Struct):
        return [a for name in value.__struct_fields__ for a in _arrays(getattr(value, name))]
    if isinstance(value, list) and value and isinstance(value[0], msgspec.Struct):
        return [a for item in value for a in _arrays(item)]
    return []


def _item(items: Sequence[Any], index: int, what: str) -> Any:
    if not 0 <= index < len(items):
        raise ValueError(f"the array names {what} {index}; the message carries {len(items)}")
    return items[index]


class WireEncoder:
    """How one end writes its messages once the session agreed on more than text: NumPy arrays
    met while encoding become attachments (`binary`), or, when large enough and `seal` makes a
    sealed memfd of them, descriptors; else base64."""

    def __init__(self) -> None:
        self.binary = False
        self.seal: Callable[[np.ndarray], int | None] | None = None
        """Makes a sealed memfd holding an array (None: it cannot now)."""
        self._encoder = msgspec.json.Encoder(enc_hook=_Converters(self._array).convert)
        self._attachments: list[memoryview] = []
        self._fds: list[int] = []

    def encode(self, message: Any, *, seal: bool = True
               ) -> tuple[bytes, list[memoryview], list[int]]:
        """The message's line (with its envelope), the attachments that follow it, and the
        descriptors to pass before it (the caller's to close once passed)."""
        self._attachments, self._fds = [], []
        sealing, self.seal = self.seal, (self.seal if seal else None)
        try:
            line = self._encoder.encode(message)
        except BaseException:
            for fd in self._fds:
                sealed.close_quietly(fd)
            raise
        finally:
            self.seal = sealing
        attachments, fds = self._attachments, self._fds
        self._attachments, self._fds = [], []
        return framed(line, [len(a) for a in attachments], len(fds)), attachments, fds

    def _array(self, array: np.ndarray) -> ArrayData:
        shape = list(array.shape)
        if self.seal is not None and array.nbytes >= sealed.MIN_BYTES:
            fd = self.seal(array)
            if fd is not None:
                self._fds.append(fd)
                return ArrayData(array.dtype.name, shape, descriptor=len(self._fds) - 1)
        if not self.binary:
            return encode_array(array)
        wire = np.ascontiguousarray(array, dtype=_WIRE_DTYPES[array.dtype.name])
        self._attachments.append(wire.reshape(-1).data.cast("B"))
        return ArrayData(array.dtype.name, shape, attachment=len(self._attachments) - 1)

