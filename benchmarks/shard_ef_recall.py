"""Merged recall@10 of S shards each searched at shard_ef(ef, S, scale), against one node at the
full ef (issue 16: the default search depth per shard, cluster/replica.py ``ef_scale``).

    python benchmarks/shard_ef_recall.py N SHARDS SCALE[,SCALE...]
    e.g. python benchmarks/shard_ef_recall.py 20000 3 1.2,1.3,1.5

N random 64-d vectors (seeded), cosine, M=16, ef_construction=100, ef 100; 1,000 random
queries; exact truth by brute force. Shards are ShardReplica objects in this process (no
Ray), each holding every S-th record, searched one after the other; the times printed are
those sequential searches, not a cluster's. Prints one node's recall, then each scale's.
"""
import sys, tempfile, time
import numpy as np
from pathlib import Path
from vectord.cluster.replica import ShardReplica, shard_ef
from vectord.storage import Database, Tuning
n, S = int(sys.argv[1]), int(sys.argv[2]); scales = [float(x) for x in sys.argv[3].split(',')]
rng, dim, ef = np.random.default_rng(0), 64, 100
data = rng.standard_normal((n, dim)).astype(np.float32)
queries = rng.standard_normal((1000, dim)).astype(np.float32)
ids = [f"i{k}" for k in range(n)]
dn = data / np.linalg.norm(data, axis=1, keepdims=True); qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
truth = np.argsort(-qn @ dn.T, axis=1)[:, :10]
exact = [{f"i{k}" for k in row} for row in truth.tolist()]
def recall(found): return float(np.mean([len(set(f) & t) / 10 for f, t in zip(found, exact)]))
tmp = Path(tempfile.mkdtemp())
tuning = Tuning(index_threads=2, exact_threshold=0)
one = Database(tmp / "one", tuning=tuning)
col = one.create_collection("c", dim=dim, metric="cosine", hnsw={"ef_search": ef})
col.add(ids, data); col._indexer.drain(timeout=120)
t = time.perf_counter(); res = col.query(queries, n_results=10); ts = time.perf_counter() - t
print("single", recall([r.ids for r in res]), f"{ts*1e3:.0f} ms")
for scale in scales:
    e = shard_ef(ef, S, scale)
    shards = []
    for s in range(S):
        r = ShardReplica(str(tmp / f"s{scale}-{s}"), {"dim": dim, "metric": "cosine", "hnsw": {"m": 16, "ef_construction": 100, "ef_search": e}, "fulltext": None}, planner_cost_per_ef=1)
        r.db.tuning.exact_threshold = 0
        rows = list(range(s, n, S))
        r.apply(1, "put", {"ids": [ids[k] for k in rows], "embeddings": data[rows]})
        r.collection._indexer.drain(timeout=120)
        shards.append(r)
    t = time.perf_counter(); per = [r.query(queries, n_results=10) for r in shards]; tt = time.perf_counter() - t
    merged = []
    for q in range(len(queries)):
        hits = sorted((d, i) for part in per for i, d in zip(part[q][0], part[q][1].tolist()))
        merged.append([i for _, i in hits[:10]])
    print("scale", scale, "ef", e, recall(merged), f"{tt*1e3:.0f} ms (3 shards sequential)")
    for r in shards: r.close()
