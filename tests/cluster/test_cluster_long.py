"""The long cluster tests (``-m slow`` or VECTORD_SLOW=1; CI runs tests/cluster/test_cluster.py):
a 100k ingest through the gateway with a small object store, the same through `vectord
cluster import` (Ray Data), and 10 replica kills under concurrent writes. One 3-node cluster for the module, started only when selected."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no telemetry (docs/cluster.md)
ray = pytest.importorskip("ray")

import vectord  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
DIM = 32


@pytest.fixture(scope="module")
def cluster(request, tmp_path_factory):
    if "slow" not in (request.config.option.markexpr or "") and not os.environ.get("VECTORD_SLOW"):
        pytest.skip("slow: run with `python -m pytest -m slow tests/cluster` (or VECTORD_SLOW=1)")
    sys.path.insert(0, str(Path(__file__).parent))  # the short module's helpers
    from test_cluster import three_node_cluster

    with three_node_cluster(tmp_path_factory.mktemp("cluster-long")) as cluster:
        yield cluster


def test_a_100k_ingest_completes_with_a_small_object_store(cluster):
    data = np.random.default_rng(1).standard_normal((100_000, DIM)).astype(np.float32)
    with vectord.Client(cluster.gateway, timeout=120) as client:
        col = client.create_collection("ingest", dim=DIM, metric="l2")
        for lo in range(0, len(data), 2000):  # 80 MiB object stores: batches stream through
            col.add(ids=[f"i{i}" for i in range(lo, lo + 2000)], embeddings=data[lo:lo + 2000])
        assert col.count() == 100_000
        picks = np.random.default_rng(2).choice(len(data), 20, replace=False)
        hits = col.query(query_embeddings=data[picks], n_results=1, include=["distances"])
        assert sum(ids[0] == f"i{p}" for ids, p in zip(hits["ids"], picks)) >= 19  # HNSW on each shard
        client.delete_collection("ingest")


def test_a_100k_cluster_import_of_npy_streams_through_ray_data(cluster, tmp_path):
    import subprocess

    data = np.random.default_rng(3).standard_normal((100_000, DIM)).astype(np.float32)
    np.save(tmp_path / "big.npy", data)  # 12 MiB: blocks stream through 80 MiB object stores
    with vectord.Client(cluster.gateway, timeout=120) as client:
        col = client.create_collection("imported-100k", dim=DIM, metric="l2")
        done = subprocess.run([sys.executable, "-m", "vectord", "cluster", "import", str(tmp_path / "big.npy"),
                               "-c", "imported-100k", "--gateway", cluster.gateway, "--address", cluster.address,
                               "--batch-size", "2000", "--id-prefix", "n"], capture_output=True, text=True,
                              timeout=1200)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "imported 100,000 records" in done.stderr
        assert col.count() == 100_000
        picks = np.random.default_rng(4).choice(len(data), 20, replace=False)
        got = col.get(ids=[f"n{p}" for p in picks], include=["embeddings"])
        np.testing.assert_array_equal(np.asarray(got["embeddings"], np.float32), data[picks])
        client.delete_collection("imported-100k")


def test_ten_replica_kills_under_concurrent_writes_lose_no_acknowledged_write(cluster):
    from vectord.cluster.cli import replica_health
    from vectord.cluster.controller import NAMESPACE
    from vectord.cluster.replica import replica_name

    with vectord.Client(cluster.gateway, timeout=120) as client:
        col = client.create_collection("kills10", dim=DIM)
        collection_id = client._call("Collections", "GetCollection",
                                     vectord.v1.collections_pb2.GetCollectionRequest(name="kills10")).id
        acked, stop = [], threading.Event()

        def writer(worker):
            rng, i = np.random.default_rng(worker), 0
            while not stop.is_set():
                batch = [f"w{worker}-{i}-{j}" for j in range(10)]
                try:
                    col.upsert(ids=batch, embeddings=rng.standard_normal((10, DIM)).astype(np.float32))
                    acked.extend(batch)
                except vectord.errors.VectordError:
                    pass
                i += 1

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
        for thread in threads:
            thread.start()
        try:
            for kill in range(10):
                time.sleep(1.0)
                actor = ray.get_actor(replica_name(collection_id, kill % 3, (kill // 3) % 2), namespace=NAMESPACE)
                ray.kill(actor, no_restart=False)
        finally:
            stop.set()
            for thread in threads:
                thread.join(60)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            rows = [r for r in replica_health() if r["collection"] == "kills10"]
            if all(r["state"] == "in_sync" for r in rows):
                break
            time.sleep(1)
        assert all(r["state"] == "in_sync" for r in rows), rows
        assert len(acked) > 0
        assert sorted(col.get(ids=acked, include=[])["ids"]) == sorted(acked)
        client.delete_collection("kills10")
