"""The graph the background indexer builds after the last checkpoint is saved (regression).

A bulk load was checkpointed by log size while the graph covered a few thousand of its
slots; the indexer then finished the graph, but with the log empty no checkpoint was due
again, close() skipped its checkpoint too, and every restart indexed the same slots again,
their queries scanning them exactly until it was done (100k x 50: 93k slots re-indexed at
each open, ~20 s of a core, queries 7-21 ms instead of ~0.2). Now a checkpoint is due once
the indexer has caught up with an unsaved quarter of the slots, and any checkpoint (close
included) saves a graph that grew.
"""

from __future__ import annotations

import time

import numpy as np

from vectord.storage import Database, Tuning
from vectord.storage.checkpoint import read_manifest

N, DIM = 6_000, 16
# one state (no segments), no checkpoint by log size, writes never wait for the indexer
TUNING = Tuning(exact_threshold=64, checkpoint_min_bytes=1 << 40, seal_rows=0, tail_max=1 << 30,
                graph_cost_per_ef=0)  # the graph whenever there is one
VECTORS = np.random.default_rng(3).standard_normal((N, DIM)).astype(np.float32)


def _covered_on_disk(path) -> int:
    collection_dir = next((path / "collections").iterdir())
    return read_manifest(collection_dir)["index"]["covered"]


def _load_then_checkpoint_before_indexing(db):
    """A bulk load whose checkpoint happens while none of it is in the graph yet."""
    docs = db.create_collection("docs", dim=DIM)
    docs.add([str(i) for i in range(100)], VECTORS[:100])  # the first graph, built at once
    docs._indexing = False  # hold the background indexer back until after the checkpoint
    docs.add([str(i) for i in range(100, N)], VECTORS[100:])
    docs.checkpoint(force=True)
    docs._indexing = True
    return docs


def test_a_graph_finished_after_the_last_checkpoint_is_saved_at_close_and_not_rebuilt_at_open(tmp_path):
    with Database(tmp_path, tuning=TUNING, checkpoint_interval_s=3600) as db:
        docs = _load_then_checkpoint_before_indexing(db)
        assert _covered_on_disk(tmp_path) < N  # the premise: the generation's graph is short
        docs._wake_indexer()
        assert docs._indexer.drain(timeout=120)
        assert docs.needs_checkpoint()  # caught up, a whole graph unsaved
    assert _covered_on_disk(tmp_path) == N
    with Database(tmp_path, tuning=TUNING, checkpoint_interval_s=3600) as db:
        docs = db.get_collection("docs")
        results, plan = docs.query_with_plan(VECTORS[42:43], n_results=1)
        assert plan.tail == 0 and plan.strategy == "hnsw"
        assert results[0].ids == ["42"]


def test_the_background_checkpointer_saves_the_caught_up_graph_once(tmp_path):
    with Database(tmp_path, tuning=TUNING, checkpoint_interval_s=0.05) as db:
        docs = _load_then_checkpoint_before_indexing(db)
        before = docs.checkpoint_count
        docs._wake_indexer()
        assert docs._indexer.drain(timeout=120)
        # A checkpoint stops being due when its MANIFEST is written, and is counted after its
        # cleanup (log reset, old generations removed, fsync): wait for both, or a count read
        # in between sees the save still running (it failed CI once: 2 == 1)
        deadline = time.monotonic() + 30
        while (docs.needs_checkpoint() or docs.checkpoint_count == before) and time.monotonic() < deadline:
            time.sleep(0.05)  # the checkpointer looks every 50 ms
        assert not docs.needs_checkpoint()
        assert _covered_on_disk(tmp_path) == N
        assert docs.checkpoint_count == before + 1
        time.sleep(0.5)
        assert docs.checkpoint_count == before + 1  # saved once, not again and again


def test_a_trickle_of_indexed_writes_does_not_make_a_checkpoint_due(tmp_path):
    with Database(tmp_path, tuning=TUNING, checkpoint_interval_s=3600) as db:
        docs = db.create_collection("docs", dim=DIM)
        docs.add([str(i) for i in range(N)], VECTORS)
        assert docs._indexer.drain(timeout=120)
        docs.checkpoint(force=True)
        assert _covered_on_disk(tmp_path) == N
        docs.add(["one more"], VECTORS[:1])
        assert docs._indexer.drain(timeout=60)
        assert docs._maintenance.unsaved_graph_slots() == 0  # in the log: saved by the next checkpoint
        assert not docs.needs_checkpoint()


def test_a_bulk_load_in_pauses_is_not_checkpointed_for_its_graph(tmp_path):
    # the records of each pause are in the log, not in a generation: no graph of theirs is lost
    # at a restart, so their graph alone makes no checkpoint due (it made the suite's chunked
    # ingest write a generation after each of its first chunks)
    with Database(tmp_path, tuning=TUNING, checkpoint_interval_s=3600) as db:
        docs = db.create_collection("docs", dim=DIM)
        for start in range(0, N, 1_000):
            docs.add([str(i) for i in range(start, start + 1_000)], VECTORS[start:start + 1_000])
            assert docs._indexer.drain(timeout=60)
            assert not docs.needs_checkpoint()
        assert docs.checkpoint_count == 0
