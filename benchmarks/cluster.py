"""The cluster gateway against one server, on one machine (loopback).

    python benchmarks/cluster.py [--records 20000] [--dim 64] [--queries 300]
        [--planner-cost-per-ef N] [--skip-failures]

A Ray cluster of three simulated nodes (``ray.cluster_utils.Cluster``: head plus two), a
gateway (`vectord cluster up`, 3 shards x 2 replicas, write level quorum) and one
`vectord serve`, both loaded with the same random vectors (seeded). Reads are measured
twice in the same run, on the same data:

- **before**: every shard searches at the collection's full ef_search (a gateway started
  with ``--shard-ef-scale 0``, the earlier behaviour);
- **after**: a second collection of the same data, made by a gateway at the default
  ``--shard-ef-scale`` (each shard at ``shard_ef``, cluster/replica.py), against the same
  single server. Both servers plan with ``--planner-cost-per-ef`` measured on this machine
  for this dimension (``storage.planner.calibrate``; or the value given).

Each time: single-query latency (p50, p95) through the SDK, default include (documents,
metadatas, distances), n_results 10, recall@10 of both against the exact nearest, the two servers' queries alternating so that a change
of the machine's load hits both; and batched query throughput (batches of 100, alternating,
three passes; the ratio both of the sums and as the median over pairs of batches).
Then, unless ``--skip-failures``:

- actor kills: 10 kills of shard replicas, one at a time (Ray restarts each; the next kill
  comes when all replicas are in sync again), while a writer upserts batches: acknowledged
  writes missing afterwards, and how long each replica took to be back in sync;
- node loss (last: it leaves the cluster short of a node): a worker node removed while
  reads run; failed reads, and the time after the removal of the last failure.

All processes share this machine's cores, so the cluster pays for its fan-out without
getting more hardware: see the notes in the results for what N machines would give. The
load average before and after is recorded (the machine may be shared).
Writes ``benchmarks/results/cluster-<date>.md`` and ``.json`` (``-2``, ``-3``, ... when a
result of that date exists: earlier runs are kept beside it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
NODE = {"num_cpus": 1, "object_store_memory": 100 * 1024 * 1024}


def seeded(records: int, dim: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    """The benchmarks' random data (``records`` x ``dim``) and ``queries`` queries, seed 0:
    the same in cluster.py, cluster_profile.py and cluster_cpu.py."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal((records, dim)).astype(np.float32),
            rng.standard_normal((queries, dim)).astype(np.float32))


