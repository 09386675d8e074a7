"""The exact tail and the background indexer (storage/indexer.py): a write is searchable the
moment it is acknowledged, the graph catches up in the background, replay only appends, and
the graph's coverage survives checkpoints, compaction and restarts."""

from __future__ import annotations

import numpy as np
import pytest

from vectord.storage import Database, Field, Tuning
from vectord.storage import checkpoint as disk
from vectord.storage.fsio import REAL
from vectord.storage.index import exact_search
from vectord.storage.indexer import Indexer

# seal_rows=0: this file tests the mutable tail's own graph and indexer, so nothing may
# move into a sealed segment (tests/storage/test_segments.py tests those).
TUNING = Tuning(exact_threshold=64, checkpoint_min_bytes=1 << 40, graph_cost_per_ef=0,
                compact_min_dead=10, compact_ratio=0.3, seal_rows=0)
rng = np.random.default_rng(11)
VECTORS = rng.normal(size=(1200, 8)).astype(np.float32)
IDS = [f"r{i}" for i in range(len(VECTORS))]
METAS = [{"g": i % 3} for i in range(len(VECTORS))]


def _base(col, n=200):
    """n records in one write: the graph is built over all of them (past exact_threshold)."""
    col.add(IDS[:n], VECTORS[:n], metadatas=METAS[:n])
    assert col._index is not None and col._index.covered == n


def _truth(col, queries, k, labels=None):
    records = col._records
    live = records.live() if labels is None else labels
    found, _ = exact_search(col._vectors.take(live), col._vectors.sqnorms[live], live, queries, k, "cosine")
    return [[records.ids[label] for label in row] for row in found.tolist()]


def test_an_acknowledged_write_is_found_before_the_indexer_reaches_it(tmp_path):
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.create_collection("c", dim=8)
        _base(col)
        col._indexer.stop()  # the graph stays where it is: everything after is the tail
        col.add(IDS[200:500], VECTORS[200:500], metadatas=METAS[200:500])
        assert col._index.covered == 200 and col.stats()["tail_slots"] == 300
        results, plan = col.query_with_plan(VECTORS[300:310], n_results=1)
        assert [r.ids[0] for r in results] == IDS[300:310]
        assert plan.strategy == "hnsw" and plan.tail == 300
        # a filter applies to the tail too (estimated and checked one by one, or listed)
        results, plan = col.query_with_plan(VECTORS[300:310], n_results=3, where=Field("g", "eq", 1))
        assert all(col.get(ids=r.ids).metadatas == [{"g": 1}] * 3 for r in results)
        assert [r.ids[0] for i, r in zip(range(300, 310), results) if i % 3 == 1] == [
            IDS[i] for i in range(300, 310) if i % 3 == 1]
        # deleted tail records are gone at once; the graph is not touched for them
        col.delete(ids=IDS[300:310])
        assert col._index.deleted == 0
        results = col.query(VECTORS[300:310], n_results=5)
        assert not set(IDS[300:310]) & {i for r in results for i in r.ids}
        k = 10
        got = [r.ids for r in col.query(VECTORS[:50], n_results=k)]
        truth = _truth(col, VECTORS[:50], k)
        recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(got, truth)])
        assert recall > 0.9


def test_the_indexer_catches_up_and_skips_records_deleted_in_the_tail(tmp_path):
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.create_collection("c", dim=8)
        _base(col)
        for start in range(200, 1000, 100):
            col.add(IDS[start:start + 100], VECTORS[start:start + 100], metadatas=METAS[start:start + 100])
        col.delete(ids=IDS[900:950])
        assert col._indexer.drain(timeout=60)
        index = col._index
        assert index.covered == 1000 and col.stats()["tail_slots"] == 0
        assert index.live == col.count() == 950
        results, plan = col.query_with_plan(VECTORS[600:620], n_results=1)
        assert [r.ids[0] for r in results] == IDS[600:620] and plan.tail == 0


