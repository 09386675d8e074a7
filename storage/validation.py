"""Checks on everything a caller hands the engine; each error names the field, the value
and the limit, and is raised before anything is written."""

from __future__ import annotations

import math
import re
from typing import Any, Sequence

import msgpack
import numpy as np

from vectord import limits
from vectord.errors import InvalidArgumentError

METRICS = ("cosine", "l2", "ip")
_NAME = re.compile(r"[A-Za-z0-9._-]+")

#: HNSW parameters: name -> (default, minimum, maximum).
HNSW_PARAMS: dict[str, tuple[int, int, int]] = {
    "m": (16, 2, 128),
    "ef_construction": (100, 8, 4096),
    "ef_search": (100, 1, 4096),
}


def collection_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError("collection name must be a non-empty string")
    if len(name) > limits.MAX_COLLECTION_NAME:
        raise InvalidArgumentError(
            f"collection name {name[:40]!r}... is {len(name)} characters, the limit is "
            f"{limits.MAX_COLLECTION_NAME}"
        )
    if not _NAME.fullmatch(name) or name.startswith("."):
        raise InvalidArgumentError(
            f"collection name {name!r} must use only [A-Za-z0-9._-] and not start with '.'"
        )
    return name


def dim(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limits.MAX_DIM:
        raise InvalidArgumentError(f"dim must be an integer in 1..{limits.MAX_DIM}, got {value!r}")
    return value


def metric(value: Any) -> str:
    if value not in METRICS:
        raise InvalidArgumentError(f"metric must be one of {', '.join(METRICS)}, got {value!r}")
    return value


def hnsw_params(params: dict[str, Any] | None) -> dict[str, int]:
    """Fills defaults and checks each parameter against the whitelist and its range."""
    params = dict(params or {})
    unknown = set(params) - set(HNSW_PARAMS)
    if unknown:
        raise InvalidArgumentError(
            f"unknown hnsw parameter(s) {sorted(unknown)}; allowed: {sorted(HNSW_PARAMS)}"
        )
    out = {}
    for key, (default, low, high) in HNSW_PARAMS.items():
        value = params.get(key) or default
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise InvalidArgumentError(f"hnsw.{key} must be an integer in {low}..{high}, got {value!r}")
        out[key] = value
    return out


def _is_text(value: str) -> bool:
    """Whether ``value`` encodes as UTF-8 (no lone surrogate): what the log can store."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _not_text(path: str, value: str) -> InvalidArgumentError:
    at = next((i for i, ch in enumerate(value) if "\ud800" <= ch <= "\udfff"), "?")
    return InvalidArgumentError(f"{path}: not valid Unicode text (a lone surrogate at position {at}; "
                                "strings must encode as UTF-8)")


def ids(values: Sequence[Any], *, allow_empty_batch: bool = False) -> list[str]:
    """Checks ids: strings, non-empty, within the byte limit, unique in the batch."""
    if len(values) > limits.MAX_BATCH_RECORDS:
        raise InvalidArgumentError(
            f"ids: batch of {len(values)} records, the limit is {limits.MAX_BATCH_RECORDS}"
        )
    if not values and not allow_empty_batch:
        raise InvalidArgumentError("ids: at least one id is required")
    seen: set[str] = set()
    for i, value in enumerate(values):
        if not isinstance(value, str) or not value:
            raise InvalidArgumentError(f"ids[{i}]: id must be a non-empty string, got {value!r}")
        if not _is_text(value):
            raise _not_text(f"ids[{i}]", value)
        if len(value.encode("utf-8", "surrogatepass")) > limits.MAX_ID_BYTES:
            raise InvalidArgumentError(
                f"ids[{i}]: id {value[:40]!r}... is longer than {limits.MAX_ID_BYTES} bytes"
            )
        if value in seen:
            raise InvalidArgumentError(f"ids[{i}]: id {value!r} appears twice in the batch")
        seen.add(value)
    return list(values)


def vectors(array: Any, count: int, expected_dim: int, metric_name: str, ids_: Sequence[str],
            field: str = "embeddings") -> np.ndarray:
    """Returns a C-contiguous float32 (count, dim) array of finite vectors."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise InvalidArgumentError(f"{field}: expected a 2-d array, got shape {array.shape}")
    if array.shape[0] != count:
        raise InvalidArgumentError(f"{field}: {array.shape[0]} vectors for {count} ids")
    if array.shape[1] != expected_dim:
        raise InvalidArgumentError(
            f"{field}: collection expects dim {expected_dim}, got {array.shape[1]}"
        )
    array = np.ascontiguousarray(array, dtype=np.float32)
    if count == 1:
        # a single query: its squared norm, in float64 (no float32 value overflows or
        # underflows it), is finite and non-zero exactly when the vector is (this check: 3.1 us
        # against 4.6 with the reductions below)
        row = array[0].astype(np.float64)
        square = float(np.dot(row, row))
        if square < math.inf and (square > 0.0 or metric_name != "cosine"):
            return array
    # one whole-array reduction on the common path; the row is looked for only on failure
    # (a single query's validation was 16-30 us, most of it per-row reductions)
    if not np.isfinite(array).all():
        bad = int(np.argmin(np.isfinite(array).all(axis=1)))
        raise InvalidArgumentError(f"{field}[{bad}] (id {ids_[bad]!r}): NaN or infinite component")
    if metric_name == "cosine":
        nonzero = array.any(axis=1)
        if not nonzero.all():
            bad = int(np.argmin(nonzero))
            raise InvalidArgumentError(
                f"{field}[{bad}] (id {ids_[bad]!r}): zero vector in a cosine collection"
            )
    return array


def documents(values: Sequence[Any], count: int) -> list[str | None]:
    if len(values) != count:
        raise InvalidArgumentError(f"documents: {len(values)} documents for {count} ids")
    for i, value in enumerate(values):
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidArgumentError(f"documents[{i}]: expected a string, got {type(value).__name__}")
        if not _is_text(value):
            raise _not_text(f"documents[{i}]", value)
        if len(value) > limits.MAX_DOCUMENT_BYTES // 4 and len(value.encode("utf-8", "surrogatepass")) > limits.MAX_DOCUMENT_BYTES:
            raise InvalidArgumentError(
                f"documents[{i}]: document is longer than {limits.MAX_DOCUMENT_BYTES} bytes"
            )
    return list(values)


def _check_value(value: Any, path: str, depth: int, dotted_keys: bool = True) -> None:
    if depth > limits.MAX_METADATA_DEPTH:
        raise InvalidArgumentError(f"{path}: nested deeper than {limits.MAX_METADATA_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key or key.startswith("$"):
                raise InvalidArgumentError(
                    f"{path}: key {key!r} must be a non-empty string not starting with '$'"
                )
            if not _is_text(key):
                raise _not_text(f"{path}: key {key!r}", key)
            # Filters address nested maps by dotted paths ("tags.kind"), so a key holding a
            # dot could never be filtered on. A top-level dotted key set to None is allowed:
            # in an update or upsert it removes that key from data written before this rule.
            if not dotted_keys and "." in key and not (depth == 1 and item is None):
                raise InvalidArgumentError(
                    f"{path}: key {key!r} contains '.', which filters read as a path into "
                    f"nested maps; use a nested map ({{{key.split('.')[0]!r}: {{...}}}}) or another "
                    "character such as '_'"
                )
            _check_value(item, f"{path}.{key}", depth + 1, dotted_keys)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_value(item, f"{path}[{i}]", depth + 1, dotted_keys)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgumentError(f"{path}: {value} is not a finite number")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:
            raise InvalidArgumentError(f"{path}: integer does not fit in int64")
    elif isinstance(value, str):
        if not _is_text(value):
            raise _not_text(path, value)
    elif value is not None and not isinstance(value, bool):
        raise InvalidArgumentError(f"{path}: unsupported type {type(value).__name__}")


#: ``_plain``'s bound on a string's length in characters (4 UTF-8 bytes each at most).
_PLAIN_STR = 256
#: ``_plain``'s bound on the number of keys.
_PLAIN_KEYS = 16


def _plain(value: dict[str, Any], records: bool) -> bool:
    """Whether a metadata map passes every check by its shape alone: a few keys (plain
    strings, no "$" first, no "." in record metadata), each holding None, a bool, an int64,
    a finite float or a short string. Then nesting, types and the encoded size (at most
    ~16 x (1 + 1,024 + 5 + 1,024 + 9) bytes, far under the limit) need no recursive pass
    and no trial encoding: the common map, checked ~3 x faster (a bulk load's per-record
    cost, issue 13). Anything else returns False and gets the full checks."""
    if len(value) > _PLAIN_KEYS:
        return False
    for key, item in value.items():
        if (type(key) is not str or not key or len(key) > _PLAIN_STR or key[0] == "$" or (records and "." in key)
                or not _is_text(key)):
            return False
        kind = type(item)
        if kind is str:
            if len(item) > _PLAIN_STR or not _is_text(item):
                return False
        elif kind is int:
            if not -(2**63) <= item < 2**63:
                return False
        elif kind is float:
            if not math.isfinite(item):
                return False
        elif item is not None and kind is not bool:
            return False
    return True


def metadatas(values: Sequence[Any], count: int, *, records: bool = True) -> list[dict[str, Any] | None]:
    """Checks metadata maps. Record metadata (``records``) may not have a key holding a
    ``.`` at any level: filters read dots as paths. A collection's own metadata is never
    filtered, so it may."""
    if len(values) != count:
        raise InvalidArgumentError(f"metadatas: {len(values)} metadata maps for {count} ids")
    for i, value in enumerate(values):
        if value is None:
            continue
        if not isinstance(value, dict):
            raise InvalidArgumentError(f"metadatas[{i}]: expected a dict, got {type(value).__name__}")
        if _plain(value, records):
            continue  # small and flat: within every limit (see _plain)
        _check_value(value, f"metadatas[{i}]", 1, dotted_keys=not records)
        size = len(msgpack.packb(value, use_bin_type=True))
        if size > limits.MAX_METADATA_BYTES:
            raise InvalidArgumentError(
                f"metadatas[{i}]: {size} bytes encoded, the limit is {limits.MAX_METADATA_BYTES}"
            )
    return list(values)


def query_count(count: int, field: str) -> None:
    if count > limits.MAX_QUERIES:
        raise InvalidArgumentError(f"{field}: {count} queries, the limit is {limits.MAX_QUERIES} per call")


def n_results(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limits.MAX_N_RESULTS:
        raise InvalidArgumentError(f"n_results must be in 1..{limits.MAX_N_RESULTS}, got {value!r}")
    return value
