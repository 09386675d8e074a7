"""Where the CPU of a batched query goes: the cluster gateway's processes against one server's.

    python benchmarks/cluster_cpu.py [--records 20000] [--dim 64] [--batches 60] [--rounds 3]
        [--planner-cost-per-ef N] [--out benchmarks/results/cluster-cpu-DATE]

The layout of benchmarks/cluster.py: a ``ray.cluster_utils`` cluster of three simulated nodes
(one CPU each), a gateway with 3 shards x 2 replicas, and one `vectord serve`, both loaded
with the same seeded vectors. Batches of 100 queries (distances only, n_results 10) go to one,
then the other, ``--rounds`` times. Around each run of ``--batches`` batches, every process
on the machine that takes part is read from /proc: its user + system CPU. These are the
client (this script), the gateway, each shard replica, Ray's GCS, raylets and other daemons,
and the single server. Each process's CPU is divided by the batches.

It answers what benchmarks/cluster.py's throughput ratio cannot: whether the cluster loses
to one server through more work (the shards' searches, the gateway's fan-out and merge), or
through idle cores between the hops. CPU is counted in clock ticks (10 ms), so a process's
figure per batch is good to about 10 ms / batches.

Two more figures split the replicas' share: the thread CPU of each engine search inside the
replicas (timers installed over Ray), and, once the cluster and the server have stopped, the
same engines alone on the machine (``isolated``): three processes with a third of the
records each at the shard's ef, and one with all of them at ef 100, each woken per batch.
If the first equals the second, the cluster adds no search work of its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import RESULTS, load, replica_actors, seeded, simulated_cluster, start, stop  # noqa: E402  (benchmarks/cluster.py)

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
BATCH = 100
#: Between two batches, the isolated searches wait this long (the client's and the
#: gateway's share of a batch), so that they are woken per batch as a server is.
GAP_S = 0.003


def engine_timers(replica) -> None:
    """Run in a replica (``__ray_call__``): the thread CPU of each engine search it makes,
    kept in ``replica.search_cpu_ns`` (the replica's process CPU also counts Ray's threads
    and the read path's framing)."""
    import time as _time

    replica.search_cpu_ns = []
    query = replica.collection.query_with_plan

    def timed(*args, **kwargs):
        started = _time.thread_time_ns()
        try:
            return query(*args, **kwargs)
        finally:
            replica.search_cpu_ns.append(_time.thread_time_ns() - started)

    replica.collection.query_with_plan = timed


def engine_cpu(replica) -> list[int]:
    """Run in a replica: the search CPU times kept since the last call (ns), then cleared."""
    out, replica.search_cpu_ns = replica.search_cpu_ns, []
    return out


def _isolated_worker(rows: np.ndarray, queries: np.ndarray, ef: int, threads: int, cost_per_ef: int, conn) -> None:
    """One engine in its own process, outside any cluster or server: loads ``rows``, then
    answers each batch offset sent on ``conn`` with a search of the 100 queries there;
    sends back its mean CPU per search (ms) on ``None``."""
    from vectord.storage import Database, Tuning

    tuning = Tuning(index_threads=threads)
    tuning.graph_cost_per_ef = cost_per_ef
    db = Database(Path(tempfile.mkdtemp(prefix="vectord-isolated-")) / "engine", tuning=tuning)
    col = db.create_collection("bench", dim=rows.shape[1], metric="cosine",
                               hnsw={"m": 16, "ef_construction": 100, "ef_search": ef})
    for lo in range(0, len(rows), 1000):
        col.upsert(ids=[f"id-{i}" for i in range(lo, min(lo + 1000, len(rows)))], embeddings=rows[lo:lo + 1000])
    while col.stats().get("tail_slots"):  # the background indexer has the whole graph
        time.sleep(0.1)
    conn.send("ready")
    spent, searches = 0.0, 0
    while (lo := conn.recv()) is not None:
        started = time.process_time()
        col.query_with_plan(queries[lo:lo + BATCH], n_results=10, include=["distances"], columns=True)
        spent, searches = spent + time.process_time() - started, searches + 1
        conn.send(1)
    conn.send(spent * 1000 / max(1, searches))
    db.close()


def isolated(parts: list[np.ndarray], queries: np.ndarray, ef: int, threads: int, cost_per_ef: int,
             batches: int) -> float:
    """CPU ms per batch of the same searches outside the cluster: one engine process per part
    (spawned: this process holds gRPC channels and a Ray connection), all asked each batch at
    once and woken per batch (``GAP_S`` between batches), as the shards or the server are."""
    spawn = multiprocessing.get_context("spawn")
    pipes = [spawn.Pipe() for _ in parts]
    procs = [spawn.Process(target=_isolated_worker, args=(rows, queries, ef, threads, cost_per_ef, child))
             for rows, (_, child) in zip(parts, pipes)]
    for proc in procs:
        proc.start()
    for parent, _ in pipes:
        parent.recv()
    for i in range(batches):
        for parent, _ in pipes:
            parent.send((i * BATCH) % len(queries))
        for parent, _ in pipes:
            parent.recv()
        time.sleep(GAP_S)
    for parent, _ in pipes:
        parent.send(None)
    per_search = [parent.recv() for parent, _ in pipes]
    for proc in procs:
        proc.join()
    return round(sum(per_search), 2)


def cpu_by_process(gateway: int, server: int) -> dict[str, float]:
    """Seconds of CPU (user + system) so far of each process that takes part, by role."""
    out: dict[str, float] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(pid) == gateway:
            role = "gateway"
        elif int(pid) == server:
            role = "single server"
        elif int(pid) == os.getpid():
            role = "client"
        elif "ShardReplica" in cmd:
            role = f"replica {pid}"
        elif "gcs_server" in cmd:
            role = "ray gcs"
        elif "raylet" in cmd:
            role = "ray raylets"
        elif "ray" in cmd:
            role = "ray, other daemons"
        else:
            continue
        out[role] = out.get(role, 0.0) + (int(fields[11]) + int(fields[12])) * TICK_S
    return out


def measure(collection, queries: np.ndarray, batches: int, gateway: int, server: int) -> dict:
    """``batches`` batches on ``collection``: wall ms per batch, and CPU ms per batch by process."""
    before, started = cpu_by_process(gateway, server), time.perf_counter()
    walls = []
    for i in range(batches):
        lo = (i * BATCH) % len(queries)
        t0 = time.perf_counter()
        collection.query(query_embeddings=queries[lo:lo + BATCH], n_results=10, include=["distances"])
        walls.append(time.perf_counter() - t0)
    wall = time.perf_counter() - started
    after = cpu_by_process(gateway, server)
    cpu = {role: round((after[role] - before.get(role, 0.0)) * 1000 / batches, 2) for role in after}
    total = sum(cpu.values())
    return {"wall_ms_mean": round(wall * 1000 / batches, 2), "wall_ms_median": round(float(np.median(walls)) * 1000, 2),
            "cpu_ms": {k: v for k, v in sorted(cpu.items()) if v > 0}, "cpu_ms_total": round(total, 2),
            "cores": round(total / (wall * 1000 / batches), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--batches", type=int, default=60, help="batches of 100 per run (default 60)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--planner-cost-per-ef", type=int, default=0,
                        help="both servers' planner setting (default: measured here, as cluster.py does)")
    parser.add_argument("--out", help="write OUT.md and OUT.json (default: results/cluster-cpu-<date>)")
    args = parser.parse_args()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    import vectord
    from vectord.cluster.replica import shard_ef
    from vectord.storage.planner import calibrate

    cost_per_ef = args.planner_cost_per_ef or calibrate(dim=args.dim)["cost_per_ef"]
    data, queries = seeded(args.records, args.dim, 1000)
    tmp = Path(tempfile.mkdtemp(prefix="vectord-cluster-cpu-"))
    cluster, _ = simulated_cluster()
    cost = ["--planner-cost-per-ef", str(cost_per_ef)]
    gateway, gateway_address = start(
        [sys.executable, "-m", "vectord", "cluster", "up", "--address", cluster.address, "--port", "0",
         "--data-dir", str(tmp / "cluster"), "--shards", "3", "--replicas", "2", *cost],
        "vectord cluster gateway listening", tmp / "gateway.log")
    server, server_address = start(
        [sys.executable, "-m", "vectord", "serve", "--port", "0", "--data-dir", str(tmp / "single"), *cost],
        "vectord listening", tmp / "server.log")
    rounds = []
    try:
        with vectord.Client(gateway_address, timeout=120) as on_cluster, \
                vectord.Client(server_address, timeout=120) as on_single:
            sharded = on_cluster.create_collection("bench", dim=args.dim)
            single = on_single.create_collection("bench", dim=args.dim)
            load(sharded, data)
            load(single, data)
            time.sleep(5)  # the background indexing settled
            replicas = replica_actors(on_cluster, "bench")
            ray.get([a.__ray_call__.remote(engine_timers) for a in replicas])
            for _ in range(20):  # warm: connections open, pages touched
                sharded.query(query_embeddings=queries[:BATCH], n_results=10, include=["distances"])
                single.query(query_embeddings=queries[:BATCH], n_results=10, include=["distances"])
            for _ in range(args.rounds):
                ray.get([a.__ray_call__.remote(engine_cpu) for a in replicas])
                run = {"cluster": measure(sharded, queries, args.batches, gateway.pid, server.pid)}
                searches = np.concatenate([ray.get(a.__ray_call__.remote(engine_cpu)) for a in replicas])
                # a batch is one search per shard: 3 x the mean search is the searches' CPU a batch
                run["cluster"]["engine_search_cpu_ms"] = round(3 * float(searches.mean()) / 1e6, 2)
                run["single"] = measure(single, queries, args.batches, gateway.pid, server.pid)
                rounds.append(run)
    finally:
        stop(gateway, server, cluster)
    # the same searches alone on the machine: is the cluster's search CPU the searches' own?
    ef = shard_ef(100, 3)
    for run in rounds:
        run["isolated"] = {
            "single": isolated([data], queries, 100, os.cpu_count() or 1, cost_per_ef, args.batches),
            "shards": isolated([data[s::3] for s in range(3)], queries, ef, 1, cost_per_ef, args.batches)}
    results = {"date": dt.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
               "records": args.records, "dim": args.dim, "batches": args.batches,
               "planner_cost_per_ef": cost_per_ef, "shard_ef": ef, "rounds": rounds}
    stem = Path(args.out) if args.out else RESULTS / f"cluster-cpu-{results['date']}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    stem.with_suffix(".md").write_text(report(results, args))
    print(stem.with_suffix(".md").read_text())
    return 0


def report(results: dict, args: argparse.Namespace) -> str:
    """The rounds as a markdown table: CPU ms per batch by role (the replicas summed)."""
    def roles(run: dict) -> dict[str, float]:
        out: dict[str, float] = {}
        for role, ms in run["cpu_ms"].items():
            key = "shard replicas (all 6)" if role.startswith("replica") else role
            out[key] = out.get(key, 0.0) + ms
        return out

    keys = ["client", "gateway", "shard replicas (all 6)", "single server", "ray gcs", "ray raylets",
            "ray, other daemons"]
    head = "| round | system | wall ms / batch (median) | " + " | ".join(keys) + " | CPU total | cores busy |"
    lines = [head, "|" + "---|" * (len(keys) + 5)]
    for n, r in enumerate(results["rounds"], 1):
        for system in ("cluster", "single"):
            run, by_role = r[system], roles(r[system])
            lines.append(f"| {n} | {system} | {run['wall_ms_median']:.2f} | "
                         + " | ".join(f"{by_role.get(k, 0.0):.2f}" for k in keys)
                         + f" | {run['cpu_ms_total']:.2f} | {run['cores']:.2f} |")
    searches = ["| round | cluster: shard replicas' process CPU | cluster: their engine searches' thread CPU | "
                "isolated: 3 shard engines | isolated: one engine, all records |", "|---|---|---|---|---|"]
    for n, r in enumerate(results["rounds"], 1):
        searches.append(f"| {n} | {roles(r['cluster'])['shard replicas (all 6)']:.2f} | "
                        f"{r['cluster']['engine_search_cpu_ms']:.2f} | {r['isolated']['shards']:.2f} | "
                        f"{r['isolated']['single']:.2f} |")
    command = (f"python benchmarks/cluster_cpu.py --records {args.records} --dim {args.dim} "
               f"--batches {args.batches} --rounds {args.rounds} --planner-cost-per-ef {results['planner_cost_per_ef']}")
    return (f"# CPU of a batched query: cluster gateway vs one server ({results['date']})\n\n"
            f"`{command}` on {results['machine']}, everything on this one machine (loopback). A Ray cluster of 3 "
            f"simulated nodes, the gateway (3 shards x 2 replicas) and one `vectord serve`, each holding "
            f"{args.records:,} x {args.dim} random vectors. Batches of 100 queries, n_results 10, distances only. "
            f"CPU is in ms per batch, user + system, read from /proc around each run of {args.batches} batches. "
            f"Each process is counted in 10 ms clock ticks. A batch asks one replica of each shard, so the "
            f"6 replicas' sum is what 3 searches cost.\n\n" + "\n".join(lines) + "\n\n"
            f"The searches, CPU ms per batch of 100. In the cluster: the replicas' processes (as above), and "
            f"the thread CPU of their engine searches (3 x the mean, timed in each replica). Isolated, after "
            f"the cluster and the server stopped: the same engines alone, each in its own process, asked "
            f"each batch at once and woken per batch ({GAP_S * 1000:.0f} ms between batches): three with a "
            f"third of the records each at the shard's ef {results['shard_ef']} (1 thread, as a replica), and one "
            f"with all the records at ef 100 ({os.cpu_count()} threads, as `vectord serve`).\n\n"
            + "\n".join(searches) + "\n")


if __name__ == "__main__":
    sys.exit(main())
