"""Arrays on the wire: base64 of little-endian bytes, the encoding every backend supports."""

from __future__ import annotations

import base64
from typing import Final

import numpy as np

from .messages import ArrayData

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
