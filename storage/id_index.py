"""Record ids without a Python object per record: a packed column, a hash index, an order.

Why (issue 13, per-record memory): a million ids held as ``str`` objects, a ``dict`` id ->
label (with an ``int`` per value) and a ``SortedList`` of the same strings cost about 140
bytes a record of Python objects; at 50-d that alone was 0.7 x the vector. Here an id is
its utf-8 bytes in one buffer plus a 4-byte offset (8 past 4 GiB of ids: storage/offsets.py;
``IdColumn``), a 4-byte hash fragment
and 1.5-3 table slots of 4 bytes (``IdIndex``), and 8 bytes in the id order, built only
when a cursor page asks for it (``IdOrder``).

Ids are encoded with ``surrogatepass``, as storage/validation.py measures them, so any id
a ``str`` can hold round-trips. Labels are never reused before compaction builds a new
store, so a dropped label keeps its bytes: the order and the hash index read them.
Not thread-safe for writers (the collection's write lock); ``IdOrder.after`` may run in
several readers at once and locks its own lazy merge.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from typing import Iterable, Iterator, Sequence

import numpy as np

from .offsets import as_numpy, offsets_array, widened

_ENCODING, _ERRORS = "utf-8", "surrogatepass"
_EMPTY, _TOMB = -1, -2  # table slots: never used / a removed entry (probing walks past it)
_MAX_LOAD, _GROWN_LOAD = 0.6, 0.4  # rebuilt past 60% full, to at most 40% full
_MASK32 = 0xFFFFFFFF
#: Up to this many ids a batch is looked up and compared one by one (numpy's fixed cost is higher).
SMALL_BATCH = _SCALAR_BATCH = 24


def _hash(id_: str) -> int:
    # str's own hash: cached on the object, fast, and randomised per process, so that ids
    # chosen to collide in one server do not in another (nothing persisted depends on it)
    return hash(id_) & _MASK32


def _hashes(ids: Sequence[str]) -> np.ndarray:
    return np.fromiter(map(hash, ids), np.int64, len(ids)) & _MASK32


def encode(id_: str) -> bytes:
    return id_.encode(_ENCODING, _ERRORS)


def _packed(ids: Sequence[str]) -> tuple[bytes, np.ndarray]:
    """The ids' utf-8 bytes end to end, and each one's length (int64)."""
    joined = "".join(ids)
    if joined.isascii():  # one encode, and no bytes object per id
        return joined.encode("ascii"), np.fromiter(map(len, ids), np.int64, len(ids))
    encoded = [encode(i) for i in ids]
    return b"".join(encoded), np.fromiter(map(len, encoded), np.int64, len(encoded))


class IdColumn:
    """Ids by label, packed end to end in one buffer; append-only.

    ``column[label]`` is the id (``str``) of any label below ``len(column)``, dropped
    ones included; iterating yields them all in label order.
    """

    __slots__ = ("_data", "_offsets")

    def __init__(self, ids: Sequence[str] = ()) -> None:
        blob, lens = _packed(ids)
        self._data = bytearray(blob)
        self._offsets = offsets_array(np.concatenate([[0], np.cumsum(lens)]))  # 4 bytes an id below 4 GiB

    @classmethod
    def from_packed(cls, data: bytes, lens: np.ndarray) -> "IdColumn":
        """The column of the ids whose utf-8 bytes are packed end to end in ``data``, label i
        ``lens[i]`` bytes long."""
        column = cls()
        column._data = bytearray(data)
        column._offsets = offsets_array(np.concatenate([[0], np.cumsum(lens, dtype=np.int64)]))
        return column

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, label: int) -> str:
        return self.raw(label).decode(_ENCODING, _ERRORS)

    def raw(self, label: int) -> bytes:
        """The id's utf-8 bytes (``IndexError`` outside 0 .. len-1)."""
        if label < 0 or label >= len(self._offsets) - 1:
            raise IndexError(f"label {label} out of range 0..{len(self._offsets) - 2}")
        return bytes(self._data[self._offsets[label]:self._offsets[label + 1]])

    def __iter__(self) -> Iterator[str]:
        return iter(self.take(range(len(self))))

    def take(self, labels: Iterable[int]) -> list[str]:
        """The ids of ``labels`` (faster than indexing one by one)."""
        labels = labels if isinstance(labels, (list, range)) else list(labels)
        data, offsets = self._data, self._offsets
        if len(labels) <= _SCALAR_BATCH:
            return [data[offsets[label]:offsets[label + 1]].decode(_ENCODING, _ERRORS) for label in labels]
        if len(labels) * 64 >= len(data) and data.isascii():
            # many: one decode of the whole buffer, then str slices at the byte offsets
            text = data.decode("ascii")
            return [text[offsets[label]:offsets[label + 1]] for label in labels]
        # some: their bytes gathered by numpy into one buffer, decoded once if ASCII, then sliced
        blob, ends = self.gather(np.asarray(labels, np.int64))
        ends_list = ends.tolist()
        bounds = zip([0] + ends_list[:-1], ends_list)
        if blob.isascii():
            text = blob.decode("ascii")
            return [text[a:b] for a, b in bounds]
        return [blob[a:b].decode(_ENCODING, _ERRORS) for a, b in bounds]

    def gather(self, labels: np.ndarray) -> tuple[bytes, np.ndarray]:
        """The utf-8 bytes of the ids of ``labels`` (an int64 array) end to end, and where
        each ends in them (int64, exclusive)."""
        if not len(labels):
            return b"", np.zeros(0, np.int64)
        data, src, lens = self._sources(labels)
        return data[src].tobytes(), np.cumsum(lens)

    def joined(self, labels: np.ndarray, separator: int = 0xFF) -> bytes:
        """The utf-8 bytes of the ids of ``labels`` (an int64 array) with the byte
        ``separator`` between two (0xFF: a byte UTF-8 never uses): gathered at once, no
        ``str`` per id (a batch's packed reply, QueryRequest.packed_columns)."""
        if not len(labels):
            return b""
        data, src, lens = self._sources(labels)
        out = np.full(len(src) + len(labels) - 1, separator, np.uint8)
        out[np.arange(len(src)) + np.repeat(np.arange(len(labels)), lens)] = data[src]
        return out.tobytes()

    def _sources(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The buffer as uint8, the positions of the ids' bytes in it (in order) and their lengths."""
        at = as_numpy(self._offsets)
        starts = at[labels].astype(np.int64)
        lens = at[labels + 1].astype(np.int64) - starts
        ends = np.cumsum(lens)
        src = np.repeat(starts - (ends - lens), lens) + np.arange(int(ends[-1]))
        return np.frombuffer(self._data, np.uint8), src, lens

    def append(self, id_: str) -> None:
        self._data += encode(id_)
        self._offsets = widened(self._offsets, len(self._data))
        self._offsets.append(len(self._data))

    def extend(self, ids: Sequence[str]) -> None:
        blob, lens = _packed(ids)
        ends = np.cumsum(lens) + len(self._data)
        self._data += blob
        self._offsets = offsets = widened(self._offsets, len(self._data))
        offsets.frombytes(ends.astype(as_numpy(offsets).dtype).tobytes())

    def equal(self, label: int, id_: str) -> bool:
        return self._data[self._offsets[label]:self._offsets[label + 1]] == encode(id_)

    def equal_many(self, labels: np.ndarray, ids: Sequence[str]) -> np.ndarray:
        """``column[labels[i]] == ids[i]`` for each i, as a bool array (bytes compared in numpy)."""
        if len(labels) <= _SCALAR_BATCH:
            return np.fromiter(map(self.equal, labels.tolist(), ids), np.bool_, len(labels))
        blob, lens = _packed(ids)
        return self.equal_packed(labels, np.cumsum(lens) - lens, lens, np.frombuffer(blob, np.uint8))

    def equal_packed(self, labels: np.ndarray, starts: np.ndarray, lens: np.ndarray,
                     asked: np.ndarray) -> np.ndarray:
        """``column[labels[i]] == asked[starts[i]:starts[i] + lens[i]]`` (utf-8 bytes) for each i."""
        offsets = as_numpy(self._offsets)
        stored_starts = offsets[labels].astype(np.int64)
        same = offsets[labels + 1].astype(np.int64) - stored_starts == lens
        check = np.flatnonzero(same)
        if check.size:
            lens = lens[check]
            ends = np.cumsum(lens)
            within = np.arange(int(ends[-1]), dtype=np.int64) - np.repeat(ends - lens, lens)
            stored = np.frombuffer(self._data, np.uint8)[np.repeat(stored_starts[check], lens) + within]
            differ = np.repeat(np.arange(len(check)), lens)[stored != asked[np.repeat(starts[check], lens) + within]]
            same[check[differ]] = False
        return same


class IdIndex:
    """id -> label for the live records: open addressing with linear probing in a numpy
    table of labels, and a 32-bit hash fragment per label to skip most byte comparisons.

    Single lookups (``get``, ``in``, ``[]``) probe in Python; ``find`` probes a batch in
    numpy, one vectorised step per probe distance, and compares the candidates' bytes in
    numpy (``IdColumn.equal_many``).
    """

    __slots__ = ("_column", "_hashes", "_table", "_slots", "_used", "_live")

    def __init__(self, column: IdColumn) -> None:
        self._column = column
        self._hashes = array("I")  # by label, dropped ones included
        self._used = self._live = 0  # entries + tombstones / entries
        self._set_table(np.full(16, _EMPTY, np.int32))

    def _set_table(self, table: np.ndarray) -> None:
        self._table = table
        self._slots = memoryview(table)  # scalar reads as Python ints, 3 x faster than numpy's

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return self._live

    def __contains__(self, id_: object) -> bool:
        return isinstance(id_, str) and self.get(id_) is not None

    def __getitem__(self, id_: str) -> int:
        label = self.get(id_)
        if label is None:
            raise KeyError(id_)
        return label

    def get(self, id_: str, default: int | None = None) -> int | None:
        # the probe and the byte compare inlined: this is every single-id read's path
        h = _hash(id_)
        slots, hashes = self._slots, self._hashes
        mask = len(slots) - 1
        pos = h & mask
        label = slots[pos]
        while label != _EMPTY:
            if label >= 0 and hashes[label] == h:
                column = self._column
                offsets = column._offsets
                if column._data[offsets[label]:offsets[label + 1]] == id_.encode(_ENCODING, _ERRORS):
                    return label
            pos = (pos + 1) & mask
            label = slots[pos]
        return default

    def find(self, ids: Sequence[str]) -> np.ndarray:
        """The label of each id, -1 where it is not live (int64, in the order asked)."""
        n = len(ids)
        out = np.full(n, -1, np.int64)
        if not n or not self._live:
            return out
        if n <= _SCALAR_BATCH:
            for i, id_ in enumerate(ids):
                label = self.get(id_)
                if label is not None:
                    out[i] = label
            return out
        h = _hashes(ids)
        blob, lens = _packed(ids)  # once: each probe round compares slices of it
        asked, starts = np.frombuffer(blob, np.uint8), np.cumsum(lens) - lens
        hashes = np.frombuffer(self._hashes, np.uint32)
        table, mask = self._table, len(self._table) - 1
        pos = h & mask
        active = np.arange(n)
        while active.size:
            if active.size <= _SCALAR_BATCH:  # the few long probe runs left: one by one
                for i in active.tolist():
                    label = self.get(ids[i])
                    if label is not None:
                        out[i] = label
                break
            found = table[pos[active]].astype(np.int64)
            done = found == _EMPTY
            maybe = np.flatnonzero(found >= 0)
            maybe = maybe[hashes[found[maybe]] == h[active[maybe]]]
            if maybe.size:
                rows = active[maybe]
                hit = maybe[self._column.equal_packed(found[maybe], starts[rows], lens[rows], asked)]
                out[active[hit]] = found[hit]
                done[hit] = True
            active = active[~done]
            pos[active] = (pos[active] + 1) & mask
        return out

    def labels(self) -> np.ndarray:
        """The live labels, in no particular order."""
        table = self._table
        return table[table >= 0].astype(np.int64)

    # ------------------------------------------------------------------ writing
    def add_label(self, id_: str) -> None:
        """Records the hash of the next label's id (every label has one, live or not)."""
        self._hashes.append(_hash(id_))

    def insert(self, label: int) -> None:
        """Indexes ``label`` (its id must not be live; ``add_label`` called for it)."""
        self._insert(np.array([label], np.int64))

    def insert_many(self, labels: np.ndarray) -> None:
        """Indexes ``labels`` (distinct, ids not live, ``add_label`` called for each)."""
        self._insert(np.asarray(labels, np.int64))

    def _insert(self, labels: np.ndarray) -> None:
        k = len(labels)
        if not k:
            return
        if self._used + k > _MAX_LOAD * len(self._table) or int(labels.max()) > np.iinfo(self._table.dtype).max:
            self._rebuild(self._live + k, int(labels.max()))
        hashes = np.frombuffer(self._hashes, np.uint32)
        table, mask = self._table, len(self._table) - 1
        pos = hashes[labels].astype(np.int64) & mask
        if k == 1:  # the common single write: no numpy round per probe
            p, slots = int(pos[0]), self._slots
            while slots[p] >= 0:
                p = (p + 1) & mask
            self._used += slots[p] == _EMPTY
            table[p] = labels[0]
            self._live += 1
            return
        active = np.arange(k)
        while active.size:
            at = pos[active]
            free = np.flatnonzero(table[at] < 0)  # empty or a tombstone: the ids are not live
            claimed = np.zeros(len(active), np.bool_)
            if free.size:
                _, first = np.unique(at[free], return_index=True)  # one writer per slot a round
                winners = free[first]
                self._used += int(np.count_nonzero(table[at[winners]] == _EMPTY))
                table[at[winners]] = labels[active[winners]]
                claimed[winners] = True
            move = ~claimed
            move[free] = False  # losers of a free slot look at it again (now taken) next round
            pos[active[move]] = (at[move] + 1) & mask
            active = active[~claimed]
        self._live += k

    def remove(self, label: int) -> None:
        """Unindexes a live label."""
        slots, mask = self._slots, len(self._slots) - 1
        pos = self._hashes[label] & mask
        while slots[pos] != label:
            if slots[pos] == _EMPTY:
                raise KeyError(f"label {label} is not indexed")
            pos = (pos + 1) & mask
        self._table[pos] = _TOMB
        self._live -= 1

    def _rebuild(self, live: int, max_label: int) -> None:
        """A fresh table (no tombstones) for ``live`` entries at most ``_GROWN_LOAD`` full."""
        size = 16
        while live > _GROWN_LOAD * size:
            size *= 2
        self._refill(size, self.labels(), max_label)

    def _refill(self, size: int, labels: np.ndarray, max_label: int) -> None:
        dtype = np.int32 if max_label < np.iinfo(np.int32).max else np.int64
        self._set_table(np.full(size, _EMPTY, dtype))
        self._used = self._live = 0
        self.insert_many(labels)

    @classmethod
    def build(cls, column: IdColumn, ids: Sequence[str], labels: np.ndarray) -> "IdIndex":
        """An index of ``labels`` (their ids ``ids``, in the same order) over ``column``,
        sized to its load limit: what a collection opening holds until its next writes."""
        index = cls(column)
        fragments = _hashes(ids)
        _refuse_repeats(ids, fragments)
        hashes = np.zeros(len(column), np.uint32)
        hashes[labels] = fragments
        index._hashes = array("I", hashes.tobytes())
        return index._filled(labels)

    @classmethod
    def build_hashed(cls, column: IdColumn, hashes: np.ndarray, labels: np.ndarray) -> "IdIndex":
        """As ``build``, for ids already in ``column`` at ``labels``, given their ``hash()``
        (the caller's, taken when it had them as ``str``)."""
        index = cls(column)
        fragments = np.asarray(hashes, np.int64) & _MASK32
        _refuse_repeats(_AtLabels(column, labels), fragments)
        by_label = np.zeros(len(column), np.uint32)
        by_label[labels] = fragments
        index._hashes = array("I", by_label.tobytes())
        return index._filled(labels)

    def _filled(self, labels: np.ndarray) -> "IdIndex":
        """This index with ``labels`` placed, its table sized to the load limit."""
        size = 16
        while len(labels) > _MAX_LOAD * size:
            size *= 2
        self._refill(size, labels, len(self._column))
        return self


class _AtLabels:
    """The ids of ``labels`` as a sequence (read one by one: repeats are checked for few)."""

    def __init__(self, column: IdColumn, labels: np.ndarray) -> None:
        self._column, self._labels = column, labels

    def __getitem__(self, i: int) -> str:
        return self._column[int(self._labels[i])]


def _refuse_repeats(ids: Sequence[str], hashes: np.ndarray) -> None:
    """Raises ValueError if an id repeats (only ids of equal hashes are compared)."""
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    same = np.flatnonzero(ordered[1:] == ordered[:-1])
    if not same.size:
        return
    seen: dict[int, set[str]] = {}
    for at in np.union1d(same, same + 1).tolist():
        i = int(order[at])
        bucket = seen.setdefault(int(ordered[at]), set())
        if ids[i] in bucket:
            raise ValueError(f"record columns repeat the id {ids[i][:40]!r}")
        bucket.add(ids[i])


class IdOrder:
    """The live labels in id order (utf-8 byte order, which is ``str`` order), for cursor
    pages: built at the first page, then kept with the labels added since (merged at the
    next page) and dropped ones skipped by the caller's live mask."""

    __slots__ = ("_column", "_sorted", "_pending", "_lock")

    def __init__(self, column: IdColumn) -> None:
        self._column = column
        self._sorted: np.ndarray | None = None  # None: not built (nothing kept meanwhile)
        self._pending = array("q")
        self._lock = threading.Lock()

    def added(self, label: int) -> None:
        if self._sorted is not None:
            self._pending.append(label)

    def added_many(self, labels: np.ndarray) -> None:
        if self._sorted is not None:
            self._pending.frombytes(labels.astype(np.int64).tobytes())

    def after(self, after: str, live: np.ndarray, alive: np.ndarray) -> Iterator[int]:
        """The live labels whose ids sort after ``after``, in id order. ``live``: every live
        label (used only to build the order); ``alive``: the live mask by label."""
        with self._lock:  # readers run at once; one of them merges
            order = self._merged(live, alive)
        lo = self._upper_bound(order, encode(after))
        step = 256
        while lo < len(order):
            part = order[lo:lo + step]
            yield from part[alive[part]].tolist()
            lo += step
            step = min(step * 4, 65536)

    def _upper_bound(self, order: np.ndarray, key: bytes) -> int:
        """Where ``key`` (utf-8 bytes) goes in ``order`` (labels in id order), after equal ids."""
        raw = self._column.raw
        return bisect.bisect_right(order, key, key=lambda label: raw(int(label)))

    def _merged(self, live: np.ndarray, alive: np.ndarray) -> np.ndarray:
        order, pending = self._sorted, self._pending
        if order is not None and not pending:
            return order
        if order is None or len(pending) * 8 > len(order):  # many new ids: sort everything again
            order = self._sort(live)
        else:
            added = self._sort(np.frombuffer(pending, np.int64).copy())
            order = order[alive[order]]  # the dropped ones go while the array is copied anyway
            raw = self._column.raw
            at = np.fromiter((self._upper_bound(order, raw(label)) for label in added.tolist()), np.int64,
                             len(added))
            order = np.insert(order, at, added)
        self._sorted, self._pending = order, array("q")
        return order

    def _sort(self, labels: np.ndarray) -> np.ndarray:
        raw = self._column.raw
        keys = [raw(label) for label in labels.tolist()]
        return labels[np.asarray(sorted(range(len(keys)), key=keys.__getitem__), np.int64)] if len(keys) else labels
