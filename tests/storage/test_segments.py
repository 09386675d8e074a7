"""Sealed segments plus an exact tail (storage/segments.py): sealing, tiered merging,
search across segments, checkpoints that write a segment's graph once, recovery that
replays the log into the tail, and collections written in MANIFEST format 1."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from vectord.storage import Database, Tuning
from vectord.storage.filters import Field
from vectord.storage import layout as disk
from vectord.storage.fsio import REAL
from vectord.storage.index import HnswIndex
from vectord.storage.segments import Segments, merge_candidates, tier

DIM = 8
# the first segment at 16 live records, later ones every 40 slots, merged 3 at a time
TUNING = Tuning(exact_threshold=16, seal_threshold=40, merge_fanout=3, checkpoint_min_bytes=1 << 40,
                compact_min_dead=1 << 30, index_threads=1, maintenance_threads=1, graph_cost_per_ef=0)
RNG = np.random.default_rng(7)
VECTORS = RNG.normal(size=(400, DIM)).astype(np.float32)


def _ids(rows) -> list[str]:
    return [f"r{i}" for i in rows]


def _add(col, rows) -> None:
    rows = list(rows)
    col.add(_ids(rows), VECTORS[rows], metadatas=[{"i": i, "even": i % 2 == 0} for i in rows])


def _exact_top(query: np.ndarray, rows, k: int) -> list[str]:
    rows = np.asarray(sorted(rows))
    vectors = VECTORS[rows]
    dist = 1 - vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    return [f"r{i}" for i in rows[np.argsort(dist, kind="stable")[:k]]]


def _ranges(col) -> list[tuple[int, int]]:
    return [(s.start, s.end) for s in col.state.segments]


def test_writes_go_to_the_tail_and_a_checkpoint_seals_and_merges_it(tmp_path):
    with Database(tmp_path / "d", tuning=TUNING, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM)
        _add(col, range(20))  # reaches exact_threshold: the first segment, at once
        assert _ranges(col) == [(0, 20)]
        _add(col, range(20, 50))  # the tail: searched exactly, no graph
        assert _ranges(col) == [(0, 20)] and col.state.segments.tail_start == 20
        assert not col.needs_checkpoint()  # 30 tail slots, below seal_threshold
    with Database(tmp_path / "d", tuning=TUNING, checkpoint_interval_s=3600) as db:
        col = db.get_collection("c")
        _add(col, range(50, 70))
        assert col.needs_checkpoint()  # the tail holds 50 slots
        col.checkpoint()
        assert _ranges(col) == [(0, 20), (20, 70)]
        _add(col, range(70, 110))
        col.checkpoint()  # seals [70, 110): three segments of one size class (< 3 x 40), merged
        assert _ranges(col) == [(0, 110)]
        for start in (110, 150):
            _add(col, range(start, start + 40))
            col.checkpoint()
        assert _ranges(col) == [(0, 190)]
        assert [p.name for p in col.path.glob("seg-*")] == [disk.read_manifest(col.path)["segments"][0]["file"]]
        queries = VECTORS[:5] + 0.01
        for q, result in zip(queries, col.query(queries, n_results=7)):
            assert result.ids == _exact_top(q, range(190), 7)


def test_queries_merge_every_segment_and_the_tail_and_skip_deleted_records(tmp_path):
    with Database(tmp_path / "d", tuning=TUNING, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM)
        _add(col, range(100))
        _add(col, range(100, 160))
        col.checkpoint()  # seals the tail [100, 160)
        _add(col, range(160, 200))  # tail
        deleted = list(range(0, 200, 3))
        col.delete(ids=_ids(deleted))
        col.upsert(["r1"], [VECTORS[1] * 2])  # moves r1 into the tail
        live = [i for i in range(200) if i % 3]
        for i in (5, 101, 170, 1):
            q = VECTORS[i]
            got = col.query(q[None], n_results=10)[0].ids
            assert got == _exact_top(q, live, 10)
            assert not set(got) & set(_ids(deleted))
        got = col.query(VECTORS[7:8], n_results=10, where=Field("even", "eq", True))[0].ids
        assert got == _exact_top(VECTORS[7], [i for i in live if i % 2 == 0], 10)


def test_explain_reports_each_segment_and_the_tail(tmp_path):
    with Database(tmp_path / "d", tuning=TUNING, checkpoint_interval_s=3600) as db:
        # ef_search 10: a segment of more than 4 x 10 live records is searched by its graph
        col = db.create_collection("c", dim=DIM, hnsw={"ef_search": 10})
        _add(col, range(100))
        _add(col, range(100, 150))
        col.checkpoint()
        _add(col, range(150, 160))
        _, plan = col.query_with_plan(VECTORS[:1], n_results=5)
        assert plan.strategy == "hnsw"
        report = {part.segment: part for part in plan.segments}
        assert set(report) == {"0-100", "100-150", "tail"}
        assert report["0-100"].strategy == "hnsw" and report["0-100"].ef >= 10
        assert report["tail"].strategy == "exact" and report["tail"].candidates == 10


def test_a_checkpoint_writes_a_sealed_segment_once_and_later_manifests_name_it(tmp_path, monkeypatch):
    saved = []
    original = HnswIndex.save
    monkeypatch.setattr(HnswIndex, "save", lambda self, path: (saved.append(path.name), original(self, path)))
    with Database(tmp_path / "d", tuning=TUNING, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM)
        _add(col, range(60))
        col.checkpoint()
        first = disk.read_manifest(col.path)
        assert first["format"] == 2 and first["index"] is None and len(first["segments"]) == 1
        assert len(saved) == 1
        _add(col, range(60, 70))
        col.delete(ids=["r3"])
        col.checkpoint()
        second = disk.read_manifest(col.path)
        assert len(saved) == 1  # not saved again
        assert second["segments"] == first["segments"] and second["generation"] != first["generation"]
        assert sorted(p.name for p in col.path.glob("seg-*")) == [first["segments"][0]["file"]]
    with Database(tmp_path / "d", tuning=TUNING, checkpoint_interval_s=3600) as db:
        col = db.get_collection("c")
        assert col.count() == 69
        assert "r3" not in col.query(VECTORS[3:4], n_results=5)[0].ids  # the delete, marked again at load
        assert col.query(VECTORS[65:66], n_results=1)[0].ids == ["r65"]  # replayed into the tail... or checkpointed


def test_recovery_replays_the_log_into_the_tail_without_building_a_graph(tmp_path):
    with Database(tmp_path / "d", tuning=TUNING, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM)
        _add(col, range(30))
        col.checkpoint()
        _add(col, range(30, 200))  # only in the log
        col.close(checkpoint=False)
    with Database(tmp_path / "d", tuning=TUNING, checkpoint_interval_s=3600) as db:
        col = db.get_collection("c")
        assert _ranges(col) == [(0, 30)] and col.count() == 200  # the log went to the tail
        assert col.query(VECTORS[150:151], n_results=1)[0].ids == ["r150"]
        col.checkpoint()  # seals it
        assert _ranges(col)[-1][1] == 200


def test_compaction_rebuilds_the_segments(tmp_path):
    with Database(tmp_path / "d", tuning=TUNING, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM)
        _add(col, range(100))
        _add(col, range(100, 150))
        col.checkpoint()
        col.delete(ids=_ids(range(0, 150, 2)))
        col.checkpoint(compact=True)
        assert _ranges(col) == [(0, 75)] and col.stats()["deleted_slots"] == 0
        assert [p.name for p in col.path.glob("seg-*")] == [disk.read_manifest(col.path)["segments"][0]["file"]]
        assert col.query(VECTORS[51:52], n_results=1)[0].ids == ["r51"]


def test_a_collection_written_in_format_1_opens_and_is_rewritten_in_format_2(tmp_path):
    """Format 1 (before segments): one graph over every slot, gen-<seq>/index.hnsw, with the
    deletes marked in it, described by the MANIFEST's "index"."""
    with Database(tmp_path / "d", tuning=TUNING, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM)
        _add(col, range(80))
        col.delete(ids=_ids(range(0, 80, 5)))
        col.checkpoint()
        path = col.path
    manifest = disk.read_manifest(path)
    for segment in manifest.pop("segments"):
        (path / segment["file"]).unlink()
    index = HnswIndex.create("cosine", DIM, 16, 100, 100, capacity=80)
    index.add(VECTORS[:80], np.arange(80))
    index.mark_deleted(range(0, 80, 5))
    gen = path / manifest["generation"]
    index.save(gen / disk.INDEX)
    data = (gen / disk.INDEX).read_bytes()
    manifest["files"][disk.INDEX] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    manifest.update(format=1, index={"file": disk.INDEX, "count": 80, "deleted": 16, "dim": DIM, "space": "cosine",
                                     "m": 16, "ef_construction": 100, "hnswlib": "0.8.0"})
    disk.write_manifest(REAL, path, manifest)
    with Database(tmp_path / "d", tuning=TUNING, checkpoint_interval_s=3600) as db:
        col = db.get_collection("c")
        assert _ranges(col) == [(0, 80)] and col.count() == 64
        live = [i for i in range(80) if i % 5]
        assert col.query(VECTORS[7:8], n_results=5)[0].ids == _exact_top(VECTORS[7], live, 5)
        _add(col, range(80, 90))
        col.delete(ids=["r1"])
        col.checkpoint()
        rewritten = disk.read_manifest(path)
        assert rewritten["format"] == 2 and rewritten["index"] is None and len(rewritten["segments"]) == 1
        assert not (path / rewritten["generation"] / disk.INDEX).exists()
    with Database(tmp_path / "d", tuning=TUNING, checkpoint_interval_s=3600) as db:
        col = db.get_collection("c")
        assert col.count() == 73 and "r1" not in col.query(VECTORS[1:2], n_results=3)[0].ids


