"""``Database(None)``: the engine in memory, with no directory, lock, log or checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from vectord.errors import AlreadyExistsError, FailedPreconditionError, InvalidArgumentError
from vectord.storage import Database, Field, Tuning
from vectord.storage import checkpoint as disk
from vectord.storage import collection as collection_module
from vectord.storage import database as database_module
from vectord.storage import fsio


@pytest.fixture
def no_disk(monkeypatch):
    """Every way the engine reaches the disk raises: the log, checkpoints, the directory
    lock and the file-system layer."""
    def refuse(*args, **kwargs):
        raise AssertionError("an in-memory database touched the disk")

    monkeypatch.setattr(collection_module, "WriteAheadLog", refuse)
    for name in ("write_generation", "write_manifest", "read_manifest", "load_generation", "new_manifest"):
        monkeypatch.setattr(disk, name, refuse)
    monkeypatch.setattr(database_module, "FileLock", refuse)
    for name in ("create", "write_file", "open_log", "append", "fsync", "mkdir", "rename", "fsync_dir",
                 "remove_tree", "remove"):
        monkeypatch.setattr(fsio.REAL, name, refuse)


def test_the_whole_api_runs_without_touching_the_disk(no_disk, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    vectors = rng.random((300, 8), dtype=np.float32)
    tuning = Tuning(exact_threshold=100, graph_cost_per_ef=0, compact_min_dead=1, compact_ratio=0.0)
    with Database(None, tuning=tuning) as db:
        assert db.path is None
        col = db.create_collection("c", dim=8, metric="l2")
        with pytest.raises(AlreadyExistsError):
            db.create_collection("c", dim=8)
        assert db.create_collection("c", dim=8, get_or_create=True) is col
        result = col.add([str(i) for i in range(300)], vectors,
                         metadatas=[{"g": i % 3, "tags": ["x" if i % 2 else "y"]} for i in range(300)])
        assert result.inserted == 300 and result.seq == 1
        assert col._index is not None  # the graph is built, in memory
        hits, plan = col.query_with_plan(vectors[:1], n_results=3)
        assert hits[0].ids[0] == "0" and plan.strategy == "hnsw"
        assert col.count(Field("tags", "contains", "x")) == 150
        assert col.update(["0"], metadatas=[{"g": 9}]).updated == 1
        assert col.delete(where=Field("g", "eq", 1)).deleted == 100
        assert col.info().count == 200 and col.info().seq == 3
        np.testing.assert_array_equal(col.get(["2"], include=["embeddings"]).embeddings[0], vectors[2])
        assert db.checkpoint("c") == 0  # nothing to write; deleted slots are compacted away
        assert col.stats()["deleted_slots"] == 0 and col.stats()["disk_bytes"] == 0
        assert col.get(["2"]).ids == ["2"] and col.query(vectors[2:3], n_results=1)[0].ids == ["2"]
        for call in (lambda: db.create_snapshot("c"), db.list_snapshots, lambda: db.restore_snapshot("s")):
            with pytest.raises(FailedPreconditionError, match="in memory"):
                call()
        db.delete_collection("c")
        assert db.list_collections() == []
    assert list(tmp_path.iterdir()) == []


def test_two_in_memory_databases_are_independent():
    with Database(None) as one, Database(None) as two:
        one.create_collection("c", dim=2).add(["a"], [[1.0, 0.0]])
        two.create_collection("c", dim=2)
        assert one.get_collection("c").count() == 1 and two.get_collection("c").count() == 0


def test_in_memory_writes_are_validated_like_persistent_ones():
    with Database(None) as db:
        col = db.create_collection("c", dim=2)
        with pytest.raises(InvalidArgumentError, match="dim 2"):
            col.add(["a"], [[1.0, 0.0, 0.0]])
        assert col.count() == 0 and col.info().seq == 0


def test_rename_modify_and_reset_work_in_memory(no_disk):
    with Database(None) as db:
        db.create_collection("a", dim=2).add(["x"], [[1.0, 0.0]])
        db.create_collection("b", dim=2)
        renamed = db.modify_collection("a", new_name="c", metadata={"k": 1})
        assert renamed.config.name == "c" and renamed.config.metadata == {"k": 1}
        assert [c.name for c in db.list_collections()] == ["b", "c"] and renamed.count() == 1
        assert db.reset() == 2 and db.list_collections() == []
