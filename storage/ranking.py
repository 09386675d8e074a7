"""Keyword (BM25) and hybrid (vector + BM25) ranking of a collection's records.

``Ranker`` is a part of ``Collection`` (storage/collection.py), owned by its ``Searcher``
(storage/search.py): it answers ``query(..., rank="bm25" | "hybrid")`` and
``query_ranked``; ``rank="vector"`` stays in search.py. It reads the collection only through
``Host`` (storage/state.py), and runs the vector side of a hybrid query with the Searcher.

- ``bm25``: the full-text index (fulltext.py) scores the records holding the query text's
  terms; ``scores`` holds the BM25 scores (higher is better), ``distances`` is NaN (there is
  no query vector).
- ``hybrid``: the nearest ``window`` records by vector and the best ``window`` by BM25
  (``window = max(n_results, RRF_WINDOW)``, 20, for rrf; ``max(n_results,
  WEIGHTED_WINDOW)``, 50, for weighted: see ``window``), fused:
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

``max_distance`` means what it means for ``rank="vector"``: the vector distance of a hit
to the query vector, and hits farther than it are not returned. It acts as a filter, before
ranking: for hybrid, each list keeps only its records within the distance (the vector list is
cut, the BM25 window's records are measured exactly) and the fusion ranks what is left; for
bm25 the hits of the BM25 ranking are measured and cut, read deeper (x4, up to
MAX_CUT_FETCH) until n_results are within the distance or the ranking runs out; this needs a
query vector (the encoder's embedding of the text, or ``query_embeddings``), and
``distances`` then holds the measured distances. A BM25 score floor would be another option (``min_score``); not offered.

``group_by`` groups the ranking as search.py groups the vector ranking: a group ranks by its
best hit, holds its best ``group_size`` hits, and the ranking is deepened (x4) until the
groups are full or it runs out. A hybrid ranking starts at the ungrouped query's window, so
when that fills the groups they are the groups of the ungrouped ranking; a deeper window
fuses differently (RRF ranks are counted in deeper lists), so the order may then differ.

Ties are broken by label (older records first), so a ranking is deterministic. ``where``
(and document conditions) restrict both lists before ranking. The query vector of a
hybrid query is the caller's ``query_embeddings``, or the collection's encoder's embedding
of ``query_texts``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from vectord.errors import FailedPreconditionError, InvalidArgumentError, UnavailableError
from . import validation
from .filters import Filter, compile_filter
from .planner import Plan
from .state import StateReader
from .types import Records

RANKS = ("vector", "bm25", "hybrid")
FUSIONS = ("rrf", "weighted")
#: RRF's constant k: dampens the weight of the very first ranks (60 in the RRF paper,
#: Elasticsearch and OpenSearch).
RRF_K = 60
#: Results taken from each list before RRF (at least n_results). RRF sums 1 / (k + rank), so
#: the deeper the lists, the more a record that is mediocre in both (ranks 30 and 30: 2/90)
#: outranks one that only one list puts first (1/61): a shallow window keeps RRF a fusion of
#: each list's best. Elasticsearch's rank_window_size defaults to the page size (10); 20
#: leaves room for a record just past the top 10 of both lists. On the question -> passage
#: sets of benchmarks/hybrid.py, 20 has an R@10 at least, and an nDCG@10 above, those of 50
#: and 100 on every set (benchmarks/results/hybrid-*.md, "Fusion settings").
RRF_WINDOW = 20
#: Results taken from each list before weighted fusion (at least n_results): min-max
#: normalisation maps each list's worst to 0, so the list must reach down to records that
#: are not relevant for 0 to mean "not relevant"; deeper is better there, up to the cost of
#: the graph search (k <= ef_search keeps it about a plain query's).
WEIGHTED_WINDOW = 50


#: A bm25 query with max_distance reads deeper into the BM25 ranking (x4 at a time) while
#: the cut leaves fewer than n_results; it measures no more than this many hits per query.
MAX_CUT_FETCH = 50_000


def window(fusion: str, n_results: int) -> int:
    """Records taken from each list of a hybrid query before fusing."""
    return max(n_results, RRF_WINDOW if fusion == "rrf" else WEIGHTED_WINDOW)


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


def check_query_texts(rank: str, texts: Sequence[str] | None) -> None:
    """The query texts a bm25 or hybrid query ranks by: one or more strings, within limits
    (the engine and the cluster gateway check them alike)."""
    if texts is None:
        raise InvalidArgumentError(f"query_texts: rank={rank!r} needs the query text (query_texts)")
    if not texts:
        raise InvalidArgumentError("query_texts: at least one text is required")
    validation.query_count(len(texts), "query_texts")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidArgumentError(f"query_texts[{i}]: expected a string, got {text!r}")


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


@dataclass(frozen=True)
class Search:
    """What one ranked query call ranks by (the same for each of its query texts)."""

    rank: str
    fusion: str
    alpha: float
    allowed: np.ndarray | None  # labels the filter allows, or None
    where: Filter | None
    predicate: Any
    max_distance: float | None


@dataclass
class Ranked:
    """One query text's ranking: labels and scores best first, and the vector distances
    already known (the vector search's, or those measured for max_distance)."""

    labels: np.ndarray
    scores: np.ndarray
    known_labels: np.ndarray
    known: np.ndarray
    #: True when a deeper ranking would add nothing (both lists ran out)
    exhausted: bool
    postings: int
    plan: Plan | None  # the vector search's plan (hybrid)


class Ranker(StateReader):
    """A collection's keyword and hybrid queries (see the module docstring)."""

    def __init__(self, host, searcher) -> None:
        super().__init__(host)
        self._searcher = searcher

    def query_ranked(self, rank: str, texts: Sequence[str], queries=None, n_results: int = 10,
                     where: Filter | None = None, include: Iterable[str] | None = None, fusion: str = "rrf",
                     hybrid_alpha: float = 0.5, max_distance: float | None = None, group_by: str | None = None,
                     group_size: int = 1) -> list[Records]:
        """A "bm25" or "hybrid" query, with ``max_distance`` and ``group_by`` (see the module
        docstring and docs/hybrid-search.md); the records as ``query`` returns them.

        Example:
            >>> col.query_ranked("bm25", ["apt dependencies"], n_results=3, group_by="source")[0].ids
        """
        return self.query_ranked_with_plan(rank, texts, queries, n_results, where, include, fusion, hybrid_alpha,
                                           max_distance, group_by, group_size)[0]

    def query_ranked_with_plan(self, rank: str, texts: Sequence[str] | None, queries=None, n_results: int = 10,
                               where: Filter | None = None, include: Iterable[str] | None = None,
                               fusion: str = "rrf", hybrid_alpha: float = 0.5, max_distance: float | None = None,
                               group_by: str | None = None, group_size: int = 1) -> tuple[list[Records], Plan]:
        """``query_ranked``, plus the plan that answered it (for ``explain``).

        The servicer calls this for rank "bm25" and "hybrid"; ``Searcher.query_with_plan``
        answers those ranks the same way (one behaviour for storage callers and the server).
        """
        if check_rank(rank, fusion, hybrid_alpha)[0] == "vector":
            raise InvalidArgumentError("rank: query_ranked answers 'bm25' and 'hybrid'; rank='vector' is query's")
        return self._searcher.query_with_plan(queries, n_results, where, include, texts, max_distance, group_by,
                                              group_size, rank, fusion, hybrid_alpha)

    def answer(self, rank: str, fusion: str, alpha: float, queries, texts: Sequence[str] | None,
                      n_results: int, where: Filter | None, include: frozenset[str],
                      max_distance: float | None = None, group_parts: tuple[str, ...] | None = None,
                      group_size: int = 1) -> tuple[list[Records], Plan]:
        """``query_with_plan`` for ``rank`` "bm25" or "hybrid" (arguments checked by the caller)."""
        if self._host.sealed and type(self) is Ranker:  # over every segment: storage/merged.py
            from .merged import SegmentedRanker
            return SegmentedRanker(self).answer(rank, fusion, alpha, queries, texts, n_results, where, include,
                                                max_distance, group_parts, group_size)
        check_query_texts(rank, texts)
        if self._fulltext is None:
            raise FailedPreconditionError(
                f"rank={rank!r}: collection {self.config.name!r} has no full-text index "
                "(it was created with fulltext analyzer 'none')")
        # bm25 needs a query vector only to measure max_distance against
        needs_vector = rank == "hybrid" or max_distance is not None
        if rank == "bm25" and queries is not None and max_distance is None:
            raise InvalidArgumentError("query_embeddings: rank='bm25' ranks by query_texts alone; "
                                       "give no query_embeddings (or use rank='hybrid', or max_distance)")
        # The model and dim this query is embedded and checked with, read once: a re-embed
        # may switch them (storage/reembed.py) before the lock is taken below.
        config = self.config
        if needs_vector:
            if queries is None and rank == "bm25" and config.encoder is None:
                raise InvalidArgumentError(
                    f"max_distance: rank='bm25' cuts at the vector distance of each hit to the query, and "
                    f"collection {config.name!r} has no encoder to embed query_texts: give query_embeddings "
                    "(one per query text)")
            if queries is None:
                queries = self._host._embed(texts, "query_texts")
            queries = np.asarray(queries)
            if queries.ndim != 2 or len(queries) != len(texts):
                raise InvalidArgumentError(
                    f"query_embeddings: rank={rank!r}{' with max_distance' if rank == 'bm25' else ''} needs "
                    f"one vector per query text ({len(texts)}), got shape {queries.shape}")
            queries = validation.vectors(queries, len(queries), config.dim, config.metric,
                                         [f"query {i}" for i in range(len(queries))], "query_embeddings")
        predicate = compile_filter(where)
        with self._host.reading():
            if needs_vector and (self.config.encoder, self.config.dim) != (config.encoder, config.dim):
                # never search the new model's vectors with an old-model query vector; a retry is right
                raise UnavailableError(f"query: collection {self.config.name!r} switched to model "
                                       f"{self.config.encoder['name']!r} during the query; retry")
            allowed, filter_path = (None, "none") if where is None else self._host._matching(where, predicate)
            candidates = len(self._fulltext) if allowed is None else len(allowed)
            results, scanned = [], 0
            plan = Plan("bm25", candidates, 0, filter_path)
            search = Search(rank, fusion, alpha, allowed, where, predicate, max_distance)
            for i, text in enumerate(texts):
                query = queries[i] if needs_vector else None
                if group_parts is None:
                    depth = min(window(fusion, n_results), len(self._records)) if rank == "hybrid" else n_results
                    ranked = self._ranking(search, text, query, depth)
                    postings = ranked.postings
                    while rank == "bm25" and len(ranked.labels) < n_results and not ranked.exhausted \
                            and depth < MAX_CUT_FETCH:
                        # max_distance cut some of the best: the next best within it lie deeper
                        depth = min(depth * 4, MAX_CUT_FETCH)
                        ranked = self._ranking(search, text, query, depth)
                        postings += ranked.postings
                    ranked.postings = postings
                    labels, scores, groups = ranked.labels[:n_results], ranked.scores[:n_results], None
                else:
                    ranked, labels, scores, groups = self._grouped_ranking(search, text, query, n_results,
                                                                           group_size, group_parts)
                scanned += ranked.postings
                plan = ranked.plan or plan
                records = self._host._select(labels.tolist(), include)
                if "distances" in include:
                    records.distances = (np.full(len(labels), np.nan, np.float32) if query is None else
                                         self._distances(query, labels, ranked.known_labels, ranked.known))
                records.scores = scores.astype(np.float32)
                records.groups = groups
                results.append(records)
            plan.rank, plan.postings = rank, scanned
            if rank == "hybrid":
                plan.fusion = fusion
        return results, plan

    def _ranking(self, search: "Search", text: str, query: np.ndarray | None, depth: int) -> "Ranked":
        """One query's ranking over ``depth`` records of each list (the read lock held):
        labels and scores best first, ties by label; records farther than max_distance cut."""
        labels, scores, postings = self._fulltext.search(text, depth, search.allowed)
        exhausted = len(labels) < depth  # the documents holding a term ran out
        no_labels, no_dist = np.zeros(0, np.int64), np.zeros(0, np.float32)
        if search.rank == "bm25":
            if query is None:
                return Ranked(labels, scores, no_labels, no_dist, exhausted, postings, None)
            distances = self._distances(query, labels, no_labels, no_dist)
            keep = distances <= search.max_distance
            return Ranked(labels[keep], scores[keep], labels[keep], distances[keep], exhausted, postings, None)
        vector_labels, vector_dist, plan = self._searcher._search(query[None], depth, search.where, search.predicate)
        vector_labels, vector_dist = vector_labels[0], vector_dist[0]
        keep = vector_labels >= 0
        exhausted &= int(keep.sum()) < depth  # ... and so did the records the filter allows
        if search.max_distance is not None:
            within = keep & (vector_dist <= search.max_distance)
            # Nearest first: when the cut falls inside the list, every record within the
            # distance is in it already, so a deeper ranking could add no record (only move
            # BM25 ranks), and grouping need not deepen it.
            exhausted |= bool((keep & ~within).any())
            keep = within
            # the BM25 side: its best records within max_distance (a candidate set, as where)
            bm25_dist = self._distances(query, labels, vector_labels[keep], vector_dist[keep])
            near = bm25_dist <= search.max_distance
            labels, scores, bm25_dist = labels[near], scores[near], bm25_dist[near]
        else:
            bm25_dist = no_dist
        vector_labels, vector_dist = vector_labels[keep], vector_dist[keep]
        fused_labels, fused_scores = (rrf([vector_labels, labels]) if search.fusion == "rrf" else
                                      weighted(vector_labels, vector_dist, labels, scores, search.alpha))
        order = np.lexsort((fused_labels, -fused_scores))
        # known distances: those measured for max_distance, then the search's (which win)
        known_labels = np.concatenate([labels[:len(bm25_dist)], vector_labels])
        known = np.concatenate([bm25_dist.astype(np.float32), vector_dist.astype(np.float32)])
        return Ranked(fused_labels[order], fused_scores[order], known_labels, known, exhausted, postings, plan)

    def _grouped_ranking(self, search: "Search", text: str, query: np.ndarray | None, n_results: int,
                         group_size: int, parts: tuple[str, ...]):
        """One query's ranking grouped by the metadata value at ``parts``: (the last ranking,
        labels, scores, group values), groups in the order of their best hit.

        As search.py's grouping: the ranking is taken ``depth`` deep (bm25: 4 x n_results x
        group_size, at least 32; hybrid: the fusion window of n_results x group_size) and
        deepened x4 until the groups are full, the ranking runs out, or MAX_GROUP_FETCH
        records were looked at.
        """
        from .search import MAX_GROUP_FETCH, group_hits, lookup_path

        records = self._records
        limit = max(1, min(len(records), MAX_GROUP_FETCH))
        if search.rank == "hybrid":
            # first the ungrouped query's window: when it fills the groups, they are the
            # groups of the ungrouped ranking (a deeper window fuses differently)
            depth = min(window(search.fusion, n_results * group_size), limit)
        else:  # a deeper BM25 ranking only adds to the end of a shallower one
            depth = min(max(4 * n_results * group_size, 32), limit)
        postings = 0
        while True:
            ranked = self._ranking(search, text, query, depth)
            postings += ranked.postings
            hits, values, full = group_hits(zip(ranked.labels.tolist(), ranked.scores.tolist()),
                                            lambda label: lookup_path(records.metadata(label), parts),
                                            n_results, group_size)
            if full or ranked.exhausted or depth >= limit:
                break
            depth = min(depth * 4, limit)
        ranked.postings = postings
        labels = np.asarray([label for label, _ in hits], np.int64)
        scores = np.asarray([score for _, score in hits], np.float64)
        return ranked, labels, scores, values

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