def simulated_cluster():
    """A ``ray.cluster_utils`` cluster of three simulated nodes (head plus two, NODE each),
    this process connected to it. Returns (the cluster, its two added nodes)."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args=NODE)
    workers = [cluster.add_node(**NODE) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace="vectord", logging_level="ERROR", log_to_driver=False)
    return cluster, workers


def replica_actors(client, name: str, shards: int = 3, replicas: int = 2) -> list:
    """The Ray actors of collection ``name``'s replicas on the gateway ``client`` talks to,
    shard by shard (for timers installed over ``__ray_call__``)."""
    import ray

    import vectord
    from vectord.cluster.controller import NAMESPACE
    from vectord.cluster.replica import replica_name

    info = client._call("Collections", "GetCollection", vectord.v1.collections_pb2.GetCollectionRequest(name=name))
    return [ray.get_actor(replica_name(info.id, s, r), namespace=NAMESPACE)
            for s in range(shards) for r in range(replicas)]


def start(cmd: list[str], marker: str, log: Path, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(log, "wb"), text=True,
                            env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(marker):
            return proc, line.rsplit(" ", 1)[1].strip()
        if not line and proc.poll() is not None:
            break
    raise RuntimeError(f"{cmd[3]} did not start: {log.read_text()[-2000:]}")


def load(collection, data: np.ndarray) -> float:
    started = time.perf_counter()
    for lo in range(0, len(data), 1000):
        ids = [f"id-{i}" for i in range(lo, min(lo + 1000, len(data)))]
        collection.add(ids=ids, embeddings=data[lo:lo + 1000], documents=[f"doc {i}" for i in ids],
                       metadatas=[{"n": int(i.split("-")[1])} for i in ids])
    return time.perf_counter() - started


def latency(collections: dict, queries: np.ndarray) -> dict[str, dict[str, float]]:
    """Single-query latency of each collection, their queries alternating."""
    times: dict[str, list[float]] = {name: [] for name in collections}
    for col in collections.values():
        for q in queries[:20]:  # warm
            col.query(query_embeddings=q[None, :], n_results=10)
    for q in queries:
        for name, col in collections.items():
            started = time.perf_counter()
            col.query(query_embeddings=q[None, :], n_results=10)
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: {"p50_ms": round(float(np.percentile(t, 50)), 3), "p95_ms": round(float(np.percentile(t, 95)), 3)}
            for name, t in times.items()}


def throughput(collections: dict, queries: np.ndarray, batch: int = 100, passes: int = 3) -> dict:
    """Batched queries per second of each collection, their batches alternating, ``passes``
    times over the queries; and the median over the pairs of alternating batches of the
    first collection's speed over the second's (a swing of the machine's load between two
    pairs moves the sums, much less the ratio within a pair)."""
    spent: dict[str, list[float]] = {name: [] for name in collections}
    for _ in range(passes):
        for lo in range(0, len(queries), batch):
            for name, col in collections.items():
                started = time.perf_counter()
                col.query(query_embeddings=queries[lo:lo + batch], n_results=10, include=["distances"])
                spent[name].append(time.perf_counter() - started)
    first, second = spent.values()
    return {"qps": {name: round(passes * len(queries) / sum(t), 1) for name, t in spent.items()},
            "paired_ratio": round(float(np.median(np.asarray(second) / np.asarray(first))), 3)}


def truth(data: np.ndarray, queries: np.ndarray, k: int = 10) -> list[set[int]]:
    """The exact k nearest by cosine (the collections' metric) of each query: row numbers."""
    d = data / np.linalg.norm(data, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    return [set(row.tolist()) for row in np.argsort(-(q @ d.T), axis=1)[:, :k]]


def recall(collections: dict, queries: np.ndarray, exact: list[set[int]], k: int = 10) -> dict[str, float]:
    """recall@k against the exact nearest, of each collection."""
    out = {}
    for name, col in collections.items():
        found = []
        for lo in range(0, len(queries), 100):
            found += col.query(query_embeddings=queries[lo:lo + 100], n_results=k, include=[])["ids"]
        out[name] = round(float(np.mean([len({int(i.split("-")[1]) for i in ids} & t) / k
                                         for ids, t in zip(found, exact)])), 4)
    return out


def reads(on_cluster, on_single, queries: np.ndarray, n_latency: int, exact: list[set[int]]) -> dict:
    both = {"cluster": on_cluster, "single": on_single}
    lat, batched = latency(both, queries[:n_latency]), throughput(both, queries)
    # 1,000 a call as well: a batch's fixed costs (the hops, three processes woken instead of
    # one) weigh less on a larger batch
    large = throughput(both, queries, batch=1000, passes=10)
    qps = batched["qps"]
    return {"latency": lat, "batched_qps": qps, "batched_ratio": round(qps["cluster"] / qps["single"], 3),
            "batched_ratio_paired_median": batched["paired_ratio"],
            "batched_1000_qps": large["qps"],
            "batched_1000_ratio": round(large["qps"]["cluster"] / large["qps"]["single"], 3),
            "batched_1000_ratio_paired_median": large["paired_ratio"],
            "p50_gap_ms": round(lat["cluster"]["p50_ms"] - lat["single"]["p50_ms"], 3),
            "recall_at_10": recall(both, queries[:len(exact)], exact)}


def node_loss(cluster, worker, collection, queries: np.ndarray, seconds: float = 15.0) -> dict:
    cluster.remove_node(worker)
    removed, failures, answered = time.monotonic(), [], 0
    while time.monotonic() - removed < seconds:
        try:
            collection.query(query_embeddings=queries[:1], n_results=10)
            answered += 1
        except Exception:
            failures.append(time.monotonic() - removed)
    return {"reads_answered": answered, "reads_failed": len(failures),
            "last_failure_after_s": round(max(failures), 2) if failures else 0.0}


def kills(client, name: str, dim: int, n_kills: int = 10) -> dict:
    import ray

    import vectord
    from vectord.cluster.controller import NAMESPACE
    from vectord.cluster.replica import replica_name

    col = client.create_collection(name, dim=dim)
    info = client._call("Collections", "GetCollection", vectord.v1.collections_pb2.GetCollectionRequest(name=name))
    acked, failed, stop = [], [0], threading.Event()
    rng = np.random.default_rng(5)

    def writer():
        i = 0
        while not stop.is_set():
            batch = [f"w{i}-{j}" for j in range(10)]
            try:
                col.upsert(ids=batch, embeddings=rng.standard_normal((10, dim)).astype(np.float32))
                acked.extend(batch)
            except vectord.errors.VectordError:
                failed[0] += 1
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    recoveries = []
    try:
        for k in range(n_kills):
            time.sleep(0.5)
            shard, replica = k % 3, (k // 3) % 2
            ray.kill(ray.get_actor(replica_name(info.id, shard, replica), namespace=NAMESPACE), no_restart=False)
            recoveries.append(wait_in_sync(name))  # Ray restarts it; the gateway catches it up
    finally:
        stop.set()
        thread.join(60)
    found = set(col.get(ids=acked, include=[])["ids"]) if acked else set()
    return {"kills": n_kills, "writes_acknowledged": len(acked) // 10, "writes_refused": failed[0],
            "acknowledged_records_lost": len(set(acked) - found),
            "back_in_sync_s": {"median": round(float(np.median(recoveries)), 2), "max": round(max(recoveries), 2)}}


def wait_in_sync(name: str, limit_s: float = 120.0) -> float:
    """Seconds until every replica of ``name`` is in sync again (as `vectord cluster status`)."""
    from vectord.cluster.cli import replica_health

    started = time.monotonic()
    time.sleep(0.2)
    while time.monotonic() - started < limit_s:
        rows = [r for r in replica_health() if r["collection"] == name]
        if rows and all(r["state"] == "in_sync" for r in rows):
            return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"replicas of {name!r} not in sync after {limit_s} s")


def niceness(name: str) -> list[int]:
    """The nice values of the processes whose command line holds ``name`` (Ray names an
    actor's process ``ray::<class>``)."""
    out = subprocess.run(["ps", "-eo", "ni,args"], capture_output=True, text=True).stdout.splitlines()[1:]
    return sorted(int(line.split(None, 1)[0]) for line in out if name in line and line.split(None, 1)[0].lstrip("-").isdigit())


def stop(gateway, server, cluster) -> None:
    """Stops the gateway and server processes, then Ray and the simulated cluster."""
    import ray

    gateway.terminate()
    server.terminate()
    gateway.wait(30)
    server.wait(30)
    ray.shutdown()
    cluster.shutdown()


def add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    """--records, --dim, --queries: the data and queries of this benchmark and of cluster_profile.py."""
    parser.add_argument("--records", type=int, default=20000, help="vectors loaded (default 20000)")
    parser.add_argument("--dim", type=int, default=64, help="their dimension (default 64)")
    parser.add_argument("--queries", type=int, default=300, help="single queries timed (default 300)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_workload_arguments(parser)
    parser.add_argument("--planner-cost-per-ef", type=int, default=0,
                        help="both servers' planner setting after the change (default: measured here)")
    parser.add_argument("--skip-failures", action="store_true", help="reads only: no actor kills, no node loss")
    parser.add_argument("--out", help="write the results to OUT.md and OUT.json (default: results/cluster-<date>)")
    args = parser.parse_args()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no telemetry (docs/cluster.md)
    import vectord
    from vectord.storage.planner import calibrate

    load_before = [round(x, 2) for x in os.getloadavg()]
    cost = args.planner_cost_per_ef or calibrate(dim=args.dim)["cost_per_ef"]
    data, queries = seeded(args.records, args.dim, max(args.queries, 1000))
    tmp = Path(tempfile.mkdtemp(prefix="vectord-cluster-bench-"))
    cluster, workers = simulated_cluster()

    def gateway_up(extra: list[str], env: dict) -> tuple[subprocess.Popen, str]:
        return start([sys.executable, "-m", "vectord", "cluster", "up", "--address", cluster.address, "--port", "0",
                      "--data-dir", str(tmp / "cluster"), "--shards", "3", "--replicas", "2", *extra],
                     "vectord cluster gateway listening", tmp / f"gateway-{time.monotonic_ns()}.log", env)

    def server_up(extra: list[str]) -> tuple[subprocess.Popen, str]:
        return start([sys.executable, "-m", "vectord", "serve", "--port", "0", "--data-dir", str(tmp / "single"),
                      *extra], "vectord listening", tmp / f"server-{time.monotonic_ns()}.log")

    # before: every shard searches at the collection's full ef (--shard-ef-scale 0, the earlier
    # behaviour); after: a collection made by a gateway at the default scale (shard_ef)
    gateway, gateway_address = gateway_up(["--planner-cost-per-ef", str(cost), "--shard-ef-scale", "0"], {})
    server, server_address = server_up(["--planner-cost-per-ef", str(cost)])
    exact = truth(data, queries[:1000])
    results: dict = {"date": dt.date.today().isoformat(), "records": args.records, "dim": args.dim,
                     "load_average_before": load_before, "planner_cost_per_ef": cost,
                     "machine": f"{platform.machine()}, {os.cpu_count()} cores", "layout": "3 shards x 2 replicas"}
    clients = []
    try:
        cluster_client = vectord.Client(gateway_address, timeout=120)
        single_client = vectord.Client(server_address, timeout=120)
        clients += [cluster_client, single_client]
        on_cluster = cluster_client.create_collection("bench", dim=args.dim)
        on_single = single_client.create_collection("bench", dim=args.dim)
        results["load_s"] = {"cluster": round(load(on_cluster, data), 2), "single": round(load(on_single, data), 2)}
        results["before"] = reads(on_cluster, on_single, queries, args.queries, exact)
        results["load_average_between"] = [round(x, 2) for x in os.getloadavg()]
        cluster_client.close()
        gateway.terminate()
        gateway.wait(60)
        gateway, gateway_address = gateway_up(["--planner-cost-per-ef", str(cost)], {})
        cluster_client = vectord.Client(gateway_address, timeout=120)
        clients = [cluster_client, single_client]
        on_cluster = cluster_client.create_collection("bench-scaled", dim=args.dim)
        load(on_cluster, data)
        results["after"] = reads(on_cluster, on_single, queries, args.queries, exact)
        results["replica_niceness"] = niceness("ShardReplica")
        plan = on_cluster.query(query_embeddings=queries[:1], n_results=10, explain=True).get("plan")
        results["shard_ef_after"] = (plan[0] if isinstance(plan, list) else plan).get("ef")
        if not args.skip_failures:
            results["actor_kills"] = kills(cluster_client, "kills", args.dim)
            results["node_loss"] = node_loss(cluster, workers[0], on_cluster, queries)
        results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        for client in clients:
            client.close()
        stop(gateway, server, cluster)
    RESULTS.mkdir(exist_ok=True)
    stem, n = RESULTS / f"cluster-{results['date']}", 1
    while stem.with_suffix(".md").exists():  # an earlier run of the day stays beside this one
        n += 1
        stem = RESULTS / f"cluster-{results['date']}-{n}"
    if args.out:
        stem = Path(args.out)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    command = (f"python benchmarks/cluster.py --records {args.records} --dim {args.dim} --queries {args.queries}"
               + (f" --planner-cost-per-ef {args.planner_cost_per_ef}" if args.planner_cost_per_ef else "")
               + (" --skip-failures" if args.skip_failures else ""))
    rows = []
    for phase in ("before", "after"):
        r = results[phase]
        lat, qps = r["latency"], r["batched_qps"]
        rows.append(f"| {phase} | {lat['cluster']['p50_ms']:.2f} | {lat['single']['p50_ms']:.2f} | "
                    f"{r['p50_gap_ms']:+.2f} | {lat['cluster']['p95_ms']:.2f} | {lat['single']['p95_ms']:.2f} | "
                    f"{qps['cluster']:.0f} | {qps['single']:.0f} | {r['batched_ratio']:.2f} | "
                    f"{r['batched_ratio_paired_median']:.2f} | "
                    f"{r['recall_at_10']['cluster']:.3f} | {r['recall_at_10']['single']:.3f} |")
    large_rows = [f"| {phase} | {results[phase]['batched_1000_qps']['cluster']:.0f} | "
                  f"{results[phase]['batched_1000_qps']['single']:.0f} | {results[phase]['batched_1000_ratio']:.2f} | "
                  f"{results[phase]['batched_1000_ratio_paired_median']:.2f} |" for phase in ("before", "after")]
    failures = "" if args.skip_failures else f"""
Node loss (a worker node removed during reads, 15 s): {results['node_loss']}.

Actor kills under concurrent upserts: {results['actor_kills']}.
"""
    stem.with_suffix(".md").write_text(f"""# Cluster gateway vs one server ({results['date']})

`{command}`; {results['machine']}, everything on this one machine (loopback): a Ray cluster
of 3 simulated nodes, the gateway ({results['layout']}, write level quorum) and one `vectord serve`.
Load {args.records:,} records (batches of 1,000): cluster {results['load_s']['cluster']} s, single
{results['load_s']['single']} s.

before: every shard searches at the collection's ef_search (100; gateway --shard-ef-scale 0);
after: a collection made by a gateway at the default --shard-ef-scale (each shard at
ceil(100 x 1.3 / 3) = 44, cluster/replica.py shard_ef; explain's ef: {results['shard_ef_after']}). Both servers plan with
--planner-cost-per-ef {cost} (measured here for dim {args.dim}). Single queries: default include,
n_results 10; batches: 100 queries, distances only, three passes over 1,000 queries; the two
servers' queries alternate ("median of pairs": the median over the 30 pairs of alternating
batches of the cluster's speed over the server's).
recall@10 against the exact cosine nearest of 1,000 queries.

| | cluster p50, ms | single p50, ms | gap | cluster p95 | single p95 | cluster q/s (batched) | single q/s | ratio | ratio, median of pairs | recall@10 cluster | single |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

Batches of 1,000 queries (distances only), ten passes over the same 1,000 queries, alternating as above:

| | cluster q/s | single q/s | ratio | ratio, median of pairs |
| --- | --- | --- | --- | --- |
{chr(10).join(large_rows)}
{failures}
Load average (1, 5, 15 min) before: {results['load_average_before']}, between: \
{results['load_average_between']}, after: {results['load_average_after']} (2 cores shared with other work).

What shares the CPU: the cluster's 6 replica processes (3 shards x 2 replicas; a query asks
one replica per shard, so 3 search at once), the gateway, Ray's daemons (GCS, 3 raylets),
the single server and this client, on {os.cpu_count()} cores, besides other work on the
machine. A cluster query wakes 4 processes (gateway and 3 replicas) where one server wakes
1, and its 3 shard searches run at once on those cores; on N machines each shard's search
has its own. The replicas' nice values: {results['replica_niceness']} (Ray starts its workers at 15;
cluster/replica.py, normal_priority).
""")
    print(stem.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
