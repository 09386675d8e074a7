"""The measurement protocol, shared by every system (numpy only).

The same code times vectord (remote and embedded), raw hnswlib and Chroma: the Chroma
systems run it inside ``chroma_worker.py`` under Chroma's own virtualenv, so that only the
calls to the system are timed, never the exchange of data between processes.

A system is an *adapter* with these methods (``None`` where a system cannot do a step):

- ``ingest(ids: list[str], vectors: np.ndarray, metadatas: list[dict])``: one batch.
- ``searcher() -> callable(q: (1, dim) array, k, where: int | None) -> list[int]``: a
  single-query function, one per client thread (``where`` is the bucket threshold t of the
  filter ``bucket < t``, None for no filter).
- ``search_batch(Q, k) -> list[list[int]]``: many queries in one call.
- ``get_where(t) -> int`` and ``count_where(t) -> int``: records with ``bucket < t``.
- ``explain(q, k, t) -> str``: the plan of a filtered query (vectord only).
- ``after_ingest()``: a hook (make the index searchable, measure memory...).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import numpy as np

#: Filter selectivities: ``bucket = i % 1000`` and the filter ``bucket < t`` matches t/1000.
SELECTIVITY_THRESHOLDS = {"50%": 500, "20%": 200, "10%": 100, "5%": 50, "2%": 20, "1%": 10, "0.5%": 5,
                          "0.1%": 1}
BUCKETS = 1000


def bucket_of(i: np.ndarray | int):
    return i % BUCKETS


def where_bucket_lt(t: int) -> dict:
    """The filter dict (the same syntax in vectord and Chroma)."""
    return {"bucket": {"$lt": int(t)}}


class ChromaShapedAdapter:
    """The calls of the protocol made through a Chroma-shaped API, which both Chroma and
    vectord's SDK offer: ``self.col`` is the collection "bench" (ids are decimal labels)."""

    col: Any

    def ingest(self, ids, vectors, metadatas) -> None:
        self.col.add(ids=ids, embeddings=vectors, metadatas=metadatas)

    def after_ingest(self) -> None:
        pass

    def searcher(self) -> Callable:
        return self.search_on(self.col)

    @staticmethod
    def search_on(col) -> Callable:
        def search(q, k, t):
            where = None if t is None else where_bucket_lt(t)
            return [int(i) for i in col.query(query_embeddings=q, n_results=k, where=where, include=[])["ids"][0]]
        return search

    def search_batch(self, queries, k):
        return [[int(i) for i in row] for row in self.col.query(query_embeddings=queries, n_results=k,
                                                                include=[])["ids"]]

    def get_where(self, t: int) -> int:
        return len(self.col.get(where=where_bucket_lt(t), include=["metadatas"])["ids"])


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    """Mean recall@k of ``found`` against the first len(found) rows of ``truth``."""
    if not found:
        return float("nan")
    k = truth.shape[1]
    return float(np.mean([len(set(f[:k]) & set(t.tolist())) / k for f, t in zip(found, truth)]))


def _percentiles(latencies_s: list[float]) -> tuple[float, float]:
    lat = np.asarray(latencies_s) * 1000.0
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99))


