"""Concurrent searches each run with the ef they asked for (issue 11).

hnswlib's ef belongs to the index, and ``knn_query`` releases the GIL: searches sharing the
read lock used to ``set_ef`` then search, so one could run with another's ef, and
``explain`` report an ef that did not run.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from vectord.storage import Database, Field, Tuning
from vectord.storage.index import EfGate, HnswIndex

EFS = (10, 40, 400)


def _hard_index(n=4000, dim=32):
    """Uniform data and a thin graph: the results depend strongly on ef."""
    rng = np.random.default_rng(0)
    index = HnswIndex.create("l2", dim, m=4, ef_construction=10, ef_search=10, capacity=n, threads=1)
    index.add(rng.random((n, dim), dtype=np.float32), np.arange(n))
    return index, rng.random((40, dim), dtype=np.float32)


class _EfSpy:
    """Wraps the hnswlib index: records a change of ef while a knn_query runs (the query
    is slowed down, so that an interleaving set_ef has time to happen)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.changed_during_query: list[tuple[int, int]] = []

    def set_ef(self, ef: int) -> None:
        self.inner.set_ef(ef)

    def knn_query(self, *args, **kwargs):
        before = self.inner.ef
        time.sleep(0.002)
        result = self.inner.knn_query(*args, **kwargs)
        if self.inner.ef != before:
            self.changed_during_query.append((before, self.inner.ef))
        return result

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_concurrent_searches_with_different_ef_match_serial_runs():
    index, queries = _hard_index()
    serial = {ef: [index.search(q[None], 10, ef=ef)[0] for q in queries] for ef in EFS}
    assert not np.array_equal(np.stack(serial[10]), np.stack(serial[400]))  # ef matters here
    spy = _EfSpy(index._index)
    index._index = spy
    index._gate._set_ef = spy.set_ef  # noqa: SLF001 (the gate sets ef through the spy too)

    def run(seed: int):
        rnd = random.Random(seed)
        mismatches = []
        for _ in range(40):
            i, ef = rnd.randrange(len(queries)), rnd.choice(EFS)
            labels, _, ran_ef = index.search(queries[i][None], 10, ef=ef)
            if ran_ef != ef or not np.array_equal(labels, serial[ef][i]):
                mismatches.append((i, ef, ran_ef))
        return mismatches

    with ThreadPoolExecutor(8) as pool:
        mismatches = [m for found in pool.map(run, range(8)) for m in found]
    assert mismatches == []
    assert spy.changed_during_query == []


def test_the_gate_admits_one_ef_at_a_time_and_serves_waiters_in_order():
    calls: list[int] = []
    gate = EfGate(calls.append, 10)
    entered: list[int] = []
    release = threading.Event()

    def search(ef: int) -> None:
        with gate.using(ef):
            entered.append(ef)
            release.wait(5)

    with gate.using(10):
        with gate.using(10):  # the same ef shares the index at once
            pass
        waiter = threading.Thread(target=search, args=(50,))
        waiter.start()
        time.sleep(0.05)
        assert entered == [] and calls == []  # another ef waits while 10 is in use
        late = threading.Thread(target=search, args=(10,))
        late.start()
        time.sleep(0.05)
        assert entered == []  # ef 10 again, but behind the waiter: no starvation
    _wait_for(lambda: entered)
    time.sleep(0.05)
    assert entered == [50] and calls == [50] and gate.ef == 50  # the late one waits for 50's end
    release.set()
    waiter.join(5)
    late.join(5)
    assert entered == [50, 10] and calls == [50, 10] and gate.ef == 10


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_concurrent_queries_and_their_explain_match_serial_runs(tmp_path):
    """Queries whose filters give different ef, run at once: each one's results and
    reported plan are those of the same query run alone."""
    rng = np.random.default_rng(1)
    n, dim = 3000, 24
    with Database(tmp_path / "d", tuning=Tuning(exact_threshold=500, graph_cost_per_ef=0,
                                                checkpoint_min_bytes=1 << 40, index_threads=1)) as db:
        col = db.create_collection("c", dim=dim, metric="l2", hnsw={"m": 4, "ef_construction": 10,
                                                                     "ef_search": 10})
        col.add([str(i) for i in range(n)], rng.random((n, dim), dtype=np.float32),
                metadatas=[{"g": i % 4, "h": i % 2} for i in range(n)])
        queries = rng.random((12, dim), dtype=np.float32)
        filters = [None, Field("h", "eq", 0), Field("g", "ne", 3), Field("g", "lt", 2)]

        def ask(i: int, where):
            results, plan = col.query_with_plan(queries[i][None], n_results=10, where=where)
            return results[0].ids, (plan.strategy, plan.ef, plan.filter_path)

        serial = {(i, w): ask(i, filters[w]) for i in range(len(queries)) for w in range(len(filters))}
        assert len({plan[1] for _, plan in serial.values()}) > 1  # several ef values are in play
        assert all(plan[0] == "hnsw" for _, plan in serial.values())
        jobs = list(serial) * 6
        random.Random(0).shuffle(jobs)
        with ThreadPoolExecutor(8) as pool:
            found = list(pool.map(lambda job: (job, ask(job[0], filters[job[1]])), jobs))
        assert [job for job, answer in found if answer != serial[job]] == []


def test_a_graph_change_waits_for_running_searches_and_holds_back_later_ones():
    """``exclusive`` (an indexer step, a mark_deleted): no search runs beside it; searches that
    came before it go first, those that came after wait for it (FIFO)."""
    gate = EfGate(lambda ef: None, 10)
    order: list[str] = []
    gate.enter(10)  # a search running
    alone = threading.Thread(target=lambda: (gate.enter_alone(), order.append("change"), gate.leave()))
    alone.start()
    time.sleep(0.1)
    assert order == []  # waits for the running search
    later = threading.Thread(target=lambda: (gate.enter(10), order.append("search"), gate.leave()))
    later.start()
    time.sleep(0.1)
    assert order == []  # same ef as the running one, but behind the change in the queue
    gate.leave()
    alone.join(5)
    later.join(5)
    assert order == ["change", "search"] and gate.searches == 2
