"""The filtered-query curve of issue 13 on an embedded collection, robust to a busy machine.

    python benchmarks/filtered_curve.py [--data-dir DIR] [--rounds 3] [--seconds 1] [--queries 300]

GloVe 100k x 50 (M=16, ef_construction=100, ef=100, k=10), metadata ``{"bucket": i % 1000}``,
filters ``bucket < t`` at 50, 20, 10, 5, 2, 1, 0.5 and 0.1% selectivity. Where the suite
(``python -m benchmarks.suite``) times each selectivity once, minutes apart, this measures
in rounds: in each round the unfiltered QPS, then every selectivity, each as a ratio to that
round's unfiltered QPS; the median ratio over the rounds is reported. A shared machine's load
then moves the numerator and the denominator together.

vectord keeps a repeated filter's matches until the next write (storage/search.py
``MatchCache``), and every query here repeats its selectivity's filter. ``--distinct-filters``
asks each query with a filter of its own that matches the same records (``bucket < t - 1 +
x``, a different x in (0, 1) each time), so that nothing kept is reused: the cost of a filter
seen for the first time.

``--data-dir`` keeps the ingested collection (built on the first run, copied for each run so
that every run starts from the same checkpointed state); ``--cost-per-ef`` sets the planner's
constant (otherwise ``planner.calibrate`` measures it on 20,000 of the records, as the suite
does). Prints a Markdown table; recall is against exact search over the matching records.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.suite import datasets  # noqa: E402
from benchmarks.suite.measure import (SELECTIVITY_THRESHOLDS, answered_recall, single_queries,  # noqa: E402
                                      where_bucket_lt)
from benchmarks.suite.systems import HNSW  # noqa: E402

CURVE = ["50%", "20%", "10%", "5%", "2%", "1%", "0.5%", "0.1%"]


def build(path: Path, ds) -> None:
    import vectord

    with vectord.Client(path=str(path), timeout=600) as client:
        col = client.create_collection("bench", dim=ds.dim, metric="cosine", hnsw=HNSW)
        for s in range(0, len(ds.data), 1000):
            e = min(s + 1000, len(ds.data))
            col.add(ids=[str(i) for i in range(s, e)], embeddings=ds.data[s:e],
                    metadatas=[{"bucket": i % 1000} for i in range(s, e)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="keep the built collection here (default: a temp dir)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every measurement (median reported)")
    parser.add_argument("--seconds", type=float, default=1.0, help="cap of each timed measurement")
    parser.add_argument("--queries", type=int, default=300, help="held-out queries asked per measurement")
    parser.add_argument("--cost-per-ef", type=int, default=None, help="planner constant (default: calibrate)")
    parser.add_argument("--label", default="vectord embedded", help="row label in the table")
    parser.add_argument("--distinct-filters", action="store_true",
                        help="a filter of its own (the same matches) for every query: nothing reused")
    args = parser.parse_args()

    import vectord
    from vectord.storage import planner

    ds = datasets.load("glove-100k", 100_000, 1000, 10, CURVE, lambda s: print(s, flush=True))
    cost = args.cost_per_ef or planner.calibrate(ds.data[:20_000])["cost_per_ef"]
    with tempfile.TemporaryDirectory(prefix="vectord-curve-") as tmp:
        source = Path(args.data_dir) if args.data_dir else Path(tmp) / "source"
        if not source.exists():
            build(source, ds)
        work = Path(tmp) / "run"
        shutil.copytree(source, work)
        client = vectord.Client(path=str(work), timeout=600)
        client._transport._server.database.tuning.graph_cost_per_ef = cost  # as --planner-cost-per-ef
        col = client.get_collection("bench")

        asked = iter(range(1 << 62))

        def make():
            def search(q, k, t):
                where = None if t is None else where_bucket_lt(t)
                if t is not None and args.distinct_filters:  # bucket < t - 1 + x: the same integers
                    where = {"bucket": {"$lt": t - 1 + (next(asked) % 9973 + 1) / 10_000}}
                return [int(i) for i in col.query(query_embeddings=q, n_results=k, where=where,
                                                  include=[])["ids"][0]]
            return search

        queries = ds.queries[: args.queries]
        ratios: dict[str, list[float]] = {name: [] for name in CURVE}
        base_qps, recalls = [], {}
        for _ in range(args.rounds):
            base = single_queries(make, queries, 10, None, 1, args.seconds)
            base_qps.append(base["qps"])
            recalls["none"] = answered_recall(base, ds.truth)
            for name in CURVE:
                r = single_queries(make, queries, 10, SELECTIVITY_THRESHOLDS[name], 1, args.seconds, warmup=3)
                ratios[name].append(r["qps"] / base["qps"])
                recalls[name] = answered_recall(r, ds.filtered_truth[name])
        plans = {}
        for name in CURVE:
            plan = col.query(query_embeddings=ds.queries[:1], n_results=10,
                             where=where_bucket_lt(SELECTIVITY_THRESHOLDS[name]), include=[], explain=True)["plan"]
            plans[name] = f"{plan['strategy']}" + (f" ef {plan['ef']}" if plan["ef"] else "")
        client.close()
    print(f"\ncost_per_ef {cost}; unfiltered {np.median(base_qps):,.0f} QPS (median of {args.rounds} rounds), "
          f"recall@10 {recalls['none']:.4f}; filters {'distinct per query' if args.distinct_filters else 'repeated'}; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| system | " + " | ".join(f"{n}: QPS ratio / recall / plan" for n in CURVE) + " |")
    print("|---|" + "---:|" * len(CURVE))
    print(f"| {args.label} | " + " | ".join(
        f"{np.median(ratios[n]):.2f} / {recalls[n]:.4f} / {plans[n]}" for n in CURVE) + " |")


if __name__ == "__main__":
    main()
