"""Sealed segments plus one mutable tail (storage/segment.py, docs/segments.md).

A collection that seals must answer exactly as one that never does: the same records by
id, filter and cursor page, the same counts, the same nearest neighbours (exact search
here, so that the answers are comparable to the last float). Each id lives in exactly one
of the tail and the segments; deletes of sealed records are bitmaps that survive restarts;
merges bring a collection that is done ingesting down to one segment.
"""

from __future__ import annotations

import numpy as np
import pytest

from vectord.errors import AlreadyExistsError, DataLossError
from vectord.storage import Database, Field, Tuning
from vectord.storage import checkpoint as disk
from vectord.storage import snapshots
from vectord.storage.segment import Segment, merge_topk, tiered_merge

DIM = 8
WORDS = ["apple", "banana", "cherry", "durian", "elder", "fig", "grape", "apple"]
rng = np.random.default_rng(5)
VECTORS = rng.normal(size=(2000, DIM)).astype(np.float32)
# exact everywhere (no graph): answers comparable across layouts to the last float
EXACT = dict(exact_threshold=1 << 30, checkpoint_min_bytes=1 << 40, compact_min_dead=1 << 30)
PLAIN = Tuning(**EXACT)
SEALING = Tuning(**EXACT, seal_rows=50, merge_factor=3)


def _write(col, ops: np.random.Generator, n_ops: int, seal_every: int = 0) -> None:
    for step in range(n_ops):
        kind = ops.integers(0, 10)
        ids = [f"r{int(i)}" for i in ops.choice(400, size=int(ops.integers(1, 30)), replace=False)]
        rows = VECTORS[[int(i[1:]) + 400 * int(ops.integers(0, 4)) for i in ids]]
        metas = [{"g": int(ops.integers(0, 4)), "s": f"v{int(ops.integers(0, 3))}"} for _ in ids]
        if kind < 6:
            words = [" ".join(WORDS[int(w)] for w in ops.integers(0, len(WORDS), size=int(ops.integers(1, 6))))
                     for _ in ids]
            col.upsert(ids, rows, documents=words, metadatas=metas)
        elif kind < 8:
            existing = col.get(ids=ids, include=[]).ids
            if existing:  # a partial update: the old vector and document of wherever it lives
                col.update(existing, metadatas=[{"h": 1, "g": None}] * len(existing))
        elif kind < 9:
            col.delete(ids=ids)
        else:
            col.delete(where=Field("g", "eq", int(ops.integers(0, 4))))
        if seal_every and step % seal_every == seal_every - 1:
            col.checkpoint()


def _answers(col) -> dict:
    everything = col.get(include=["embeddings", "documents", "metadatas"])
    records = {id_: (tuple(v.tolist()), d, m) for id_, v, d, m in
               zip(everything.ids, everything.embeddings, everything.documents, everything.metadatas)}
    out = {"records": records, "count": col.count()}
    for g in range(4):
        out[f"count g={g}"] = col.count(Field("g", "eq", g))
        out[f"get g={g}"] = sorted(col.get(where=Field("g", "eq", g)).ids)
    pages, after = [], ""
    while True:
        page = col.get(after=after, limit=37, include=[])
        pages += page.ids
        if page.next_after is None:
            break
        after = page.next_after
    out["pages"] = pages
    queries = VECTORS[1990:2000]
    for where in (None, Field("g", "eq", 1), Field("s", "in", ["v0", "v2"])):
        found = col.query(queries, n_results=7, where=where)
        out[f"query {where!r}"] = [(r.ids, np.round(r.distances, 5).tolist()) for r in found]
    grouped = col.query(queries[:2], n_results=3, group_by="g", group_size=2)
    out["grouped"] = [(r.ids, r.groups) for r in grouped]
    for text in ("apple", "banana cherry", "fig grape durian"):
        for rank, fusion in (("bm25", "rrf"), ("hybrid", "rrf"), ("hybrid", "weighted")):
            for where in (None, Field("g", "in", [0, 2])):
                found = col.query(queries[:1] if rank == "hybrid" else None, texts=[text],
                                  n_results=8, where=where, rank=rank, fusion=fusion)[0]
                out[f"{rank} {fusion} {text} {where!r}"] = (found.ids, np.round(found.scores, 4).tolist())
        grouped = col.query(texts=[text], n_results=2, group_by="g", group_size=2, rank="bm25")[0]
        out[f"bm25 grouped {text}"] = (grouped.ids, grouped.groups)
    return out


