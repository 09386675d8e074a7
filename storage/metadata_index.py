"""Indexes over record metadata, so that filters do not scan every record.

For every path in the metadata (dotted for nested maps) the index keeps:
- the labels holding each scalar value (a hash map to sorted label arrays; ints and doubles
  share numeric keys, bools and strings have their own), for ``eq``, ``ne``, ``in`` and ``nin``;
- the distinct numeric values in order (a ``SortedList``), for ranges: a range is the union
  of the value sets it spans;
- how many labels hold a scalar there, and the labels holding a null, a list or a map, for
  ``exists`` (a scalar's label is already in its value set: it is not stored twice);
- for list values, the labels holding each scalar element (a label once per distinct
  element), for ``contains`` and ``not_contains``.

Paths follow the predicate (filters.py): a key holding a ``.`` (refused on writes since the
rule came in, but possibly in older data) is not indexed, nor anything below it, because no
dotted path reaches it: indexing ``{"a.b": 1}`` under ``a.b`` made the index answer
``{"a.b": 1}`` where the predicate did not.

Labels are kept in sorted numpy int64 arrays (``LabelArray``), not Python sets: 8 bytes a
label instead of a set slot and its share of the table (issue 13: per-record memory), and a
filter resolves to an int array with vectorised unions, intersections and differences, with
no Python object per label (issue 13: a filter matching 10% of 100k records cost 2.3 ms to
turn from sets into the candidate array, more than the exact search over it). A label
appears once per path (in its value's array). Counting a range adds up the sizes of the
value arrays in it; past ``EXACT_RANGE_VALUES`` distinct values the count is an estimate
(flagged as such), which the planner may use and ``count`` may not.

``resolve`` turns a filter into the exact matching labels (a sorted int64 array) when every
condition in it can be answered from these indexes, and returns None otherwise (document
conditions need the text): the caller then checks the remaining conditions record by
record, on the smallest candidate set the indexed part allowed.

It is not thread-safe; the collection's read/write lock guards it.
"""

from __future__ import annotations

from typing import Any, Collection as Sized, Iterable, Iterator

import numpy as np
from sortedcontainers import SortedList

from .filters import And, Document, Field, Filter, Not, Or, equality_key
from .records import decode_metadata, encode_metadata
from .label_arrays import EMPTY, LabelArray, as_labels, difference, intersection, sort_labels, union


_key = equality_key  # the filters' own equality (storage/filters.py), never a second one


