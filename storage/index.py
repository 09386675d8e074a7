"""Nearest-neighbour search: exact (numpy) and approximate (hnswlib).

``HnswIndex`` wraps one hnswlib index and handles hnswlib 0.8's known pitfalls: capacity
grown geometrically before adding, ``k`` clamped to the live count, ``ef >= k``, the
"contiguous 2D array" failure turned into a signal to fall back to exact search, ``ef``
set after every load, and ``replace_deleted`` never used (an update is mark-deleted plus an
add under a new label). Adding and searching must not overlap (hnswlib 0.8's README:
``add_items`` is "thread-safe with other add_items calls, but not with knn_query"): every
change to the graph (``add``, ``mark_deleted``) holds the ``EfGate`` alone, so it waits for
the searches running and holds back new ones, and the searches hold it shared. The
background indexer (storage/indexer.py) adds in short steps that way, holding no collection
lock, so that writes go on beside it.

hnswlib's ``ef`` is a property of the index, not of a call, and ``knn_query`` releases the
GIL: two searches under the shared read lock that each ``set_ef`` then search could run with
the other's ef (and ``explain`` report one that did not run). ``EfGate`` admits concurrent
searches only while they share one ef; a search needing another ef waits until those finish
and then sets it. Searches come in FIFO order, so a stream of one ef cannot starve another.

An indexer step runs beside the writes, so a write may delete a label of the step's rows
while hnswlib is adding them: such a label is not yet in the graph (``covered`` is below it)
and is marked deleted by the step itself, once added, before the step makes its rows part of
the graph (``covered``) and lets searches in again (``add_step``).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from pathlib import Path

import hnswlib
import numpy as np

from .blas import single_threaded
from .graph_file import load_graph

log = logging.getLogger(__name__)

_SPACES = {"cosine": "cosine", "l2": "l2", "ip": "ip"}


#: hnswlib's random seed for every graph (storage/graph_child.py builds the same graph again).
SEED = 100


class IndexSearchFailed(Exception):
    """hnswlib could not return k results (too many deletions for this ef)."""


def exact_search(
    vectors: np.ndarray,
    sqnorms: np.ndarray,
    labels: np.ndarray,
    queries: np.ndarray,
    k: int,
    metric: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force k nearest among candidate ``vectors`` (row i has label ``labels[i]`` and
    squared norm ``sqnorms[i]``).

    Returns (labels, distances), each (n_queries, min(k, len(labels))), nearest first.
    Distances: cosine 1 - cos, l2 squared Euclidean, ip 1 - dot.
    """
    k = min(k, len(labels))
    n = len(queries)
    if k == 0:
        return np.empty((n, 0), np.int64), np.empty((n, 0), np.float32)
    dist = exact_distances(vectors, sqnorms, queries, metric)
    if k < dist.shape[1]:
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(dist.shape[1]), (n, dist.shape[1]))
    part_dist = np.take_along_axis(dist, part, axis=1)
    order = np.argsort(part_dist, axis=1, kind="stable")
    best = np.take_along_axis(part, order, axis=1)
    return labels[best], np.take_along_axis(part_dist, order, axis=1).astype(np.float32)