def test_a_sealing_collection_answers_as_one_that_never_seals(tmp_path):
    with Database(tmp_path / "plain", tuning=PLAIN, checkpoint_interval_s=3600) as plain_db, \
            Database(tmp_path / "seal", tuning=SEALING, checkpoint_interval_s=3600) as seal_db:
        plain = plain_db.create_collection("c", dim=DIM, metric="l2")
        sealed = seal_db.create_collection("c", dim=DIM, metric="l2")
        _write(plain, np.random.default_rng(1), 120)
        _write(sealed, np.random.default_rng(1), 120, seal_every=10)
        assert len(sealed.sealed) >= 2, "the test must exercise several segments"
        expected = _answers(plain)
        assert _answers(sealed) == expected
        _exactly_one_holder(sealed)
    with Database(tmp_path / "seal", tuning=SEALING, checkpoint_interval_s=3600) as seal_db:
        reopened = seal_db.get_collection("c")
        assert reopened.sealed
        assert _answers(reopened) == expected


def _exactly_one_holder(col) -> None:
    seen: dict[str, str] = {}
    for name, state in [("tail", col.state)] + [(s.name, s.state) for s in col.sealed]:
        for id_ in state.records.ids.take(state.records.live().tolist()):
            assert id_ not in seen, f"{id_} lives in {seen[id_]} and {name}"
            seen[id_] = name


GRAPHS = Tuning(exact_threshold=16, checkpoint_min_bytes=1 << 40, compact_min_dead=1 << 30, seal_rows=50,
                graph_cost_per_ef=0)


def test_an_upsert_of_a_sealed_record_moves_it_to_the_tail_and_a_crash_replays_it(tmp_path):
    # segments with a graph: a few deleted slots are left to the bitmap (an exact segment
    # would be compacted at once: compaction.due)
    with Database(tmp_path / "d", tuning=GRAPHS, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM, metric="l2")
        col.add([f"r{i}" for i in range(60)], VECTORS[:60], metadatas=[{"i": i} for i in range(60)])
        col.checkpoint()
        assert len(col.sealed) == 1 and len(col.state.records) == 0
        segment = col.sealed[0]
        col.upsert(["r3"], metadatas=[{"i": -3}])
        col.delete(ids=["r4"])
        assert "r3" not in segment.records.labels and "r3" in col.state.records.labels
        assert segment.live == 58 and segment.slots == 60
        assert col.get(ids=["r3", "r4"]).metadatas == [{"i": -3}]
        # a crash: the log holds the upsert and the delete, the MANIFEST an intact segment
        col._closed = True
        col._wal.close()
        db._collections.clear()
    with Database(tmp_path / "d", tuning=GRAPHS, checkpoint_interval_s=3600) as db:
        col = db.get_collection("c")
        assert col.count() == 59 and col.get(ids=["r3", "r4"]).metadatas == [{"i": -3}]
        _exactly_one_holder(col)
        assert col.query(VECTORS[3:4], n_results=1)[0].ids == ["r3"]
        assert col.query(VECTORS[4:5], n_results=1)[0].ids != ["r4"]
        col.checkpoint(force=True)
        manifest = disk.read_manifest(col.path)
        deletes = manifest["segments"][0]["deletes"]
        assert deletes is not None and (col.path / deletes["file"]).exists()
    with Database(tmp_path / "d", tuning=GRAPHS, checkpoint_interval_s=3600) as db:
        col = db.get_collection("c")
        assert col.sealed[0].live == 58 and col.count() == 59


def test_segments_merge_and_end_as_one_once_ingest_stops(tmp_path):
    tuning = Tuning(exact_threshold=64, checkpoint_min_bytes=1 << 40, seal_rows=40, merge_factor=3,
                    graph_cost_per_ef=0)
    with Database(tmp_path / "d", tuning=tuning, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM)
        counts = []
        for start in range(0, 400, 40):
            col.add([f"r{i}" for i in range(start, start + 40)], VECTORS[start:start + 40])
            col.checkpoint()
            counts.append(len(col.sealed))
        assert max(counts) <= 4, counts  # tiered: never one segment per seal
        col.checkpoint()  # nothing written since: done ingesting
        assert len(col.sealed) == 1 and col.sealed[0].live == 400
        assert col.sealed[0].state.index is not None
        results, plan = col.query_with_plan(VECTORS[:20], n_results=1)
        assert [r.ids[0] for r in results] == [f"r{i}" for i in range(20)]
        assert [p.strategy for p in plan.segments] == ["exact", "hnsw"]
        assert plan.segments[1].ef >= 10
        listed = {entry["name"] for entry in disk.read_manifest(col.path)["segments"]}
        assert {p.name for p in col.path.glob("seg-*")} == listed  # merged-away directories removed
        assert not list(col.path.glob("compact-*"))  # the build files, copied into the segments


