"""The filtered-query curve and the planner's cost constant, measured (issue 13, item 3).

    python benchmarks/planner_curve.py [--n 100000] [--queries 300] \
        [--out benchmarks/results/planner-curve-DATE]

On GloVe 100k x 50 (M=16, ef_construction=100, ef=100, k=10; metadata ``bucket = i % 1000``,
filter ``bucket < t``), embedded (the SDK and the engine in this process: no network), one thread:

1. unfiltered QPS and recall: the baseline every filtered figure is divided by;
2. at each selectivity of the curve (50, 20, 10, 5, 2, 1, 0.5, 0.1%), the QPS and recall of
   both strategies, forced (``graph_cost_per_ef`` 0: graph whenever allowed; a huge value:
   exact), and of the planner with the default constant and with the calibrated one;
3. the calibration: the measured cost of an exact comparison and of a unit of graph ef
   (``storage.planner.calibrate``), and the constant that follows.

Ratios between rows of the same run are what count; absolute figures move with the load of
the (shared) machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.suite import datasets  # noqa: E402
from benchmarks.suite.measure import SELECTIVITY_THRESHOLDS, recall, where_bucket_lt  # noqa: E402

CURVE = ["50%", "20%", "10%", "5%", "2%", "1%", "0.5%", "0.1%"]
HNSW = {"m": 16, "ef_construction": 100, "ef_search": 100}
FORCED = {"graph": 0, "exact": 10**9}


def timed_queries(col, queries, where, max_seconds: float) -> tuple[float, list[list[int]]]:
    """QPS over the queries answered within ``max_seconds`` (after 3 warm-up), their labels."""
    for q in queries[:3]:
        col.query(query_embeddings=q[None, :], n_results=10, where=where, include=[])
    found, started = [], time.perf_counter()
    for q in queries:
        found.append([int(i) for i in col.query(query_embeddings=q[None, :], n_results=10, where=where,
                                                include=[])["ids"][0]])
        if time.perf_counter() - started > max_seconds:
            break
    return len(found) / (time.perf_counter() - started), found


def plan_of(col, q, where) -> str:
    plan = col.query(query_embeddings=q[None, :], n_results=10, where=where, include=[], explain=True)["plan"]
    return f"{plan['strategy']} ef {plan['ef']} ({plan['filter_path']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="records (GloVe words)")
    parser.add_argument("--queries", type=int, default=300, help="held-out queries per figure")
    parser.add_argument("--max-seconds", type=float, default=3.0, help="cap of each timed figure")
    parser.add_argument("--dataset", default="glove-100k", help="suite data set name")
    parser.add_argument("--out", default=f"benchmarks/results/planner-curve-{time.strftime('%Y-%m-%d')}",
                        help="results path without extension (.json written)")
    args = parser.parse_args()
    import vectord
    from vectord.storage import planner

    ds = datasets.load(args.dataset, args.n, args.queries, 10, CURVE, print)
    calibration = planner.calibrate(ds.data[:20_000])  # on the data itself, as the suite does
    print(f"calibration: {calibration}")
    out = {"machine": f"{os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}, "
                      f"load average at start {os.getloadavg()[0]:.1f}",
           "data": ds.source, "n": len(ds.data), "dim": ds.dim, "calibration": calibration,
           "default_cost_per_ef": planner.GRAPH_COST_PER_EF, "curve": {}}
    with tempfile.TemporaryDirectory(prefix="vectord-curve-") as tmp:
        client = vectord.Client(path=str(Path(tmp) / "d"), timeout=600)  # embedded: the SDK and the engine
        col = client.create_collection("bench", dim=ds.dim, metric="cosine", hnsw=HNSW)
        engine = client._transport._server.database.get_collection("bench")  # its tuning, to force strategies
        started = time.perf_counter()
        for start in range(0, len(ds.data), 1000):
            part = ds.data[start:start + 1000]
            col.add(ids=[str(i) for i in range(start, start + len(part))], embeddings=part,
                    metadatas=[{"bucket": i % 1000} for i in range(start, start + len(part))])
        print(f"ingest {len(ds.data) / (time.perf_counter() - started):,.0f} rec/s")
        qps, found = timed_queries(col, ds.queries, None, args.max_seconds)
        out["unfiltered"] = {"qps": qps, "recall": recall(found, ds.truth)}
        print(f"unfiltered: {qps:,.0f} QPS, recall {out['unfiltered']['recall']:.4f}")
        settings = {"default": planner.GRAPH_COST_PER_EF, "calibrated": calibration["cost_per_ef"], **FORCED}
        for name in CURVE:
            where, truth = where_bucket_lt(SELECTIVITY_THRESHOLDS[name]), ds.filtered_truth[name]
            row = {}
            for label, cost in settings.items():
                engine.tuning.graph_cost_per_ef = cost
                qps, found = timed_queries(col, ds.queries, where, args.max_seconds)
                row[label] = {"qps": qps, "recall": recall(found, truth), "plan": plan_of(col, ds.queries[0], where),
                              "x_unfiltered": qps / out["unfiltered"]["qps"]}
            engine.tuning.graph_cost_per_ef = planner.GRAPH_COST_PER_EF
            out["curve"][name] = row
            print(f"{name}: " + "; ".join(f"{k} {v['qps']:,.0f} QPS r {v['recall']:.3f} [{v['plan']}]"
                                          for k, v in row.items()), flush=True)
        client.close()
    Path(args.out + ".json").write_text(json.dumps(out, indent=1))
    print(f"written: {args.out}.json")


if __name__ == "__main__":
    main()
