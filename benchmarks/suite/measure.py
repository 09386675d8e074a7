"""The measurement protocol, shared by every system (numpy only).

The same code times vectord (remote and embedded), raw hnswlib and Chroma: the Chroma
systems run it inside ``chroma_worker.py`` under Chroma's own virtualenv, so that only the
calls to the system are timed, never the exchange of data between processes.

A system is an *adapter* with these methods (``None`` where a system cannot do a step):

- ``ingest(ids: list[str], vectors: np.ndarray, metadatas: list[dict])``: one batch.
- ``searcher() -> callable(q: (1, dim) array, k, where: int | None) -> list[int]``: a
  single-query function, one per client thread (``where`` is the bucket threshold t of the
  filter ``bucket < t``, None for no filter).
- ``search_batch(Q, k)``: many queries in one call, answered as the system answers (the
  timed part); ``batch_labels(answer) -> list[list[int]]`` their labels, for recall (untimed:
  turning 1,000 string ids into ints is ~0.2 ms, 2% of a 100-query call, and no part of the
  system's work).
- ``get_where(t) -> int`` and ``count_where(t) -> int``: records with ``bucket < t``.
- ``explain(q, k, t) -> str``: the plan of a filtered query (vectord only).
- ``after_ingest()``: a hook (make the index searchable, measure memory...).

``Session`` runs one step of the protocol at a time (``Session.call(op, params)``), so that
the suite can interleave the systems in rounds (benchmarks/suite/rounds.py): on a shared
machine whose speed drifts within minutes, a ratio is only fair between measurements taken
seconds apart.
"""

from __future__ import annotations

import os
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
        return self.col.query(query_embeddings=queries, n_results=k, include=[])["ids"]

    @staticmethod
    def batch_labels(ids) -> list[list[int]]:
        return [[int(i) for i in row] for row in ids]

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
                   threads: int = 1, max_seconds: float = 10.0, warmup: int = 10,
                   searches: list[Callable] | None = None) -> dict[str, Any]:
    """Single queries from ``threads`` client threads, each its own search function
    (``searches``, when given, are reused: one per thread).

    Runs until every query was asked once or ``max_seconds`` passed (so that slow systems do
    not stall the suite); reports QPS over what ran, p50/p99 latency (ms), the seconds it ran
    and the results in query order (None for queries not reached).
    """
    searches = searches[:threads] if searches is not None else [make_search() for _ in range(threads)]
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
    return {"qps": len(every) / elapsed, "p50_ms": p50, "p99_ms": p99, "queries": len(every), "seconds": elapsed,
            "found": found}


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


# ---------------------------------------------------------------------- idle
_TICK = 1.0 / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    """``pid`` and the processes below it (a server may run its work in a child)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:  # gone, or no children file: the process alone
            pass
    return out


def _cpu_of(path: str) -> float:
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * _TICK  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds used so far by these processes (threads that have exited included: hnswlib
    runs its inserts in threads of its own); in our own process, less the caller's thread
    (the one that waits and polls)."""
    me = os.getpid()
    total = 0.0
    for pid in pids:
        total += _cpu_of(f"/proc/{pid}/stat")
        if pid == me:
            total -= _cpu_of(f"/proc/self/task/{threading.get_native_id()}/stat")
    return total


def wait_idle(pids: list[int], since: float, window: float = 0.1, quiet_windows: int = 3,
              busy: float = 0.2, limit: float = 600.0) -> float:
    """Waits until the processes ``pids`` (and their children) go idle after a write was
    acknowledged at ``since`` (perf_counter), and returns when their work ended: the end of
    the last window of ``window`` s in which they used more than ``busy`` of a core (low: on
    a loaded 2-core machine a busy thread may get a fifth of a core), or ``since`` when none
    did. Work a system defers past the acknowledgement (vectord's
    background indexer, storage/indexer.py; a server's compaction) is then part of the
    ingest time of the chunk that caused it, instead of slowing the next system's chunk."""
    pids = [q for p in pids for q in _descendants(p)]
    last_busy, quiet = since, 0
    before, t_before = cpu_seconds(pids), time.perf_counter()
    while quiet < quiet_windows and time.perf_counter() - since < limit:
        time.sleep(window)
        now, t_now = cpu_seconds(pids), time.perf_counter()
        if now - before > busy * (t_now - t_before):
            last_busy, quiet = t_now, 0
        else:
            quiet += 1
        before, t_before = now, t_now
    return last_busy


