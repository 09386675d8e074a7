"""The record store: columns by label, metadata kept encoded, checkpoint columns."""

from __future__ import annotations

import pytest

from vectord.storage.records import RecordStore, decode_metadata


def test_records_round_trip_through_checkpoint_columns():
    store = RecordStore()
    metadata = {"i": 1, "f": 1.0, "b": True, "s": "x", "n": None, "l": [1, 2.5], "m": {"k": False}}
    assert store.append("a", "doc a", metadata) == 0
    assert store.append("b", None, {}) == 1
    assert store.append("c", "doc c", {"k": 3}) == 2
    assert store.drop(1) == ("b", {})
    got = store.metadata(0)
    assert got == metadata and all(type(got[k]) is type(metadata[k]) for k in metadata)  # types kept
    assert store.live().tolist() == [0, 2] and len(store) == 2 and store.slots == 3
    assert [store.ids[label] for label in store.ids_after("")] == ["a", "c"]
    assert store.find(["a", "b", "c"]).tolist() == [0, -1, 2] and "b" not in store.labels
    columns = store.to_columns()
    again = RecordStore.from_columns([0, 2], columns["ids"], columns["documents"], columns["metadatas"], slots=3)
    assert again.find(["a", "b", "c"]).tolist() == [0, -1, 2] and again.documents == store.documents
    assert [again.metadata(label) for label in (0, 2)] == [metadata, {"k": 3}]
    assert sorted((labels.tolist(), decode_metadata(encoded)) for encoded, labels in again.metadata_groups()) == [
        ([0], metadata), ([2], {"k": 3})]
    assert again.append("d", None, {}) == 3 and again.live().tolist() == [0, 2, 3]


def test_packed_metadata_column_reads_back_what_was_stored():
    from vectord.storage.records import PackedBytes

    column = PackedBytes([b"ab", None, b"", b"cde"])
    assert list(column) == [b"ab", None, None, b"cde"]
    for i in range(40):  # grows past its first capacity
        column.append(None if i % 3 == 0 else bytes([i]) * i)
    assert len(column) == 44 and column[42] == bytes([38]) * 38 and column[43] is None
    column[0] = b"xyz"  # set again: the new bytes, the old ones unreachable
    column[3] = None
    assert column[0] == b"xyz" and column[3] is None and column[1] is None
    with pytest.raises(IndexError):
        column[44]
