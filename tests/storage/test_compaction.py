"""Compaction builds its new structures beside the old ones (storage/compaction.py): queries
and writes go on during the build, the swap is one short step that keeps the writes made
meanwhile, and a failed build changes nothing."""

from __future__ import annotations

import errno
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from vectord.errors import ResourceExhaustedError
from vectord.storage import Database, Field, Tuning
from vectord.storage import compaction
from vectord.storage.fsio import FileSystem

# seal_rows=0: this file tests the compaction of the mutable tail (a segment's own
# compaction: tests/storage/test_segments.py), so nothing may be sealed first.
TUNING = Tuning(exact_threshold=64, checkpoint_min_bytes=1 << 40, compact_min_dead=10, compact_ratio=0.3,
                index_threads=1, seal_rows=0)
rng = np.random.default_rng(11)
VECTORS = rng.normal(size=(400, 8)).astype(np.float32)
IDS = [f"r{i}" for i in range(400)]


def _fill(col, deleted=range(0, 400, 2)):
    col.add(IDS, VECTORS, documents=[f"doc {i}" for i in range(400)],
            metadatas=[{"i": i, "odd": i % 2 == 1} for i in range(400)])
    col.delete(ids=[IDS[i] for i in deleted])


def _answers(col):
    """What the collection answers: nearest ids of a few queries (plain and filtered), a
    filtered get and a count; equal before and after a compaction."""
    return (col.query(VECTORS[1:6], n_results=5)[0].ids,
            [r.ids for r in col.query(VECTORS[1:6], n_results=3, where=Field("i", "gt", 200))],
            sorted(col.get(where=Field("i", "lt", 20)).ids), col.count(),
            np.asarray(col.get(["r7"], include=["embeddings"]).embeddings).tolist())


class _HeldBuild:
    """Holds a compaction in its build (after the new vectors and graph are built, before
    the metadata index is) until released."""

    def __init__(self, monkeypatch):
        self.entered, self.release = threading.Event(), threading.Event()
        real = compaction.MetadataIndex.build_groups
        held = self

        class Held:
            @staticmethod
            def build_groups(groups):
                held.entered.set()
                assert held.release.wait(30)
                return real(groups)

        monkeypatch.setattr(compaction, "MetadataIndex", Held)


@pytest.mark.parametrize("where", ["disk", "memory"])
def test_queries_and_writes_go_on_while_a_compaction_builds_and_its_swap_keeps_the_writes(
        tmp_path, monkeypatch, where):
    db = Database(tmp_path / "d" if where == "disk" else None, tuning=TUNING, checkpoint_interval_s=3600)
    with db, ThreadPoolExecutor(4) as pool:
        col = db.create_collection("c", dim=8)
        _fill(col)
        before = _answers(col)
        assert col.stats()["deleted_slots"] == 200
        held = _HeldBuild(monkeypatch)
        compacting = pool.submit(col.checkpoint, compact=True)
        try:
            assert held.entered.wait(30)
            # mid-build: every read is answered at once, from the old state ...
            assert pool.submit(_answers, col).result(5) == before
            assert col.stats()["deleted_slots"] == 200
            # ... and writes of every kind are applied at once
            assert pool.submit(col.add, ["new", "gone"], VECTORS[:2]).result(5).inserted == 2
            assert pool.submit(col.delete, ["gone", "r3"]).result(5).deleted == 2
            assert pool.submit(col.upsert, ["r5"], VECTORS[10:11], None, [{"i": 5, "v": 2}]).result(5).updated == 1
            assert pool.submit(col.update, ["r9"], None, ["nine"]).result(5).updated == 1
            assert col.count() == 200 and not compacting.done()
        finally:
            held.release.set()
        compacting.result(30)
        # the compacted state holds the writes made during the build (applied again after
        # the 200 compacted records: 4 new slots, and 4 deleted by them)
        assert (col.stats()["slots"], col.stats()["deleted_slots"], col.count()) == (204, 4, 200)
        assert col.get(["new", "gone", "r3"]).ids == ["new"]
        got = col.get(["r5", "r9"], include=["embeddings", "documents", "metadatas"])
        assert got.metadatas == [{"i": 5, "odd": True, "v": 2}, {"i": 9, "odd": True}]
        assert got.documents == ["doc 5", "nine"] and np.array_equal(got.embeddings[0], VECTORS[10])
        assert col.query(VECTORS[10:11], n_results=1)[0].ids == ["r5"]
        assert col.get(where=Field("v", "eq", 2)).ids == ["r5"]
        col.delete(ids=["new"])
        col.upsert(["r5"], VECTORS[5:6], metadatas=[{"v": None}])
        col.update(["r9"], documents=["doc 9"])
        col.add(["r3"], VECTORS[3:4], documents=["doc 3"], metadatas=[{"i": 3, "odd": True}])
        assert _answers(col) == before
    if where == "disk":
        with Database(tmp_path / "d", tuning=TUNING) as db:
            assert _answers(db.get_collection("c")) == before


