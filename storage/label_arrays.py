"""Sets of record labels as sorted numpy int64 arrays, and set algebra over them.

The metadata index (storage/metadata_index.py) keeps the labels holding each value in a
``LabelArray`` and answers a filter with the functions below, so that a filter becomes the
int array an exact search or a graph search needs without a Python object per label.

Labels are slots of the collection (0 .. slots-1), so a union or a difference of large
arrays is done with a boolean mask over the slots (linear, and the result comes out sorted)
rather than by sorting; small ones are merged by sorting, which is cheaper than a mask over
every slot.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

EMPTY = np.empty(0, np.int64)
EMPTY.setflags(write=False)

#: Below this many labels per slot a union sorts rather than filling a mask over every slot.
_MASK_FRACTION = 1 / 16


class LabelArray:
    """A growable sorted array of distinct labels (8 bytes a label, doubling capacity).

    Labels are mostly added in increasing order (a new record takes the next label), which
    appends; any other order inserts in place. ``view()`` is the live part, not a copy.
    """

    __slots__ = ("_buf", "_n")

    def __init__(self, labels: np.ndarray | None = None) -> None:
        if labels is None:
            self._buf, self._n = np.empty(1, np.int64), 0
        else:
            self._buf, self._n = np.asarray(labels, np.int64), len(labels)

    def __len__(self) -> int:
        return self._n

    def view(self) -> np.ndarray:
        """The labels, sorted (a view of the internal buffer: do not change it)."""
        return self._buf[: self._n]

    def add(self, label: int) -> bool:
        """Adds ``label``; False when it was already there."""
        n, buf = self._n, self._buf
        if n and buf[n - 1] >= label:
            at = int(np.searchsorted(buf[:n], label))
            if at < n and buf[at] == label:
                return False
        else:
            at = n
        if n == len(buf):
            grown = np.empty(max(4, 2 * n), np.int64)
            grown[:n] = buf[:n]
            self._buf = buf = grown
        if at < n:
            buf[at + 1: n + 1] = buf[at:n].copy()
        buf[at] = label
        self._n = n + 1
        return True

    def add_sorted(self, labels: np.ndarray) -> int:
        """Adds sorted distinct ``labels`` at once; returns how many were new. A batch of new
        records (labels past every label here) is one append, not one numpy call a label."""
        if not len(labels):
            return 0
        n, buf = self._n, self._buf
        if n and buf[n - 1] >= labels[0]:  # not all past the end: merge (rare: replay, relabel)
            merged = np.union1d(buf[:n], labels)
            self._buf, self._n = merged, len(merged)
            return len(merged) - n
        total = n + len(labels)
        if total > len(buf):
            grown = np.empty(max(4, 2 * n, total), np.int64)
            grown[:n] = buf[:n]
            self._buf = buf = grown
        buf[n:total] = labels
        self._n = total
        return len(labels)

    def discard(self, label: int) -> None:
        n, buf = self._n, self._buf
        at = int(np.searchsorted(buf[:n], label))
        if at < n and buf[at] == label:
            buf[at: n - 1] = buf[at + 1: n].copy()
            self._n = n - 1
            if self._n < len(buf) // 4 and len(buf) > 8:  # give memory back after many removals
                self._buf = buf[: max(self._n * 2, 4)].copy()


def as_labels(labels: Iterable[int] | np.ndarray) -> np.ndarray:
    """Any collection of distinct labels as a sorted int64 array (arrays from
    ``LiveLabels.array`` and this module are passed through)."""
    if isinstance(labels, np.ndarray):
        return labels
    array = getattr(labels, "array", None)
    if array is not None:
        return array()
    out = np.fromiter(labels, np.int64)
    out.sort()
    return out


def _span(arrays: list[np.ndarray]) -> int:
    return max(int(a[-1]) for a in arrays if len(a)) + 1


def union(arrays: list[np.ndarray]) -> np.ndarray:
    """The sorted union of sorted label arrays (a new array)."""
    arrays = [a for a in arrays if len(a)]
    if not arrays:
        return EMPTY.copy()
    if len(arrays) == 1:
        return arrays[0].copy()
    total = sum(len(a) for a in arrays)
    span = _span(arrays)
    if total < span * _MASK_FRACTION:
        return np.unique(np.concatenate(arrays))
    mask = np.zeros(span, np.bool_)
    for a in arrays:
        mask[a] = True
    return np.flatnonzero(mask).astype(np.int64, copy=False)


def sort_labels(labels: np.ndarray) -> np.ndarray:
    """Distinct labels in any order, sorted (a new array)."""
    if len(labels) < 2:
        return labels.copy()
    span = int(labels.max()) + 1
    if len(labels) < span * _MASK_FRACTION:
        return np.sort(labels)
    mask = np.zeros(span, np.bool_)
    mask[labels] = True
    return np.flatnonzero(mask).astype(np.int64, copy=False)


def intersection(arrays: list[np.ndarray]) -> np.ndarray:
    """The sorted intersection of sorted label arrays (a new array)."""
    if not arrays:
        return EMPTY.copy()
    arrays = sorted(arrays, key=len)
    out = arrays[0].copy()
    for other in arrays[1:]:
        if not len(out):
            break
        at = np.searchsorted(other, out)
        at[at == len(other)] = 0  # past the end: other[0] < the label, so never equal below
        out = out[other[at] == out]
    return out


def difference(live: np.ndarray, remove: np.ndarray) -> np.ndarray:
    """The labels of ``live`` not in ``remove`` (both sorted; a new array)."""
    if not len(remove) or not len(live):
        return live.copy()
    mask = np.zeros(max(int(live[-1]), int(remove[-1])) + 1, np.bool_)
    mask[remove] = True
    return live[~mask[live]]