def test_tiered_merge_candidates():
    assert tier(39, 40, 3) == 0 and tier(119, 40, 3) == 0 and tier(120, 40, 3) == 1
    assert merge_candidates(Segments(), 40, 3) is None


def test_explain_through_a_real_server_reports_each_segment(tmp_path):
    """QueryPlan.segments (proto) and the SDK's plan["segments"] (issue 12, step 3)."""
    import sys
    from pathlib import Path

    import vectord

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from serverproc import start_server

    server = start_server(tmp_path / "data")
    try:
        data = np.random.default_rng(5).normal(size=(5000, DIM)).astype(np.float32)
        with vectord.Client(server.address, timeout=120) as client:
            # a small ef_search: the planner sends a query over 5000 records to the graph
            col = client.create_collection("s", dim=DIM, metric="l2", hnsw={"ef_search": 8})
            col.add(ids=[str(i) for i in range(5000)], embeddings=data)  # the first segment, sealed at once
            col.add(ids=["tail"], embeddings=data[:1] + 1e-3)
            plan = col.query(query_embeddings=data[7:8], n_results=3, explain=True)["plan"]
        assert plan["strategy"] == "hnsw", plan
        parts = {part["segment"]: part for part in plan["segments"]}
        assert set(parts) == {"0-5000", "tail"}, plan
        assert parts["0-5000"]["strategy"] == "hnsw" and parts["0-5000"]["ef"] >= 8
        assert parts["0-5000"]["candidates"] == 5000
        assert parts["tail"] == {"segment": "tail", "strategy": "exact", "candidates": 1, "ef": 0}
    finally:
        assert server.terminate() == 0, server.log()
