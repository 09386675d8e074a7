"""The background indexer: moves a collection's exact tail into its HNSW graph.

A write is applied to the record columns and the vectors only (the log, then memory), and
acknowledged; its new labels form the collection's *exact tail*: the labels from the
graph's ``covered`` (storage/index.py) to the slot count, which every graph search also
reads exactly (storage/search.py) and merges by distance. This thread adds the tail to the
graph in short steps, so that:

- a write no longer waits for graph inserts under the write lock (queries waited for them
  before, one whole write batch at a time; now for one step, ``Tuning.index_step_ms``);
- log replay after a crash only appends (restart no longer inserts the log into the
  graph: benchmarks/results/restart-1m-2026-11-30.md measured 141 s for 100k records),
  and the graph catches up here, in the background, after the collection is open.

A step reads its rows under the collection's read lock (writes held back for that copy) and
then adds them to the graph holding no collection lock, so that writes go on beside it: a
write's Python (checks, log, columns) runs on one core while hnswlib adds on the others
(benchmarks/ingest_overlap.py). hnswlib 0.8 documents ``add_items`` as "thread-safe with
other add_items calls, but not with knn_query" (its README): the graph's ``EfGate`` keeps
searches out while a step adds (storage/index.py), and a label deleted while its step is in
flight is marked by the step before its rows count as covered. A step's size adapts to take
about ``index_step_ms``; searches that wait for a step go before the next one (the gate is
FIFO).

``busy`` is held from a step's read to its end: a checkpoint takes it to save the graph and
its ``covered`` as one (storage/maintenance.py).

Backpressure: a write first waits (``wait_for_room``, holding no lock) while the tail holds
more than ``Tuning.tail_max`` slots, so that a query never reads a large tail exactly
during ingest. A tail left by recovery can be larger; queries read it exactly until the
indexer has caught up.

Deletes in the tail are not marked in the graph (those labels are not in it); the indexer
skips labels that are no longer live when it reaches them.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)

#: Rows in the first step; later steps are sized from the last step's rate.
_FIRST_STEP = 32
_MAX_STEP = 4096


class Indexer:
    """One collection's indexer thread (started on the first ``wake``)."""

    def __init__(self, host) -> None:
        self._host = host
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._step = _FIRST_STEP
        self._searches_seen = -1  # graph searches counted at the last step (none seen: not quiet)
        #: The duration the next step is sized for (ms): Tuning.index_step_ms while searches
        #: come, index_step_quiet_ms when none ran since the step before.
        self.target_ms = 0.0
        #: The error that stopped the thread, if any (writes then stop waiting for room).
        self.failed: BaseException | None = None
        self.steps = 0
        self.indexed_total = 0
        #: Held while a step is under way (see the module's docstring).
        self.busy = threading.Lock()

    # ------------------------------------------------------------------ reading
    def tail_slots(self) -> int:
        """Slots in the exact tail (live or not); 0 when there is no graph."""
        state = self._host.state
        index = state.index
        return 0 if index is None else max(0, state.vectors.slots - index.covered)

    # ------------------------------------------------------------------ control
    def wake(self) -> None:
        """The tail grew: start the thread if needed and let it run."""
        with self._cond:
            if self._stopped:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"indexer-{self._host.config.name}")
                self._thread.start()
            self._cond.notify_all()

    def stop(self) -> None:
        """Stops the thread (at the end of its current step) and waits for it."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def wait_for_room(self) -> None:
        """Called by a write before it takes any lock: waits while the tail holds more than
        ``Tuning.tail_max`` slots and the indexer is working on it."""
        limit = self._host.tuning.tail_max
        with self._cond:
            while (self.tail_slots() > limit and not self._stopped and self.failed is None
                   and self._thread is not None):
                self._cond.wait(0.05)

    def drain(self, timeout: float | None = None) -> bool:
        """Waits until the tail is empty (tests, benchmarks); returns whether it is."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.wake()
        with self._cond:
            while self.tail_slots() and not self._stopped and self.failed is None:
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                self._cond.wait(0.05)
        return self.tail_slots() == 0

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._stopped and self.tail_slots() == 0:
                        self._cond.wait()
                    if self._stopped:
                        return
                if not self.step():  # (searches that waited for a step go before the next: the gate is FIFO)
                    time.sleep(0.01)  # nothing indexable now (closed, failed, no graph)
        except BaseException as exc:  # never silent: writes stop waiting, queries read the tail
            self.failed = exc
            log.exception("collection %r: the indexer stopped; the tail stays exact",
                          self._host.config.name)
            with self._cond:
                self._cond.notify_all()

    def step(self, rows: int | None = None) -> bool:
        """Indexes one step of the tail (``rows`` slots, or as many as take about
        ``index_step_ms``): its rows read under the read lock, added under none; returns
        whether it did."""
        c = self._host
        with c._lock.read():
            if c._closed or c._failed is not None:
                return False
            state = c.state
            index = state.index
            if index is None:
                return False
            start, slots = index.covered, state.vectors.slots
            end = min(slots, start + (rows or self._step))
            if start >= end:
                return False
            alive = state.records.live_between(start, end)
            vectors = state.vectors.take(alive)  # a copy: writes may grow the store meanwhile
            # waits only for a checkpoint saving the graph, which holds the read lock too
            # and waits for nothing this thread holds
            self.busy.acquire()
            index.begin_step(end)
        searches = index.searches
        try:
            started = time.perf_counter()
            index.add_step(vectors, alive, end)
            took = time.perf_counter() - started
        finally:
            self.busy.release()
        # short steps while queries come, long ones in a bulk load (Tuning.index_step_quiet_ms)
        quiet = searches == self._searches_seen
        self._searches_seen = searches
        self.target_ms = c.tuning.index_step_quiet_ms if quiet else c.tuning.index_step_ms
        target = self.target_ms / 1000
        self.steps += 1
        self.indexed_total += len(alive)
        if len(alive):
            per_row = took / len(alive)
            self._step = max(8, min(_MAX_STEP, int(target / max(per_row, 1e-7))))
        with self._cond:
            self._cond.notify_all()  # writes waiting for room
        return True
