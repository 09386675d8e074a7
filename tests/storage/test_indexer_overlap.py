"""Writes go on while the background indexer adds to the graph (storage/indexer.py).

An indexer step reads its rows under the read lock and adds them holding no collection lock;
the graph's gate keeps searches (and graph changes) out meanwhile. These tests hold a step
inside hnswlib's add and check what may and may not move while it is there: new writes and
deletes of the step's own rows go on; a delete of a row already in the graph, a search and a
checkpoint wait; a row deleted during the step is marked by the step, so that no search
returns it.
"""

from __future__ import annotations

import threading

import numpy as np

from vectord.storage import Database, Tuning
from vectord.storage.index import exact_search

TUNING = Tuning(exact_threshold=64, checkpoint_min_bytes=1 << 40, graph_cost_per_ef=0,
                compact_min_dead=1 << 30, seal_rows=0)
rng = np.random.default_rng(5)
VECTORS = rng.normal(size=(600, 8)).astype(np.float32)
IDS = [f"r{i}" for i in range(len(VECTORS))]
WAIT_S = 30


class _HeldStep:
    """Holds the indexer's next add inside the graph's gate until ``release()``."""

    def __init__(self, index) -> None:
        self.entered, self._go = threading.Event(), threading.Event()
        self._index, self._inner = index, index._add_items

        def add_items(vectors, labels):
            if threading.current_thread().name.startswith("indexer-") and not self._go.is_set():
                self.entered.set()
                self._go.wait(WAIT_S)
            return self._inner(vectors, labels)

        index._add_items = add_items

    def release(self) -> None:
        self._go.set()


def _in_thread(fn) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    return thread, out


def _start_held_step(col) -> tuple[_HeldStep, int, int]:
    """200 records in the graph, 100 more written: a step is held adding the first of them."""
    col.add(IDS[:200], VECTORS[:200])
    assert col._index is not None and col._index.covered == 200
    held = _HeldStep(col._index)
    col.add(IDS[200:300], VECTORS[200:300])
    assert held.entered.wait(WAIT_S), "the indexer did not start a step"
    index = col._index
    start, end = index.covered, index._adding_end
    assert start == 200 and end is not None and 200 < end <= 300
    return held, start, end


def test_writes_go_on_while_a_step_adds_and_its_deleted_rows_are_marked(tmp_path):
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.create_collection("c", dim=8)
        held, start, end = _start_held_step(col)
        index = col._index
        try:
            # a new write and a delete of a row the step is adding: neither waits for it
            writer, _ = _in_thread(lambda: col.add(IDS[300:400], VECTORS[300:400]))
            writer.join(WAIT_S)
            assert not writer.is_alive(), "a write waited for the indexer's step"
            col.delete(ids=[IDS[start]])
            assert index.deleted == 0 and index._dying == [start]
            # a delete of a row in the graph, and a search, wait for the step
            deleter, _ = _in_thread(lambda: col.delete(ids=[IDS[5]]))
            searcher, found = _in_thread(lambda: col.query(VECTORS[[start + 1, 5, start]], n_results=1))
            deleter.join(0.3)
            searcher.join(0.3)
            assert deleter.is_alive() and searcher.is_alive()
            assert index.covered == start
        finally:
            held.release()
        deleter.join(WAIT_S)
        searcher.join(WAIT_S)
        assert not deleter.is_alive() and not searcher.is_alive()
        assert index.covered >= end and index.deleted == 2  # (the indexer may have gone on)
        nearest = [r.ids[0] for r in found[0]]
        assert nearest[0] == IDS[start + 1]
        assert IDS[5] not in nearest and IDS[start] not in nearest
        assert col._indexer.drain(timeout=WAIT_S)
        assert index.covered == 400 and index.live == col.count() == 398
        # the graph alone (no tail left) never returns the deleted rows
        hits = {i for r in col.query(VECTORS[[5, start]], n_results=20) for i in r.ids}
        assert not hits & {IDS[5], IDS[start]}


def test_a_search_during_a_step_finds_the_step_rows_once(tmp_path):
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.create_collection("c", dim=8)
        held, start, end = _start_held_step(col)
        searcher, found = _in_thread(lambda: col.query(VECTORS[start:end], n_results=5))
        searcher.join(0.3)
        assert searcher.is_alive()
        held.release()
        searcher.join(WAIT_S)
        records = col._records
        live = records.live()
        truth, _ = exact_search(col._vectors.take(live), col._vectors.sqnorms[live], live,
                                VECTORS[start:end], 5, "cosine")
        for got, want in zip(found[0], truth.tolist()):
            assert len(got.ids) == len(set(got.ids)) == 5
            assert got.ids[0] == records.ids[want[0]]


