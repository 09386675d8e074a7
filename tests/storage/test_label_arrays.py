"""Label sets as sorted int arrays (storage/label_arrays.py) behave as Python sets, and the
metadata index's value-ordered range slices stay right across writes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vectord.storage import Field, Not
from vectord.storage.filters import compile_filter
from vectord.storage.label_arrays import LabelArray, difference, intersection, sort_labels, union
from vectord.storage.metadata_index import MetadataIndex

label_sets = st.sets(st.integers(0, 300), max_size=120)


def _array(labels: set[int]) -> np.ndarray:
    return np.asarray(sorted(labels), np.int64)


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.tuples(st.booleans(), st.integers(0, 60)), max_size=200))
def test_label_array_adds_and_discards_as_a_set_does(steps):
    array, expected = LabelArray(), set()
    for add, label in steps:
        if add:
            assert array.add(label) == (label not in expected)
            expected.add(label)
        else:
            array.discard(label)
            expected.discard(label)
        assert array.view().tolist() == sorted(expected)
        assert len(array) == len(expected)


@settings(max_examples=200, deadline=None)
@given(sets=st.lists(label_sets, max_size=4), live=label_sets)
def test_set_algebra_equals_python_sets(sets, live):
    arrays = [_array(s) for s in sets]
    assert union(arrays).tolist() == sorted(set().union(*sets))
    assert intersection(arrays).tolist() == (sorted(set.intersection(*sets)) if sets else [])
    for s, a in zip(sets, arrays):
        assert difference(_array(live), a).tolist() == sorted(live - s)
        shuffled = np.random.default_rng(0).permutation(a)
        assert sort_labels(shuffled).tolist() == sorted(s)


def test_results_are_the_callers_to_change():
    index = MetadataIndex.build((label, {"b": label % 3}) for label in range(30))
    first = index.resolve(Field("b", "eq", 1), range(30))
    first[:] = -1  # a caller sorting or changing its answer must not change the index
    assert index.resolve(Field("b", "eq", 1), range(30)).tolist() == list(range(1, 30, 3))


@settings(max_examples=50, deadline=None)
@given(ops=st.lists(st.tuples(st.integers(0, 399), st.one_of(st.none(), st.integers(0, 99))), max_size=60),
       threshold=st.integers(-1, 101))
def test_ranges_over_many_values_stay_right_across_writes(ops, threshold):
    """A range over more than a few distinct values is one slice of the path's labels in
    value order; every write must drop that slice so the next query rebuilds it."""
    metadata = {label: {"v": label % 100} for label in range(400)}
    index = MetadataIndex.build(metadata.items())
    where = Field("v", "lt", threshold)
    predicate = compile_filter(where)

    def check():
        live = sorted(metadata)
        expected = [label for label in live if predicate(metadata[label], None)]
        assert index.resolve(where, live).tolist() == expected
        assert index.estimate(where, len(live)) == (len(expected), True)
        assert index.resolve(Not(where), live).tolist() == sorted(set(live) - set(expected))

    check()
    for label, value in ops:  # remove, then re-add with a new value (None: stays removed)
        if label in metadata:
            index.remove(label, metadata.pop(label))
        if value is not None:
            metadata[label] = {"v": value}
            index.add(label, metadata[label])
        check()