def test_after_compaction_the_vectors_are_mapped_from_the_generation_and_no_work_file_is_left(tmp_path):
    with Database(tmp_path / "d", tuning=TUNING, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=8)
        _fill(col)
        col.checkpoint(compact=True)
        store = col._vectors
        assert store.filename is not None and store.filename.parent.name == col._manifest["generation"]
        assert store._tail_n == 0 and store.slots == 200
        assert not list(col.path.glob(f"{compaction.PREFIX}*"))
        assert col._index is not None and col._index.count == 200


def test_a_compaction_that_cannot_write_its_vectors_changes_nothing(tmp_path):
    class FullDisk(FileSystem):
        full = False

        def create(self, path):
            if self.full and path.name.startswith(compaction.PREFIX):
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            return super().create(path)

    fs = FullDisk()
    with Database(tmp_path / "d", tuning=TUNING, fs=fs, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=8)
        _fill(col)
        before = _answers(col)
        fs.full = True
        with pytest.raises(ResourceExhaustedError, match="compaction"):
            col.checkpoint(compact=True)
        assert _answers(col) == before and col.stats()["deleted_slots"] == 200
        assert not list(col.path.glob(f"{compaction.PREFIX}*"))
        col.add(["after"], VECTORS[:1])  # the collection still takes writes
        fs.full = False
        assert col.checkpoint(compact=True)
        assert col.stats()["deleted_slots"] == 0
        col.delete(ids=["after"])
        assert _answers(col) == before


def test_a_work_file_left_by_a_crash_is_removed_at_open(tmp_path):
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.create_collection("c", dim=8)
        _fill(col)
        stray = col.path / f"{compaction.PREFIX}00000000000000000003-0.npy"
    stray.write_bytes(b"half a file")
    with Database(tmp_path / "d", tuning=TUNING) as db:
        assert db.get_collection("c").count() == 200
        assert not stray.exists()


def test_a_failed_build_leaves_the_collection_serving(tmp_path, monkeypatch):
    """A failure that is not a disk error (here: the graph cannot be built) propagates and
    leaves the old structures in place."""
    with Database(tmp_path / "d", tuning=TUNING, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=8)
        _fill(col)
        before = _answers(col)

        def broken(*args, **kwargs):
            raise MemoryError("no memory for the new graph")

        monkeypatch.setattr(compaction.HnswIndex, "create", broken)
        with pytest.raises(MemoryError):
            col.checkpoint(compact=True)
        assert _answers(col) == before
        monkeypatch.undo()
        assert col.checkpoint(compact=True) and col.stats()["deleted_slots"] == 0
        assert _answers(col) == before


def test_compaction_is_due_past_the_threshold_or_always_without_a_graph():
    assert not compaction.due(100, 100, True, 10, 0.3, force=True)
    assert compaction.due(100, 99, False, 10, 0.3, force=False)
    assert not compaction.due(100, 75, True, 10, 0.3, force=False)
    assert compaction.due(100, 70, True, 10, 0.3, force=False)
    assert compaction.due(100, 99, True, 10, 0.3, force=True)


def test_vector_blocks_read_the_same_rows_as_the_map(tmp_path):
    from vectord.storage.vectors import VectorStore

    path = tmp_path / "v.npy"
    np.save(path, VECTORS)
    store = VectorStore.mapped(path, 8)
    store.append(VECTORS[:5])
    for labels in (np.arange(0, 405, 3), np.array([0, 399, 400, 404]), np.arange(400, 405), np.array([7])):
        got = np.concatenate(list(store.blocks(labels.astype(np.int64), rows=16)))
        assert np.array_equal(got, store.take(labels))
