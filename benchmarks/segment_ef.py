"""Single-query QPS and recall of one collection held as 1, 2 or 4 sealed segments (issue 12).

    python benchmarks/segment_ef.py [--n 100000] [--queries 1000] [--rounds 5] [--out PATH.json]

Why: a query searches every sealed segment and the tail for its own top k, then merges
(storage/search.py ``_search_segmented``). Each part is searched at its share of the
collection's ef, ``planner.segment_ef`` (ef x sqrt(part / collection)); this measures what
that costs and recalls against the one-state engine and against every part searched at the
full ef (what the engine did before).

All engines live in this one process (storage ``Database``, in-process, no gRPC), on GloVe
100k x 50 (cosine, M=16, ef_construction=100, ef=100, as benchmarks/core.py), loaded in
batches with a checkpoint after each so that ``seal_rows = max_segment_rows = n / S``
leaves exactly S sealed segments and an empty tail. Query rounds then rotate over the
engines (one state, S=2, S=4, S=4 at the full ef), so that the shared machine's load falls
on all alike; each round is ``--queries`` single queries (k=10, include nothing).
Reported per engine: the median round's QPS, p50 and p99, recall@10 against exact cosine
top-10, and QPS relative to the one-state engine of the same rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

M, EF_CONSTRUCTION, EF = 16, 100, 100


def _engine(root: str, name: str, data: np.ndarray, segments: int):
    from vectord.storage import Database, Tuning

    n = len(data)
    rows = n // segments if segments > 1 else 0
    tuning = Tuning(seal_rows=rows, max_segment_rows=rows, compact_min_dead=1 << 40)
    db = Database(os.path.join(root, name), tuning=tuning, checkpoint_interval_s=3600)
    col = db.create_collection("bench", dim=data.shape[1], metric="cosine",
                               hnsw={"m": M, "ef_construction": EF_CONSTRUCTION, "ef_search": EF})
    batch = max(1, rows // 5) if rows else 5000
    ids = [str(i) for i in range(n)]
    for start in range(0, n, batch):
        col.add(ids[start:start + batch], data[start:start + batch])
        if rows:
            col.checkpoint()  # seals once the tail holds `rows` records
    col.checkpoint()
    col._indexer.drain(600)
    assert len(col.sealed) == (segments if rows else 0), (name, len(col.sealed))
    return db, col


def _round(col, queries: np.ndarray, full_ef: bool) -> tuple[float, float, float, list[list[int]]]:
    from vectord.storage import search

    scaled = search.segment_ef
    if full_ef:  # every part at the collection's ef: the engine before segment_ef
        search.segment_ef = lambda ef, part, whole: ef
    try:
        latencies, found = [], []
        started = time.perf_counter()
        for q in queries:
            t0 = time.perf_counter()
            labels = col.query(q[None, :], n_results=10, include=[])[0].ids
            latencies.append(time.perf_counter() - t0)
            found.append([int(i) for i in labels])
        elapsed = time.perf_counter() - started
    finally:
        search.segment_ef = scaled
    lat = np.asarray(latencies) * 1000
    return len(queries) / elapsed, float(np.percentile(lat, 50)), float(np.percentile(lat, 99)), found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="GloVe vectors loaded (default 100,000)")
    p.add_argument("--queries", type=int, default=1000, help="single queries per round (default 1,000)")
    p.add_argument("--rounds", type=int, default=5, help="query rounds per engine (default 5)")
    p.add_argument("--out", type=Path, help="write the results to this JSON file")
    args = p.parse_args()
    from core import exact_top10, load_glove, recall

    everything = load_glove(args.n + args.queries)
    data, queries = everything[:args.n], everything[args.n:]
    truth = exact_top10(data, queries)
    engines = [("one state", 1, False), ("2 segments", 2, False), ("4 segments", 4, False),
               ("4 segments, full ef", 4, True)]
    load_before = os.getloadavg()
    rounds: dict[str, list] = {name: [] for name, _, _ in engines}
    with tempfile.TemporaryDirectory() as root:
        opened = {}
        for name, segments, _ in engines:
            if segments not in opened:
                opened[segments] = _engine(root, f"s{segments}", data, segments)
        for col in (c for _, c in opened.values()):
            for q in queries[:50]:  # warm-up
                col.query(q[None, :], n_results=10, include=[])
        for r in range(args.rounds):
            order = engines[r % len(engines):] + engines[:r % len(engines)]  # rotate who goes first
            for name, segments, full_ef in order:
                rounds[name].append(_round(opened[segments][1], queries, full_ef))
        for db, _ in opened.values():
            db.close()
    base = {i: rounds["one state"][i][0] for i in range(args.rounds)}
    out = {"n": args.n, "queries": args.queries, "rounds": args.rounds, "ef": EF, "m": M,
           "load_before": load_before, "load_after": os.getloadavg(), "engines": {}}
    for name, _, _ in engines:
        runs = rounds[name]
        qps = [r[0] for r in runs]
        mid = int(np.argsort(qps)[len(qps) // 2])
        out["engines"][name] = {
            "qps": qps[mid], "p50_ms": runs[mid][1], "p99_ms": runs[mid][2],
            "recall_at_10": recall(runs[mid][3], truth),
            # per round against the one-state engine of that round, then the median
            "qps_vs_one_state": float(np.median([runs[i][0] / base[i] for i in range(args.rounds)])),
        }
        e = out["engines"][name]
        print(f"{name:22s} qps {e['qps']:7.0f}  p50 {e['p50_ms']:.3f} ms  p99 {e['p99_ms']:.3f} ms  "
              f"recall@10 {e['recall_at_10']:.4f}  qps/one-state {e['qps_vs_one_state']:.2f}")
    print(f"load average before {load_before}, after {out['load_after']}")
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
