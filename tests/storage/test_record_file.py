"""Reading a checkpoint's records file by chunks (storage/record_file.py) gives the same store
as decoding it whole (``RecordStore.from_columns``), and refuses what that refused."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vectord.storage import framing, record_file
from vectord.storage.records import RecordStore, decode_metadata, encode_metadata


def _read(columns, slots):
    return record_file.read(io.BytesIO(framing.pack(columns)), slots)


def _state(store: RecordStore) -> dict:
    """Everything a reader of the store can see."""
    live = store.live().tolist()
    ids = [store.ids[label] for label in range(store.slots)]
    return {"slots": store.slots, "live": live, "ids": ids, "documents": list(store.documents),
            "metadata": [store.metadata(label) for label in range(store.slots)],
            "find": store.find(ids + ["absent"]).tolist(),
            "get": [store.labels.get(i) for i in ids + ["absent"]],
            "order": list(store.ids_after("")),
            "groups": sorted((decode_metadata(k).__repr__(), v.tolist()) for k, v in store.metadata_groups())}


def _columns(labels, ids, documents, metadatas):
    return {"labels": np.asarray(labels, "<i8").tobytes(), "ids": ids, "documents": documents,
            "metadatas": [encode_metadata(m) for m in metadatas]}


def test_a_file_of_many_chunks_reads_back_as_decoded_whole():
    n = 3 * record_file.CHUNK + 17
    labels = [2 * i + 1 for i in range(n)]  # every other slot dropped
    ids = [f"id-{i}" if i % 5 else f"é-{i}" for i in range(n)]  # some not ASCII
    documents = [None] * (2 * record_file.CHUNK) + [f"doc {i}" for i in range(n - 2 * record_file.CHUNK)]
    metadatas = [{"bucket": i % 7} if i % 3 else {} for i in range(n)]
    columns = _columns(labels, ids, documents, metadatas)
    got = _read(columns, 2 * n + 1)
    whole = RecordStore.from_columns(labels, ids, documents, columns["metadatas"], slots=2 * n + 1)
    assert _state(got) == _state(whole)
    assert got.documents.any() and got.find(ids[:3]).tolist() == labels[:3]
    assert got.append("new", "d", {"k": 1}) == 2 * n + 1 and got.labels.get("new") == 2 * n + 1


def test_vector_only_records_keep_no_document_list():
    got = _read(_columns([0, 1, 2], ["a", "b", "c"], [None] * 3, [{}] * 3), 3)
    assert not got.documents.any() and list(got.documents) == [None] * 3
    assert got.find(["c", "a", "x"]).tolist() == [2, 0, -1]


def test_labels_out_of_order_are_put_in_order():
    labels, ids = [4, 0, 2], ["four", "zero", "two"]
    got = _read(_columns(labels, ids, ["d4", None, "d2"], [{"v": 4}, {}, {"v": 2}]), 5)
    assert [got.ids[label] for label in (0, 2, 4)] == ["zero", "two", "four"]
    assert list(got.documents) == [None, None, "d2", None, "d4"]
    assert got.metadata(4) == {"v": 4} and got.metadata(0) == {} and got.live().tolist() == [0, 2, 4]


def test_the_row_layout_of_older_generations_is_left_to_the_caller():
    assert record_file.read(io.BytesIO(framing.pack([[0, "a", None, {}]])), 1) is None
    assert record_file.read(io.BytesIO(b""), 0) is None


@pytest.mark.parametrize("damage, match", [
    (lambda c: c.update(labels=np.zeros(2, "<i8").tobytes()), "repeat a label"),
    (lambda c: c.update(ids=["a", "a"]), "repeat"),
    (lambda c: c.update(labels=np.array([0, 5], "<i8").tobytes()), "do not agree"),
    (lambda c: c.update(ids=["a"]), "do not agree"),
    (lambda c: c.update(documents=[None]), "do not agree"),
    (lambda c: c.update(ids=["a", 7]), "ids must be strings"),
    (lambda c: c.update(metadatas=[b"\x80", "x"]), "metadata must be"),
    (lambda c: c.update(documents=[None, 3]), "documents must be"),
    (lambda c: c.update(labels=b"\x00" * 12), "8-byte"),
    (lambda c: c.pop("metadatas"), "missing"),
    (lambda c: c.update(extra=[]), "unexpected key"),
])
def test_columns_that_do_not_hold_together_are_refused(damage, match):
    columns = _columns([0, 1], ["a", "b"], [None, "x"], [{}, {"k": 1}])
    damage(columns)
    with pytest.raises(ValueError, match=match):
        _read(columns, 2)


@pytest.mark.parametrize("cut", [1, 3, 9])
def test_a_file_cut_short_is_refused_not_read_as_empty_values(cut):
    columns = _columns([0, 1, 2], ["a", "b", "c"], [None, "x", None], [{}, {"k": 1}, {}])
    columns = {"labels": columns["labels"], "documents": columns["documents"], "metadatas": columns["metadatas"],
               "ids": columns["ids"]}  # ids last: a cut falls inside them
    data = framing.pack(columns)
    with pytest.raises(ValueError):
        record_file.read(io.BytesIO(data[:-cut]), 3)


def test_data_after_the_columns_is_refused():
    data = framing.pack(_columns([0], ["a"], [None], [{}])) + b"\xc0"
    with pytest.raises(ValueError, match="extra data"):
        record_file.read(io.BytesIO(data), 1)


_ID = st.text(min_size=0, max_size=6)
_META = st.dictionaries(st.sampled_from("abc"), st.integers(-3, 3) | st.text(max_size=3), max_size=2)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_ID, st.none() | st.text(max_size=4), _META), max_size=40, unique_by=lambda r: r[0]),
       st.integers(0, 5), st.randoms(use_true_random=False))
def test_any_records_read_by_chunks_equal_a_whole_decode(records, spare, rnd):
    slots = len(records) + spare
    labels = sorted(rnd.sample(range(slots), len(records)))
    if rnd.random() < 0.3:
        rnd.shuffle(labels)
    ids, documents, metadatas = ([r[i] for r in records] for i in range(3))
    columns = _columns(labels, ids, documents, metadatas)
    whole = RecordStore.from_columns(labels, ids, documents, columns["metadatas"], slots=slots)
    chunk, record_file.CHUNK = record_file.CHUNK, 3  # several chunks even for a few records
    try:
        assert _state(_read(columns, slots)) == _state(whole)
    finally:
        record_file.CHUNK = chunk