def test_a_segment_with_many_deletes_is_compacted_alone(tmp_path):
    tuning = Tuning(**{**EXACT, "compact_min_dead": 10}, seal_rows=100, merge_factor=100)
    with Database(tmp_path / "d", tuning=tuning, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM)
        for start in (0, 100):
            col.add([f"r{i}" for i in range(start, start + 100)], VECTORS[start:start + 100])
            col.checkpoint()
        col.add(["x"], VECTORS[500:501])  # not idle: no merge of everything
        first, second = col.sealed
        col.delete(ids=[f"r{i}" for i in range(0, 60)])
        before = col.compacted_slots_total
        col.checkpoint()
        assert col.sealed[1] is second and col.sealed[0] is not first
        assert col.sealed[0].slots == 40 and col.sealed[0].live == 40
        assert col.count() == 141
        # counted as dropped slots (what `vectord compact` replies; it said 0 with segments)
        assert col.compacted_slots_total - before == 60


def test_a_damaged_segment_is_reported_not_served(tmp_path):
    with Database(tmp_path / "d", tuning=SEALING, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM)
        col.add([f"r{i}" for i in range(60)], VECTORS[:60])
        col.checkpoint()
        name = col.sealed[0].name
    path = next((tmp_path / "d").rglob(f"{name}/{disk.RECORDS}"))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    entry = disk.read_manifest(path.parent.parent)["segments"][0]
    with pytest.raises(DataLossError, match="checksum"):
        Segment.load(path.parent.parent, entry, col.config, SEALING)
    with Database(tmp_path / "d", tuning=SEALING, checkpoint_interval_s=3600) as db:
        assert "c" in db.damaged_collections()


# graphs, and deletes of sealed records left to the bitmaps (never compacted), several segments
SNAPSHOTS = Tuning(exact_threshold=16, checkpoint_min_bytes=1 << 40, compact_min_dead=1 << 30, seal_rows=50,
                   merge_factor=8, graph_cost_per_ef=0)


def _records_of(col) -> dict:
    everything = col.get(include=["embeddings", "documents", "metadatas"])
    return {id_: (tuple(v.tolist()), d, m) for id_, v, d, m in
            zip(everything.ids, everything.embeddings, everything.documents, everything.metadatas)}


def test_a_snapshot_of_a_sealing_collection_restores_exactly(tmp_path):
    """The snapshot holds the segments' directories and delete bitmaps the MANIFEST names;
    a restore (by name: the graphs kept; by upload: rebuilt) brings back the same records,
    deletes and answers, also after a restart, and later writes are not in it."""
    with Database(tmp_path / "d", tuning=SNAPSHOTS, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM, metric="l2")
        _write(col, np.random.default_rng(3), 120, seal_every=10)
        assert len(col.sealed) >= 2, "the test must exercise several segments"
        first = col.sealed[0].records
        sealed_ids = first.ids.take(first.live().tolist()[:4])
        col.delete(ids=sealed_ids[:2])  # deletes and upserts of sealed records, in the log only
        col.upsert(sealed_ids[2:], VECTORS[1600:1602], documents=["apple fig", "grape"], metadatas=[{"g": 1}] * 2)
        expected = _answers(col)
        info = db.create_snapshot("c", "s")
        assert info["record_count"] == expected["count"] == col.count()
        directory = tmp_path / "d" / "snapshots" / "s"
        manifest = disk.read_manifest(directory)
        entries = manifest["segments"]
        assert [entry["name"] for entry in entries] == [segment.name for segment in col.sealed]
        assert any(entry["deletes"] for entry in entries), "the bitmaps must be in the snapshot"
        listed = {entry["name"] for entry in entries} | {e["deletes"]["file"] for e in entries if e["deletes"]}
        assert {p.name for p in directory.glob("seg-*")} == listed
        # after the snapshot: more writes to sealed records, seals and merges (not in it)
        _write(col, np.random.default_rng(4), 60, seal_every=10)
        col.checkpoint(compact=True)
        assert _answers(col) != expected

        back = db.restore_snapshot("s", "back")
        assert len(back.sealed) == len(entries)
        assert _answers(back) == expected
        _exactly_one_holder(back)
        upload = snapshots.Upload(db)
        for relative, offset, data, _ in snapshots.read_chunks(directory):
            upload.add(relative, offset, data)
        uploaded = db.restore_snapshot(upload, "up")
        upload.discard()
        assert _records_of(uploaded) == expected["records"] and uploaded.count() == expected["count"]
        _exactly_one_holder(uploaded)
        up_entries = disk.read_manifest(uploaded.path)["segments"]
        assert all(entry["index"] is not None for entry in up_entries if entry["slots"] >= 16)
        for vector, id_ in zip(VECTORS[1600:1602], sealed_ids[2:]):
            assert uploaded.query(vector[None], n_results=1)[0].ids == [id_]
    with Database(tmp_path / "d", tuning=SNAPSHOTS, checkpoint_interval_s=3600) as db:
        assert not db.damaged_collections()
        assert _answers(db.get_collection("back")) == expected
        reopened = db.get_collection("up")
        assert _records_of(reopened) == expected["records"]
        assert all(segment.state.index is not None for segment in reopened.sealed if segment.slots >= 16)


