"""Unknown fields that look like misspellings of known ones.

The protocol ignores unknown fields (later versions add some), so `"parameters"` written for a
gate's `"params"` is dropped silently and the error that follows ("missing parameter 'theta'")
does not say why. When a request fails, its params are walked against the method's params type
and such keys are named, with the field they resemble.
"""

from __future__ import annotations

import difflib
from typing import Any

import msgspec
import msgspec.inspect as inspect

MAX_NODES = 10_000
"""Values visited at most: a hint is worth little time, whatever the size of the params."""
CUTOFF = 0.7
"""How alike a key and a field must be (difflib's ratio) to be called a misspelling."""


def misspelled_fields(raw: bytes, params_type: type) -> list[str]:
    """Hints such as `$.circuit.gates[0]: 'parameters' is not a field; did you mean 'params'?`
    for the unknown keys of `raw` (JSON params) close to a field of `params_type`."""
    try:
        value = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return []
    hints: list[str] = []
    budget = [MAX_NODES]
    _walk(value, inspect.type_info(params_type), "$", hints, budget)
    return hints


def _walk(value: Any, info: inspect.Type, path: str, hints: list[str], budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        return
    if isinstance(info, inspect.UnionType):
        for option in info.types:
            _walk(value, option, path, hints, budget)
    elif isinstance(info, inspect.StructType) and isinstance(value, dict):
        fields = {f.encode_name: f.type for f in info.fields}
        for key, item in value.items():
            if key in fields:
                _walk(item, fields[key], f"{path}.{key}", hints, budget)
                continue
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=CUTOFF)
            if close and close[0] not in value:
                hints.append(f"{path}: {key!r} is not a field; did you mean {close[0]!r}?")
    elif isinstance(info, (inspect.ListType, inspect.VarTupleType)) and isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, info.item_type, f"{path}[{index}]", hints, budget)