def test_a_checkpoint_saves_the_graph_with_its_coverage_after_the_step(tmp_path):
    path = tmp_path / "d"
    with Database(path, tuning=TUNING) as db:
        col = db.create_collection("c", dim=8)
        held, start, end = _start_held_step(col)
        checkpointer, _ = _in_thread(lambda: col.checkpoint(force=True))
        checkpointer.join(0.3)
        assert checkpointer.is_alive(), "the checkpoint did not wait for the step"
        held.release()
        checkpointer.join(WAIT_S)
        assert not checkpointer.is_alive()
        col._indexer.stop()  # what the checkpoint saved stays the graph's last state
        saved = col._manifest["index"]
        assert saved["covered"] >= end and saved["count"] == saved["covered"]
    with Database(path, tuning=TUNING) as db:
        col = db.get_collection("c")
        index = col._index
        assert index.count >= end and index.covered >= index.count
        assert [r.ids[0] for r in col.query(VECTORS[start:end], n_results=1)] == IDS[start:end]


def test_concurrent_writes_deletes_and_searches_while_the_indexer_runs(tmp_path):
    """For about two seconds a writer adds and reads its own writes, a deleter deletes and
    checks that no search returns what it deleted, while the indexer steps beside them."""
    data = np.random.default_rng(9).normal(size=(6000, 8)).astype(np.float32)
    ids = [f"s{i}" for i in range(len(data))]
    errors: list[str] = []
    acked: list[int] = []
    stop = threading.Event()
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.create_collection("c", dim=8)
        col.add(ids[:200], data[:200])
        acked.extend(range(200))

        def writer():
            for start in range(200, len(data), 40):
                if stop.is_set():
                    return
                col.add(ids[start:start + 40], data[start:start + 40])
                acked.extend(range(start, start + 40))
                probe = start + 17
                got = col.query(data[probe:probe + 1], n_results=1)[0].ids
                if got != [ids[probe]]:
                    errors.append(f"write {ids[probe]} not found: {got}")

        def deleter():
            pick = np.random.default_rng(1)
            while not stop.is_set():
                victims = sorted({acked[int(i)] for i in pick.integers(0, len(acked), 5)})
                col.delete(ids=[ids[v] for v in victims])
                for row in col.query(data[victims], n_results=3):
                    if set(row.ids) & {ids[v] for v in victims}:
                        errors.append(f"deleted {victims} returned: {row.ids}")

        threads = [threading.Thread(target=writer), threading.Thread(target=deleter)]
        for thread in threads:
            thread.start()
        threads[0].join(2.0)
        stop.set()
        for thread in threads:
            thread.join(WAIT_S)
        assert not errors, errors[:5]
        assert col._indexer.drain(timeout=WAIT_S)
        index = col._index
        assert index.covered == col._vectors.slots and index.live == col.count()
        live = col.get().ids
        sample = [int(i[1:]) for i in live[:: max(1, len(live) // 200)]]
        found = [r.ids[0] for r in col.query(data[sample], n_results=1)]
        assert np.mean([f == ids[s] for f, s in zip(found, sample)]) >= 0.98


def test_steps_are_long_in_a_bulk_load_and_short_while_searches_come(tmp_path):
    tuning = Tuning(exact_threshold=64, checkpoint_min_bytes=1 << 40, graph_cost_per_ef=0, seal_rows=0,
                    index_step_ms=10.0, index_step_quiet_ms=40.0)
    with Database(tmp_path / "d", tuning=tuning) as db:
        col = db.create_collection("c", dim=8)
        col.add(IDS[:200], VECTORS[:200])
        indexer = col._indexer
        col._indexing = False  # the thread is not woken: steps run here, one at a time
        col.add(IDS[200:600], VECTORS[200:600])
        assert indexer.steps == 0
        assert indexer.step(20) and indexer.target_ms == 10.0  # the first step: nothing seen yet
        assert indexer.step(20) and indexer.target_ms == 40.0  # no search since: a bulk load
        col.query(VECTORS[:1], n_results=1)
        assert indexer.step(20) and indexer.target_ms == 10.0  # a search came
        assert indexer.step(20) and indexer.target_ms == 40.0
