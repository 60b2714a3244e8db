"""Arrays on the wire (base64 of little-endian bytes, the encoding every backend supports), and
the encoder of every message.

Decoding trusts nothing: a malformed array (an unknown dtype, a negative or absurd shape, base64
of the wrong length) is a ValueError saying what is wrong.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

import msgspec
import numpy as np

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
    """The array an `ArrayData` holds inline, of `dtype` when given; ValueError if it is
    malformed."""
    if data.dtype not in _WIRE_DTYPES:
        raise ValueError(f"unsupported dtype {data.dtype!r}; expected one of {list(_WIRE_DTYPES)}")
    if dtype is not None and data.dtype != dtype:
        raise ValueError(f"dtype {data.dtype!r} where {dtype!r} was asked for")
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


def _to_data(value: Any) -> Any:
    """What the encoder writes for objects in generic params: Gate and Circuit objects as
    their data (a Circuit's JSON as it encoded it last, while it is unchanged), NumPy arrays as
    base64, NumPy scalars as the numbers they are."""
    if isinstance(value, np.ndarray):
        return encode_array(value)
    if isinstance(value, np.generic):
        return value.item()
    encoded = getattr(value, "encoded", None)
    if encoded is not None:
        return encoded()
    try:
        return value.to_data()
    except AttributeError:
        raise TypeError(f"cannot encode {type(value).__name__} objects") from None


encoder: Final = msgspec.json.Encoder(enc_hook=_to_data)
"""The one encoder both ends write messages with."""
