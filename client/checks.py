"""Checks on the SDK's arguments, made before anything is encoded.

Without them a wrong type reaches protobuf or numpy and comes back as a bare ``TypeError``
or ``ValueError`` (``create_collection(dim=-1)``: "Value out of range: -1"). Each check here
raises ``InvalidArgumentError`` naming the argument, the value and what is allowed, so the
SDK keeps its contract: every failure a caller can cause is a ``VectordError``.

Rules that the server enforces for every language (collection names, hnsw ranges, id and
document sizes, metadata keys) stay the server's: they are not repeated here. Only what
cannot be encoded at all is caught on this side.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, Mapping

import numpy as np

from vectord.errors import InvalidArgumentError

#: Largest value of a ``uint32`` proto field (limits, offsets, hnsw parameters).
UINT32_MAX = 2**32 - 1


def shown(value: Any) -> str:
    """``value`` for an error message: its type and a short repr."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return text if value is None or isinstance(value, (str, bool, int, float)) else f"{type(value).__name__} {text}"


def text(value: Any, field: str) -> str:
    """A ``str`` that encodes as UTF-8 (protobuf refuses lone surrogates)."""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{field}: expected a string, got {shown(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(f"{field}: {shown(value)} is not valid Unicode text (a lone surrogate at "
                                   f"position {exc.start}; strings must encode as UTF-8)") from None
    return value


def optional_text(value: Any, field: str) -> str | None:
    return None if value is None else text(value, field)


def as_list(value: Any, field: str) -> list:
    """A list from a list-like; one string (or dict) stands for a list of one."""
    if isinstance(value, (str, bytes, Mapping)):
        return [value]
    if value is None:
        raise InvalidArgumentError(f"{field}: must not be None")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return [value.item()]
    try:
        return list(value)
    except TypeError:
        raise InvalidArgumentError(f"{field}: expected a list, got {shown(value)}") from None


def texts(values: Any, field: str) -> list[str]:
    """A list of strings (one string stands for a list of one)."""
    items = as_list(values, field)
    for i, item in enumerate(items):
        text(item, f"{field}[{i}]")
    return items


def optional_texts(values: Any, field: str) -> list[str | None]:
    """A list of strings or None (documents)."""
    items = as_list(values, field)
    for i, item in enumerate(items):
        if item is not None:
            text(item, f"{field}[{i}]")
    return items


def integer(value: Any, field: str, low: int, high: int) -> int:
    """An int (not a bool) in ``low..high``."""
    if type(value) is int and low <= value <= high:  # the common case, without the ABC checks
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or not low <= int(value) <= high:
        raise InvalidArgumentError(f"{field} must be an integer in {low}..{high}, got {shown(value)}")
    return int(value)


def optional_integer(value: Any, field: str, low: int, high: int) -> int | None:
    return None if value is None else integer(value, field, low, high)


def boolean(value: Any, field: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidArgumentError(f"{field} must be True or False, got {shown(value)}")
    return bool(value)


def optional_mapping(value: Any, field: str) -> Mapping | None:
    if value is not None and not isinstance(value, Mapping):
        raise InvalidArgumentError(f"{field}: expected a dict, got {shown(value)}")
    return value


def seconds(value: Any, field: str) -> float:
    """A positive, finite number of seconds."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"{field} must be a positive number of seconds, got {shown(value)}")
    return float(value)


def matrix(embeddings: Any, field: str) -> np.ndarray:
    """A 2-d float32 array from a list of vectors, one vector, or an array."""
    if type(embeddings) is np.ndarray and embeddings.dtype == np.float32 and embeddings.ndim == 2:
        return embeddings  # already what the wire wants: no conversion, no checks to make
    if isinstance(embeddings, (str, bytes, Mapping)):
        raise InvalidArgumentError(f"{field}: expected a list of vectors or a 2-d array of numbers, "
                                   f"got {shown(embeddings)}")
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # too large for float32: inf, refused below
            array = np.asarray(embeddings, dtype=np.float32)
    except (TypeError, ValueError, OverflowError) as exc:  # ragged rows, strings, None, objects
        raise InvalidArgumentError(f"{field}: expected a list of vectors (lists of numbers, all of one "
                                   f"length) or a 2-d array of numbers ({exc})") from None
    if array.ndim == 1 and array.size:
        array = array[None, :]
    if array.ndim != 2:
        raise InvalidArgumentError(f"{field}: expected a list of vectors or a 2-d array, got shape {array.shape}")
    return array  # NaN, infinities and dimensions are the server's to check (naming the id)


def connection(address: Any, path: Any, api_key: Any, timeout: Any, tls: Any, pems: dict[str, Any],
               allow_reset: Any) -> float:
    """The arguments of ``Client(...)`` and ``AsyncClient(...)``; returns the timeout."""
    optional_text(address, "address")
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise InvalidArgumentError(f"path: expected a directory path (str or os.PathLike), got {shown(path)}")
    if api_key is not None:
        # sent as gRPC metadata: printable ASCII only
        if not isinstance(api_key, str) or not api_key or not api_key.isascii() or not api_key.isprintable() \
                or any(ch.isspace() for ch in api_key):
            raise InvalidArgumentError("api_key: expected a non-empty string of printable ASCII without spaces "
                                       f"(got a {type(api_key).__name__})")
    boolean(tls, "tls")
    for name, value in pems.items():
        if value is not None and not isinstance(value, (str, bytes, os.PathLike)):
            raise InvalidArgumentError(f"{name}: expected a PEM file path or PEM bytes, got {shown(value)}")
    if allow_reset is not None and boolean(allow_reset, "allow_reset") and address is not None:
        raise InvalidArgumentError("allow_reset applies to embedded use (path=...); a server allows reset "
                                   "only when started with `vectord serve --allow-reset`")
    return seconds(timeout, "timeout")