def test_backpressure_bounds_the_tail(tmp_path):
    tuning = Tuning(exact_threshold=64, checkpoint_min_bytes=1 << 40, tail_max=40)
    with Database(tmp_path / "d", tuning=tuning) as db:
        col = db.create_collection("c", dim=8)
        _base(col)
        seen = []
        for start in range(200, 1200, 20):
            col.add(IDS[start:start + 20], VECTORS[start:start + 20])
            seen.append(col.stats()["tail_slots"])
        assert max(seen) <= 40 + 20  # a write waits while the tail holds more than tail_max
        assert col._indexer.drain(timeout=60) and col.count() == 1200


def test_replay_appends_to_the_tail_and_the_graph_catches_up_after_open(tmp_path, monkeypatch):
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.create_collection("c", dim=8)
        _base(col)
        col.checkpoint()
        col._indexer.stop()
        col.add(IDS[200:700], VECTORS[200:700], metadatas=METAS[200:700])  # in the log only
        col.delete(ids=IDS[0:5])
        db._collections.clear()  # as kill -9: no final checkpoint
        col._wal.close()
        col._closed = True
    woken = []
    monkeypatch.setattr(Indexer, "wake", lambda self: woken.append(self))
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.get_collection("c")
        # nothing of the log went into the graph: it is all tail, found exactly
        assert col._index.covered == 200 and col.stats()["tail_slots"] == 500 and woken
        assert col.count() == 695
        assert [r.ids[0] for r in col.query(VECTORS[650:660], n_results=1)] == IDS[650:660]
        monkeypatch.undo()
        assert col._indexer.drain(timeout=60) and col._index.covered == 700
        assert [r.ids[0] for r in col.query(VECTORS[650:660], n_results=1)] == IDS[650:660]


def test_a_checkpoint_saves_how_far_the_graph_got_and_a_restart_continues(tmp_path):
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.create_collection("c", dim=8)
        _base(col)
        col._indexer.stop()
        col.add(IDS[200:400], VECTORS[200:400], metadatas=METAS[200:400])
        col.checkpoint()
        manifest = disk.read_manifest(col.path)
        assert manifest["index"]["covered"] == 200 and manifest["slots"] == 400
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.get_collection("c")
        assert col._index.covered in range(200, 401)  # the indexer may have started
        assert col._indexer.drain(timeout=60) and col._index.covered == 400 and col.count() == 400
        assert [r.ids[0] for r in col.query(VECTORS[390:400], n_results=1)] == IDS[390:400]


def test_a_manifest_whose_coverage_is_impossible_gets_its_graph_rebuilt(tmp_path, caplog):
    import hashlib  # noqa: F401  (the MANIFEST is checksummed by write_manifest)

    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.create_collection("c", dim=8)
        _base(col)
        col.checkpoint(force=True)
        path = col.path
    manifest = disk.read_manifest(path)
    manifest["index"]["covered"] = manifest["slots"] + 5
    disk.write_manifest(REAL, path, manifest)
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.get_collection("c")
        assert "covers" in caplog.text and "rebuilt" in caplog.text
        assert col._index.covered == 200
        assert [r.ids[0] for r in col.query(VECTORS[10:20], n_results=1)] == IDS[10:20]


@pytest.mark.parametrize("in_memory", [False, True])
def test_compaction_with_a_tail_keeps_every_record(tmp_path, in_memory):
    with Database(None if in_memory else tmp_path / "d", tuning=TUNING) as db:
        col = db.create_collection("c", dim=8)
        _base(col, 400)
        col.delete(ids=IDS[:200])
        col._indexer.stop()
        col.add(IDS[400:600], VECTORS[400:600], metadatas=METAS[400:600])  # the tail
        col.checkpoint(compact=True)
        # compaction builds its graph over every live record it saw, the tail included
        assert col.stats()["deleted_slots"] == 0 and col._index.covered == 400 == col.count()
        assert [r.ids[0] for r in col.query(VECTORS[590:600], n_results=1)] == IDS[590:600]
