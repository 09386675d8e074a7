"""Nearest-neighbour queries of a collection: planning, the graph or exact search, filters.

``Searcher`` is a part of ``Collection`` (storage/collection.py), which owns one and
delegates ``query`` and ``query_with_plan`` to it. It reads the collection only through
``Host`` (storage/state.py): ``host.state`` (vectors, records, indexes) under
``host.reading()``, ``host.config`` and ``host.tuning``; keyword and hybrid ranks go to its
``Ranker`` (storage/ranking.py).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import weakref
from collections import OrderedDict
from typing import Any, Iterable, Sequence

import numpy as np

from vectord import limits
from vectord.errors import InvalidArgumentError, UnavailableError
from . import validation
from .filters import Filter, compile_filter
from .index import IndexSearchFailed, exact_search
from .planner import EF_PER_FETCH, Plan, choose, segment_ef
from .ranking import Ranker, check_rank
from .segment import SegmentPlan, merge_topk
from .state import StateReader
from .types import HitColumns, Records, split_rows

log = logging.getLogger(__name__)

QUERY_INCLUDE_DEFAULT = frozenset({"documents", "metadatas", "distances"})
#: What a query of bare hits includes at most (``query_with_plan(columns=True)``).
_BARE = frozenset({"distances"})
#: A query with group_by searches for more hits than it returns, growing the search (x4 at a
#: time) until it has n_results groups of group_size hits, the candidates run out, or the
#: hits pass max_distance; it never looks past this many nearest hits per query, so groups
#: whose best hit is farther than that are not returned.
MAX_GROUP_FETCH = 50_000


class Searcher(StateReader):
    """A collection's vector queries (see the module docstring)."""

    def __init__(self, host) -> None:
        super().__init__(host)
        self.ranker = Ranker(host, self)
        self._cache = MatchCache()

    def _matching(self, where, predicate) -> tuple[np.ndarray, str]:
        """The host's ``_matching`` (read lock held), answered from ``MatchCache`` when the same
        filter was resolved since the last write."""
        if where is None:
            return self._host._matching(where, predicate)
        state = self._host.state
        found = self._cache.get(state, where)
        if found is None:
            found = self._cache.put(state, where, self._host._matching(where, predicate))
        return found

    def query(self, queries=None, n_results: int = 10, where: Filter | None = None,
              include: Iterable[str] | None = None, texts: Sequence[str] | None = None,
              max_distance: float | None = None, group_by: str | None = None,
              group_size: int = 1, rank: str = "vector", fusion: str = "rrf",
              hybrid_alpha: float = 0.5) -> list[Records]:
        """Nearest records to each query vector (or text, embedded), nearest first.

        ``max_distance`` drops hits farther than it (fewer than ``n_results`` then).
        ``group_by`` (a metadata path, dotted for nested maps) returns up to ``n_results``
        groups, one per distinct value of the path, best group first, each with its best
        ``group_size`` hits (``Records.groups`` holds each hit's value); records without
        the path, or with a null there, are in no group and are left out.
        ``rank`` "bm25" or "hybrid" ranks by the query texts' BM25 scores, alone or fused
        with the vector ranking (``fusion``, ``hybrid_alpha``; see storage/ranking.py).
        """
        return self.query_with_plan(queries, n_results, where, include, texts,
                                    max_distance=max_distance, group_by=group_by, group_size=group_size,
                                    rank=rank, fusion=fusion, hybrid_alpha=hybrid_alpha)[0]

    def query_with_plan(self, queries=None, n_results: int = 10, where: Filter | None = None,
                        include: Iterable[str] | None = None,
                        texts: Sequence[str] | None = None, max_distance: float | None = None,
                        group_by: str | None = None, group_size: int = 1, rank: str = "vector",
                        fusion: str = "rrf", hybrid_alpha: float = 0.5,
                        columns: bool = False) -> tuple[list[Records] | HitColumns, Plan]:
        """``query``, plus the plan that answered it (for ``explain``).

        ``columns``: a vector ranking of bare hits (``include`` at most distances, no
        ``group_by``) comes back as one HitColumns for all the queries (storage/types.py,
        what a batch's packed reply carries) instead of a Records per query; any other
        query as without it."""
        started = time.perf_counter()
        include = self._host._include(include, QUERY_INCLUDE_DEFAULT)
        n_results = validation.n_results(n_results)
        max_distance = check_max_distance(max_distance)
        group_parts = check_group(group_by, group_size, n_results)
        rank, fusion, hybrid_alpha = check_rank(rank, fusion, hybrid_alpha)
        if rank != "vector":  # keyword and hybrid ranking, max_distance and group_by too: storage/ranking.py
            results, plan = self.ranker.answer(rank, fusion, hybrid_alpha, queries, texts, n_results, where, include,
                                               max_distance=max_distance, group_parts=group_parts,
                                               group_size=group_size or 1)
            plan.elapsed_ms = (time.perf_counter() - started) * 1000
            return results, plan
        config = self.config  # the model and dim this query is checked against (see below)
        if (queries is None) == (texts is None):
            raise InvalidArgumentError("query: give either query_embeddings or query_texts")
        if texts is not None:
            if not texts:
                raise InvalidArgumentError("query_texts: at least one text is required")
            validation.query_count(len(texts), "query_texts")
            queries = self._host._embed(texts, "query_texts")
        queries = np.asarray(queries)
        if queries.ndim != 2 or len(queries) == 0:
            raise InvalidArgumentError(f"query_embeddings: expected a non-empty 2-d array, got shape {queries.shape}")
        validation.query_count(len(queries), "query_embeddings")
        queries = validation.vectors(queries, len(queries), config.dim, config.metric,
                                     _QUERY_NAMES, "query_embeddings")
        predicate = compile_filter(where)
        with self._host.reading():
            if (self.config.encoder, self.config.dim) != (config.encoder, config.dim):
                # a re-embed switched the model (storage/reembed.py) since the query was
                # embedded or checked: never search new vectors with it; a retry is right
                raise UnavailableError(f"query: collection {self.config.name!r} switched to model "
                                       f"{self.config.encoder['name']!r} during the query; retry")
            columns = columns and group_parts is None and include <= _BARE
            if self._host.sealed:  # the pinned list: sealed segments and the tail, merged
                results, plan = self._answer_segmented(queries, n_results, where, predicate, include, max_distance,
                                                       group_parts, group_size, started)
                if columns:  # hits from several holders: read as Records, then packed
                    results = HitColumns.of([i for r in results for i in r.ids], [len(r.ids) for r in results],
                                            np.concatenate([r.distances for r in results])
                                            if "distances" in include else None)
                return results, plan
            if group_parts is None:
                labels, distances, plan = self._search(queries, n_results, where, predicate)
                plan.elapsed_ms = (time.perf_counter() - started) * 1000
                if columns:
                    return self._host._hit_columns(labels, distances, max_distance, include), plan
                return self._host._select_hits(labels, distances, max_distance, include), plan
            rows = []
            for i in range(len(queries)):
                row, plan = self._grouped(queries[i:i + 1], n_results, group_size, group_parts,
                                          where, predicate, max_distance)
                rows.append(row)
            results = []
            for row_labels, row_dist, row_groups in rows:
                records = self._host._select(row_labels.tolist(), include)
                if "distances" in include:
                    records.distances = row_dist
                records.groups = row_groups
                results.append(records)
        plan.elapsed_ms = (time.perf_counter() - started) * 1000
        return results, plan

    def _answer_segmented(self, queries, n_results, where, predicate, include, max_distance, group_parts,
                          group_size, started) -> tuple[list[Records], Any]:
        """A vector query over the sealed segments and the tail (read lock held): each
        searched by its own plan, the hits merged by distance (docs/segments.md)."""
        host = self._host
        states = [host.state] + [segment.state for segment in host.sealed]  # holder 0: the tail
        if group_parts is None:  # every query's hits read at once, then cut per query
            holders, labels, distances, plan = self._search_segmented(queries, n_results, where, predicate)
            keep = labels >= 0
            if max_distance is not None:
                keep &= distances <= max_distance
            everything = host._select_pairs([(states[h], label) for h, label in
                                             zip(holders[keep].tolist(), labels[keep].tolist())], include)
            results = split_rows(everything, keep.sum(axis=1).tolist(),
                                 distances[keep] if "distances" in include else None)
            plan.elapsed_ms = (time.perf_counter() - started) * 1000
            return results, plan
        results = []
        for i in range(len(queries)):  # group_by: each query's groups on their own
            (row_holders, row_labels, row_dist, row_groups), plan = self._grouped_segmented(
                queries[i:i + 1], states, n_results, group_size, group_parts, where, predicate, max_distance)
            keep = row_labels >= 0
            if max_distance is not None:
                keep &= row_dist <= max_distance
            pairs = [(states[h], label) for h, label in zip(row_holders[keep].tolist(), row_labels[keep].tolist())]
            records = host._select_pairs(pairs, include)
            if "distances" in include:
                records.distances = row_dist[keep]
            records.groups = row_groups
            results.append(records)
        plan.elapsed_ms = (time.perf_counter() - started) * 1000
        return results, plan

    def _search_segmented(self, queries: np.ndarray, k: int, where, predicate):
        """(holders, labels, distances, plan): the tail (holder 0) and each sealed segment
        (holder i + 1) searched, merged top-k. Each segment's plan is its own (``plan.segments``),
        its graph searched with its share of the collection's ef (``segment_ef``)."""
        host = self._host
        live = host._live_count()
        ef_search = self.config.hnsw["ef_search"]
        tail_live = len(host.state.records)
        if tail_live:
            labels, distances, plan = self._search(queries, k, where, predicate,
                                                   segment_ef(ef_search, tail_live, live))
            parts = [(0, labels, distances)]
        else:  # an empty tail (just sealed): nothing to search
            plan, parts = Plan("exact", 0, 0, "none" if where is None else "index"), []
        plan.segments = [SegmentPlan("tail", plan.strategy, plan.candidates, plan.ef)]
        for i, segment in enumerate(host.sealed):
            s_labels, s_dist, s_plan = segment.search(queries, k, where, predicate, self.config, self.tuning, live,
                                                      segment_ef(ef_search, segment.live, live))
            parts.append((i + 1, s_labels, s_dist))
            plan.segments.append(s_plan)
            plan.candidates += s_plan.candidates
        if any(p.strategy == "hnsw" for p in plan.segments):
            plan.strategy = "hnsw"
        plan.ef = max(p.ef for p in plan.segments)
        holders, labels, distances = merge_topk(parts, k, len(queries))
        return holders, labels, distances, plan

    def _grouped_segmented(self, query, states, n_results, group_size, parts, where, predicate, max_distance):
        """``_grouped`` over the sealed segments and the tail (hits are (holder, label))."""
        limit = max(1, min(self._host._live_count(), MAX_GROUP_FETCH))
        fetch = min(max(4 * n_results * group_size, 32), limit)
        while True:
            holders, labels, distances, plan = self._search_segmented(query, fetch, where, predicate)
            keep = labels[0] >= 0
            found = int(keep.sum())
            if max_distance is not None:
                keep &= distances[0] <= max_distance
            hits = zip(zip(holders[0][keep].tolist(), labels[0][keep].tolist()), distances[0][keep].tolist())
            kept, values, full = group_hits(
                hits, lambda hl: lookup_path(states[hl[0]].records.metadata(hl[1]), parts), n_results, group_size)
            if full or found < fetch or int(keep.sum()) < found or fetch >= limit:
                break
            fetch = min(fetch * 4, limit)
        return (np.asarray([hl[0] for hl, _ in kept], np.int64), np.asarray([hl[1] for hl, _ in kept], np.int64),
                np.asarray([d for _, d in kept], np.float32), values), plan

    def _grouped(self, query: np.ndarray, n_results: int, group_size: int, parts: tuple[str, ...],
                 where, predicate, max_distance: float | None):
        """One query's hits grouped by the metadata value at ``parts``: (labels, distances,
        group values) in group order, and the plan of the last search.

        The search is oversampled and grown until the groups are full (see MAX_GROUP_FETCH):
        hits come nearest first, so a group's first hits in a longer list are its best ones.
        """
        records = self._records
        limit = max(1, min(len(records), MAX_GROUP_FETCH))
        fetch = min(max(4 * n_results * group_size, 32), limit)
        while True:
            labels, distances, plan = self._search(query, fetch, where, predicate)
            found = labels[0] >= 0
            row_labels, row_dist = _within(labels[0], distances[0], max_distance)
            hits, values, full = group_hits(zip(row_labels.tolist(), row_dist.tolist()),
                                            lambda label: lookup_path(records.metadata(label), parts),
                                            n_results, group_size)
            exhausted = (int(found.sum()) < fetch or len(row_labels) < int(found.sum())  # ran out / past max_distance
                         or fetch >= limit)
            if full or exhausted:
                break
            fetch = min(fetch * 4, limit)
        return (np.asarray([label for label, _ in hits], np.int64),
                np.asarray([distance for _, distance in hits], np.float32), values), plan

    def _search(self, queries: np.ndarray, k: int, where, predicate, ef_search: int | None = None):
        """Returns (labels, distances, plan); labels (n, k') with -1 padding short rows.
        ``ef_search``: the graph's base ef (the collection's by default; a segmented query
        gives the tail its share, ``segment_ef``)."""
        ef_search = ef_search or self.config.hnsw["ef_search"]
        live = len(self._records)
        index = self._index
        # the exact tail starts where the graph ended before any graph search here: an
        # indexer step may add rows meanwhile (storage/indexer.py), found then by both
        # (``_with_tail`` keeps them once), never by neither
        covered = index.covered if index is not None else 0
        has_graph = index is not None and live >= self.tuning.exact_threshold and index.live > 0
        if where is not None and has_graph:
            # Estimate first (index sizes only): a filter that the graph search should
            # answer is then checked on the fetched results alone, never materialised.
            estimate = self._meta_index.estimate(where, live)
            if estimate is not None:
                strategy, ef = choose(estimate[0], live, min(k, estimate[0]), ef_search, True, self.tuning.exact_filter_limit, self.tuning.graph_cost_per_ef)
                if strategy == "hnsw":
                    keep, allowed = self._passes(predicate), None
                    if estimate[0] * MATERIALISE_BELOW < live:
                        # k / selectivity results to check: one by one in Python (~4 us each)
                        # costs more than listing the matches (~0.15 ms at 20k of 100k)
                        allowed = self._matching(where, predicate)[0]
                        keep = _members(allowed)
                    try:
                        found = self._graph_filtered(queries, min(k, estimate[0]), ef, keep, allowed)
                    except IndexSearchFailed:
                        found = None
                    if found is not None:
                        labels, distances, ran_ef = found
                        tail = self._tail(where, predicate, allowed, covered)
                        labels, distances = self._with_tail(queries, min(k, estimate[0]), labels, distances, tail)
                        return labels, distances, Plan("hnsw", estimate[0], ran_ef, "estimate", tail=len(tail))
        if where is None:  # every live record: listed only for an exact search (8 bytes a record)
            candidates, filter_path, matched = None, "none", len(self._records)
        else:
            candidates, filter_path = self._matching(where, predicate)
            matched = len(candidates)
        k = min(k, matched)
        strategy, ef = choose(matched, live, k, ef_search, has_graph,
                              self.tuning.exact_filter_limit, self.tuning.graph_cost_per_ef)
        plan = Plan(strategy, matched, ef, filter_path)
        if strategy == "hnsw":
            try:
                tail = self._tail(where, predicate, candidates, covered)
                plan.tail = len(tail)
                if where is None:
                    labels, distances, plan.ef = index.search(queries, min(k, index.live), ef=ef)
                    return self._with_tail(queries, k, labels, distances, tail) + (plan,)
                # a filter the indexes could not estimate (document conditions), matched
                # many records: keep the allowed labels among the oversampled results
                labels, distances, plan.ef = self._graph_filtered(
                    queries, k, ef, _members(candidates), allowed=candidates)
                return self._with_tail(queries, k, labels, distances, tail) + (plan,)
            except IndexSearchFailed as exc:
                log.debug("hnsw search fell back to exact: %s", exc)
                plan.strategy, plan.ef, plan.tail = "exact", 0, 0
        if candidates is None:
            candidates = self._matching(None, predicate)[0]
        labels, distances = self._exact(candidates, queries, k)
        return labels, distances, plan

    def _tail(self, where, predicate, allowed: np.ndarray | None, covered: int) -> np.ndarray:
        """The exact tail's live labels (from ``covered``, the graph's end as the caller read
        it) that the filter allows (``allowed``: the sorted matches, when the caller has
        them). Empty once the indexer has caught up."""
        tail = self._records.live_between(covered, self._vectors.slots)
        if not len(tail) or where is None:
            return tail
        if allowed is not None:
            return tail[np.isin(tail, allowed, assume_unique=True)]
        records = self._records
        return np.fromiter((label for label in tail.tolist()
                            if predicate(records.metadata(label), records.documents[label])), np.int64)

    def _with_tail(self, queries: np.ndarray, k: int, labels: np.ndarray, distances: np.ndarray,
                   tail: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The graph's results merged by distance with the exact tail's nearest ``k``.
        A row the graph search finished exactly may hold tail labels already: kept once."""
        if not len(tail):
            return labels, distances
        t_labels, t_dist = self._exact(tail, queries, k)
        t_dist = np.where(_rows_hold(labels, t_labels), np.inf, t_dist)
        all_labels = np.concatenate([labels, t_labels], axis=1)
        all_dist = np.concatenate([np.where(labels >= 0, distances, np.inf), t_dist], axis=1)
        order = np.argsort(all_dist, axis=1, kind="stable")[:, :k]
        out_labels = np.take_along_axis(all_labels, order, axis=1)
        out_dist = np.take_along_axis(all_dist, order, axis=1)
        missing = ~np.isfinite(out_dist)
        out_labels[missing], out_dist[missing] = -1, 0.0
        if out_labels.shape[1] < k:  # fewer than k in all: pad as the graph's rows are
            pad = k - out_labels.shape[1]
            out_labels = np.pad(out_labels, ((0, 0), (0, pad)), constant_values=-1)
            out_dist = np.pad(out_dist, ((0, 0), (0, pad)))
        return out_labels.astype(np.int64), out_dist.astype(np.float32)

    def _exact(self, labels: np.ndarray, queries: np.ndarray, k: int):
        """Exact k nearest among ``labels``: all of them read in one pass."""
        state = self._host.state
        store = state.vectors
        if len(labels) == store.slots:  # no deleted slots: the whole store, no gather
            return exact_search(store.all(), store.sqnorms, labels, queries, k, self.config.metric)
        gathered = self._cache.gathered(state, labels)  # a repeated filter's (MatchCache)
        if gathered is None:
            gathered = store.take(labels), store.sqnorms[labels]
            self._cache.keep_gathered(state, labels, *gathered)
        return exact_search(gathered[0], gathered[1], labels, queries, k, self.config.metric)

    def _graph_filtered(self, queries, k, ef, keep, allowed=None):
        """Graph search fetching ef / EF_PER_FETCH results per query and keeping, per query, the first
        k that ``keep`` allows (``keep(row, k)`` returns the positions to keep in a row of
        fetched labels, nearest first, at most k).
        A query left short is finished exactly over ``allowed`` when the caller has the
        matches; otherwise the result is None and the caller answers exactly.
        Returns (labels, distances, the ef the graph search ran with), or None.

        Raises:
            IndexSearchFailed: hnswlib could not return ``fetch`` results.
        """
        fetch = min(self._index.live, max(k, int(ef / EF_PER_FETCH)))
        labels, dist, ran_ef = self._index.search(queries, fetch, ef=ef)
        out_l = np.full((len(queries), k), -1, np.int64)
        out_d = np.zeros((len(queries), k), np.float32)
        for i in range(len(queries)):
            positions = keep(labels[i], k)
            row_l, row_d = labels[i][positions], dist[i][positions]
            if len(row_l) < k:
                if allowed is None:
                    return None
                row_l, row_d = self._exact(allowed, queries[i:i + 1], k)
                row_l, row_d = row_l[0], row_d[0]
            out_l[i, : len(row_l)], out_d[i, : len(row_d)] = row_l, row_d
        return out_l, out_d, ran_ef

    def _passes(self, predicate):
        """``keep`` for _graph_filtered: the filter checked on fetched records, nearest
        first, stopping at k."""
        records = self._records

        def keep(row: np.ndarray, k: int) -> list[int]:
            positions = []
            for position, label in enumerate(row.tolist()):
                if predicate(records.metadata(label), records.documents[label]):
                    positions.append(position)
                    if len(positions) == k:
                        break
            return positions
        return keep


#: Filters whose matches ``MatchCache`` keeps, and the most labels it keeps in all (8 bytes
#: each: 4 MiB; never more than the collection's live records).
MATCH_CACHE_ENTRIES = 8
MATCH_CACHE_LABELS = 1 << 19
#: Filters ``MatchCache`` remembers having seen: it keeps a filter's matches from its second
#: ask on. Keeping every one-off filter's arrays until they aged out measured slower for
#: distinct filters (GloVe 100k x 50 at 10%: up to 1.4 x; benchmarks/results/filtered-curve-2026-11-30-2.md).
MATCH_CACHE_SEEN = 64
#: The gathered vectors ``MatchCache`` keeps, in all: at most this fraction of the bytes of
#: the collection's vectors and at most MATCH_CACHE_VECTOR_BYTES (GloVe 100k x 50: 2.4 MiB,
#: the 10,000 vectors of a 10% filter; 1M x 384: 8 MiB, about 5,000 vectors).
MATCH_CACHE_VECTOR_FRACTION = 1 / 8
MATCH_CACHE_VECTOR_BYTES = 8 << 20


class MatchCache:
    """The labels matching the last few filters, and for exact search their vectors gathered,
    kept until the next write.

    A selective query spends most of its time resolving its filter and gathering the
    matches' vectors: at 10% of GloVe 100k x 50 (issue 13), listing and sorting the range's
    labels ~0.1-0.15 ms and gathering 10,000 rows from the mapped originals ~0.2 ms of a
    ~0.8 ms query, on every query, though an application asks the same filter (a tenant,
    a category) again and again. A filter asked again (MATCH_CACHE_SEEN) is kept, and reuses
    both from its third ask on.

    An entry is valid only for the structures it was made from: the records, metadata index
    and vector store objects (a compaction or a re-embed replaces them) and the records'
    slot and live counts. Within one records object every write changes that pair: a put
    appends slots (an update too: it gives the record a new label), a delete lowers the live
    count without adding a slot, and nothing lowers the slots or revives a label, so a pair
    never comes back once changed. Any change drops every entry. A label's vector never
    changes in place (storage/vectors.py), so kept vectors stay right as long as their labels.

    Memory: labels up to MATCH_CACHE_LABELS in all and one per live record; gathered vectors up to
    MATCH_CACHE_VECTOR_FRACTION of the collection's vector bytes and MATCH_CACHE_VECTOR_BYTES,
    the least recently used dropped first. The kept arrays are read-only (every caller only
    reads them). Thread-safe: queries share it under the collection's read lock.
    """

    def __init__(self, entries: int = MATCH_CACHE_ENTRIES, max_labels: int = MATCH_CACHE_LABELS) -> None:
        self._entries_max, self._labels_max = entries, max_labels
        self._lock = threading.Lock()
        self._version: tuple | None = None
        # filter key -> [labels, filter path, (vectors, sqnorms) gathered or None]
        self._entries: OrderedDict[str, list] = OrderedDict()
        self._labels = 0
        self._vector_bytes = 0
        self._seen: OrderedDict[str, None] = OrderedDict()  # filters asked before (survive writes)

    @staticmethod
    def _key(where) -> str:
        # repr, not the Filter itself: dataclass equality calls True == 1 and 1 == 1.0, while
        # filters tell bools from numbers (storage/filters.py); a repr never does
        return repr(where)

    def _current(self, state) -> bool:
        """Whether the entries were made from ``state`` as it is now (lock held)."""
        version = self._version
        records = state.records
        return (version is not None and version[0]() is records and version[1]() is state.meta_index
                and version[2]() is state.vectors and version[3] == records.slots and version[4] == len(records))

    def get(self, state, where) -> tuple[np.ndarray, str] | None:
        """The labels matching ``where`` and how they were found, or None."""
        key = self._key(where)
        with self._lock:
            if not self._entries or not self._current(state):
                return None
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0], entry[1]

    def put(self, state, where, found: tuple[np.ndarray, str]) -> tuple[np.ndarray, str]:
        """Keeps what ``where`` resolved to; returns it as kept (read-only labels)."""
        labels, path = found
        limit = min(self._labels_max, len(state.records))  # at most 8 bytes a live record
        if len(labels) > limit:
            return found
        key = self._key(where)
        with self._lock:
            if key not in self._seen:  # asked for the first time: remember the filter, keep nothing
                self._seen[key] = None
                if len(self._seen) > MATCH_CACHE_SEEN:
                    self._seen.popitem(last=False)
                return found
            self._seen.move_to_end(key)
        labels = labels.view()
        labels.flags.writeable = False
        with self._lock:
            if not self._current(state):
                records = state.records
                self._version = (weakref.ref(records), weakref.ref(state.meta_index), weakref.ref(state.vectors),
                                 records.slots, len(records))
                self._entries.clear()
                self._labels = self._vector_bytes = 0
            self._drop(key)
            self._entries[key] = [labels, path, None]
            self._labels += len(labels)
            while len(self._entries) > self._entries_max or self._labels > limit:
                self._drop(next(iter(self._entries)))
        return labels, path

    def gathered(self, state, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(vectors, squared norms) of ``labels`` gathered before, when ``labels`` is an array
        this cache returned and its entry is still valid; else None."""
        with self._lock:
            if not self._entries or not self._current(state):
                return None
            for entry in self._entries.values():
                if entry[0] is labels:
                    return entry[2]
        return None

    def keep_gathered(self, state, labels: np.ndarray, vectors: np.ndarray, sqnorms: np.ndarray) -> None:
        """Keeps the gathered vectors of ``labels`` (an array this cache returned) if they fit."""
        store = state.vectors
        budget = min(MATCH_CACHE_VECTOR_BYTES, int(store.slots * store.dim * 4 * MATCH_CACHE_VECTOR_FRACTION))
        size = vectors.nbytes + sqnorms.nbytes
        if size > budget:
            return
        vectors.flags.writeable = sqnorms.flags.writeable = False
        with self._lock:
            if not self._current(state):
                return
            owner = next((key for key, entry in self._entries.items() if entry[0] is labels), None)
            if owner is None or self._entries[owner][2] is not None:
                return
            for key in list(self._entries):  # least recently used first
                if self._vector_bytes + size <= budget:
                    break
                self._forget_vectors(self._entries[key])
            if self._vector_bytes + size <= budget:
                self._entries[owner][2] = (vectors, sqnorms)
                self._vector_bytes += size

    def _forget_vectors(self, entry: list) -> None:
        if entry[2] is not None:
            self._vector_bytes -= entry[2][0].nbytes + entry[2][1].nbytes
            entry[2] = None

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._labels -= len(entry[0])
            self._forget_vectors(entry)


#: A filter the indexes resolve, estimated to match under 1 / MATERIALISE_BELOW of the
#: records, is listed before a graph search so that the graph's results are checked against
#: the list (_members) instead of by the predicate, one record at a time. GloVe 100k x 50
#: (issue 13): at 20% the checks were ~0.2-0.6 ms of a 1.2 ms query, the list 0.16 ms;
#: at 50% (about 20 checks) listing 50k labels costs more than it saves.
MATERIALISE_BELOW = 3


def _rows_hold(labels: np.ndarray, found: np.ndarray) -> np.ndarray:
    """found[i, j] in labels[i], per row (a few dozen labels a row)."""
    return np.array([np.isin(f, row) for f, row in zip(found, labels)]).reshape(found.shape)


def _members(allowed: np.ndarray):
    """``keep`` for _graph_filtered: positions of a row's labels found in ``allowed`` (sorted)."""
    last = len(allowed) - 1

    def keep(row: np.ndarray, k: int) -> np.ndarray:
        if last < 0:
            return np.empty(0, np.int64)
        found = allowed[np.minimum(np.searchsorted(allowed, row), last)] == row
        return np.flatnonzero(found)[:k]
    return keep


class _QueryNames:
    """The names an error gives the queries of a call ("query 3"), made only for an error
    (a list of them cost ~0.1 ms a call of 1,000 queries)."""

    def __getitem__(self, i: int) -> str:
        return f"query {i}"


_QUERY_NAMES = _QueryNames()


def _within(labels: np.ndarray, distances: np.ndarray, max_distance: float | None):
    """A result row without its padding and, with ``max_distance``, without the hits
    farther than it. Rows are nearest first, so this is the nearest k within the distance:
    cutting after the search equals cutting before it (the search's k is the most kept)."""
    if max_distance is None and (not len(labels) or labels[-1] >= 0):  # padding only ever ends a row
        return labels, distances
    keep = labels >= 0
    if max_distance is not None:
        keep &= distances <= max_distance
    return labels[keep], distances[keep]


def check_max_distance(value: Any) -> float | None:
    """None, or a finite number >= 0 (cosine and l2 distances are never negative; one rule
    for every metric, ip included, keeps it simple)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(f"max_distance: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise InvalidArgumentError(f"max_distance: must be a finite number >= 0, got {value!r}")
    return value


def check_group(group_by: Any, group_size: Any, n_results: int) -> tuple[str, ...] | None:
    """The split path of ``group_by`` (None without grouping), after checking it and
    ``group_size`` (1 or more; n_results x group_size within limits.MAX_N_RESULTS)."""
    if group_by is None or group_by == "":
        if group_size not in (None, 0, 1):
            raise InvalidArgumentError(f"group_size: {group_size!r} needs group_by (a metadata path)")
        return None
    if not isinstance(group_by, str) or group_by.startswith("$") or "" in group_by.split("."):
        raise InvalidArgumentError(f"group_by: {group_by!r} is not a metadata path (keys joined by '.', "
                                   "not starting with '$')")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise InvalidArgumentError(f"group_size: must be an integer >= 1, got {group_size!r}")
    if n_results * group_size > limits.MAX_N_RESULTS:
        raise InvalidArgumentError(
            f"group_size: n_results {n_results} x group_size {group_size} = {n_results * group_size} hits, "
            f"the limit is {limits.MAX_N_RESULTS} (limits.MAX_N_RESULTS)")
    return tuple(group_by.split("."))


def lookup_path(metadata: dict[str, Any], parts: tuple[str, ...]) -> Any:
    """The value at a dotted path, or None when a key is missing (as filters read paths)."""
    value: Any = metadata
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def group_key(value: Any) -> Any:
    """A hashable key for a group value: numbers of equal value are one group (1 and 1.0,
    as filters compare them), bools are never numbers, lists and maps group by content."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", value)
    if isinstance(value, str):
        return ("str", value)
    return ("json", json.dumps(value, sort_keys=True))


def group_hits(hits: Iterable[tuple], value_of, n_results: int, group_size: int) -> tuple[list, list, bool]:
    """Hits (best first; each a tuple whose first item is the record's label or id) grouped by
    ``value_of(hit[0])`` (None: the hit belongs to no group): the first ``n_results`` distinct
    values in the order of their best hit, each with its best ``group_size`` hits.

    Returns (the kept hits, group by group; their group values; whether every group is full).
    The engine's vector and ranked queries and the cluster gateway all group with this.
    """
    groups: dict[Any, list] = {}
    for hit in hits:
        value = value_of(hit[0])
        if value is None:
            continue
        key = group_key(value)
        kept = groups.get(key)
        if kept is None:
            if len(groups) < n_results:
                groups[key] = [value, [hit]]
        elif len(kept[1]) < group_size:
            kept[1].append(hit)
    full = len(groups) == n_results and all(len(kept) == group_size for _, kept in groups.values())
    return ([h for _, kept in groups.values() for h in kept], [v for v, kept in groups.values() for _ in kept],
            full)
