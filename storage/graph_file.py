"""A graph file that is written and read without holding the GIL for long (issue 12).

hnswlib's ``save_index`` and ``load_index`` hold the GIL for their whole run (313 and
210 ms for a graph of 50,000 x 384, benchmarks/results/hnswlib-gil-2026-11-30.json), so
every query thread stalled while a sealed or merged segment's graph was written or read.
hnswlib's pickle state (``Index.__getstate__``: python_bindings/bindings.cpp,
``getAnnData``) copies the graph into numpy arrays under the GIL, a few memcpys; this
module writes those arrays with plain file writes (which release it) and reads them back
with ``readinto`` (which releases it too), then hands them to ``__setstate__`` (one more
set of memcpys under the GIL). benchmarks/hnswlib_gil.py measures both paths.

The price is a transient second copy of the graph while it is written or loaded.

    b"VDGRAPH1"  u64 little-endian header length  header (msgpack)  arrays' bytes, in order

The header holds hnswlib's scalar state (``params``) and, per array, [name, dtype, bytes].
The MANIFEST's index entry says ``"format": FORMAT``; a graph without it is hnswlib's own
file (``save_index``), as every generation written before 2026-11-30 holds, still read by
``load_index``.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np

from . import framing

FORMAT = "vectord-graph-1"
MAGIC = b"VDGRAPH1"
_PREFIX = struct.Struct("<8sQ")
_MAX_HEADER = 1 << 20  # the scalars and six array descriptions take a few hundred bytes
_CHUNK = 8 << 20  # bytes per write or read call: the GIL is released for each, taken between

#: The arrays of hnswlib 0.8's state, with the dtypes ``getAnnData`` makes them.
ARRAYS = {"label_lookup_external": "<u8", "label_lookup_internal": "<u4", "element_levels": "<i4",
          "data_level0": "|i1", "link_lists": "|i1"}


def write(index: "hnswlib.Index", out) -> None:
    """Writes ``index``'s graph to ``out`` (a file-like ``write``; the caller's checksum
    writer). Not safe with a concurrent ``add_items`` (hnswlib's own warning): the caller
    holds off the indexer, as for ``save_index``."""
    params = dict(index.__getstate__()[0])  # the one GIL hold: hnswlib copies its graph
    arrays = [(name, params.pop(name)) for name in ARRAYS]
    # element_levels has one entry per slot of capacity; only the elements' are state
    count = params["cur_element_count"]
    arrays = [(name, array[:count] if name == "element_levels" else array) for name, array in arrays]
    header = framing.pack({"params": params,
                           "arrays": [[name, array.dtype.str, array.nbytes] for name, array in arrays]})
    out.write(_PREFIX.pack(MAGIC, len(header)) + header)
    while arrays:
        _, array = arrays.pop(0)
        view = memoryview(np.ascontiguousarray(array)).cast("B")
        del array
        for start in range(0, len(view), _CHUNK):
            out.write(view[start:start + _CHUNK])
        del view  # this array's copy is freed before the next is written


def read(path: Path, feed) -> dict[str, Any]:
    """hnswlib's state from a graph file, every byte read passed to ``feed`` (the caller's
    checksum, compared after: a damaged file that still parses is caught there).

    Raises:
        ValueError: the file is not a graph file of this format (damaged or truncated).
        OSError: it cannot be read.
    """
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(0)
        try:
            return _parse(handle, size, feed)
        finally:  # the checksum covers the whole file even when parsing stopped early
            while chunk := handle.read(_CHUNK):
                feed(chunk)


def _parse(handle, size: int, feed) -> dict[str, Any]:
    prefix = handle.read(_PREFIX.size)
    feed(prefix)
    if len(prefix) != _PREFIX.size:
        raise ValueError("shorter than a graph file's header")
    magic, length = _PREFIX.unpack(prefix)
    if magic != MAGIC or length > min(_MAX_HEADER, size - _PREFIX.size):
        raise ValueError(f"not a {FORMAT} file (magic {magic!r}, header of {length} bytes)")
    header = handle.read(length)
    feed(header)
    try:
        described = framing.unpack(header)
        params, listed = dict(described["params"]), described["arrays"]
        names = [entry[0] for entry in listed]
    except Exception as exc:  # msgpack's errors, a wrong shape
        raise ValueError(f"unreadable graph header ({exc!r})") from exc
    if names != list(ARRAYS) or any(entry[1] != ARRAYS[entry[0]] for entry in listed):
        raise ValueError(f"graph arrays {listed!r} are not hnswlib 0.8's {ARRAYS!r}")
    remaining = size - _PREFIX.size - length
    if sum(entry[2] for entry in listed) != remaining:
        raise ValueError(f"graph arrays of {sum(entry[2] for entry in listed)} bytes in {remaining}")
    for name, dtype, nbytes in listed:
        array = np.empty(nbytes // np.dtype(dtype).itemsize, dtype)
        view = memoryview(array).cast("B")
        for start in range(0, nbytes, _CHUNK):
            part = view[start:start + _CHUNK]
            if handle.readinto(part) != len(part):
                raise ValueError(f"graph file ends inside {name}")
            feed(part)
        params[name] = array
    try:
        _check(params)
    except (KeyError, TypeError, AttributeError) as exc:  # a header without hnswlib's keys
        raise ValueError(f"graph header lacks hnswlib's state ({exc!r})") from exc
    return params


def _check(params: dict[str, Any]) -> None:
    """Sizes that ``__setstate__`` copies by without checking them (a buffer overrun on a
    file that passed its checksum yet is not what this module wrote)."""
    count, per_element = params["cur_element_count"], params["size_data_per_element"]
    levels = params["element_levels"]
    if not (len(params["label_lookup_external"]) == len(params["label_lookup_internal"]) == count == len(levels)):
        raise ValueError(f"graph of {count} elements with {len(levels)} levels and "
                         f"{len(params['label_lookup_internal'])} labels")
    if len(params["data_level0"]) != count * per_element:
        raise ValueError(f"graph level 0 of {len(params['data_level0'])} bytes for {count} x {per_element}")
    if count and (levels.min() < 0 or levels.max() > params["max_level"]
                  or params["label_lookup_internal"].max() >= count
                  or not 0 <= params["enterpoint_node"] < count):
        raise ValueError("graph levels, labels or entry point out of range")
    links = int(levels.astype(np.int64).sum()) * params["size_links_per_element"]
    if len(params["link_lists"]) != links:
        raise ValueError(f"graph link lists of {len(params['link_lists'])} bytes, expected {links}")


def restore(params: dict[str, Any], capacity: int) -> "hnswlib.Index":
    """The hnswlib index of a state ``read`` returned, with room for ``capacity`` elements
    (at least the state's). Holds the GIL while hnswlib copies the arrays in.

    Raises:
        RuntimeError: hnswlib refuses the state (its own checks, e.g. another M).
    """
    params = {**params, "max_elements": max(capacity, params["cur_element_count"])}
    index = hnswlib.Index.__new__(hnswlib.Index)
    index.__setstate__((params,))
    return index
