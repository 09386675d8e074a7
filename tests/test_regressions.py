"""Frozen failures found by the state machine and the crash tests (one test per bug)."""

from __future__ import annotations

import pytest

from vectord.storage import Database, Field


@pytest.mark.parametrize("old, new", [(1, True), (True, 1), (1, 1.0), (0.0, False),
                                      ({"a": 1}, {"a": True}), ([1, 2], [1.0, 2.0])])
@pytest.mark.parametrize("method", ["update", "upsert"])
def test_regression_metadata_value_of_another_type_is_a_change(tmp_path, method, old, new):
    """A write whose metadata was == to the stored one in Python (1 == 1.0 == True) was
    reported "unchanged" and not written, so the old type stayed (and filters, which tell
    bools from numbers, kept matching the old value)."""
    with Database(tmp_path / "data") as db:
        col = db.create_collection("c", dim=2)
        col.add(["a"], [[1.0, 0.0]], metadatas=[{"k": old}])
        result = getattr(col, method)(["a"], metadatas=[{"k": new}])
        assert (result.updated, result.unchanged) == (1, 0)
        got = col.get(["a"]).metadatas[0]["k"]
        assert type(got) is type(new) and got == new
        if isinstance(new, bool):
            assert col.count(Field("k", "eq", new)) == 1
    with Database(tmp_path / "data") as db:  # and it is durable
        got = db.get_collection("c").get(["a"]).metadatas[0]["k"]
        assert type(got) is type(new) and got == new


def test_regression_empty_checkpoint_reopens(tmp_path):
    """A forced checkpoint of an empty collection wrote a 0-row vectors.npy, which numpy
    loads as a plain array, not a map; reopening it called that collection damaged."""
    with Database(tmp_path / "data") as db:
        db.create_collection("c", dim=4).checkpoint(force=True)
    with Database(tmp_path / "data") as db:
        col = db.get_collection("c")
        assert col.count() == 0
        col.add(["a"], [[1.0, 0.0, 0.0, 0.0]])
        col.checkpoint()
    with Database(tmp_path / "data") as db:
        assert db.get_collection("c").get(["a"], include=["embeddings"]).embeddings.tolist() == [[1.0, 0.0, 0.0, 0.0]]
