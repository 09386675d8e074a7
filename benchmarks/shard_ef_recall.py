"""Merged recall@10 of S shards each searched at shard_ef(ef, S, scale), against one node at the
full ef (issue 16: the default search depth per shard, cluster/replica.py ``ef_scale``).

    python benchmarks/shard_ef_recall.py N SHARDS SCALE[,SCALE...]
    e.g. python benchmarks/shard_ef_recall.py 20000 3 1.2,1.3,1.5

N random 64-d vectors (seeded), cosine, M=16, ef_construction=100, ef 100; 1,000 random
queries; exact truth by brute force (core.exact_top10). Shards are ShardReplica objects in
this process (no Ray), each holding every S-th record, searched one after the other; the
times printed are those sequential searches, not a cluster's. Prints one node's recall,
then each scale's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

DIM, EF, K = 64, 100, 10


def merged_top(per_shard: list, count: int) -> list[list[int]]:
    """Each query's K nearest over the shards' (ids, distances) answers."""
    merged = []
    for q in range(count):
        hits = sorted((d, i) for ids, dists in (part[q] for part in per_shard) for i, d in zip(ids, dists.tolist()))
        merged.append([int(i) for _, i in hits[:K]])
    return merged


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("n", type=int, help="random vectors")
    p.add_argument("shards", type=int, help="shards")
    p.add_argument("scales", help="comma list of scales (cluster.replica.shard_ef's scale)")
    args = p.parse_args()
    from core import exact_top10, recall

    from vectord.cluster.replica import ShardReplica, shard_ef
    from vectord.storage import Database, Tuning

    rng = np.random.default_rng(0)
    data = rng.standard_normal((args.n, DIM)).astype(np.float32)
    queries = rng.standard_normal((1000, DIM)).astype(np.float32)
    truth = exact_top10(data, queries)
    ids = [str(k) for k in range(args.n)]
    with tempfile.TemporaryDirectory(prefix="shard-ef-") as tmp:
        with Database(Path(tmp) / "one", tuning=Tuning(index_threads=2, exact_threshold=0)) as one:
            col = one.create_collection("c", dim=DIM, metric="cosine", hnsw={"ef_search": EF})
            col.add(ids, data)
            col._indexer.drain(timeout=600)
            started = time.perf_counter()
            found = [[int(i) for i in r.ids] for r in col.query(queries, n_results=K)]
            print(f"one node: recall@10 {recall(found, truth):.4f}, {(time.perf_counter() - started) * 1e3:.0f} ms")
        for scale in (float(s) for s in args.scales.split(",")):
            ef = shard_ef(EF, args.shards, scale)
            config = {"dim": DIM, "metric": "cosine", "hnsw": {"m": 16, "ef_construction": 100, "ef_search": ef},
                      "fulltext": None}
            shards = []
            for s in range(args.shards):
                replica = ShardReplica(str(Path(tmp) / f"{scale}-{s}"), config, planner_cost_per_ef=1)
                replica.db.tuning.exact_threshold = 0  # the graph however small the shard
                rows = list(range(s, args.n, args.shards))
                replica.apply(1, "put", {"ids": [ids[k] for k in rows], "embeddings": data[rows]})
                replica.collection._indexer.drain(timeout=600)
                shards.append(replica)
            started = time.perf_counter()
            per_shard = [replica.query(queries, n_results=K) for replica in shards]
            took = time.perf_counter() - started
            print(f"scale {scale}: shard ef {ef}, recall@10 {recall(merged_top(per_shard, len(queries)), truth):.4f}, "
                  f"{took * 1e3:.0f} ms ({args.shards} shards one after the other)")
            for replica in shards:
                replica.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