def _paths(metadata: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in metadata.items():
        if "." in key:  # unreachable by a path (see the module docstring)
            continue
        path = f"{prefix}{key}"
        yield path, value
        if isinstance(value, dict):
            yield from _paths(value, path + ".")


def _flat(metadata: dict[str, Any]) -> bool:
    """Whether ``_paths(metadata)`` is ``metadata.items()``: no nested map, no dotted key."""
    for key, value in metadata.items():
        if isinstance(value, dict) or "." in key:
            return False
    return True


#: A range spanning at most this many distinct values is counted exactly.
EXACT_RANGE_VALUES = 4096
#: A range over more distinct values than this is answered from ``_PathIndex.ranges``.
_FEW_VALUES = 16


class _PathIndex:
    """Everything indexed about one metadata path."""

    __slots__ = ("by_value", "numbers", "scalars", "others", "elements", "_ranges")

    def __init__(self) -> None:
        self._ranges: tuple[np.ndarray, np.ndarray] | None = None  # see ranges()
        self.by_value: dict[tuple, LabelArray] = {}
        self.numbers: SortedList = SortedList()  # distinct numeric values
        self.scalars = 0  # labels holding a scalar (each is in one by_value array)
        self.others = LabelArray()  # labels holding a null, a list or a map
        self.elements: dict[tuple, LabelArray] | None = None  # list element -> labels; lazily

    def present(self) -> int:
        return self.scalars + len(self.others)

    def labels_present(self) -> np.ndarray:
        return union([self.others.view(), *(labels.view() for labels in self.by_value.values())])

    def insert(self, label: int, value: Any, key: tuple | None = None) -> bool:
        """Indexes ``label`` under ``value`` (``key``: its ``_key``, when the caller has it);
        True when the value is a number this path did not hold yet (the caller adds it to
        ``numbers``, at once or in one sort later)."""
        if key is None:
            key = _key(value)
        if key is None:
            self.others.add(label)
            if isinstance(value, list):
                self._add_elements(label, value)
            return False
        labels = self.by_value.get(key)
        if labels is None:
            labels = self.by_value[key] = LabelArray()
        if key[0] == "n":
            self._ranges = None
        if labels.add(label):
            self.scalars += 1
        return len(labels) == 1 and key[0] == "n"

    def insert_many(self, key: tuple, labels: np.ndarray) -> bool:
        """Indexes sorted distinct ``labels`` under the scalar ``key``; True when the value is
        a number this path did not hold yet (as ``insert``)."""
        found = self.by_value.get(key)
        if found is None:
            found = self.by_value[key] = LabelArray()
        if key[0] == "n":
            self._ranges = None
        was_empty = not len(found)
        added = found.add_sorted(labels)
        self.scalars += added
        return was_empty and added > 0 and key[0] == "n"

    def _add_elements(self, label: int, items: list) -> None:
        if self.elements is None:
            self.elements = {}
        for key in {_key(item) for item in items} - {None}:
            labels = self.elements.get(key)
            if labels is None:
                labels = self.elements[key] = LabelArray()
            labels.add(label)

    def remove(self, label: int, value: Any) -> None:
        """Takes ``label`` out from under ``value`` (as ``insert`` put it there)."""
        key = _key(value)
        if key is None:
            self.others.discard(label)
            if isinstance(value, list) and self.elements is not None:
                for element in {_key(item) for item in value} - {None}:
                    labels = self.elements[element]
                    labels.discard(label)
                    if not labels:
                        del self.elements[element]
            return
        labels = self.by_value[key]
        if key[0] == "n":
            self._ranges = None
        before = len(labels)
        labels.discard(label)
        self.scalars -= before - len(labels)
        if not labels:
            del self.by_value[key]
            if key[0] == "n":
                self.numbers.remove(value)

    def ranges(self, build: bool) -> tuple[np.ndarray, np.ndarray] | None:
        """(offsets, labels): the labels of every numeric value concatenated in value order,
        and where each value's run starts (one more offset than values), so that a range of
        distinct values is one slice and its count one subtraction. Built on demand
        (``build``) and dropped by any change to the path's numbers, so a write costs
        nothing until the next range query that spans many values."""
        if self._ranges is None and build:
            views = [self.by_value[("n", v)].view() for v in self.numbers]
            offsets = np.zeros(len(views) + 1, np.int64)
            np.cumsum([len(v) for v in views], out=offsets[1:])
            self._ranges = offsets, (np.concatenate(views) if views else EMPTY)
        return self._ranges

    def holding(self, element: Any) -> np.ndarray:
        """The labels whose list holds ``element`` (a view owned by the index: do not change)."""
        key = _key(element)
        if key is None or self.elements is None:
            return EMPTY
        labels = self.elements.get(key)
        return EMPTY if labels is None else labels.view()


class MetadataIndex:
    def __init__(self) -> None:
        self._paths: dict[str, _PathIndex] = {}

    def _path(self, path: str) -> _PathIndex:
        index = self._paths.get(path)
        if index is None:
            index = self._paths[path] = _PathIndex()
        return index

    def add(self, label: int, metadata: dict[str, Any]) -> None:
        for path, value in _paths(metadata):
            index = self._path(path)
            if index.insert(label, value):
                index.numbers.add(value)

    def add_many(self, labels: Iterable[int], metadatas: Iterable[dict[str, Any] | None]) -> None:
        """Indexes many new records at once (a write batch, a log record replayed): labels
        are gathered per (path, value) first, so each value's array grows once per batch
        rather than by one numpy call per record. ``labels`` increase (a write's new labels),
        so each value's group is sorted and distinct as gathered."""
        grouped: dict[tuple[str, tuple], tuple[Any, list[int]]] = {}
        for label, metadata in zip(labels, metadatas):
            if not metadata:
                continue
            # a flat map's paths are its keys: walked here, not through _paths' generator
            # (~1 us a record of a bulk load); a nested map's through it
            for path, value in (metadata.items() if _flat(metadata) else _paths(metadata)):
                key = _key(value)
                if key is None:  # null, list or map: one by one, as ``add``
                    self._path(path).insert(label, value)
                else:
                    entry = grouped.get((path, key))
                    if entry is None:
                        grouped[(path, key)] = (value, [label])
                    else:
                        entry[1].append(label)
        for (path, key), (value, group) in grouped.items():
            index = self._path(path)
            if len(group) == 1:  # a value held by one record of the batch (ids, timestamps,
                # i % 1000 in 1,000-record batches): the scalar insert, without numpy's fixed
                # cost per array (~8 us a record)
                new_number = index.insert(group[0], value, key)
            else:
                new_number = index.insert_many(key, np.asarray(group, np.int64))
            if new_number:
                index.numbers.add(value)

    @classmethod
    def build(cls, rows: Iterable[tuple[int, dict[str, Any]]]) -> "MetadataIndex":
        """An index over many (label, metadata) at once (see ``build_encoded``)."""
        return cls.build_encoded((label, encode_metadata(metadata)) for label, metadata in rows)

    @classmethod
    def build_encoded(cls, rows: Iterable[tuple[int, bytes | None]]) -> "MetadataIndex":
        """An index over many (label, encoded metadata) at once: the rows grouped by their
        encoding, then ``build_groups``."""
        by_encoding: dict[bytes, list[int]] = {}
        for label, encoded in rows:
            if encoded:
                group = by_encoding.get(encoded)
                if group is None:
                    by_encoding[encoded] = [label]
                else:
                    group.append(label)
        return cls.build_groups((encoded, np.unique(np.asarray(group, np.int64)))
                                for encoded, group in by_encoding.items())

    @classmethod
    def build_groups(cls, groups: Iterable[tuple[bytes, np.ndarray]]) -> "MetadataIndex":
        """An index over records grouped by their encoded metadata, as when a collection opens
        (``RecordStore.metadata_groups``): each distinct metadata is decoded and walked once
        (a million records over a thousand tenants: a thousand decodes, not a million); each
        value's labels are gathered and made one sorted array, and the ordered value lists
        are sorted once. ``groups``: (encoding, its labels) with distinct encodings."""
        index = cls()
        scalars: dict[str, dict[tuple, list[np.ndarray]]] = {}
        for encoded, group in groups:
            for path, value in _paths(decode_metadata(encoded)):
                key = _key(value)
                if key is None:
                    target = index._path(path)
                    for label in group.tolist():
                        target.insert(label, value)
                else:
                    index._path(path)
                    scalars.setdefault(path, {}).setdefault(key, []).append(group)
        for path, by_key in scalars.items():
            target = index._paths[path]
            for key, parts in by_key.items():
                # a group's labels are sorted and distinct already; copied, since one group
                # feeds every path of its metadata and a LabelArray changes its buffer in place
                array = np.unique(np.concatenate(parts)) if len(parts) > 1 else parts[0].copy()
                target.by_value[key] = LabelArray(array)
                target.scalars += len(array)
            target.numbers = SortedList(key[1] for key in by_key if key[0] == "n")
        return index

    def remove(self, label: int, metadata: dict[str, Any]) -> None:
        for path, value in _paths(metadata):
            index = self._paths[path]
            index.remove(label, value)
            if not index.present():
                del self._paths[path]

    # ------------------------------------------------------------------ queries
    def resolve(self, node: Filter, live: Sized[int] | np.ndarray) -> np.ndarray | None:
        """The labels matching ``node`` exactly (a sorted int64 array, the caller's to
        keep), or None if it needs the records themselves.

        ``live`` is every live label (for negations): a sorted int64 array, or any
        collection of ints (``LiveLabels`` gives its array without listing).
        """
        return self._resolve(node, _Live(live))

    def _resolve(self, node: Filter, live: "_Live") -> np.ndarray | None:
        if isinstance(node, Field):
            return self._field(node, live)
        if isinstance(node, Document):
            return None
        if isinstance(node, Not):
            inner = self._resolve(node.filter, live)
            return None if inner is None else difference(live.array, inner)
        parts = [self._resolve(f, live) for f in node.filters]
        if any(p is None for p in parts):
            return None
        if isinstance(node, Or):
            return union(parts)
        if not parts:  # an empty and is true
            return live.array.copy()
        return intersection(parts)

    def estimate(self, node: Filter, live: int) -> tuple[int, bool] | None:
        """(count, exact) of the records matching ``node``, from the index sizes alone, in
        O(conditions x log n): exact for single conditions and their negations, an upper
        bound for And/Or. A range over more than EXACT_RANGE_VALUES distinct values is the
        exception: its count is sampled (not exact, and not a bound), good for planning only.
        None when the filter has a document condition."""
        if isinstance(node, Field):
            return self._field_count(node, live)
        if isinstance(node, Document):
            return None
        if isinstance(node, Not):
            inner = self.estimate(node.filter, live)
            if inner is None:
                return None
            # live minus an upper bound is a lower bound: only an exact inner count helps
            return (live - inner[0], True) if inner[1] else (live, False)
        parts = [self.estimate(f, live) for f in node.filters]
        if isinstance(node, Or):
            if any(p is None for p in parts):
                return None
            return min(live, sum(p[0] for p in parts)), len(parts) <= 1 and all(p[1] for p in parts)
        known = [p for p in parts if p is not None]
        if not parts:
            return live, True
        if not known:
            return None
        return min(p[0] for p in known), len(parts) == 1 and known[0][1]

    def _field_count(self, node: Field, live: int) -> tuple[int, bool]:
        path, op, value = node.path, node.op, node.value
        index = self._paths.get(path)
        if op in ("eq", "ne", "in", "nin"):
            by_value = index.by_value if index is not None else {}
            keys = {_key(v) for v in (value if op in ("in", "nin") else [value])} - {None}
            found = sum(len(by_value.get(key, ())) for key in keys)
            return (found if op in ("eq", "in") else live - found), True
        if op == "exists":
            present = index.present() if index is not None else 0
            return (present if value else live - present), True
        if op in ("contains", "not_contains"):
            found = len(index.holding(value)) if index is not None else 0
            return (found if op == "contains" else live - found), True
        if index is None or not index.numbers or value != value:  # nothing is in a range of NaN
            return 0, True
        lo, hi = self._range(index.numbers, op, value)
        # the value-ordered slices count any range exactly; built here only when cheap (a
        # query right after a write to a path of very many values samples instead)
        ranges = index.ranges(build=hi - lo > _FEW_VALUES and len(index.numbers) <= EXACT_RANGE_VALUES)
        if ranges is not None:
            return int(ranges[0][hi] - ranges[0][lo]), True
        if hi - lo <= EXACT_RANGE_VALUES:
            return sum(len(index.by_value[("n", v)]) for v in index.numbers.islice(lo, hi)), True
        # many distinct values: distinct values in range x labels per value, from a sample
        sample = index.numbers[:: max(1, len(index.numbers) // 256)]
        per_value = sum(len(index.by_value[("n", v)]) for v in sample) / len(sample)
        return min(live, round((hi - lo) * per_value)), False

    @staticmethod
    def _range(numbers: SortedList, op: str, value: Any) -> tuple[int, int]:
        """Positions [lo, hi) of the distinct values a range condition spans."""
        if op == "gt":
            return numbers.bisect_right(value), len(numbers)
        if op == "gte":
            return numbers.bisect_left(value), len(numbers)
        if op == "lt":
            return 0, numbers.bisect_left(value)
        return 0, numbers.bisect_right(value)  # lte

    def narrow(self, node: Filter, live: Sized[int] | np.ndarray) -> tuple[np.ndarray | None, bool]:
        """(candidates, exact): the labels the indexes allow (a sorted int64 array), and
        whether they are exactly the matches. Candidates are None when nothing in the filter
        is indexable; they are a superset (exact False) when an And mixes indexable and
        document conditions."""
        live = _Live(live)
        exact = self._resolve(node, live)
        if exact is not None:
            return exact, True
        if not isinstance(node, And):
            return None, False
        parts = [p for p in (self._resolve(f, live) for f in node.filters) if p is not None]
        if not parts:
            return None, False
        return intersection(parts), False

    def _equal(self, path: str, value: Any) -> np.ndarray:
        key, index = _key(value), self._paths.get(path)
        labels = index.by_value.get(key) if key is not None and index is not None else None
        return EMPTY if labels is None else labels.view()

    def _field(self, node: Field, live: "_Live") -> np.ndarray:
        path, op, value = node.path, node.op, node.value
        if op == "eq":
            return self._equal(path, value).copy()
        if op == "ne":
            return difference(live.array, self._equal(path, value))
        if op in ("in", "nin"):
            members = union([self._equal(path, v) for v in value])
            return members if op == "in" else difference(live.array, members)
        index = self._paths.get(path)
        if op == "exists":
            present = index.labels_present() if index is not None else EMPTY
            return present if value else difference(live.array, present)
        if op in ("contains", "not_contains"):
            holding = index.holding(value) if index is not None else EMPTY
            return holding.copy() if op == "contains" else difference(live.array, holding)
        if index is None or value != value:  # nothing is in a range of NaN
            return EMPTY.copy()
        lo, hi = self._range(index.numbers, op, value)
        if hi - lo > _FEW_VALUES:  # one slice of the path's value-ordered labels, then sorted
            offsets, labels = index.ranges(build=True)
            return sort_labels(labels[offsets[lo]:offsets[hi]])
        by_value = index.by_value
        return union([by_value[("n", v)].view() for v in index.numbers.islice(lo, hi)])


class _Live:
    """The live labels, made an array only when a negation needs them."""

    __slots__ = ("_labels", "_array")

    def __init__(self, labels) -> None:
        if isinstance(labels, _Live):
            labels = labels._labels
        self._labels, self._array = labels, None

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = as_labels(self._labels)
        return self._array
