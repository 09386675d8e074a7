"""A collection's records by label, column by column: ids, documents and metadata.

Why columns and encoded metadata: a million records held as a tuple and a metadata dict
each cost about 0.8 KB of Python objects apiece; as list slots, one id string and the
metadata msgpack-encoded (a one-key map is ~45 bytes as bytes, ~240 as a dict) they cost a
third of that. The encoded metadata are not even bytes objects: they are packed end to end
in one buffer (``PackedBytes``, 8 bytes of offsets a slot plus the encoding itself, kept
once per distinct value when a store is built from a checkpoint: a ``{"bucket": 123}``
costs 8-19 bytes instead of 56; issue 13, per-record memory). Metadata is decoded only for
the records a call returns or a filter scan checks.

Ids are not Python strings either: one packed column, a hash index and an id order built
when first paged (storage/id_index.py), about 21 bytes a record instead of 140.

Labels are slots, never reused until compaction; a dropped record leaves ``None`` in its
document and metadata slots and keeps its id. Not thread-safe: the collection's read/write
lock guards it.
"""

from __future__ import annotations

from array import array
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
from .framing import pack, unpack
from .id_index import SMALL_BATCH, IdColumn, IdIndex, IdOrder
from . import offsets
from .offsets import as_numpy, offsets_array, widened
from .packed_groups import group_slots


def encode_metadata(metadata: dict[str, Any]) -> bytes | None:
    """Metadata as kept in memory: msgpack, as in the log and checkpoints (None if empty)."""
    return pack(metadata) if metadata else None


def decode_metadata(data: bytes | None) -> dict[str, Any]:
    return unpack(data) if data else {}


class PackedBytes:
    """A column of ``bytes | None`` by slot, packed in one buffer: a list-like of fixed length
    that grows by ``append``. Setting a slot again appends the new bytes (the old ones stay
    in the buffer, unreachable, until the store is rebuilt, as compaction does); ``None`` and
    ``b""`` are both stored as nothing and read back as None. Offsets are ``array.array``s,
    not numpy arrays: reading one item is then a plain int, 3 x faster (filter checks read
    one record's metadata at a time). Starts are 4 bytes a slot below 4 GiB of values
    (storage/offsets.py), and while every value is empty there are no arrays, only a count
    (a collection without metadata saves 8 bytes a record; issue 13)."""

    __slots__ = ("_data", "_starts", "_lens", "_n")

    def __init__(self, values: Iterable[bytes | None] = ()) -> None:
        # built in bulk (a collection opening holds a million of them): one join, lengths
        # and offsets as arrays, instead of three appends a value (8 s -> ~0.5 s at 1M)
        values = [value or b"" for value in values]
        self._set(b"".join(values), np.fromiter(map(len, values), np.int64, len(values)))

    @classmethod
    def from_packed(cls, data: bytes, lens: np.ndarray) -> "PackedBytes":
        """The column of the values packed end to end in ``data``, slot i ``lens[i]`` bytes long."""
        column = cls()
        column._set(data, lens)
        return column

    def _set(self, data: bytes, lens: np.ndarray) -> None:
        self._data, self._n = bytearray(data), len(lens)
        self._starts = self._lens = None
        if len(data):
            starts = np.zeros(len(lens), np.int64)
            np.cumsum(lens[:-1], out=starts[1:])
            self._starts, self._lens = offsets_array(starts), array("I", lens.astype(np.uint32).tobytes())

    def _materialise(self) -> None:
        """The offset arrays, when the first non-empty value comes."""
        self._starts, self._lens = array("I", bytes(4 * self._n)), array("I", bytes(4 * self._n))

    def groups(self, slots: np.ndarray) -> list[tuple[bytes, np.ndarray]]:
        """The distinct non-empty values at ``slots``, each with its slots (storage/packed_groups.py)."""
        if self._lens is None:
            return []
        return group_slots(self._data, as_numpy(self._starts), np.frombuffer(self._lens, np.uint32), slots)

    def share(self, groups: list[tuple[bytes, np.ndarray]]) -> None:
        """Keeps each value of ``groups`` (what ``groups`` returned for every non-empty slot)
        once in the buffer, its slots all pointing at it: a collection opening with a thousand
        distinct metadata over 65k records keeps 11 KB of them instead of 690 KB (issue 13).
        Does nothing if the groups miss a non-empty slot or the values are mostly distinct."""
        if self._lens is None or not groups:
            return
        sizes = np.fromiter((len(slots) for _, slots in groups), np.int64, len(groups))
        if 2 * len(groups) > int(sizes.sum()) or int(sizes.sum()) != np.count_nonzero(self._lens):
            return
        values = [value for value, _ in groups]
        lens = np.fromiter(map(len, values), np.int64, len(values))
        starts = np.zeros(self._n, np.int64)
        starts[np.concatenate([slots for _, slots in groups])] = np.repeat(np.cumsum(lens) - lens, sizes)
        self._data, self._starts = bytearray(b"".join(values)), offsets_array(starts)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, slot: int) -> bytes | None:
        lens = self._lens
        if lens is None or slot < 0:
            if not 0 <= slot < self._n:
                raise IndexError(f"slot {slot} out of range 0..{self._n - 1}")
            return None
        length = lens[slot]  # IndexError past the end
        if not length:
            return None
        start = self._starts[slot]
        return bytes(self._data[start:start + length])

    def __iter__(self) -> Iterator[bytes | None]:
        return (self[slot] for slot in range(self._n))

    def __setitem__(self, slot: int, value: bytes | None) -> None:
        if not 0 <= slot < self._n:
            raise IndexError(f"slot {slot} out of range 0..{self._n - 1}")
        if value:
            if self._lens is None:
                self._materialise()
            self._starts = widened(self._starts, len(self._data))
            self._starts[slot] = len(self._data)
            self._data += value
        if self._lens is not None:
            self._lens[slot] = len(value) if value else 0

    def append(self, value: bytes | None) -> None:
        if self._lens is None:
            if not value:
                self._n += 1
                return
            self._materialise()
        if len(self._data) > offsets.MAX32:  # (a module attribute: a call a record cost 3%)
            self._starts = widened(self._starts, len(self._data))
        self._starts.append(len(self._data))
        self._lens.append(len(value) if value else 0)
        self._n += 1
        if value:
            self._data += value


