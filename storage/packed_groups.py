"""Grouping the slots of a packed bytes column by equal value, with numpy.

Why: opening a collection builds its metadata index by grouping records by their encoded
metadata (storage/metadata_index.py ``build_groups``: each distinct encoding is decoded
once). A Python loop over a million slots, slicing each value out of the buffer and
looking it up in a dict, took 2.9-6.6 s of a 1M x 384 collection's 12-21 s open
(benchmarks/results/restart-1m-2026-11-30-3.md); this takes a fraction of a second.

How: values of up to ``SHORT_BYTES`` bytes are gathered into fixed-width rows of 64-bit
words (zero-padded), each row is hashed with its length by a multiply-xor chain, the
hashes are grouped by ``np.unique``, and every row is then compared word by word with its
group's first row, so a hash collision is detected (and the slow path taken), never
merged. Longer values, rare in metadata, are grouped by a dict.
"""

from __future__ import annotations

import numpy as np

#: Values up to this length take the vectorised path (metadata encodings are mostly tens of bytes).
SHORT_BYTES = 128
#: Rows gathered at once: bounds the temporary index array (rows x SHORT_BYTES x 8 bytes at worst).
_BLOCK_ROWS = 1 << 15
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def group_slots(data, starts: np.ndarray, lens: np.ndarray, slots: np.ndarray) -> list[tuple[bytes, np.ndarray]]:
    """The distinct non-empty values at ``slots`` and, for each, its slots (sorted int64).

    Args:
        data: the buffer every value is a slice of (bytes, bytearray or a uint8 array).
        starts: each slot's offset into ``data``.
        lens: each slot's length; 0 is an empty value (None), left out of every group.
        slots: the slots to group (int64; any order, no repeats).

    Example:
        >>> import numpy as np
        >>> data = b"abxab"
        >>> groups = group_slots(data, np.array([0, 2, 3]), np.array([2, 1, 2]), np.array([0, 1, 2]))
        >>> sorted((value, slots.tolist()) for value, slots in groups)
        [(b'ab', [0, 2]), (b'x', [1])]
    """
    buffer = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data
    slots = np.asarray(slots, np.int64)
    lengths = np.asarray(lens, np.int64)[slots]
    offsets = np.asarray(starts, np.int64)[slots]
    present = lengths > 0
    short = present & (lengths <= SHORT_BYTES)
    groups = _group_short(buffer, offsets[short], lengths[short], slots[short])
    if groups is None:  # a hash collision (never seen): every value by the dict
        short[:] = False
        groups = []
    long_rows = np.flatnonzero(present & ~short)
    by_value: dict[bytes, list[int]] = {}
    for row in long_rows.tolist():
        start = int(offsets[row])
        by_value.setdefault(bytes(buffer[start:start + int(lengths[row])]), []).append(int(slots[row]))
    groups += [(value, np.sort(np.asarray(members, np.int64))) for value, members in by_value.items()]
    return groups


def _group_short(buffer: np.ndarray, offsets: np.ndarray, lengths: np.ndarray,
                 slots: np.ndarray) -> list[tuple[bytes, np.ndarray]] | None:
    if not len(slots):
        return []
    words = int(-(-int(lengths.max()) // 8))
    width = words * 8
    rows = np.empty((len(slots), words), np.uint64)
    columns = np.arange(width, dtype=np.int64)
    padded = np.concatenate([buffer, np.zeros(width, np.uint8)])  # gathers past the end read zeros
    for first in range(0, len(slots), _BLOCK_ROWS):
        last = min(len(slots), first + _BLOCK_ROWS)
        gathered = padded[offsets[first:last, None] + columns]
        gathered[columns >= lengths[first:last, None]] = 0  # bytes past a value are not its own
        rows[first:last] = gathered.view(np.uint64)
    hashes = lengths.astype(np.uint64) * _MULTIPLIER
    with np.errstate(over="ignore"):
        for column in range(words):
            hashes = (hashes ^ rows[:, column]) * _MULTIPLIER
            hashes ^= hashes >> np.uint64(29)
    _, first_row, inverse, counts = np.unique(hashes, return_index=True, return_inverse=True,
                                              return_counts=True)
    representative = first_row[inverse]
    if not (np.array_equal(rows, rows[representative]) and np.array_equal(lengths, lengths[representative])):
        return None
    order = np.argsort(inverse, kind="stable")
    members = np.split(slots[order], np.cumsum(counts)[:-1])
    result = []
    for row, group in zip(first_row.tolist(), members):
        start = int(offsets[row])
        result.append((bytes(buffer[start:start + int(lengths[row])]), np.sort(group)))
    return result
