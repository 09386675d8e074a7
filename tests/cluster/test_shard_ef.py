"""Each shard searches at a smaller ef (cluster.replica.shard_ef), chosen so that the merged
top k keeps one node's recall; a replica keeps the ef its shard was made with. Without Ray:
ShardReplica objects in this process."""

from __future__ import annotations

import numpy as np

from vectord.cluster.replica import ShardReplica, ef_scale, shard_ef
from vectord.storage import Database, Tuning

DIM = 16


def replica_at(path, ef: int, dim: int = DIM) -> ShardReplica:
    """A replica that searches its graph however few its records (the planner's cost of a
    unit of ef at 1, no size below which it searches exactly)."""
    replica = ShardReplica(str(path), config(ef, dim), planner_cost_per_ef=1)
    replica.db.tuning.exact_threshold = 0
    return replica


def config(ef: int, dim: int = DIM) -> dict:
    return {"dim": dim, "metric": "l2", "hnsw": {"m": 16, "ef_construction": 100, "ef_search": ef}, "fulltext": None}


def test_shard_ef_scales_with_the_shards_and_stays_within_the_collections():
    assert shard_ef(100, 3) == 44 and shard_ef(100, 6) == 27 and shard_ef(100, 2) == 60  # 1.3, 1.6, 1.2
    assert shard_ef(100, 3, scale=1.5) == 50  # --shard-ef-scale 1.5
    assert shard_ef(100, 1) == 100  # one shard searches as one node
    assert shard_ef(100, 3, scale=0) == 100  # --shard-ef-scale 0: the full ef on every shard
    assert shard_ef(1, 3) == 1 and shard_ef(100, 1000, scale=1.5) == 1
    assert all(shard_ef(ef, s) <= ef for ef in (1, 10, 100, 4096) for s in range(1, 20))
    assert all(ef_scale(s) > 1 for s in range(2, 20))  # below 1 the merged recall falls under one node's


def test_a_replica_searches_at_its_shards_ef_and_keeps_it_when_reopened(tmp_path):
    data = np.random.default_rng(1).standard_normal((600, DIM)).astype(np.float32)
    replica = replica_at(tmp_path / "r", shard_ef(100, 3))
    replica.apply(1, "put", {"ids": [f"i{n}" for n in range(600)], "embeddings": data})
    _, plan = replica.collection.query_with_plan(data[:1], n_results=10)
    assert (plan.strategy, plan.ef) == ("hnsw", 44)
    replica.close()
    # a gateway with another scale (or an older one, with the full ef) adopts it unchanged
    again = replica_at(tmp_path / "r", 100)
    assert again.collection.config.hnsw["ef_search"] == 44 and again.count() == 600
    again.close()


def test_three_shards_at_shard_ef_recall_at_least_what_one_node_does_at_the_full_ef(tmp_path):
    rng, dim, ef = np.random.default_rng(0), 64, 40  # hard enough that one node's graph misses some
    data = rng.standard_normal((6000, dim)).astype(np.float32)
    queries = rng.standard_normal((200, dim)).astype(np.float32)
    ids = [f"i{n}" for n in range(len(data))]
    truth = np.argsort(((queries[:, None, :] - data[None]) ** 2).sum(-1), axis=1)[:, :10]
    exact = [{f"i{n}" for n in row} for row in truth.tolist()]
    tuning = Tuning(index_threads=1, graph_cost_per_ef=1, exact_threshold=0)  # the graph, never exact search

    def recall(found: list[list[str]]) -> float:
        return float(np.mean([len(set(f) & t) / 10 for f, t in zip(found, exact)]))

    one = Database(tmp_path / "one", tuning=tuning)
    col = one.create_collection("c", dim=dim, metric="l2", hnsw={"ef_search": ef})
    col.add(ids, data)
    assert col._indexer.drain(timeout=60)  # every record in the graph: no exact tail (storage/indexer.py)
    single = recall([r.ids for r in col.query(queries, n_results=10)])
    one.close()
    shards = [replica_at(tmp_path / f"s{s}", shard_ef(ef, 3), dim) for s in range(3)]
    for s, replica in enumerate(shards):
        rows = list(range(s, len(data), 3))
        replica.apply(1, "put", {"ids": [ids[n] for n in rows], "embeddings": data[rows]})
        assert replica.collection._indexer.drain(timeout=60)
    per_shard = [replica.query(queries, n_results=10) for replica in shards]
    merged = []
    for q in range(len(queries)):
        hits = sorted((d, i) for part in per_shard for i, d in zip(part[q][0], part[q][1].tolist()))
        merged.append([i for _, i in hits[:10]])
    for replica in shards:
        replica.close()
    assert single < 0.98  # one node's graph misses some: the comparison says something
    assert recall(merged) >= single - 0.01, (recall(merged), single)
