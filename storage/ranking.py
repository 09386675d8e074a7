"""Keyword (BM25) and hybrid (vector + BM25) ranking of a collection's records.

``RankMixin`` is part of ``Collection`` (storage/collection.py) beside ``SearchMixin``: it
answers ``query(..., rank="bm25" | "hybrid")``; ``rank="vector"`` stays in search.py.

- ``bm25``: the full-text index (fulltext.py) scores the records holding the query text's
  terms; ``scores`` holds the BM25 scores (higher is better), ``distances`` is NaN (there is
  no query vector).
- ``hybrid``: the nearest ``window`` records by vector and the best ``window`` by BM25
  (``window = max(n_results, RANK_WINDOW)``, 50), fused:
  - ``fusion="rrf"`` (default): reciprocal rank fusion, score = sum over the two lists of
    1 / (RRF_K + rank), rank counted from 1, a list the record is not in adding nothing
    (Cormack, Clarke and Buettcher, SIGIR 2009; RRF_K = 60 as in the paper).
  - ``fusion="weighted"``: each list's scores min-max normalised to [0, 1] over the list
    (vector: (d_max - d) / (d_max - d_min) of the distances; BM25: (s - s_min) /
    (s_max - s_min); a list whose scores are all equal gives each 1), a record missing
    from a list getting 0 there, then score = alpha * vector + (1 - alpha) * bm25 with
    ``hybrid_alpha`` = alpha in [0, 1] (default 0.5; 1 ranks by vector, 0 by BM25, among
    the union of both windows).
  ``scores`` holds the fused score; ``distances`` the vector distance of every result
  (computed exactly for those found by BM25 alone).

Ties are broken by label (older records first), so a ranking is deterministic. ``where``
(and document conditions) restrict both lists before ranking. The query vector of a
hybrid query is the caller's ``query_embeddings``, or the collection's encoder's embedding
of ``query_texts``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from vectord.errors import FailedPreconditionError, InvalidArgumentError
from . import validation
from .filters import Filter, compile_filter
from .planner import Plan
from .types import Records

RANKS = ("vector", "bm25", "hybrid")
FUSIONS = ("rrf", "weighted")
#: RRF's constant k: dampens the weight of the very first ranks (60 in the RRF paper,
#: Elasticsearch and OpenSearch).
RRF_K = 60
#: Results taken from each list before fusing (at least n_results): deep enough that a
#: record ranked well in both lists is not cut (Elasticsearch's rank_window_size defaults to
#: the page size), shallow enough that the graph search of a hybrid query costs about a
#: plain one (k <= ef_search).
RANK_WINDOW = 50


def check_rank(rank: Any, fusion: Any, alpha: Any) -> tuple[str, str, float]:
    """(rank, fusion, alpha) after checking; empty values take the defaults."""
    rank = rank or "vector"
    fusion = fusion or "rrf"
    if rank not in RANKS:
        raise InvalidArgumentError(f"rank: {rank!r} is not one of {list(RANKS)}")
    if fusion not in FUSIONS:
        raise InvalidArgumentError(f"fusion: {fusion!r} is not one of {list(FUSIONS)}")
    if alpha is None:
        alpha = 0.5
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) \
            or not 0.0 <= alpha <= 1.0:
        raise InvalidArgumentError(f"hybrid_alpha: must be a number in [0, 1], got {alpha!r}")
    return rank, fusion, float(alpha)


def rrf(lists: Sequence[np.ndarray], k: int = RRF_K) -> tuple[np.ndarray, np.ndarray]:
    """Reciprocal rank fusion of ranked label lists (best first): (labels, fused scores),
    unordered."""
    labels = np.concatenate([np.asarray(ls, np.int64) for ls in lists])
    contributions = np.concatenate([1.0 / (k + np.arange(1, len(ls) + 1)) for ls in lists])
    unique, inverse = np.unique(labels, return_inverse=True)
    return unique, np.bincount(inverse, weights=contributions, minlength=len(unique))


def _minmax(values: np.ndarray) -> np.ndarray:
    if len(values) == 0:
        return values
    low, high = float(values.min()), float(values.max())
    if high == low:
        return np.ones(len(values))
    return (values - low) / (high - low)


def weighted(vector_labels: np.ndarray, distances: np.ndarray, bm25_labels: np.ndarray,
             bm25_scores: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """alpha x min-max(vector similarity) + (1 - alpha) x min-max(BM25): (labels, scores),
    unordered."""
    labels = np.concatenate([np.asarray(vector_labels, np.int64), np.asarray(bm25_labels, np.int64)])
    contributions = np.concatenate([alpha * _minmax(-distances.astype(np.float64)),
                                    (1 - alpha) * _minmax(bm25_scores.astype(np.float64))])
    unique, inverse = np.unique(labels, return_inverse=True)
    return unique, np.bincount(inverse, weights=contributions, minlength=len(unique))


def top(labels: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best labels by score, best first, ties by label."""
    order = np.lexsort((labels, -scores))[:k]
    return labels[order], scores[order]


