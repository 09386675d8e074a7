"""Indexes over record metadata, so that filters do not scan every record.

For every path in the metadata (dotted for nested maps) the index keeps:
- the labels holding each scalar value (a hash map; ints and doubles share numeric keys,
  bools and strings have their own), for ``eq``, ``ne``, ``in`` and ``nin``;
- the numeric values in order (a ``SortedList`` of (value, label)), for ranges;
- the labels where the path is present at all, for ``exists``.

``resolve`` turns a filter into the exact set of matching labels when every condition in it
can be answered from these indexes, and returns None otherwise (document conditions need
the text): the caller then checks the remaining conditions record by record, on the
smallest candidate set the indexed part allowed.

It is not thread-safe; the collection's read/write lock guards it.
"""

from __future__ import annotations

import math
from typing import Any, Collection as Sized, Iterable, Iterator

from sortedcontainers import SortedList

from .filters import And, Document, Field, Filter, Not, Or


def _key(value: Any) -> tuple | None:
    """Hash key with the filter's equality: 1 == 1.0, True != 1, strings apart."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)  # Python hashes and compares 1 and 1.0 as equal
    if isinstance(value, str):
        return ("s", value)
    return None  # null, lists and maps are never equal to a filter operand


def _paths(metadata: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in metadata.items():
        path = f"{prefix}{key}"
        yield path, value
        if isinstance(value, dict):
            yield from _paths(value, path + ".")


class MetadataIndex:
    def __init__(self) -> None:
        self._values: dict[str, dict[tuple, set[int]]] = {}
        self._numbers: dict[str, SortedList] = {}
        self._present: dict[str, set[int]] = {}

    def add(self, label: int, metadata: dict[str, Any]) -> None:
        for path, value in _paths(metadata):
            self._present.setdefault(path, set()).add(label)
            key = _key(value)
            if key is None:
                continue
            self._values.setdefault(path, {}).setdefault(key, set()).add(label)
            if key[0] == "n":
                self._numbers.setdefault(path, SortedList()).add((value, label))

    @classmethod
    def build(cls, rows: Iterable[tuple[int, dict[str, Any]]]) -> "MetadataIndex":
        """An index over many (label, metadata) at once, as when a collection opens: the
        ordered lists are sorted once instead of growing record by record."""
        index = cls()
        values, present = index._values, index._present
        numbers: dict[str, list[tuple[Any, int]]] = {}
        for label, metadata in rows:
            for path, value in _paths(metadata):
                labels = present.get(path)
                if labels is None:
                    labels = present[path] = set()
                labels.add(label)
                key = _key(value)
                if key is None:
                    continue
                values.setdefault(path, {}).setdefault(key, set()).add(label)
                if key[0] == "n":
                    numbers.setdefault(path, []).append((value, label))
        index._numbers = {path: SortedList(pairs) for path, pairs in numbers.items()}
        return index

    def remove(self, label: int, metadata: dict[str, Any]) -> None:
        for path, value in _paths(metadata):
            present = self._present[path]
            present.discard(label)
            if not present:
                del self._present[path]
            key = _key(value)
            if key is None:
                continue
            by_value = self._values[path]
            labels = by_value[key]
            labels.discard(label)
            if not labels:
                del by_value[key]
                if not by_value:
                    del self._values[path]
            if key[0] == "n":
                numbers = self._numbers[path]
                numbers.remove((value, label))
                if not numbers:
                    del self._numbers[path]

    # ------------------------------------------------------------------ queries
    def resolve(self, node: Filter, live: Sized[int]) -> set[int] | None:
        """The labels matching ``node`` exactly, or None if it needs the records themselves.

        ``live`` is every live label (for negations).
        """
        if isinstance(node, Field):
            return self._field(node, live)
        if isinstance(node, Document):
            return None
        if isinstance(node, Not):
            inner = self.resolve(node.filter, live)
            return None if inner is None else set(live) - inner
        parts = [self.resolve(f, live) for f in node.filters]
        if isinstance(node, Or):
            if any(p is None for p in parts):
                return None
            return set().union(*parts)
        # And: an empty and is true
        if any(p is None for p in parts):
            return None
        if not parts:
            return set(live)
        parts.sort(key=len)
        return parts[0].intersection(*parts[1:])

    def estimate(self, node: Filter, live: int) -> tuple[int, bool] | None:
        """(count, exact) of the records matching ``node``, from the index sizes alone, in
        O(conditions x log n): exact for single conditions and their negations, an upper
        bound for And/Or. None when the filter has a document condition."""
        if isinstance(node, Field):
            return self._field_count(node, live), True
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

    def _field_count(self, node: Field, live: int) -> int:
        path, op, value = node.path, node.op, node.value
        if op in ("eq", "ne", "in", "nin"):
            by_value = self._values.get(path, {})
            keys = {_key(v) for v in (value if op in ("in", "nin") else [value])} - {None}
            found = sum(len(by_value.get(key, ())) for key in keys)
            return found if op in ("eq", "in") else live - found
        if op == "exists":
            present = len(self._present.get(path, ()))
            return present if value else live - present
        numbers = self._numbers.get(path)
        if numbers is None:
            return 0
        if op == "gt":
            return len(numbers) - numbers.bisect_right((value, math.inf))
        if op == "gte":
            return len(numbers) - numbers.bisect_left((value, -math.inf))
        if op == "lt":
            return numbers.bisect_left((value, -math.inf))
        return numbers.bisect_right((value, math.inf))  # lte

    def narrow(self, node: Filter, live: Sized[int]) -> tuple[set[int] | None, bool]:
        """(candidates, exact): the labels the indexes allow, and whether they are exactly
        the matches. Candidates are None when nothing in the filter is indexable; they are a
        superset (exact False) when an And mixes indexable and document conditions."""
        exact = self.resolve(node, live)
        if exact is not None:
            return exact, True
        if not isinstance(node, And):
            return None, False
        sets = [s for s in (self.resolve(f, live) for f in node.filters) if s is not None]
        if not sets:
            return None, False
        sets.sort(key=len)
        return sets[0].intersection(*sets[1:]), False

    def _equal(self, path: str, value: Any) -> set[int]:
        key = _key(value)
        return set(self._values.get(path, {}).get(key, ())) if key is not None else set()

    def _field(self, node: Field, live: Sized[int]) -> set[int]:
        path, op, value = node.path, node.op, node.value
        if op == "eq":
            return self._equal(path, value)
        if op == "ne":
            return set(live) - self._equal(path, value)
        if op in ("in", "nin"):
            members = set().union(*(self._equal(path, v) for v in value))
            return members if op == "in" else set(live) - members
        if op == "exists":
            present = self._present.get(path, set())
            return set(present) if value else set(live) - present
        numbers = self._numbers.get(path)
        if numbers is None:
            return set()
        if op == "gt":
            found = numbers.irange((value, math.inf), None, inclusive=(False, True))
        elif op == "gte":
            found = numbers.irange((value, -math.inf), None)
        elif op == "lt":
            found = numbers.irange(None, (value, -math.inf), inclusive=(True, False))
        else:  # lte
            found = numbers.irange(None, (value, math.inf))
        return {label for _, label in found}