def single_queries(make_search: Callable[[], Callable], queries: np.ndarray, k: int, where: int | None,
                   threads: int = 1, max_seconds: float = 10.0, warmup: int = 10) -> dict[str, Any]:
    """Single queries from ``threads`` client threads, each its own search function.

    Runs until every query was asked once or ``max_seconds`` passed (so that slow systems do
    not stall the suite); reports QPS over what ran, p50/p99 latency (ms) and the results in
    query order (None for queries not reached).
    """
    searches = [make_search() for _ in range(threads)]
    for q in queries[:warmup]:
        searches[0](q[None, :], k, where)
    found: list[list[int] | None] = [None] * len(queries)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    next_index = iter(range(len(queries)))
    lock = threading.Lock()
    deadline = time.perf_counter() + max_seconds

    def worker(slot: int) -> None:
        search, lat = searches[slot], latencies[slot]
        while time.perf_counter() < deadline:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            t0 = time.perf_counter()
            result = search(queries[i][None, :], k, where)
            lat.append(time.perf_counter() - t0)
            found[i] = result

    started = time.perf_counter()
    if threads == 1:
        worker(0)
    else:
        pool = [threading.Thread(target=worker, args=(s,)) for s in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    elapsed = time.perf_counter() - started
    every = [x for lat in latencies for x in lat]
    p50, p99 = _percentiles(every)
    return {"qps": len(every) / elapsed, "p50_ms": p50, "p99_ms": p99, "queries": len(every), "found": found}


def answered_recall(result: dict[str, Any], truth: np.ndarray) -> float:
    """Recall over the queries a timed run reached."""
    pairs = [(f, t) for f, t in zip(result["found"], truth) if f is not None]
    return recall([f for f, _ in pairs], np.array([t for _, t in pairs])) if pairs else float("nan")


def timed_calls(call: Callable[[], Any], max_calls: int, max_seconds: float, min_calls: int = 1) -> tuple[list[float], Any]:
    """Repeats ``call`` (after one warm-up) up to ``max_calls`` times or ``max_seconds``;
    returns (latencies in seconds, the last result)."""
    result = call()
    latencies: list[float] = []
    deadline = time.perf_counter() + max_seconds
    while len(latencies) < max_calls and (len(latencies) < min_calls or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        result = call()
        latencies.append(time.perf_counter() - t0)
    return latencies, result


def run_protocol(adapter, data: np.ndarray, queries: np.ndarray, truth: np.ndarray,
                 filtered_truth: dict[str, np.ndarray], config: dict[str, Any],
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every figure of the suite for one system on one dataset; returns a flat dict.

    ``config``: ``k``, ``batch`` (ingest batch size), ``query_batch`` (queries per batched
    call), ``threads`` (list of client thread counts), ``max_seconds`` (per measurement),
    ``filters`` (selectivity names to run), ``get_count`` (bool).
    """
    k, batch = config["k"], config["batch"]
    n = len(data)
    out: dict[str, Any] = {"n": n}

    # ingest: batches with ids and metadata
    ids = [str(i) for i in range(n)]
    started = time.perf_counter()
    for start in range(0, n, batch):
        end = min(start + batch, n)
        metas = [{"bucket": i % BUCKETS} for i in range(start, end)]
        adapter.ingest(ids[start:end], data[start:end], metas)
    out["ingest_s"] = time.perf_counter() - started
    out["ingest_rps"] = n / out["ingest_s"]
    log(f"  ingest {out['ingest_rps']:,.0f} rec/s")
    adapter.after_ingest()

    # single queries, 1 and more client threads; recall@k from the 1-thread run
    for threads in config["threads"]:
        r = single_queries(adapter.searcher, queries, k, None, threads, config["max_seconds"])
        out[f"qps_t{threads}"], out[f"p50_t{threads}"], out[f"p99_t{threads}"] = r["qps"], r["p50_ms"], r["p99_ms"]
        if threads == 1:
            out["recall"] = answered_recall(r, truth)
        log(f"  {threads} thread(s): {r['qps']:,.0f} QPS, p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms"
            + (f", recall@{k} {out['recall']:.4f}" if threads == 1 else ""))

    # batched queries: query_batch queries per call
    if getattr(adapter, "search_batch", None) is not None:
        qb = queries[: config["query_batch"]]
        lat, found = timed_calls(lambda: adapter.search_batch(qb, k), 5, config["max_seconds"])
        out["batch_qps"] = len(qb) / float(np.median(lat))
        out["batch_recall"] = recall(found, truth[: len(qb)])
        log(f"  batched ({len(qb)} per call): {out['batch_qps']:,.0f} queries/s, recall {out['batch_recall']:.4f}")

    # filtered single queries at each selectivity
    for name in config["filters"]:
        t = SELECTIVITY_THRESHOLDS[name]
        r = single_queries(adapter.searcher, queries[: config["filter_queries"]], k, t, 1, config["max_seconds"],
                           warmup=3)
        out[f"f{name}_qps"], out[f"f{name}_p50"] = r["qps"], r["p50_ms"]
        out[f"f{name}_recall"] = answered_recall(r, filtered_truth[name])
        explain = getattr(adapter, "explain", None)
        if explain is not None:
            out[f"f{name}_plan"] = explain(queries[0][None, :], k, t)
        log(f"  filter {name}: {r['qps']:,.0f} QPS, recall {out[f'f{name}_recall']:.4f}"
            + (f", plan {out.get(f'f{name}_plan')}" if explain is not None else ""))

    # get / count by filter
    if config.get("get_count") and getattr(adapter, "get_where", None) is not None:
        for name in config.get("get_count_filters", config["filters"]):
            t = SELECTIVITY_THRESHOLDS[name]
            expected = n // BUCKETS * t + min(n % BUCKETS, t)
            for what, call, reps in (("get", adapter.get_where, 5), ("count", adapter.count_where, 20)):
                try:
                    lat, got = timed_calls(lambda: call(t), reps, config["max_seconds"] / 2)
                except Exception as exc:  # noqa: BLE001 - a system that cannot: say so, go on
                    out[f"{what}{name}_ms"] = "fails"
                    out[f"{what}{name}_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
                    log(f"  {what} {name}: FAILS: {out[f'{what}{name}_error']}")
                    continue
                assert got == expected, f"{what}({name}) returned {got} records, expected {expected}"
                out[f"{what}{name}_ms"] = float(np.median(lat)) * 1000
            shown = [f"{v:.2f}" if isinstance(v, float) else v for v in (out[f"get{name}_ms"], out[f"count{name}_ms"])]
            log(f"  get / count {name}: {shown[0]} / {shown[1]} ms")
    return out