def test_a_snapshot_written_without_segments_restores_into_a_sealing_database(tmp_path):
    with Database(tmp_path / "d", tuning=PLAIN, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM, metric="l2")
        _write(col, np.random.default_rng(6), 40)
        expected = _answers(col)
        db.create_snapshot("c", "old")
    assert "segments" not in disk.read_manifest(tmp_path / "d" / "snapshots" / "old")
    with Database(tmp_path / "d", tuning=SEALING, checkpoint_interval_s=3600) as db:
        back = db.restore_snapshot("old", "back")
        assert _answers(back) == expected and "segments" not in disk.read_manifest(back.path)
        back.checkpoint(force=True)  # it seals from here on, as any collection of this server
        assert back.sealed and _answers(back) == expected


def test_merge_topk_and_the_tiered_policy():
    a = (0, np.array([[1, 2, -1]]), np.array([[0.1, 0.5, 0.0]], np.float32))
    b = (1, np.array([[7, 8, 9]]), np.array([[0.2, 0.3, 0.9]], np.float32))
    holders, labels, dist = merge_topk([a, b], 4)
    assert holders.tolist() == [[0, 1, 1, 0]] and labels.tolist() == [[1, 7, 8, 2]]
    holders, labels, _ = merge_topk([a, (1, np.empty((1, 0), np.int64), np.empty((1, 0), np.float32))], 4)
    assert labels.tolist() == [[1, 2, -1, -1]] and holders.tolist() == [[0, 0, -1, -1]]

    class S:
        def __init__(self, live):
            self.live = live
    assert tiered_merge([S(1000), S(10), S(12), S(11)], factor=3) == [1, 2, 3]
    assert tiered_merge([S(1000), S(10), S(12)], factor=3) is None
    assert tiered_merge([S(1000), S(3), S(500)], factor=3, min_rows=5) == [1, 2]


class _Encoders:
    """One fake model (tests/fake_encoder.py) for chunked writes."""

    def __init__(self) -> None:
        from fake_encoder import FakeEncoder
        self.model = FakeEncoder(dim=DIM)
        self.default = self.model.name

    def names(self):
        return [self.model.name]

    def get(self, name):
        return self.model


