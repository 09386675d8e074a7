"""A collection's records by label, column by column: ids, documents and metadata.

Why columns and encoded metadata: a million records held as a tuple and a metadata dict
each cost about 0.8 KB of Python objects apiece; as list slots, one id string and the
metadata msgpack-encoded (a one-key map is ~45 bytes as bytes, ~240 as a dict) they cost a
third of that. The encoded metadata are not even bytes objects: they are packed end to end
in one buffer (``PackedBytes``, 12 bytes of offsets a slot plus the encoding itself: a
``{"bucket": 123}`` costs 23 bytes instead of 56; issue 13, per-record memory). Metadata is
decoded only for the records a call returns or a filter scan checks.

Labels are slots, never reused until compaction; a dropped record leaves ``None`` in its
slot. Not thread-safe: the collection's read/write lock guards it.
"""

from __future__ import annotations

from array import array
from typing import Any, Iterable, Iterator

import numpy as np
from sortedcontainers import SortedList

from .framing import pack, unpack


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
    one record's metadata at a time)."""

    __slots__ = ("_data", "_starts", "_lens")

    def __init__(self, values: Iterable[bytes | None] = ()) -> None:
        # built in bulk (a collection opening holds a million of them): one join, lengths
        # and offsets as arrays, instead of three appends a value (8 s -> ~0.5 s at 1M)
        values = [value or b"" for value in values]
        lens = np.fromiter(map(len, values), np.int64, len(values))
        starts = np.zeros(len(values), np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        self._data = bytearray(b"".join(values))
        self._starts, self._lens = array("q", starts.tobytes()), array("I", lens.astype(np.uint32).tobytes())

    def encoded_items(self, slots: Iterable[int]) -> Iterator[tuple[int, bytes | None]]:
        """(slot, bytes) for each of ``slots``, faster than indexing one by one."""
        data, starts, lens = self._data, self._starts, self._lens
        for slot in slots:
            length = lens[slot]
            yield slot, (bytes(data[starts[slot]:starts[slot] + length]) if length else None)

    def __len__(self) -> int:
        return len(self._lens)

    def __getitem__(self, slot: int) -> bytes | None:
        if slot < 0:
            raise IndexError(f"slot {slot} out of range 0..{len(self._lens) - 1}")
        length = self._lens[slot]  # IndexError past the end
        if not length:
            return None
        start = self._starts[slot]
        return bytes(self._data[start:start + length])

    def __iter__(self) -> Iterator[bytes | None]:
        return (self[slot] for slot in range(len(self._lens)))

    def __setitem__(self, slot: int, value: bytes | None) -> None:
        if not 0 <= slot < len(self._lens):
            raise IndexError(f"slot {slot} out of range 0..{len(self._lens) - 1}")
        if value:
            self._starts[slot] = len(self._data)
            self._data += value
        self._lens[slot] = len(value) if value else 0

    def append(self, value: bytes | None) -> None:
        self._starts.append(len(self._data))
        self._lens.append(len(value) if value else 0)
        if value:
            self._data += value


class RecordStore:
    def __init__(self) -> None:
        self.ids: list[str | None] = []
        self.documents: list[str | None] = []
        self.metadatas = PackedBytes()  # msgpack-encoded by slot; None: empty
        self.labels: dict[str, int] = {}  # id -> label, live records only
        #: Live ids in order, for cursor pages (stable under concurrent writes).
        self.sorted_ids: SortedList = SortedList()
        self._alive = np.zeros(16, np.bool_)
        self._live_cache: np.ndarray | None = None

    @classmethod
    def from_columns(cls, labels: list[int], ids: list[str], documents: list[str | None],
                     metadatas: list[bytes | None], slots: int) -> "RecordStore":
        """A store of ``slots`` slots holding the given live records (as a checkpoint
        stores them); the label ints become the id map's values, shared, not copied."""
        store = cls()
        at = np.asarray(labels, np.int64)
        # scattered by numpy into object arrays, then listed: no Python loop over records
        by_slot = np.full(slots, None, object)
        by_slot[at] = ids
        store.ids = by_slot.tolist()
        by_slot[:] = None
        by_slot[at] = documents
        store.documents = by_slot.tolist()
        by_slot[:] = None
        by_slot[at] = metadatas
        store.metadatas = PackedBytes(by_slot.tolist())
        store._alive = np.zeros(max(16, slots), np.bool_)
        store.labels = dict(zip(ids, labels))
        store._alive[np.asarray(labels, np.int64)] = True
        store.sorted_ids = SortedList(ids)
        return store

    def to_columns(self) -> dict[str, Any]:
        """The live records as a checkpoint stores them (see ``from_columns``)."""
        labels = self.live()
        ids, documents, metadatas = self.ids, self.documents, self.metadatas
        return {"labels": labels.astype("<i8").tobytes(),
                "ids": [ids[label] for label in labels.tolist()],
                "documents": [documents[label] for label in labels.tolist()],
                "metadatas": [metadatas[label] for label in labels.tolist()]}

    def compacted(self) -> "RecordStore":
        """The live records relabelled 0..n-1 in label order (for compaction)."""
        live = self.live().tolist()
        ids, documents, metadatas = self.ids, self.documents, self.metadatas
        return RecordStore.from_columns(list(range(len(live))), [ids[label] for label in live],
                                        [documents[label] for label in live],
                                        [metadatas[label] for label in live], slots=len(live))

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self.labels)

    @property
    def slots(self) -> int:
        return len(self.ids)

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

    def encoded_metadata_items(self) -> Iterator[tuple[int, bytes | None]]:
        """(label, encoded metadata) of every live record, in no particular order: for
        building an index, which decodes each distinct encoding once."""
        return self.metadatas.encoded_items(self.labels.values())

    def items(self) -> Iterator[tuple[int, str | None, dict[str, Any]]]:
        """(label, document, metadata) of every live record, in label order."""
        documents = self.documents
        for label in self.live().tolist():
            yield label, documents[label], decode_metadata(self.metadatas[label])

    # ------------------------------------------------------------------ writing
    def append(self, id_: str, document: str | None, metadata: dict[str, Any]) -> int:
        """Adds a live record under the next label (the id must not be live); returns it."""
        label = len(self.ids)
        self.ids.append(id_)
        self.documents.append(document)
        self.metadatas.append(encode_metadata(metadata))
        self.labels[id_] = label
        self.sorted_ids.add(id_)
        if label >= len(self._alive):
            grown = np.zeros(2 * len(self._alive), np.bool_)
            grown[: len(self._alive)] = self._alive
            self._alive = grown
        self._alive[label] = True
        self._live_cache = None
        return label

    def drop(self, label: int) -> tuple[str, dict[str, Any]]:
        """Removes a live record; returns its id and metadata."""
        id_ = self.ids[label]
        metadata = decode_metadata(self.metadatas[label])
        self.ids[label] = self.documents[label] = self.metadatas[label] = None
        del self.labels[id_]
        self.sorted_ids.remove(id_)
        self._alive[label] = False
        self._live_cache = None
        return id_, metadata


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
