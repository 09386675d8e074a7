"""Byte offsets into a packed column as 4-byte integers while they fit, 8-byte after.

Why (issue 13, per-record memory): the id and metadata columns (storage/id_index.py,
storage/records.py) keep an offset a record into their buffer; a buffer under 4 GiB (every
collection measured so far: ids and metadata are tens of bytes a record) needs 4 bytes an
offset, not 8. The arrays are ``array.array``s (a scalar read is a plain int, 3 x faster
than numpy's): typecode ``I`` (uint32) until a value passes ``MAX32``, then ``q`` (int64),
widened once by ``widened``.
"""

from __future__ import annotations

from array import array

import numpy as np

MAX32 = 0xFFFFFFFF
assert array("I").itemsize == 4, "array typecode I is not 4 bytes on this platform"


def offsets_array(values: np.ndarray) -> array:
    """``values`` (non-negative integers) as an offsets array of the narrowest typecode."""
    values = np.asarray(values)
    if not len(values) or int(values.max()) <= MAX32:
        return array("I", values.astype(np.uint32).tobytes())
    return array("q", values.astype(np.int64).tobytes())


def widened(offsets: array, top: int) -> array:
    """``offsets`` able to hold ``top``: the same array, or an int64 copy the first time a
    value passes ``MAX32``."""
    if top <= MAX32 or offsets.typecode == "q":
        return offsets
    return array("q", offsets)


def as_numpy(offsets: array) -> np.ndarray:
    """A numpy view of an offsets array (uint32 or int64: cast what you gather, if you
    subtract or add)."""
    return np.frombuffer(offsets, np.uint32 if offsets.typecode == "I" else np.int64)
