"""Conversions between Python values and the v1 wire messages, shared by SDK and server.

Vectors travel as packed little-endian float32 (``Vectors``); metadata values as the typed
``Value`` message, so that ints stay ints. Only numpy and the generated modules are imported.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from vectord import limits
from vectord.errors import InvalidArgumentError
from vectord.v1 import types_pb2 as pb

_F32LE = np.dtype("<f4")


def vectors_to_proto(array: np.ndarray) -> pb.Vectors:
    """Packs a 2-d array of shape (count, dim) into a ``Vectors`` message."""
    array = np.ascontiguousarray(array, dtype=_F32LE)
    count, dim = array.shape
    return pb.Vectors(dim=dim, count=count, data_f32le=array.tobytes())


def vectors_from_proto(msg: pb.Vectors, field: str = "embeddings") -> np.ndarray:
    """Unpacks a ``Vectors`` message into a read-only (count, dim) float32 array, no copy."""
    expected = msg.count * msg.dim * 4
    if len(msg.data_f32le) != expected:
        raise InvalidArgumentError(
            f"{field}: data_f32le holds {len(msg.data_f32le)} bytes, expected count*dim*4 = "
            f"{msg.count}*{msg.dim}*4 = {expected}"
        )
    if msg.dim == 0 and msg.count:
        raise InvalidArgumentError(f"{field}: dim must be at least 1")
    return np.frombuffer(msg.data_f32le, dtype=_F32LE).reshape(msg.count, msg.dim)


def _too_deep(path: str) -> InvalidArgumentError:
    # the same rule and words as the server's check (storage/validation.py); checked here
    # before encoding, since protobuf itself refuses messages nested ~30 metadata levels
    # deep with a bare DecodeError, and Python recursion would end in a RecursionError
    return InvalidArgumentError(f"{path}: nested deeper than {limits.MAX_METADATA_DEPTH} levels "
                                "(the limit on metadata nesting)")


def _not_text(path: str, exc: UnicodeError) -> InvalidArgumentError:
    return InvalidArgumentError(f"{path}: not valid Unicode text (a lone surrogate at position "
                                f"{getattr(exc, 'start', '?')}; strings must encode as UTF-8)")


def value_to_proto(value: Any, path: str = "metadata", depth: int = 1) -> pb.Value:
    """Converts a Python metadata value into a typed ``Value``; ``depth`` is the value's
    nesting level (the values of a top-level metadata dict are at level 2)."""
    if depth > limits.MAX_METADATA_DEPTH:
        raise _too_deep(path)
    if value is None:
        return pb.Value(null_value="NULL_VALUE")  # google.protobuf.NullValue, by name
    if isinstance(value, (bool, np.bool_)):
        return pb.Value(bool_value=bool(value))
    if isinstance(value, (int, np.integer)):
        value = int(value)
        if not -(2**63) <= value < 2**63:
            raise InvalidArgumentError(f"{path}: integer {value} does not fit in int64")
        return pb.Value(int_value=value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise InvalidArgumentError(f"{path}: {value} is not a finite number")
        return pb.Value(double_value=float(value))
    if isinstance(value, str):
        try:
            return pb.Value(string_value=value)
        except UnicodeError as exc:
            raise _not_text(path, exc) from None
    if isinstance(value, Mapping):
        return pb.Value(map_value=metadata_to_proto(value, path, depth))
    if isinstance(value, (list, tuple)):
        if value and depth >= limits.MAX_METADATA_DEPTH:
            raise _too_deep(f"{path}[0]")
        items = [value_to_proto(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
        return pb.Value(list_value=pb.ListValue(values=items))
    raise InvalidArgumentError(
        f"{path}: unsupported metadata type {type(value).__name__}; use str, int, float, "
        "bool, None, list or dict"
    )


def value_from_proto(msg: pb.Value) -> Any:
    """Converts a typed ``Value`` back into a Python value."""
    kind = msg.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind == "list_value":
        return [value_from_proto(v) for v in msg.list_value.values]
    if kind == "map_value":
        return metadata_from_proto(msg.map_value)
    return getattr(msg, kind)


def metadata_to_proto(mapping: Mapping[str, Any], path: str = "metadata", depth: int = 1) -> pb.Metadata:
    """Converts a metadata dict (at nesting level ``depth``) into a ``Metadata`` message."""
    return metadata_into(pb.Metadata(), mapping, path, depth)


def metadata_into(out: pb.Metadata, mapping: Mapping[str, Any], path: str = "metadata",
                  depth: int = 1) -> pb.Metadata:
    """``metadata_to_proto`` filling ``out`` (an empty message, e.g. a repeated field's
    ``add()``) in place: no copy of a finished message into its parent."""
    if type(mapping) is not dict and not isinstance(mapping, Mapping):  # a dict: no ABC check (~1 us)
        raise InvalidArgumentError(f"{path}: expected a dict, got {type(mapping).__name__} {mapping!r:.60}")
    fields = out.fields
    if mapping and depth >= limits.MAX_METADATA_DEPTH:
        raise _too_deep(f"{path}.{next(iter(mapping))}")
    try:
        _fill_fields(fields, mapping, path, depth)
    except UnicodeError as exc:  # a key, or a string set on the fast path
        raise _not_text(path, exc) from None
    return out


def _fill_fields(fields: Any, mapping: Mapping[str, Any], path: str, depth: int) -> None:
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise InvalidArgumentError(f"{path}: key {key!r} is not a string")
        # Hot path (every record of a write, get or query result): plain scalars are set in
        # place, by exact type, without building and copying a Value (2-3x faster); anything
        # else, and every error, goes through value_to_proto.
        kind = type(value)
        if kind is int and -(2**63) <= value < 2**63:
            fields[key].int_value = value
        elif kind is str:
            fields[key].string_value = value
        elif kind is float and math.isfinite(value):
            fields[key].double_value = value
        elif kind is bool:
            fields[key].bool_value = value
        else:
            fields[key].CopyFrom(value_to_proto(value, f"{path}.{key}", depth + 1))


_SCALAR_KINDS = frozenset({"int_value", "string_value", "double_value", "bool_value"})


def metadata_from_proto(msg: pb.Metadata) -> dict[str, Any]:
    """Converts a ``Metadata`` message into a dict."""
    out: dict[str, Any] = {}
    for key, value in msg.fields.items():
        kind = value.WhichOneof("kind")  # scalars inline: the hot path of every record
        out[key] = getattr(value, kind) if kind in _SCALAR_KINDS else value_from_proto(value)
    return out
