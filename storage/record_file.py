"""Reading a checkpoint's records file into a ``RecordStore`` without an object per record.

Why (issue 13, per-record memory): decoding the whole file at once (``msgpack.unpackb``)
made a ``str`` per id, a ``bytes`` per metadata and an ``int`` per label, ~150 bytes a
record, all freed once the packed columns were built. Python's small-object allocator
keeps a 1 MiB arena as long as any object in it lives, and the objects the open keeps
(arrays' headers, the metadata index's entries) land between those temporaries: a GloVe
65k x 50 collection kept ~5 arenas that were nearly empty, 60-80 bytes a record of resident
memory (``sys._debugmallocstats`` before and after opening;
benchmarks/results/memory-steady-50d-2026-11-30-open.md). Here the columns are read
``CHUNK`` values at a time (msgpack's streaming ``Unpacker``), each chunk packed into
numpy/bytearray buffers at once, so the temporaries of one chunk reuse the memory of the
last one.

The file is what ``RecordStore.to_columns`` wrote (a map of ``labels`` bytes, ``ids``,
``documents``, ``metadatas``); anything else (the row layout of older generations) returns
None and the caller decodes it whole, as before.
"""

from __future__ import annotations

import os
from itertools import islice
from typing import Any, BinaryIO

import msgpack
import numpy as np

from .id_index import encode
from .records import RecordStore

#: Values decoded at once: their temporary objects fit in the arenas the last chunk freed.
CHUNK = 4096
_MAP_HEADERS = frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}


class _Packed:
    """A column of ``str`` or ``bytes | None`` values packed as it is read: utf-8 bytes end to
    end and each value's length (None and empty: 0)."""

    def __init__(self, n: int) -> None:
        self.blob = bytearray()
        self.lens = np.zeros(n, np.int64)
        self.filled = 0

    def add_strs(self, values: list) -> None:
        if not all(type(value) is str for value in values):
            raise ValueError("record ids must be strings")
        joined = "".join(values)
        if joined.isascii():
            self.blob += joined.encode("ascii")
            lens = np.fromiter(map(len, values), np.int64, len(values))
        else:
            encoded = [encode(value) for value in values]
            self.blob += b"".join(encoded)
            lens = np.fromiter(map(len, encoded), np.int64, len(encoded))
        self._lens(lens)

    def add_bytes(self, values: list) -> None:
        if not all(value is None or type(value) is bytes for value in values):
            raise ValueError("record metadata must be encoded bytes or nil")
        values = [value or b"" for value in values]
        self.blob += b"".join(values)
        self._lens(np.fromiter(map(len, values), np.int64, len(values)))

    def _lens(self, lens: np.ndarray) -> None:
        self.lens[self.filled:self.filled + len(lens)] = lens
        self.filled += len(lens)


def _next(unpacker: msgpack.Unpacker, count: int, key: str) -> list:
    """The next ``count`` values of a column (iterating an Unpacker stops quietly at the end
    of the data: a column cut short is refused here, not read as empty values)."""
    chunk = list(islice(unpacker, count))
    if len(chunk) != count:
        raise ValueError(f"records file: the {key} column ends early")
    return chunk


def _columns(unpacker: msgpack.Unpacker) -> dict[str, Any]:
    """The file's columns, each packed as it is read (see ``read``)."""
    columns: dict[str, Any] = {}
    for _ in range(unpacker.read_map_header()):
        key = unpacker.unpack()
        if key in columns or key not in ("labels", "ids", "documents", "metadatas"):
            raise ValueError(f"records file: unexpected key {key!r}")
        if key == "labels":
            labels = unpacker.unpack()
            if type(labels) is not bytes or len(labels) % 8:
                raise ValueError("records file: labels are not 8-byte integers")
            columns[key] = np.frombuffer(labels, "<i8").astype(np.int64)
            continue
        n = unpacker.read_array_header()
        if key == "documents":
            documents: list | None = None  # None while every document read is None
            for start in range(0, n, CHUNK):
                chunk = _next(unpacker, min(CHUNK, n - start), key)
                if documents is None and any(value is not None for value in chunk):
                    documents = [None] * start
                if documents is not None:
                    documents.extend(chunk)
            if documents is not None and not all(value is None or type(value) is str for value in documents):
                raise ValueError("record documents must be strings or nil")
            columns[key] = (documents, n)
            continue
        packed = _Packed(n)
        add = packed.add_strs if key == "ids" else packed.add_bytes
        # filled in place: no object outlives its chunk (one would pin an arena of them)
        hashes = packed.hashes = np.empty(n if key == "ids" else 0, np.int64)
        for start in range(0, n, CHUNK):
            chunk = _next(unpacker, min(CHUNK, n - start), key)
            add(chunk)
            if len(hashes):
                hashes[start:start + len(chunk)] = np.fromiter(map(hash, chunk), np.int64, len(chunk))
        columns[key] = packed
    return columns


def read(stream: BinaryIO, slots: int) -> RecordStore | None:
    """The ``RecordStore`` of a records file of the column layout, read from ``stream``;
    None if the file has another layout (the caller decodes it whole).

    Raises:
        ValueError: the columns do not agree with each other or with ``slots``, a label or
            an id repeats, or a value has the wrong type.
        The file ends early, or is otherwise malformed msgpack (msgpack's errors, ValueErrors).
    """
    first = stream.read(1)
    size = stream.seek(0, os.SEEK_END)
    stream.seek(0)
    if not first or first[0] not in _MAP_HEADERS:
        return None
    # one value (the labels: 8 bytes a record) may be as large as the file; none larger
    unpacker = msgpack.Unpacker(stream, raw=False, strict_map_key=True, max_buffer_size=max(size, 1 << 16))
    try:
        columns = _columns(unpacker)
    except msgpack.OutOfData as exc:  # not a ValueError in msgpack
        raise ValueError("records file: ends inside its columns") from exc
    if set(columns) != {"labels", "ids", "documents", "metadatas"}:
        raise ValueError(f"records file: columns {sorted(columns)} missing some of labels, ids, documents, metadatas")
    try:
        unpacker.unpack()
    except msgpack.OutOfData:  # the end of the file, as expected
        pass
    else:
        raise ValueError("records file: extra data after the columns")
    return RecordStore.from_packed(columns["labels"], columns["ids"].blob, columns["ids"].lens,
                                   columns["ids"].hashes, *columns["documents"],
                                   columns["metadatas"].blob, columns["metadatas"].lens, slots)