class Documents:
    """The document column by slot: a list once any slot holds a document, until then only
    a count (a collection of vectors alone saves a list slot a record; issue 13)."""

    __slots__ = ("_values", "_n")

    def __init__(self, values: list[str | None] | None = None, n: int = 0) -> None:
        if values is not None and any(value is not None for value in values):
            self._values, self._n = values, len(values)
        else:
            self._values, self._n = None, n if values is None else len(values)

    def __len__(self) -> int:
        return self._n if self._values is None else len(self._values)

    def any(self) -> bool:
        """Whether any slot has ever held a document."""
        return self._values is not None

    def __getitem__(self, slot: int) -> str | None:
        if self._values is not None:
            return self._values[slot]
        if not 0 <= slot < self._n:
            raise IndexError(f"slot {slot} out of range 0..{self._n - 1}")
        return None

    def __setitem__(self, slot: int, value: str | None) -> None:
        if self._values is None:
            if value is None:
                self[slot]  # the range check
                return
            self._values = [None] * self._n
        self._values[slot] = value

    def __iter__(self) -> Iterator[str | None]:
        return iter(self._values) if self._values is not None else iter([None] * self._n)

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, (Documents, list)) else NotImplemented

    def extend(self, values: Sequence[str | None]) -> None:
        if self._values is None:
            if all(value is None for value in values):
                self._n += len(values)
                return
            self._values = [None] * self._n
        self._values.extend(values)


