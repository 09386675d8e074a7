"""Metadata indexes answer filters exactly as the record-by-record predicate does.

The generated metadata includes keys holding a ``.`` ("t.x" beside a map "t" with a key
"x"), which writes refuse now but older data may hold: indexing them under their dotted
path made ``count`` and ``get`` disagree (issue 11)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import pytest

from vectord.errors import InvalidArgumentError
from vectord.storage import And, Database, Document, Field, Not, Or, Tuning
from vectord.storage.filters import compile_filter
from vectord.storage.metadata_index import MetadataIndex

scalars = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, 1.0, 2.0, -1.5]), st.booleans(),
                    st.sampled_from(["a", "b", "c"]))
values = st.one_of(scalars, st.none(), st.lists(scalars, max_size=3),
                   st.fixed_dictionaries({}, optional={"x": scalars, "y": st.lists(scalars, max_size=2),
                                                       "x.y": scalars}))
metadata = st.dictionaries(st.sampled_from(["k", "n", "t", "t.x", "t.y"]), values, max_size=4)
paths = st.sampled_from(["k", "n", "t", "t.x", "t.y", "t.x.y", "missing"])
fields = st.one_of(
    st.builds(Field, paths, st.sampled_from(["eq", "ne"]), scalars),
    st.builds(Field, paths, st.sampled_from(["gt", "gte", "lt", "lte"]),
              st.one_of(st.integers(-3, 3), st.sampled_from([0.5, 1.5]))),
    st.builds(Field, paths, st.sampled_from(["in", "nin"]), st.lists(scalars, min_size=1, max_size=3)),
    st.builds(Field, paths, st.just("exists"), st.booleans()),
    st.builds(Field, paths, st.sampled_from(["contains", "not_contains"]), scalars),
)
filters = st.recursive(fields, lambda inner: st.one_of(
    st.builds(lambda fs: And(tuple(fs)), st.lists(inner, max_size=3)),
    st.builds(lambda fs: Or(tuple(fs)), st.lists(inner, max_size=3)),
    st.builds(Not, inner)), max_leaves=6)


def _indexed(records, removed):
    """An index of ``records`` (label = position), record by record, then the ``removed``
    labels taken out again; returns it and the live labels."""
    index = MetadataIndex()
    for label, meta in enumerate(records):
        index.add(label, meta)
    for label in removed:
        if label < len(records):
            index.remove(label, records[label])
    return index, {label for label in range(len(records)) if label not in removed}


@settings(max_examples=300, deadline=None)
@given(records=st.lists(metadata, max_size=25), removed=st.sets(st.integers(0, 24)), where=filters)
def test_index_matches_the_predicate(records, removed, where):
    index, live = _indexed(records, removed)
    predicate = compile_filter(where)
    expected = {label for label in live if predicate(records[label], None)}
    assert set(index.resolve(where, live).tolist()) == expected


def test_indexes_are_restored_on_restart_and_kept_up_to_date(tmp_path):
    rng = np.random.default_rng(0)
    with Database(tmp_path / "d", tuning=Tuning(checkpoint_min_bytes=1)) as db:
        col = db.create_collection("c", dim=4)
        col.add([str(i) for i in range(200)], rng.random((200, 4), dtype=np.float32),
                metadatas=[{"year": 1990 + i % 30, "kind": "ab"[i % 2]} for i in range(200)])
        col.update(["0"], metadatas=[{"year": 3000}])
        col.delete(ids=["1"])
        col.checkpoint()
        col.update(["2"], metadatas=[{"kind": None}])  # in the log only
        before = [col.count(f) for f in (Field("year", "gte", 2010), Field("kind", "eq", "a"),
                                          Field("kind", "exists", False), Field("year", "eq", 3000))]
    with Database(tmp_path / "d") as db:
        col = db.get_collection("c")
        after = [col.count(f) for f in (Field("year", "gte", 2010), Field("kind", "eq", "a"),
                                         Field("kind", "exists", False), Field("year", "eq", 3000))]
        assert after == before
        assert before[3] == 1 and before[2] == 1


@settings(max_examples=300, deadline=None)
@given(records=st.lists(metadata, max_size=25), removed=st.sets(st.integers(0, 24)), where=filters)
def test_estimates_are_exact_or_upper_bounds(records, removed, where):
    index, live = _indexed(records, removed)
    count, exact = index.estimate(where, len(live))
    matches = len(index.resolve(where, live))
    assert count == matches if exact else count >= matches


@settings(max_examples=100, deadline=None)
@given(records=st.lists(metadata, max_size=25), where=filters)
def test_bulk_build_equals_record_by_record(records, where):
    one_by_one = MetadataIndex()
    for label, meta in enumerate(records):
        one_by_one.add(label, meta)
    bulk = MetadataIndex.build(enumerate(records))
    live = set(range(len(records)))
    assert np.array_equal(bulk.resolve(where, live), one_by_one.resolve(where, live))
    assert bulk.estimate(where, len(live)) == one_by_one.estimate(where, len(live))
    for label, meta in enumerate(records):  # and it stays maintainable
        bulk.remove(label, meta)
    assert len(bulk.resolve(where, set())) == 0


def test_a_range_over_many_distinct_values_is_estimated_and_counted_exactly(tmp_path):
    n = 12_000  # more distinct values than EXACT_RANGE_VALUES
    index = MetadataIndex.build((label, {"t": label * 0.5, "g": label % 3}) for label in range(n))
    count, exact = index.estimate(Field("t", "lt", n * 0.5 * 0.4), n)
    assert not exact and abs(count - 0.4 * n) <= 0.02 * n
    assert index.estimate(Field("t", "gte", n * 0.5 - 100), n) == (200, True)  # few values: exact
    assert len(index.resolve(Field("t", "lt", n * 0.5 * 0.4), set(range(n)))) == int(0.4 * n)
    with Database(tmp_path / "d", tuning=Tuning(exact_threshold=10**9)) as db:
        col = db.create_collection("c", dim=2)
        col.add([str(i) for i in range(n)], np.ones((n, 2), np.float32),
                metadatas=[{"t": i * 0.5} for i in range(n)])
        assert col.count(Field("t", "lt", n * 0.5 * 0.4)) == int(0.4 * n)  # count never estimates


@settings(max_examples=300, deadline=None)
@given(records=st.lists(metadata, max_size=25), removed=st.sets(st.integers(0, 24)), where=filters,
       text=st.sampled_from(["a", "b"]))
def test_narrowed_candidates_checked_by_the_predicate_equal_the_predicate(records, removed, where, text):
    """The path a query with a document condition takes (index candidates, then the
    predicate on each) finds exactly what the predicate finds on every record, and what
    ``count`` without the document condition finds (the index alone)."""
    index, live = _indexed(records, removed)
    documents = ["ab"[label % 2] for label in range(len(records))]
    both = And((where, Document("contains", text)))
    predicate = compile_filter(both)
    candidates, exact = index.narrow(both, live)
    assert not exact
    expected = {label for label in live if predicate(records[label], documents[label])}
    pool = live if candidates is None else candidates
    assert {label for label in pool if predicate(records[label], documents[label])} == expected
    assert expected == {label for label in index.resolve(where, live) if text in documents[label]}


def test_dotted_and_nested_keys_agree_in_count_get_and_query(tmp_path):
    """Issue 11: {"a.b": 1} (older data) and {"a": {"b": 1}} both counted for {"a.b": 1},
    while the same filter with a document condition found only the nested one."""
    index = MetadataIndex.build([(0, {"a.b": 1}), (1, {"a": {"b": 1}})])
    assert index.resolve(Field("a.b", "eq", 1), {0, 1}).tolist() == [1]
    assert index.estimate(Field("a.b", "eq", 1), 2) == (1, True)
    assert index.estimate(Field("a", "exists", True), 2) == (1, True)
    index.remove(0, {"a.b": 1})  # unindexed keys are removed without a KeyError


@pytest.mark.parametrize("metadata, where", [
    ({"a.b": 1}, "metadatas[0]: key 'a.b'"),
    ({"a": {"b.c": 1}}, "metadatas[0].a: key 'b.c'"),
    ({"a": [{"b.c": 1}]}, "metadatas[0].a[0]: key 'b.c'"),
    ({"a": {"b.c": None}}, "metadatas[0].a: key 'b.c'"),
])
def test_record_metadata_keys_with_a_dot_are_refused_on_every_write(tmp_path, metadata, where):
    with Database(tmp_path / "d") as db:
        col = db.create_collection("c", dim=2)
        col.add(["x"], [[1.0, 0.0]], metadatas=[{"k": 1}])
        for write in (lambda: col.add(["y"], [[1.0, 0.0]], metadatas=[metadata]),
                      lambda: col.upsert(["x"], [[1.0, 0.0]], metadatas=[metadata]),
                      lambda: col.update(["x"], metadatas=[metadata])):
            with pytest.raises(InvalidArgumentError, match=f"{where!s}.*contains '.'".replace("[", r"\[")):
                write()
        assert col.count() == 1 and col.get(["x"]).metadatas == [{"k": 1}]
        # a collection's own metadata is never filtered: dots are fine there
        assert db.create_collection("d", dim=2, metadata={"a.b": 1}).config.metadata == {"a.b": 1}


def test_contains_on_list_metadata_uses_the_index(tmp_path):
    with Database(tmp_path / "d", tuning=Tuning(exact_threshold=10**9)) as db:
        col = db.create_collection("c", dim=2)
        col.add(["a", "b", "c", "d"], np.ones((4, 2), np.float32),
                metadatas=[{"tags": ["red", "big"]}, {"tags": ["blue", 1]}, {"tags": "red"}, {}])
        assert col.get(where=Field("tags", "contains", "red")).ids == ["a"]  # a string is not a list
        assert col.get(where=Field("tags", "contains", 1.0)).ids == ["b"]
        assert col.get(where=Field("tags", "contains", True)).ids == []
        assert col.get(where=Field("tags", "not_contains", "red")).ids == ["b", "c", "d"]
        assert col.count(Field("tags", "contains", "big")) == 1
        col.update(["a"], metadatas=[{"tags": ["green"]}])
        assert col.count(Field("tags", "contains", "red")) == 0
        assert col.get(where=Field("tags", "contains", "green")).ids == ["a"]
        with pytest.raises(InvalidArgumentError, match=r"'tags' \$contains needs a string, number or bool"):
            col.get(where=Field("tags", "contains", ["red"]))


def test_older_data_with_dotted_keys_still_opens_and_filters_agree(tmp_path, monkeypatch):
    """Data written before dotted keys were refused (simulated by lifting the check) opens,
    in a checkpoint and in the log; its dotted keys are returned as stored, never matched
    by a path, and a None removes one."""
    from vectord.storage import validation

    checked = validation._check_value
    monkeypatch.setattr(validation, "_check_value",
                        lambda value, path, depth, dotted_keys=True: checked(value, path, depth))
    with Database(tmp_path / "d") as db:
        col = db.create_collection("c", dim=2)
        col.add(["flat", "nested"], [[1.0, 0.0], [0.0, 1.0]], documents=["doc", "doc"],
                metadatas=[{"a.b": 1}, {"a": {"b": 1}}])
        col.checkpoint()
        col.add(["logged"], [[1.0, 1.0]], documents=["doc"], metadatas=[{"a.b": 1, "x": {"y.z": 2}}])
    monkeypatch.undo()
    with Database(tmp_path / "d") as db:
        col = db.get_collection("c")
        where = Field("a.b", "eq", 1)
        assert col.count(where) == 1
        assert col.get(where=And((where, Document("contains", "doc")))).ids == ["nested"]
        assert col.count(Field("x.y.z", "exists", True)) == 0
        assert col.get(["logged"]).metadatas == [{"a.b": 1, "x": {"y.z": 2}}]
        col.update(["flat"], metadatas=[{"a.b": None, "k": 1}])  # cleaning up is allowed
        assert col.get(["flat"]).metadatas == [{"k": 1}]
