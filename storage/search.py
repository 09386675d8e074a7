"""Nearest-neighbour queries of a collection: planning, the graph or exact search, filters.

``SearchMixin`` is part of ``Collection`` (storage/collection.py), split out so that each file
has one job; its methods read the collection's state under its read lock.
"""

from __future__ import annotations

import logging
import time
from typing import Iterable, Sequence

import numpy as np

from vectord.errors import InvalidArgumentError, UnavailableError
from . import validation
from .filters import Filter, compile_filter
from .index import IndexSearchFailed, exact_search
from .planner import Plan, choose
from .types import Records

log = logging.getLogger(__name__)

QUERY_INCLUDE_DEFAULT = frozenset({"documents", "metadatas", "distances"})


class SearchMixin:
    def query(self, queries=None, n_results: int = 10, where: Filter | None = None,
              include: Iterable[str] | None = None, texts: Sequence[str] | None = None) -> list[Records]:
        """Nearest records to each query vector (or text, embedded), nearest first."""
        return self.query_with_plan(queries, n_results, where, include, texts)[0]

    def query_with_plan(self, queries=None, n_results: int = 10, where: Filter | None = None,
                        include: Iterable[str] | None = None,
                        texts: Sequence[str] | None = None) -> tuple[list[Records], Plan]:
        """``query``, plus the plan that answered it (for ``explain``)."""
        started = time.perf_counter()
        include = self._include(include, QUERY_INCLUDE_DEFAULT)
        n_results = validation.n_results(n_results)
        if (queries is None) == (texts is None):
            raise InvalidArgumentError("query: give either query_embeddings or query_texts")
        if texts is not None:
            if not texts:
                raise InvalidArgumentError("query_texts: at least one text is required")
            validation.query_count(len(texts), "query_texts")
            embedded_with = self.config.encoder
            queries = self._embed(texts, "query_texts")
        queries = np.asarray(queries)
        if queries.ndim != 2 or len(queries) == 0:
            raise InvalidArgumentError(f"query_embeddings: expected a non-empty 2-d array, got shape {queries.shape}")
        validation.query_count(len(queries), "query_embeddings")
        queries = validation.vectors(queries, len(queries), self.config.dim, self.config.metric,
                                     [f"query {i}" for i in range(len(queries))], "query_embeddings")
        predicate = compile_filter(where)
        with self._lock.read():
            self._check_open()
            if texts is not None and self.config.encoder != embedded_with:  # a re-embed switched (reembed.py)
                raise UnavailableError(f"query_texts: collection {self.config.name!r} switched to model "
                                       f"{self.config.encoder['name']!r} while the texts were embedded; retry")
            labels, distances, plan = self._search(queries, n_results, where, predicate)
            results = []
            for row_labels, row_dist in zip(labels, distances):
                keep = row_labels >= 0
                records = self._select(row_labels[keep].tolist(), include)
                if "distances" in include:
                    records.distances = row_dist[keep]
                results.append(records)
        plan.elapsed_ms = (time.perf_counter() - started) * 1000
        return results, plan

    def _search(self, queries: np.ndarray, k: int, where, predicate):
        """Returns (labels, distances, plan); labels (n, k') with -1 padding short rows."""
        live = len(self._records)
        has_graph = self._index is not None and live >= self.tuning.exact_threshold
        if where is not None and has_graph:
            # Estimate first (index sizes only): a filter that the graph search should
            # answer is then checked on the fetched results alone, never materialised.
            estimate = self._meta_index.estimate(where, live)
            if estimate is not None:
                strategy, ef = choose(estimate[0], live, min(k, estimate[0]), self.config.hnsw["ef_search"],
                                      True, self.tuning.exact_filter_limit, self.tuning.graph_cost_per_ef)
                if strategy == "hnsw":
                    try:
                        found = self._graph_filtered(queries, min(k, estimate[0]), ef, self._passes(predicate))
                    except IndexSearchFailed:
                        found = None
                    if found is not None:
                        labels, distances, ran_ef = found
                        return labels, distances, Plan("hnsw", estimate[0], ran_ef, "estimate")
        candidates, filter_path = self._matching(where, predicate)
        k = min(k, len(candidates))
        strategy, ef = choose(len(candidates), live, k, self.config.hnsw["ef_search"], has_graph,
                              self.tuning.exact_filter_limit, self.tuning.graph_cost_per_ef)
        plan = Plan(strategy, len(candidates), ef, filter_path)
        if strategy == "hnsw":
            try:
                if where is None:
                    labels, distances, plan.ef = self._index.search(queries, k, ef=ef)
                    return labels, distances, plan
                # a filter the indexes could not estimate (document conditions), matched
                # many records: keep the allowed labels among the oversampled results
                labels, distances, plan.ef = self._graph_filtered(
                    queries, k, ef, lambda row, k: np.flatnonzero(np.isin(row, candidates))[:k],
                    allowed=candidates)
                return labels, distances, plan
            except IndexSearchFailed as exc:
                log.debug("hnsw search fell back to exact: %s", exc)
                plan.strategy, plan.ef = "exact", 0
        labels, distances = self._exact(candidates, queries, k)
        return labels, distances, plan

    def _exact(self, labels: np.ndarray, queries: np.ndarray, k: int):
        """Exact k nearest among ``labels``: all of them read in one pass."""
        store = self._vectors
        if len(labels) == store.slots:  # no deleted slots: the whole store, no gather
            vectors = store.all()
        else:
            vectors = store.take(labels)
        return exact_search(vectors, store.sqnorms[labels], labels, queries, k, self.config.metric)

    def _graph_filtered(self, queries, k, ef, keep, allowed=None):
        """Graph search fetching ef // 3 results per query and keeping, per query, the first
        k that ``keep`` allows (``keep(row, k)`` returns the positions to keep in a row of
        fetched labels, nearest first, at most k).
        A query left short is finished exactly over ``allowed`` when the caller has the
        matches; otherwise the result is None and the caller answers exactly.
        Returns (labels, distances, the ef the graph search ran with), or None.

        Raises:
            IndexSearchFailed: hnswlib could not return ``fetch`` results.
        """
        fetch = min(len(self._records), max(k, ef // 3))
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