class RecordStore:
    """Ids, documents and metadata by label, and which labels are live.

    ``ids`` (storage/id_index.py ``IdColumn``) reads a label's id, dropped labels included
    (a label a checkpoint did not store reads as ""); ``labels`` maps a live id to its label
    (``get``, ``in``, ``[]``, and ``find`` for a batch). Examples:

        >>> store = RecordStore()
        >>> store.append("a", None, {"k": 1})
        0
        >>> store.find(["a", "b"]).tolist(), store.ids[0]
        ([0, -1], 'a')
    """

    def __init__(self) -> None:
        self.ids = IdColumn()
        self.documents = Documents()
        self.metadatas = PackedBytes()  # msgpack-encoded by slot; None: empty
        self.labels = IdIndex(self.ids)  # id -> label, live records only
        self._order = IdOrder(self.ids)  # live ids in order, for cursor pages
        self._alive = np.zeros(16, np.bool_)
        self._live_cache: np.ndarray | None = None
        self._groups: list[tuple[bytes, np.ndarray]] | None = None  # the next metadata_groups (see from_packed)

    @classmethod
    def from_columns(cls, labels: list[int], ids: list[str], documents: list[str | None],
                     metadatas: list[bytes | None], slots: int) -> "RecordStore":
        """A store of ``slots`` slots holding the given live records (as a checkpoint
        stores them)."""
        store = cls()
        at = np.asarray(labels, np.int64)
        # scattered by numpy into object arrays, then listed: no Python loop over records
        by_slot = np.full(slots, "", object)
        by_slot[at] = ids
        store.ids = IdColumn(by_slot.tolist())
        by_slot[:] = None
        by_slot[at] = documents
        store.documents = Documents(by_slot.tolist())
        by_slot[:] = None
        by_slot[at] = metadatas
        store.metadatas = PackedBytes(by_slot.tolist())
        del by_slot
        return store._opened(slots, at, IdIndex.build(store.ids, ids, at))

    def _opened(self, slots: int, live: np.ndarray, id_index: IdIndex) -> "RecordStore":
        """The rest of a new store whose columns are set: ``live`` alive, its metadata shared,
        its id index and id order."""
        self._alive = np.zeros(max(16, slots), np.bool_)
        self._alive[live] = True
        self._share_metadata(live)
        self.labels = id_index
        self._order = IdOrder(self.ids)
        return self

    def _share_metadata(self, live: np.ndarray) -> None:
        """Groups a new store's metadata once: repeated values kept once in the buffer
        (``PackedBytes.share``), the groups handed to the next ``metadata_groups`` (every
        caller of the constructors builds its metadata index from them)."""
        self._groups = self.metadatas.groups(live)
        self.metadatas.share(self._groups)

    @classmethod
    def from_packed(cls, labels: np.ndarray, id_blob: bytes, id_lens: np.ndarray, id_hashes: np.ndarray,
                    documents: list[str | None] | None, n_documents: int, metadata_blob: bytes,
                    metadata_lens: np.ndarray, slots: int) -> "RecordStore":
        """As ``from_columns``, from columns already packed (storage/record_file.py): each
        column's values end to end in the order of ``labels`` and their lengths (int64), the
        ids' ``hash()``; ``documents`` None when every one is None.

        Raises:
            ValueError: the columns do not agree with each other or with ``slots``, or a
                label or an id repeats.
        """
        n = len(labels)
        if not (len(id_lens) == len(id_hashes) == n_documents == len(metadata_lens) == n) or (
                documents is not None and len(documents) != n) or (
                n and (int(labels.min()) < 0 or int(labels.max()) >= slots)):
            raise ValueError(f"record columns do not agree with each other or with {slots} slots")
        if n > 1 and not bool(np.all(labels[1:] > labels[:-1])):  # written in label order: not sorted again
            order = np.argsort(labels, kind="stable")
            labels = labels[order]
            if bool(np.any(labels[1:] == labels[:-1])):
                raise ValueError("record columns repeat a label")
            id_blob, id_lens = _gathered(id_blob, id_lens, order)
            metadata_blob, metadata_lens = _gathered(metadata_blob, metadata_lens, order)
            id_hashes = id_hashes[order]
            if documents is not None:
                documents = [documents[i] for i in order.tolist()]
        store = cls()
        by_slot = np.zeros(slots, np.int64)
        by_slot[labels] = id_lens
        store.ids = IdColumn.from_packed(id_blob, by_slot)
        by_slot[:] = 0
        by_slot[labels] = metadata_lens
        store.metadatas = PackedBytes.from_packed(metadata_blob, by_slot)
        del by_slot
        if documents is None:
            store.documents = Documents(n=slots)
        else:
            column = np.full(slots, None, object)
            column[labels] = documents
            store.documents = Documents(column.tolist())
        return store._opened(slots, labels, IdIndex.build_hashed(store.ids, id_hashes, labels))

    def to_columns(self) -> dict[str, Any]:
        """The live records as a checkpoint stores them (see ``from_columns``)."""
        labels = self.live()
        order = labels.tolist()
        documents, metadatas = self.documents, self.metadatas
        return {"labels": labels.astype("<i8").tobytes(),
                "ids": self.ids.take(order),
                "documents": [documents[label] for label in order],
                "metadatas": [metadatas[label] for label in order]}

    def compacted(self) -> "RecordStore":
        """The live records relabelled 0..n-1 in label order (for compaction)."""
        live = self.live().tolist()
        documents, metadatas = self.documents, self.metadatas
        return RecordStore.from_columns(list(range(len(live))), self.ids.take(live),
                                        [documents[label] for label in live],
                                        [metadatas[label] for label in live], slots=len(live))

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self.labels)

    @property
    def slots(self) -> int:
        return len(self.ids)

    def find(self, ids: Sequence[str]) -> np.ndarray:
        """The label of each id (int64, -1 where not live), looked up as a batch."""
        return self.labels.find(ids)

    def lookup(self, ids: Sequence[str]) -> list[int | None]:
        """The label of each id, None where not live (a few ids: no numpy round trip)."""
        if len(ids) <= SMALL_BATCH:
            return list(map(self.labels.get, ids))
        return [None if label < 0 else label for label in self.labels.find(ids).tolist()]

    def live_labels(self, ids: Sequence[str]) -> list[int]:
        """The labels of the live ones of ``ids``, in the order given."""
        if len(ids) <= SMALL_BATCH:
            get = self.labels.get
            return [label for label in map(get, ids) if label is not None]
        found = self.labels.find(ids)
        return found[found >= 0].tolist()

    def ids_after(self, after: str) -> Iterator[int]:
        """Live labels whose ids sort after ``after`` (str order), in id order: cursor
        pages. The order is built at the first call and kept up to date from then on."""
        return self._order.after(after, self.live(), self._alive)

    def metadata(self, label: int) -> dict[str, Any]:
        return decode_metadata(self.metadatas[label])

    def live(self) -> np.ndarray:
        """Live labels in label order (cached until the next change)."""
        if self._live_cache is None:
            self._live_cache = np.flatnonzero(self._alive[: self.slots]).astype(np.int64)
        return self._live_cache

    def live_between(self, start: int, end: int) -> np.ndarray:
        """Live labels in [start, end), in order (O(end - start): the exact tail's)."""
        end = min(end, self.slots)
        if start >= end:
            return np.empty(0, np.int64)
        return np.flatnonzero(self._alive[start:end]).astype(np.int64) + start

    def live_view(self) -> "LiveLabels":
        """The live labels as a lazy collection (materialised only if iterated)."""
        return LiveLabels(self)

    def metadata_groups(self) -> list[tuple[bytes, np.ndarray]]:
        """The live records grouped by encoded metadata: (encoding, its labels), for building
        an index, which decodes each distinct encoding once (empty metadata left out)."""
        if self._groups is not None:  # grouped while opening, nothing changed since: handed over once
            groups, self._groups = self._groups, None
            return groups
        # not cached: an open would keep 8 bytes a record that a search may never ask for
        live = self._live_cache if self._live_cache is not None else np.flatnonzero(self._alive[: self.slots])
        return self.metadatas.groups(live)

    def items(self) -> Iterator[tuple[int, str | None, dict[str, Any]]]:
        """(label, document, metadata) of every live record, in label order."""
        documents = self.documents
        for label in self.live().tolist():
            yield label, documents[label], decode_metadata(self.metadatas[label])

    # ------------------------------------------------------------------ writing
    def append(self, id_: str, document: str | None, metadata: dict[str, Any]) -> int:
        """Adds a live record under the next label (the id must not be live); returns it."""
        return int(self.append_many([id_], [document], [metadata])[0])

    def append_many(self, ids: Sequence[str], documents: Sequence[str | None],
                    metadatas: Sequence[dict[str, Any]]) -> np.ndarray:
        """Adds live records under the next labels (distinct ids, none live); returns them."""
        start = len(self.ids)
        labels = np.arange(start, start + len(ids), dtype=np.int64)
        self.ids.extend(ids)
        for id_ in ids:
            self.labels.add_label(id_)
        self.labels.insert_many(labels)
        self.documents.extend(documents)
        for metadata in metadatas:
            self.metadatas.append(encode_metadata(metadata))
        self._order.added_many(labels)
        end = start + len(ids)
        if end > len(self._alive):
            grown = np.zeros(max(2 * len(self._alive), end), np.bool_)
            grown[: len(self._alive)] = self._alive
            self._alive = grown
        self._alive[start:end] = True
        self._live_cache = self._groups = None
        return labels

    def drop(self, label: int) -> tuple[str, dict[str, Any]]:
        """Removes a live record; returns its id and metadata (its id stays readable by label)."""
        if not (0 <= label < self.slots and self._alive[label]):
            raise KeyError(f"label {label} is not live")
        id_ = self.ids[label]
        metadata = decode_metadata(self.metadatas[label])
        self.documents[label] = self.metadatas[label] = None
        self.labels.remove(label)
        self._alive[label] = False
        self._live_cache = self._groups = None
        return id_, metadata


def _gathered(blob: bytes, lens: np.ndarray, order: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Packed values (``blob`` cut at ``lens``) rearranged in ``order``."""
    starts = np.cumsum(lens) - lens
    lens = lens[order]
    ends = np.cumsum(lens)
    at = np.repeat(starts[order] - (ends - lens), lens) + np.arange(int(ends[-1]) if len(ends) else 0)
    return np.frombuffer(blob, np.uint8)[at].tobytes(), lens


class LiveLabels:
    """Live labels, sized without being listed (filters need the list only to negate)."""

    def __init__(self, store: RecordStore) -> None:
        self._store = store

    def __len__(self) -> int:
        return len(self._store)

    def __iter__(self) -> Iterator[int]:
        return iter(self._store.live().tolist())

    def array(self) -> np.ndarray:
        """The live labels as a sorted int64 array (the store's cache: do not change it)."""
        return self._store.live()