def test_chunked_writes_replace_and_delete_sealed_chunks(tmp_path):
    encoders = _Encoders()  # a chunk is a sentence here
    encoders.model.chunk = lambda text, tokens, overlap: [part for part in text.split(".") if part]
    with Database(tmp_path / "d", tuning=SEALING, encoders=encoders, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c")
        col.put_chunked("add", [f"s{i}" for i in range(30)], [f"a{i}. b{i}. c{i}" for i in range(30)])
        col.checkpoint()
        assert col.sealed and col.count() == 90
        with pytest.raises(AlreadyExistsError, match="source 's3'"):
            col.put_chunked("add", ["s3"], ["again"])
        result = col.put_chunked("upsert", ["s3"], ["x. y"])  # the old chunks are sealed
        assert (result.inserted, result.updated, result.deleted) == (0, 2, 1)
        assert sorted(col.get(where=Field("source_id", "eq", "s3")).documents) == [" y", "x"]
        assert col.delete(ids=["s4"]).deleted == 3
        assert col.count() == 86
        _exactly_one_holder(col)


def test_verify_counts_every_segment_and_leaves_an_unlisted_one_alone(tmp_path):
    from vectord.storage.verify import OK, verify_collection

    with Database(tmp_path / "d", tuning=SEALING, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM)
        col.add([f"r{i}" for i in range(60)], VECTORS[:60])
        col.checkpoint()
        col.add(["x"], VECTORS[100:101])
        directory = col.path
    orphan = directory / "seg-00000000000000000099-deadbeef"  # as a crash before its MANIFEST
    orphan.mkdir()
    report = verify_collection(directory, SEALING)
    assert report.status == OK and report.records == 61, report
    assert orphan.exists()  # verify writes nothing


def test_explain_reports_each_segments_plan_through_the_sdk(tmp_path):
    import vectord
    from vectord.server.embedded import EmbeddedServer

    client = vectord.Client(path=str(tmp_path / "e"))
    try:
        # the SDK's in-process servicers, on an engine that seals (no server flag sets seal_rows yet)
        client._transport._server.close()
        client._transport._server = server = EmbeddedServer(tmp_path / "e", tuning=GRAPHS)
        col = client.create_collection("t", dim=DIM, metric="l2")
        col.add(ids=[f"r{i}" for i in range(60)], embeddings=VECTORS[:60])
        server.database.get_collection("t").checkpoint()
        col.add(ids=["x"], embeddings=VECTORS[100:101])
        out = col.query(query_embeddings=VECTORS[:1], n_results=3, include=[], explain=True)
        assert out["ids"][0][0] == "r0"
        tail, segment = out["plan"]["segments"]
        assert tail == {"segment": "tail", "strategy": "exact", "candidates": 1, "ef": 0}
        assert segment["segment"].startswith("seg-") and segment["strategy"] == "hnsw"
        assert segment["candidates"] == 60 and segment["ef"] >= 3
    finally:
        client.close()


def test_merges_respect_max_segment_rows(tmp_path):
    tuning = Tuning(**EXACT, seal_rows=40, merge_factor=2, max_segment_rows=100)
    with Database(tmp_path / "d", tuning=tuning, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM)
        for start in range(0, 400, 40):
            col.add([f"r{i}" for i in range(start, start + 40)], VECTORS[start:start + 40])
            col.checkpoint()
        col.checkpoint()  # idle: merges what fits
        sizes = sorted(segment.live for segment in col.sealed)
        assert max(sizes) <= 100 and sum(sizes) == 400 and len(sizes) <= 5, sizes
        assert len([s for s in sizes if s <= 50]) <= 1, sizes  # no two left that would fit together


def test_each_part_is_searched_at_its_share_of_the_ef_and_explain_says_so(tmp_path):
    # two sealed segments of 50 and a tail of 100 (of 200): efs 50, 50 and 71 of the
    # collection's 100 (planner.segment_ef); recall is the merge's (benchmarks/segment_ef.py)
    with Database(tmp_path / "d", tuning=GRAPHS, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM, metric="l2", hnsw={"ef_search": 100})
        for start in (0, 50):
            col.add([f"r{i}" for i in range(start, start + 50)], VECTORS[start:start + 50])
            col.checkpoint()
        col.add([f"r{i}" for i in range(100, 200)], VECTORS[100:200])
        col._indexer.drain(60)
        assert len(col.sealed) == 2 and len(col.state.records) == 100
        results, plan = col.query_with_plan(VECTORS[120:121], n_results=5)
        assert results[0].ids[0] == "r120"
        assert [(p.segment == "tail", p.strategy, p.ef) for p in plan.segments] == [
            (True, "hnsw", 71), (False, "hnsw", 50), (False, "hnsw", 50)]
        assert plan.ef == 71


def test_a_tail_far_past_the_segment_bound_stays_one_state(tmp_path):
    # a collection written before segments (or with sealing off) is not sealed whole when
    # it opens with sealing on: that would rebuild its whole graph at once (maintenance.seal_due)
    with Database(tmp_path / "d", tuning=Tuning(**EXACT, seal_bytes=0), checkpoint_interval_s=3600) as db:
        db.create_collection("c", dim=DIM).add([f"r{i}" for i in range(500)], VECTORS[:500])
    bounded = Tuning(**EXACT, seal_rows=20, max_segment_rows=100)  # 500 > 4 x 100
    with Database(tmp_path / "d", tuning=bounded, checkpoint_interval_s=3600) as db:
        col = db.get_collection("c")
        col.checkpoint(force=True)
        assert col.sealed == () and col.count() == 500
    with Database(tmp_path / "d", tuning=Tuning(**EXACT, seal_rows=20, max_segment_rows=200),
                  checkpoint_interval_s=3600) as db:  # 500 <= 4 x 200: sealed
        col = db.get_collection("c")
        col.checkpoint(force=True)
        assert len(col.sealed) >= 1 and col.count() == 500


def test_a_close_seals_and_merges_nothing_and_the_next_start_does_it(tmp_path, monkeypatch):
    """Regression (s9-a, issue 13's suite): a 1M x 384 ingest stopped right after its last
    write sealed its tail and merged six times in the final checkpoint, 15 minutes before
    the server exited. A close writes what the log holds and no more; the next start's
    maintenance seals and merges (nothing is lost either way)."""
    from vectord.storage import maintenance

    tuning = Tuning(**EXACT, seal_rows=40, merge_factor=100)
    rebuilt: list[str] = []
    with Database(tmp_path / "d", tuning=tuning, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM)
        col.add([f"r{i}" for i in range(80)], VECTORS[:80])
        col.checkpoint()
        col.add([f"r{i}" for i in range(80, 130)], VECTORS[80:130])  # a tail past seal_rows
        assert len(col.sealed) == 1 and col._maintenance.seal_due()
        for name in ("seal", "merge", "_compact_beside"):  # what rebuilds graphs, counted from here
            def counted(self, *args, _name=name, _original=getattr(maintenance.Maintenance, name), **kwargs):
                rebuilt.append(_name)
                return _original(self, *args, **kwargs)
            monkeypatch.setattr(maintenance.Maintenance, name, counted)
    assert rebuilt == []  # the close did none of them (before: the seal and a compaction pass)
    manifest = disk.read_manifest(next((tmp_path / "d" / "collections").iterdir()))
    assert len(manifest["segments"]) == 1 and manifest["slots"] == 50  # the tail written as it was
    monkeypatch.undo()
    with Database(tmp_path / "d", tuning=tuning, checkpoint_interval_s=3600) as db:
        col = db.get_collection("c")
        assert col.count() == 130 and len(col.sealed) == 1
        assert col._maintenance.needs_checkpoint()  # the background maintenance's cue
        col.checkpoint()  # what it runs: the seal, then a merge of everything (done ingesting)
        assert len(col.sealed) == 1 and col.sealed[0].live == 130 and not len(col.state.records)
        found = col.query(VECTORS[:130], n_results=1)
        assert [r.ids[0] for r in found] == [f"r{i}" for i in range(130)]


def test_a_close_waits_for_the_merge_in_flight_and_starts_no_other(tmp_path, monkeypatch):
    """A stop during the background maintenance's merges: before, the database's close
    joined the background checkpoint with all its queued merges (minutes each at 1M x 384);
    now the merge in flight finishes and the queued ones wait for the next start."""
    import threading

    from vectord.storage import maintenance

    tuning = Tuning(**EXACT, seal_rows=40, merge_factor=100, max_segment_rows=80)
    db = Database(tmp_path / "d", tuning=tuning, checkpoint_interval_s=3600)
    col = db.create_collection("c", dim=DIM)
    for start in range(0, 160, 40):  # four segments; each checkpoint follows writes: no merge yet
        col.add([f"r{i}" for i in range(start, start + 40)], VECTORS[start:start + 40])
        col.checkpoint()
    assert len(col.sealed) == 4 and col._maintenance.merge_pick() is not None  # idle: 2 merges due
    in_merge, go_on, merges = threading.Event(), threading.Event(), []
    original = maintenance.Maintenance.merge

    def held_merge(self, positions):
        merges.append(positions)
        in_merge.set()
        assert go_on.wait(10)
        return original(self, positions)

    monkeypatch.setattr(maintenance.Maintenance, "merge", held_merge)
    background = threading.Thread(target=col.checkpoint)  # as the database's checkpointer runs it
    background.start()
    assert in_merge.wait(10)
    closing = threading.Thread(target=db.close)
    closing.start()
    while not col._upkeep_stopped.is_set():  # the close asked the upkeep to stop ...
        closing.join(0.01)
    go_on.set()  # ... before the merge in flight ended
    background.join(10)
    closing.join(10)
    assert not closing.is_alive() and len(merges) == 1  # the second merge was never started
    monkeypatch.undo()
    with Database(tmp_path / "d", tuning=tuning, checkpoint_interval_s=3600) as again:
        col = again.get_collection("c")
        assert col.count() == 160 and len(col.sealed) == 3  # one merge made, one left to do
        col.checkpoint()
        assert [s.live for s in col.sealed] == [80, 80]
