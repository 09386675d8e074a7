"""A write batch indexed at once (``MetadataIndex.add_many``, ``LabelArray.add_sorted``)
answers every filter as records indexed one by one do (``add``)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vectord.storage import Field
from vectord.storage.label_arrays import LabelArray
from vectord.storage.metadata_index import MetadataIndex

scalar = st.sampled_from([0, 1, 1.0, True, False, 2.5, -3, "a", "b", None])
value = st.one_of(scalar, st.lists(scalar, max_size=3), st.fixed_dictionaries({}, optional={"b": scalar}))
metadata = st.dictionaries(st.sampled_from(["a", "c", "a.b"]), value, max_size=3)
FILTERS = [Field(path, op, operand) for path in ("a", "a.b", "c") for op, operand in
           (("eq", 1), ("eq", "a"), ("eq", True), ("ne", 1), ("gt", 0), ("lte", 1), ("in", [1, "b"]),
            ("contains", 1), ("contains", "a"), ("exists", True), ("exists", False))]


@settings(max_examples=200, deadline=None)
@given(before=st.lists(metadata, max_size=8), batches=st.lists(st.lists(metadata, max_size=8), max_size=3))
def test_a_batch_indexes_as_one_record_at_a_time(before, batches):
    one, many = MetadataIndex(), MetadataIndex()
    label = 0
    for m in before:
        one.add(label, m)
        many.add(label, m)
        label += 1
    for batch in batches:
        labels = list(range(label, label + len(batch)))
        for at, m in zip(labels, batch):
            one.add(at, m)
        many.add_many(labels, batch)
        label += len(batch)
    live = np.arange(label)
    for where in FILTERS:
        assert many.resolve(where, live).tolist() == one.resolve(where, live).tolist(), where
        assert many.estimate(where, label) == one.estimate(where, label), where


def test_add_sorted_appends_past_the_end_and_merges_otherwise():
    array = LabelArray()
    assert array.add_sorted(np.array([2, 5], np.int64)) == 2
    assert array.add_sorted(np.array([7, 9, 11], np.int64)) == 3
    assert array.view().tolist() == [2, 5, 7, 9, 11]
    assert array.add_sorted(np.array([1, 5, 12], np.int64)) == 2  # 5 was there
    assert array.view().tolist() == [1, 2, 5, 7, 9, 11, 12]
    array.discard(9)
    assert array.add(10) and array.view().tolist() == [1, 2, 5, 7, 10, 11, 12]