class RankMixin:
    def _query_ranked(self, rank: str, fusion: str, alpha: float, queries, texts: Sequence[str] | None,
                      n_results: int, where: Filter | None, include: frozenset[str]) -> tuple[list[Records], Plan]:
        """``query_with_plan`` for ``rank`` "bm25" or "hybrid" (checked by the caller)."""
        if texts is None:
            raise InvalidArgumentError(f"query_texts: rank={rank!r} needs the query text (query_texts)")
        if not texts:
            raise InvalidArgumentError("query_texts: at least one text is required")
        validation.query_count(len(texts), "query_texts")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise InvalidArgumentError(f"query_texts[{i}]: expected a string, got {text!r}")
        if self._fulltext is None:
            raise FailedPreconditionError(
                f"rank={rank!r}: collection {self.config.name!r} has no full-text index "
                "(it was created with fulltext analyzer 'none')")
        if rank == "bm25":
            if queries is not None:
                raise InvalidArgumentError("query_embeddings: rank='bm25' ranks by query_texts alone; "
                                           "give no query_embeddings (or use rank='hybrid')")
        else:
            if queries is None:
                queries = self._embed(texts, "query_texts")
            queries = np.asarray(queries)
            if queries.ndim != 2 or len(queries) != len(texts):
                raise InvalidArgumentError(
                    f"query_embeddings: rank='hybrid' needs one vector per query text ({len(texts)}), "
                    f"got shape {queries.shape}")
            queries = validation.vectors(queries, len(queries), self.config.dim, self.config.metric,
                                         [f"query {i}" for i in range(len(queries))], "query_embeddings")
        predicate = compile_filter(where)
        with self._lock.read():
            self._check_open()
            allowed, filter_path = (None, "none") if where is None else self._matching(where, predicate)
            candidates = len(self._fulltext) if allowed is None else len(allowed)
            window = min(max(n_results, RANK_WINDOW), len(self._records)) if rank == "hybrid" else n_results
            results, scanned = [], 0
            plan = Plan("bm25", candidates, 0, filter_path)
            for i, text in enumerate(texts):
                labels, scores, postings = self._fulltext.search(text, window, allowed)
                scanned += postings
                if rank == "bm25":
                    distances = np.full(len(labels), np.nan, np.float32)
                else:
                    vector_labels, vector_dist, plan = self._search(queries[i:i + 1], window, where, predicate)
                    keep = vector_labels[0] >= 0
                    vector_labels, vector_dist = vector_labels[0][keep], vector_dist[0][keep]
                    fused = (rrf([vector_labels, labels]) if fusion == "rrf" else
                             weighted(vector_labels, vector_dist, labels, scores, alpha))
                    labels, scores = top(*fused, n_results)
                    distances = self._distances(queries[i], labels, vector_labels, vector_dist)
                records = self._select(labels[:n_results].tolist(), include)
                if "distances" in include:
                    records.distances = distances[:n_results]
                records.scores = scores[:n_results].astype(np.float32)
                results.append(records)
            plan.rank, plan.postings = rank, scanned
            if rank == "hybrid":
                plan.fusion = fusion
        return results, plan

    def _distances(self, query: np.ndarray, labels: np.ndarray, known_labels: np.ndarray,
                   known: np.ndarray) -> np.ndarray:
        """The vector distance of each label to ``query``: as the vector search found it,
        or computed exactly (for records found by BM25 alone), as exact_search does."""
        out = np.empty(len(labels), np.float32)
        position = {label: j for j, label in enumerate(known_labels.tolist())}
        missing = []
        for i, label in enumerate(labels.tolist()):
            j = position.get(label)
            if j is None:
                missing.append(i)
            else:
                out[i] = known[j]
        if missing:
            # the formulas of index.exact_search, for these few rows only
            rows = labels[missing]
            vectors = self._vectors.take(rows)
            dots = vectors @ query
            metric = self.config.metric
            if metric == "cosine":
                norm = float(np.sqrt(np.dot(query, query)))
                dist = 1.0 - dots / (norm * np.sqrt(self._vectors.sqnorms[rows]))
            elif metric == "ip":
                dist = 1.0 - dots
            else:
                dist = np.maximum(float(np.dot(query, query)) - 2.0 * dots + self._vectors.sqnorms[rows], 0.0)
            out[missing] = dist
        return out
