"""The HNSW graph of a collection as sealed segments, plus the exact tail after them.

A collection has one label space (a record's slot: its row in the vector store and its
record columns; labels are never reused until compaction renumbers them). The graph is
split by label range:

- a *segment* is a sealed, contiguous range [start, end) with its own ``HnswIndex`` over
  the labels that were live when it was sealed. No node is ever added to it. A delete marks
  the node deleted in memory; the record store's live bitmap, written by every checkpoint,
  is the truth, and recovery marks again every label of the range that is not live;
- the *tail* is every label from the last segment's end on. It is searched exactly (it is
  small: ``Tuning.seal_threshold``), so writes and log replay never insert into a graph.

``Segments`` is immutable: sealing (the tail becomes a segment) and merging (adjacent small
segments become one) build their graph from a frozen view under no lock
(storage/maintenance.py) and replace the collection's ``Segments`` under the write lock, in
one short step; a query holding the read lock uses the one it found.

A segment's graph file is written once, by the first checkpoint after it was sealed, beside
the generations (``seg-<start>-<end>-<seq>.hnsw``), and named by every later MANIFEST that
still holds the segment (storage/layout.py): a checkpoint never saves a graph again
(hnswlib's save holds the GIL, about 185 ms per 30k nodes).
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, replace
from typing import Any, Iterator

import numpy as np

from .index import HnswIndex, IndexSearchFailed, exact_search

log = logging.getLogger(__name__)


#: A segment with at most this many times the search's ef live records is read exactly (its
#: rows gathered and compared), a larger one by its graph.
SEGMENT_EXACT_FACTOR = 4


@dataclass(frozen=True)
class Segment:
    """A sealed label range and its graph (see the module docstring)."""

    start: int
    end: int
    index: HnswIndex
    #: The graph's file once a checkpoint wrote it: {"file", "sha256", "size"}; None before.
    stored: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return f"{self.start}-{self.end}"


@dataclass(frozen=True)
class SegmentSearch:
    """How one segment (or the tail) was searched, for ``explain``."""

    segment: str  # "start-end", or "tail" for the labels after the last segment
    strategy: str  # "hnsw" or "exact"
    candidates: int  # live labels of the range
    ef: int  # the ef the graph search ran with (0 for exact)


@dataclass(frozen=True)
class Segments:
    """The sealed segments of a collection, in label order, contiguous from label 0."""

    items: tuple[Segment, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.items)

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def tail_start(self) -> int:
        """The first label of the tail."""
        return self.items[-1].end if self.items else 0

    # HnswIndex's description, for the code and tests that ask whether there is a graph
    @property
    def count(self) -> int:
        """Nodes in the graphs, deleted ones included."""
        return sum(segment.index.count for segment in self.items)

    @property
    def deleted(self) -> int:
        return sum(segment.index.deleted for segment in self.items)

    @property
    def dim(self) -> int:
        return self.items[0].index.dim

    def sealed(self, segment: Segment) -> "Segments":
        """These segments and ``segment`` (which starts at the tail) after them."""
        if segment.start != self.tail_start:
            raise AssertionError(f"segment {segment.name} does not start at the tail ({self.tail_start})")
        return Segments(self.items + (segment,))

    def merged(self, first: int, count: int, segment: Segment) -> "Segments":
        """These segments with ``count`` of them from position ``first`` replaced by
        ``segment`` (which covers exactly their range)."""
        old = self.items[first:first + count]
        if (segment.start, segment.end) != (old[0].start, old[-1].end):
            raise AssertionError(f"segment {segment.name} does not cover {old[0].start}-{old[-1].end}")
        return Segments(self.items[:first] + (segment,) + self.items[first + count:])

    def stored(self, files: dict[str, dict[str, Any]]) -> "Segments":
        """These segments, each whose name is in ``files`` now knowing its file."""
        return Segments(tuple(replace(s, stored=files[s.name]) if s.name in files and s.stored is None else s
                              for s in self.items))

    def mark_deleted(self, labels) -> None:
        """Marks the nodes of sealed labels deleted (tail labels have no node)."""
        starts = [segment.start for segment in self.items]
        tail = self.tail_start
        for label in labels:
            label = int(label)
            if label >= tail:
                continue
            segment = self.items[bisect.bisect_right(starts, label) - 1]
            try:
                segment.index.mark_deleted([label])
            except RuntimeError:  # not in the graph: deleted before it was sealed
                pass

    def search(self, vectors, live: np.ndarray, queries: np.ndarray, k: int, ef: int, metric: str,
               ef_search: int) -> tuple[np.ndarray, np.ndarray, int, list[SegmentSearch]]:
        """The k nearest live labels: each segment searched by its graph (exactly when it is
        small: SEGMENT_EXACT_FACTOR), the tail exactly, merged by distance.

        ``live`` is every live label in order. Returns (labels, distances, the largest ef
        a graph ran with, one SegmentSearch per range searched); rows are padded with -1
        when fewer than k labels are live.
        """
        parts_l, parts_d, report, ran_ef = [], [], [], 0
        bounds = [(segment.start, segment.end, segment) for segment in self.items]
        bounds.append((self.tail_start, None, None))
        for start, end, segment in bounds:
            lo = int(np.searchsorted(live, start))
            hi = len(live) if end is None else int(np.searchsorted(live, end))
            labels = live[lo:hi]
            n = len(labels)
            if n == 0:
                continue
            kk = min(k, n)
            name = "tail" if segment is None else segment.name
            strategy, seg_ef = "exact", 0
            if segment is not None and n > SEGMENT_EXACT_FACTOR * max(ef, ef_search, kk):
                # Not planner.choose's crossover (exact up to cost_per_ef x ef = 15,000 at
                # the defaults): that compares one graph with one contiguous exact pass, while
                # each segment searched exactly gathers its rows again; summed over segments
                # it made a query of 50k x 384 (benchmarks/compaction.py's data, 40% deleted,
                # in-process) 25 x slower: 0.76 -> 18.6 ms. Only a small segment is exact.
                strategy, seg_ef = "hnsw", max(ef, ef_search)
            if strategy == "hnsw":
                try:
                    found_l, found_d, used = segment.index.search(queries, kk, ef=max(ef, seg_ef))
                    parts_l.append(found_l)
                    parts_d.append(found_d)
                    report.append(SegmentSearch(name, "hnsw", n, used))
                    ran_ef = max(ran_ef, used)
                    continue
                except IndexSearchFailed as exc:
                    log.debug("segment %s: hnsw search fell back to exact: %s", name, exc)
            found_l, found_d = exact_search(vectors.take(labels), vectors.sqnorms[labels], labels, queries, kk, metric)
            parts_l.append(found_l)
            parts_d.append(found_d.astype(np.float32))
            report.append(SegmentSearch(name, "exact", n, 0))
        n_queries = len(queries)
        if not parts_l:
            return np.empty((n_queries, 0), np.int64), np.empty((n_queries, 0), np.float32), ran_ef, report
        if len(parts_l) == 1:
            return parts_l[0], parts_d[0], ran_ef, report
        all_l = np.concatenate(parts_l, axis=1)
        all_d = np.concatenate(parts_d, axis=1)
        order = np.argsort(all_d, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(all_l, order, axis=1), np.take_along_axis(all_d, order, axis=1), ran_ef, report


def build_graph(vectors, labels: np.ndarray, config, threads: int) -> HnswIndex:
    """A graph over ``labels`` (their vectors read in blocks from ``vectors``, which must not
    be rewritten below the largest label meanwhile: the store only appends)."""
    hnsw = config.hnsw
    index = HnswIndex.create(config.metric, config.dim, hnsw["m"], hnsw["ef_construction"], hnsw["ef_search"],
                             capacity=max(len(labels), 16), threads=threads)
    written = 0
    for block in vectors.blocks(labels):
        index.add(block, labels[written:written + len(block)])
        written += len(block)
    return index


def tier(size: int, base: int, fanout: int) -> int:
    """A segment's size class: 0 below ``base`` x ``fanout``, 1 below base x fanout^2, ..."""
    level, bound = 0, max(base, 1) * fanout
    while size >= bound:
        level, bound = level + 1, bound * fanout
    return level


def merge_candidates(segments: Segments, base: int, fanout: int) -> tuple[int, int] | None:
    """(position, count) of ``fanout`` adjacent segments of one size class to merge (the
    newest such run), or None. Tiered: a merged segment is about ``fanout`` times larger,
    so a label is rebuilt into a graph about log_fanout(N / base) times in all."""
    items = segments.items
    if fanout < 2 or len(items) < fanout:
        return None
    for first in range(len(items) - fanout, -1, -1):
        run = items[first:first + fanout]
        tiers = {tier(s.end - s.start, base, fanout) for s in run}
        if len(tiers) == 1:
            return first, fanout
    return None