# ---------------------------------------------------------------------- steps
class Session:
    """One system under test with its data: each protocol step as an operation, so that the
    suite can run the systems' steps in alternation (benchmarks/suite/rounds.py). The Chroma
    worker serves the same operations from Chroma's virtualenv (chroma_worker.py).

    ``pids``: the processes whose CPU work an ingest chunk waits for (``wait_idle``).
    """

    def __init__(self, adapter, data: np.ndarray, queries: np.ndarray, truth: np.ndarray,
                 filtered_truth: dict[str, np.ndarray], config: dict[str, Any], pids: list[int],
                 log: Callable[[str], None] = print) -> None:
        self.adapter, self.data, self.queries, self.truth = adapter, data, queries, truth
        self.filtered_truth, self.config, self.pids, self.log = filtered_truth, config, pids, log
        self.has_recall = getattr(adapter, "has_recall", True)
        self._searches: list[Callable] = []

    def call(self, op: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return getattr(self, f"op_{op}")(**(params or {}))

    def op_ingest(self, start: int, end: int) -> dict[str, Any]:
        """Records [start, end) in batches, with ids and metadata; seconds until the system's
        processes went idle after the last acknowledgement (``acked_s``: until it)."""
        batch = self.config["batch"]
        ids = [str(i) for i in range(start, end)]
        started = time.perf_counter()
        for s in range(start, end, batch):
            e = min(s + batch, end)
            self.adapter.ingest(ids[s - start:e - start], self.data[s:e], [{"bucket": i % BUCKETS} for i in range(s, e)])
        acked = time.perf_counter()
        wait_indexed = getattr(self.adapter, "wait_indexed", None)
        if wait_indexed is not None:  # work the system itself says it has deferred
            wait_indexed()
        indexed = time.perf_counter()
        done = wait_idle(self.pids, indexed) if self.pids else indexed
        return {"records": end - start, "seconds": done - started, "acked_s": acked - started,
                "rps": (end - start) / (done - started)}

    def op_after_ingest(self) -> dict[str, Any]:
        self.adapter.after_ingest()
        return {}

    def _rolled(self, offset: int, count: int | None, truth: np.ndarray):
        n = count or len(self.queries)
        order = (np.arange(n) + offset) % n
        return order, self.queries[:n][order], truth[:n][order]

    def op_single(self, threads: int, seconds: float, offset: int = 0, filter: str | None = None,
                  count: int | None = None, warmup: int = 3) -> dict[str, Any]:
        """Single queries (``filter``: a selectivity name, or None) for ``seconds``, from the
        ``offset``-th query on; the recall of each answered query by its index."""
        truth = self.truth if filter is None else self.filtered_truth[filter]
        order, queries, truth = self._rolled(offset, count, truth)
        while len(self._searches) < threads:
            self._searches.append(self.adapter.searcher())
        where = None if filter is None else SELECTIVITY_THRESHOLDS[filter]
        r = single_queries(None, queries, self.config["k"], where, threads, seconds, warmup, self._searches)
        k = truth.shape[1]
        recalls = {int(order[i]): len(set(f[:k]) & set(truth[i].tolist())) / k
                   for i, f in enumerate(r["found"]) if f is not None} if self.has_recall else {}
        return {"qps": r["qps"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"], "queries": r["queries"],
                "seconds": r["seconds"], "recall_by_query": recalls}

    def op_batch(self, per_call: int, calls: int, seconds: float, offset: int = 0) -> dict[str, Any]:
        """``per_call`` queries per call, ``calls`` timed calls (after one warm-up) or fewer
        after ``seconds``; throughput from the median call."""
        _, queries, truth = self._rolled(offset, None, self.truth)
        queries, truth = queries[:per_call], truth[:per_call]
        lat, answer = timed_calls(lambda: self.adapter.search_batch(queries, self.config["k"]), calls, seconds)
        found = self.adapter.batch_labels(answer)
        return {"qps": per_call / float(np.median(lat)), "queries": per_call * len(lat), "seconds": float(sum(lat)),
                "recall": recall(found, truth) if self.has_recall else None}

    def op_explain(self, filter: str) -> dict[str, Any]:
        explain = getattr(self.adapter, "explain", None)
        if explain is None:
            return {"plan": None}
        return {"plan": explain(self.queries[0][None, :], self.config["k"], SELECTIVITY_THRESHOLDS[filter])}

    def op_get_count(self, names: list[str]) -> dict[str, Any]:
        """Get and count by filter at each selectivity: median latency (ms), checked counts."""
        out: dict[str, Any] = {}
        if getattr(self.adapter, "get_where", None) is None:
            return out
        n = len(self.data)
        for name in names:
            t = SELECTIVITY_THRESHOLDS[name]
            expected = n // BUCKETS * t + min(n % BUCKETS, t)
            for what, call, reps in (("get", self.adapter.get_where, 5), ("count", self.adapter.count_where, 20)):
                try:
                    lat, got = timed_calls(lambda: call(t), reps, self.config["max_seconds"] / 2)
                except Exception as exc:  # noqa: BLE001 - a system that cannot: say so, go on
                    out[f"{what}{name}_ms"] = "fails"
                    out[f"{what}{name}_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
                    self.log(f"  {what} {name}: FAILS: {out[f'{what}{name}_error']}")
                    continue
                assert got == expected, f"{what}({name}) returned {got} records, expected {expected}"
                out[f"{what}{name}_ms"] = float(np.median(lat)) * 1000
            shown = [f"{v:.2f}" if isinstance(v, float) else v for v in (out[f"get{name}_ms"], out[f"count{name}_ms"])]
            self.log(f"  get / count {name}: {shown[0]} / {shown[1]} ms")
        return out
