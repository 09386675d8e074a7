"""Choosing how to answer a query: exact search over candidates, or the HNSW graph.

Costs are counted in vector comparisons. Exact search compares the query with every
candidate, in one vectorised numpy product. A graph search compares it with roughly
``GRAPH_COST_PER_EF`` nodes per unit of ``ef``, each visit costing far more than a row of a
matrix product. A filtered graph search must fetch about ``k / selectivity`` results to keep
``k`` matches, so it raises ``ef`` as selectivity drops (``Plan.ef``), and exact search wins well before
the filter gets very selective. A filter that matches 1,000 records is answered exactly in
well under a millisecond.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field

#: Exact comparisons that cost as much as one unit of graph-search ef (measured on GloVe
#: 100k x 50 and 384-d clustered data: the crossover sits near 100-200).
GRAPH_COST_PER_EF = 150
#: Exact comparisons that cost as much as one result a filtered graph search fetches: returned
#: by hnswlib and checked against the filter (its metadata decoded and the predicate run in
#: Python, 20-30 x an exact comparison on GloVe 100k x 50, or looked up in the listed matches,
#: search.py MATERIALISE_BELOW). The calibration times a graph fetching as many results, yet
#: at 10% selectivity (ef 315, 210 results) the graph measured 1.35 x slower than exact where
#: the calibrated 26 predicted it faster (issue 13); counting every fetched result at 30 keeps
#: 10% exact down to a calibration of 14 (a busy machine's), and 20% and 50% on the graph.
FILTER_CHECK_COST = 30
#: A filtered graph search fetches FETCH_MARGIN x the k / selectivity results it expects
#: to keep, and runs at ef = EF_PER_FETCH x what it fetches. GloVe 100k x 50, k=10
#: (benchmarks/filtered_curve.py, issue 13): EF_PER_FETCH 3 ran 20% selectivity at ef 330,
#: 0.31-0.34 x the unfiltered QPS, recall 0.993; 1.5 runs it at ef 165, 0.49-0.67 x, recall
#: 0.973 (2: ef 220, 0.42-0.49 x, 0.983). A fetch margin of 1.5 saved nothing at 20% and
#: sent 10% to a slower graph search.
EF_PER_FETCH = 1.5
FETCH_MARGIN = 2
#: A filtered query goes to the graph only when its estimated cost, times this, is still
#: below the exact search's: near the boundary the estimate errs both ways (a repeated
#: filter's vectors come gathered from the match cache, halving exact's cost) and a wrong
#: graph plan costs more (and recalls less) than a wrong exact one. GloVe 100k x 50 on a
#: faster machine (calibration 10, suite 2026-11-30): 10% on the graph ran at 1,919 QPS
#: and recall 0.98 where exact ran at 3,223 and 1.0; with this margin 10% stays exact down
#: to a calibration of 6, 20% and 50% stay on the graph.
GRAPH_MARGIN = 1.25


@dataclass
class Plan:
    """How a query was answered (returned by ``query(..., explain=True)``)."""

    #: "exact" (numpy over the candidates) or "hnsw" (graph; with a filter, oversampled
    #: and checked against the allowed labels, short rows finished exactly).
    strategy: str
    #: Records the filter allows (all live records without a filter): exact, from the
    #: metadata indexes, or counted by a scan when the filter has document conditions.
    candidates: int
    #: ef used by the graph search (0 for exact).
    ef: int
    #: How the candidates were found: "none" (no filter), "index", "index+scan", "scan",
    #: or "estimate" (counted from the index sizes; the graph's results were checked
    #: against the filter one by one, and the candidates never materialised).
    filter_path: str = "none"
    #: Time spent, milliseconds.
    elapsed_ms: float = 0.0
    #: The ranking: "vector", "bm25" or "hybrid" (storage/ranking.py). For bm25 the
    #: strategy is "bm25" and candidates counts the indexed documents the filter allows.
    rank: str = "vector"
    #: Postings (term, document) entries read from the full-text index (bm25 and hybrid).
    postings: int = 0
    #: How hybrid results were fused: "rrf" or "weighted" ("" otherwise).
    fusion: str = ""
    #: With "hnsw": the live records of the exact tail (written, not yet in the graph;
    #: storage/indexer.py) that the filter allows, searched exactly beside the graph.
    tail: int = 0
    #: With sealed segments (storage/segment.py): how each was searched, the tail first
    #: (``SegmentPlan``: strategy, candidates and the ef of that segment's own search).
    segments: list = field(default_factory=list)


def choose(candidates: int, live: int, k: int, ef_search: int, has_graph: bool,
           exact_limit: int = 0, cost_per_ef: int = GRAPH_COST_PER_EF) -> tuple[str, int]:
    """Returns (strategy, ef) for a query of ``k`` results over ``candidates`` of ``live``."""
    if not has_graph or candidates == 0 or k == 0 or (candidates < live and candidates <= exact_limit):
        return "exact", 0
    selectivity = candidates / live
    # A filtered search keeps the allowed labels among `fetch` graph results, so it fetches
    # twice the expected need; ef = EF_PER_FETCH x fetch keeps the graph's recall of those high.
    fetch = k if candidates == live else int(k / selectivity * FETCH_MARGIN) + 10
    ef = max(ef_search, min(int(EF_PER_FETCH * fetch) if fetch > k else fetch, live))
    # ...and handles each result it fetches (FILTER_CHECK_COST); a cost_per_ef of 0 still
    # means "always the graph" (tests force it so)
    checks = 0 if candidates == live or cost_per_ef == 0 else fetch
    margin = 1 if candidates == live else GRAPH_MARGIN
    if candidates <= margin * (cost_per_ef * ef + FILTER_CHECK_COST * checks):
        return "exact", 0
    return "hnsw", ef



def segment_ef(ef_search: int, part_live: int, collection_live: int) -> int:
    """The base ef for searching one part (a sealed segment or the tail) of
    ``part_live`` of a collection's ``collection_live`` records: ef x sqrt(share).

    A query searches every part for its own top k and keeps the best k of all, so each
    part's search may miss more than one graph of the whole would and the merge still
    matches its recall: on GloVe 100k (benchmarks/segment_ef.py) two halves searched at
    ef 70 recalled as one graph at ef 100 (0.981), four quarters at ef 50 more (0.985), at a
    fraction of the cost of searching every part at the full ef. Never under 1; the search
    raises it to k."""
    if collection_live <= 0 or part_live >= collection_live:
        return ef_search
    return max(1, math.ceil(ef_search * math.sqrt(part_live / collection_live)))


#: The fewest records ``calibrate`` builds its graph of: on fewer, a search at ef 800 visits
#: most of the graph and the slope over ef says nothing (2,000 records measured 1).
MIN_CALIBRATION_ROWS = 10_000


def calibrate(data=None, dim: int = 50, n: int = 10_000, queries: int = 40, rounds: int = 5, seed: int = 0) -> dict:
    """Measures ``cost_per_ef`` on this machine: the time of one unit of graph-search ef over
    the time of one exact comparison, each timed as the engine runs it (exact: the
    candidates' vectors gathered with ``np.take``, then ``index.exact_search``; graph:
    hnswlib's ``knn_query`` fetching ef / EF_PER_FETCH results, as a filtered search does, at two
    values of ef, the slope between them, so the fixed cost of a call cancels). The two are
    timed in alternating rounds and the fastest round of each taken: a busy machine only
    adds time, and the medians of a loaded run put the constant anywhere from 10 to 26
    (issue 13), flipping the plan at 10% selectivity, where exact search is twice as fast.

    ``data`` (rows of float32 vectors) is the data to calibrate on; without it, ``n`` random
    unit vectors of ``dim`` (random data is the graph's worst case: it visits more nodes per
    unit of ef than real, clustered data, so the constant errs towards exact search).

    Returns:
        ``{"cost_per_ef", "exact_ns_per_candidate", "graph_ns_per_ef", "n", "dim"}``.

    Example:
        >>> tuning.graph_cost_per_ef = calibrate(dim=384)["cost_per_ef"]
    """
    import time

    import hnswlib
    import numpy as np

    from .index import exact_search

    n = len(data) if data is not None else n
    if n < MIN_CALIBRATION_ROWS:  # a graph too small to have a slope over ef worth measuring
        from vectord.errors import InvalidArgumentError

        raise InvalidArgumentError(f"calibrate: n {n} records, the calibration needs at least "
                                   f"{MIN_CALIBRATION_ROWS:,}")
    rng = np.random.default_rng(seed)
    if data is None:
        data = rng.standard_normal((n, dim)).astype(np.float32)
    data = np.ascontiguousarray(data, dtype=np.float32)
    data = data / np.maximum(np.linalg.norm(data, axis=1, keepdims=True), 1e-12)
    n, dim = data.shape
    probe = data[rng.choice(n, size=min(queries, n), replace=False)] + np.float32(0.01)
    candidates = np.sort(rng.choice(n, size=max(11, n // 4), replace=False))
    sqnorms = np.ones(n, np.float32)
    index = hnswlib.Index(space="cosine", dim=dim)
    index.init_index(max_elements=n, M=16, ef_construction=100, random_seed=seed)
    index.add_items(data, np.arange(n))
    low, high = 100, min(800, n)
    clock = time.perf_counter_ns
    exact_ns, graph_ns = [], []
    for _ in range(rounds):
        t0 = clock()
        for q in probe:
            exact_search(np.take(data, candidates, axis=0), sqnorms[candidates], candidates, q[None, :], 10,
                         "cosine")  # gathered as VectorStore.take does
        exact_ns.append((clock() - t0) / len(probe) / len(candidates))
        took = {}
        for ef in (low, high):
            index.set_ef(ef)
            t0 = clock()
            for q in probe:  # a filtered graph search fetches ef / EF_PER_FETCH results (search.py)
                index.knn_query(q[None, :], k=int(ef / EF_PER_FETCH), num_threads=1)
            took[ef] = (clock() - t0) / len(probe)
        graph_ns.append(max(took[high] - took[low], 1.0) / (high - low))
    # the fastest round of each: on a shared machine other processes only ever add time
    exact, graph = float(np.min(exact_ns)), float(np.min(graph_ns))
    return {"cost_per_ef": max(1, round(graph / exact)), "exact_ns_per_candidate": round(exact, 2),
            "graph_ns_per_ef": round(graph, 1), "n": n, "dim": dim}