def exact_distances(vectors: np.ndarray, sqnorms: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    """(n_queries, n_vectors) distances, as ``exact_search`` defines them."""
    with single_threaded(len(queries) * len(vectors) * queries.shape[1]):  # storage/blas.py: small products
        dots = queries @ vectors.T  # (n, m)
    if metric == "cosine":
        qn = np.sqrt((queries * queries).sum(axis=1, keepdims=True))
        return 1.0 - dots / (qn * np.sqrt(sqnorms)[None, :])
    if metric == "ip":
        return 1.0 - dots
    qsq = (queries * queries).sum(axis=1, keepdims=True)
    return np.maximum(qsq - 2.0 * dots + sqnorms[None, :], 0.0)


class EfGate:
    """Lets searches share an hnswlib index concurrently only while they need the same ef.

    ``with gate.using(ef):`` returns once the index's ef is ``ef`` and stays so until the
    block ends; ``set_ef`` is called only when no search is running.
    """

    def __init__(self, set_ef, ef: int) -> None:
        self._set_ef = set_ef
        self._ef = ef  # the index's ef now
        self._active = 0  # searches running with it
        self._queue: deque[int] = deque()  # waiting searches' tickets, oldest first
        self._tickets = 0
        self._alone = False  # a graph change holds the gate (``exclusive``)
        self.searches = 0  # searches let in so far (the indexer sizes its steps by it)
        self._mutex = threading.Lock()  # the fast paths take it directly (a C-level with)
        self._cond = threading.Condition(self._mutex)

    @property
    def ef(self) -> int:
        return self._ef

    def _may_enter(self, ef: int) -> bool:
        return self._active == 0 or (self._ef == ef and not self._alone)

    def using(self, ef: int) -> "_Using":
        """``with gate.using(ef):`` (a class, not a generator: it is on every search's path)."""
        return _Using(self, ef)

    def exclusive(self) -> "_Alone":
        """``with gate.exclusive():`` returns once no search runs, and holds new ones back
        (in their FIFO turn) until the block ends: for changes to the graph."""
        return _Alone(self)

    def enter_alone(self) -> None:
        with self._mutex:
            if self._queue or self._active:
                ticket = self._tickets = self._tickets + 1
                self._queue.append(ticket)
                while not (self._queue[0] == ticket and self._active == 0):
                    self._cond.wait()
                self._queue.popleft()
            self._alone = True
            self._active += 1

    def enter(self, ef: int) -> None:
        """Waits until a search with ``ef`` may run, and counts it in; ``leave()`` after."""
        with self._mutex:
            if self._queue or not self._may_enter(ef):
                ticket = self._tickets = self._tickets + 1
                self._queue.append(ticket)
                while not (self._queue[0] == ticket and self._may_enter(ef)):
                    self._cond.wait()
                self._queue.popleft()
                self._cond.notify_all()  # the next in line may share this ef
            if self._ef != ef:
                self._set_ef(ef)  # no search is running (checked above)
                self._ef = ef
            self._active += 1
            self.searches += 1

    def leave(self) -> None:
        with self._mutex:
            self._active -= 1
            if self._active == 0:
                self._alone = False
                if self._queue:  # whoever waits is in the queue
                    self._cond.notify_all()


class _Using:
    __slots__ = ("_gate", "_ef")

    def __init__(self, gate: EfGate, ef: int) -> None:
        self._gate, self._ef = gate, ef

    def __enter__(self) -> None:
        self._gate.enter(self._ef)

    def __exit__(self, *exc) -> None:
        self._gate.leave()


class _Alone:
    __slots__ = ("_gate",)

    def __init__(self, gate: EfGate) -> None:
        self._gate = gate

    def __enter__(self) -> None:
        self._gate.enter_alone()

    def __exit__(self, *exc) -> None:
        self._gate.leave()


#: Above this capacity the graph grows by an eighth, not double (see ``grown_capacity``).
LARGE_CAPACITY = 1 << 17


def grown_capacity(capacity: int) -> int:
    """The capacity after a graph fills ``capacity``: doubled while small, then +1/8 (as
    Python's lists grow). A resize makes hnswlib build one mutex per element (40 bytes) and
    its level table for the whole new capacity: doubling a loaded 1M x 384 graph on its first
    write cost ~60 MiB of resident memory (benchmarks/memory_steady.py --base); +1/8 costs
    an O(n) resize every n/8 inserts instead, a few ms each."""
    return capacity * 2 if capacity < LARGE_CAPACITY else capacity + capacity // 8


class HnswIndex:
    """One hnswlib index whose labels are the collection's record labels."""

    def __init__(self, metric: str, dim: int, m: int, ef_construction: int, ef_search: int,
                 threads: int = 1) -> None:
        self.metric, self.dim = metric, dim
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search
        self.threads = threads
        self._index = hnswlib.Index(space=_SPACES[metric], dim=dim)
        self.deleted = 0
        #: Every label below this is in the graph, or was deleted before the indexer reached
        #: it; the labels from here to the collection's slot count are its exact tail
        #: (storage/indexer.py), searched beside the graph.
        self.covered = 0
        self._gate: EfGate | None = None  # once ef is set (after init or load)
        # An indexer step in flight (``begin_step`` .. ``add_step``): its rows end at
        # ``_adding_end``; labels of its rows deleted meanwhile wait in ``_dying``.
        # ``_cover`` guards the three with ``covered`` and ``deleted``.
        self._cover = threading.Lock()
        self._adding_end: int | None = None
        self._dying: list[int] = []

    def _set_initial_ef(self, ef: int) -> None:
        self._index.set_ef(ef)
        self._gate = EfGate(self._index.set_ef, ef)

    @classmethod
    def create(cls, metric: str, dim: int, m: int, ef_construction: int, ef_search: int,
               capacity: int, threads: int = 1) -> "HnswIndex":
        index = cls(metric, dim, m, ef_construction, ef_search, threads)
        index._index.init_index(max_elements=max(capacity, 16), M=m,
                                ef_construction=ef_construction, random_seed=SEED)
        index._set_initial_ef(ef_search)
        return index

    @classmethod
    def load(cls, path: Path, metric: str, dim: int, m: int, ef_construction: int,
             ef_search: int, capacity: int, deleted: int, threads: int = 1,
             covered: int | None = None) -> "HnswIndex":
        """Loads a file whose checksum, dim and metric the caller has already verified;
        ``covered`` (see the attribute) defaults to ``capacity``, the generation's slots
        (a generation written before the exact tail: its graph held every slot)."""
        index = cls(metric, dim, m, ef_construction, ef_search, threads)
        # hnswlib's own file, read without load_index's slower pass (storage/graph_file.py)
        index._index = load_graph(path, _SPACES[metric], dim, max(capacity, 16), SEED)
        index._set_initial_ef(ef_search)  # ef is not saved in the file
        index.deleted = deleted
        index.covered = capacity if covered is None else covered
        return index

    @property
    def capacity(self) -> int:
        return self._index.get_max_elements()

    @property
    def count(self) -> int:
        """Elements in the graph, deleted ones included."""
        return self._index.get_current_count()

    def add(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        """Adds rows (labels ascending) and covers them; waits for the searches running."""
        with self._gate.exclusive():
            self._add_items(vectors, labels)
            if len(labels):
                with self._cover:
                    self.covered = max(self.covered, int(labels[-1]) + 1)

    def _add_items(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        needed = self.count + len(labels)
        capacity = self._index.get_max_elements()
        if needed > capacity:
            self._index.resize_index(max(needed, grown_capacity(capacity)))
        if len(labels):
            self._index.add_items(vectors, labels, num_threads=self.threads)

    def begin_step(self, end: int) -> None:
        """An indexer step will add the live rows of [covered, end) (called while the
        collection's writes are held back, with the rows read): a label there deleted from
        now on is left to ``add_step`` to mark."""
        with self._cover:
            self._adding_end = end

    def add_step(self, vectors: np.ndarray, labels: np.ndarray, end: int) -> None:
        """The indexer step begun by ``begin_step(end)``: adds the rows, marks deleted those
        deleted meanwhile, and covers [covered, end), all before a search runs again."""
        with self._gate.exclusive():
            added = False
            try:
                self._add_items(vectors, labels)
                added = True
            finally:
                with self._cover:
                    dying, self._dying, self._adding_end = self._dying, [], None
                    for label in dying:
                        try:
                            self._index.mark_deleted(label)
                        except RuntimeError:  # a failed add may not have reached it
                            if added:
                                raise
                            continue
                        self.deleted += 1
                    if added:
                        self.covered = max(self.covered, end)

    @property
    def searches(self) -> int:
        """Graph searches run so far."""
        return self._gate.searches

    @property
    def live(self) -> int:
        """Elements a search can return (in the graph and not deleted)."""
        return self.count - self.deleted

    def mark_deleted(self, labels) -> None:
        """Labels deleted from the collection: those in the graph are marked deleted there
        (waiting for the searches running), those an indexer step is adding are marked by
        that step, and those of the exact tail need nothing (the indexer skips them)."""
        with self._cover:
            now = [int(label) for label in labels if label < self.covered]
            if self._adding_end is not None:
                self._dying.extend(int(label) for label in labels
                                   if self.covered <= label < self._adding_end)
        if now:
            with self._gate.exclusive():
                for label in now:
                    self._index.mark_deleted(label)
                with self._cover:
                    self.deleted += len(now)

    def search(self, queries: np.ndarray, k: int,
               ef: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
        """Approximate k nearest; k must not exceed the live count. Safe to call from many
        threads at once (under the collection's read lock), each with its own ef.

        Returns:
            (labels, distances, ef): the ef the search ran with, max(ef, k).

        Raises:
            IndexSearchFailed: hnswlib found fewer than k live results.
        """
        ef = max(ef or self.ef_search, k)
        with self._gate.using(ef):
            try:
                labels, dist = self._index.knn_query(queries, k=k,
                                                     num_threads=self.threads if len(queries) > 1 else 1)
            except RuntimeError as exc:
                raise IndexSearchFailed(str(exc)) from exc
        return labels.astype(np.int64), dist, ef

    def save(self, path: Path) -> None:
        self._index.save_index(str(path))
