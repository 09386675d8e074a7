"""Where a single query's time goes: the cluster gateway's read path, stage by stage.

    python benchmarks/cluster_profile.py [--records 20000] [--dim 64] [--queries 300]

The same layout as benchmarks/cluster.py (a ``ray.cluster_utils`` cluster of three
simulated nodes, a gateway with 3 shards x 2 replicas, one `vectord serve`, the same seeded
vectors, the same single query: default include, n_results 10), but the gateway and the
server run inside this script's own wrapper (``--role gateway|server``), which times
their stages with ``time.perf_counter_ns`` around the functions that do them, and every
replica gets timers installed over Ray (``__ray_call__``) around its read handler and its
engine query. Prints a table of per-stage medians (and writes it as JSON with ``--out``).

Stages: SDK round trip (client side); the servicer's Query (gateway / server); inside it,
request conversion, the budget check, validation, the engine call (``query_with_plan``),
and the reply's conversion; inside the engine call, the fan-out round (encode, send to
three replicas, wait for each reply, decode), the merge and the final hits' columns; on
each replica, its read handler and the engine's query within it. The gRPC transport and
interceptors are what the SDK round trip spends outside the servicer.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import add_workload_arguments, load, replica_actors, seeded, simulated_cluster, start, stop  # noqa: E402  (benchmarks/cluster.py)

STAGES: dict[str, list[int]] = collections.defaultdict(list)


def timed(owner, attr: str, stage: str) -> None:
    """Replaces ``owner.attr`` by a wrapper that records its duration under ``stage``."""
    fn = getattr(owner, attr)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        started = time.perf_counter_ns()
        try:
            return fn(*args, **kwargs)
        finally:
            STAGES[stage].append(time.perf_counter_ns() - started)

    setattr(owner, attr, wrapper)


def install_gateway_timers() -> None:
    from vectord.cluster import dataplane, engine, gateway, ranked, shards
    from vectord.server import budgets, convert, servicers

    timed(gateway.ClusterRecordsServicer, "Query", "servicer Query")
    timed(servicers, "vectors_from_proto", "request conversion (vectors_from_proto)")
    timed(budgets, "check_query", "budget check")
    timed(engine.ClusterCollection, "_query_vectors", "query validation")
    timed(engine.ClusterCollection, "query_with_plan", "engine query_with_plan")
    timed(shards.ShardSet, "fanout", "fan-out round (3 shards)")
    timed(dataplane, "encode", "encode request (once a round since 2026-11-30-3, per shard before)")
    timed(dataplane.ReadClient, "send_frame" if hasattr(dataplane.ReadClient, "send_frame") else "send",
          "send (per shard)")
    timed(dataplane, "decode", "decode reply (per shard)")
    timed(ranked, "merge_vector", "merge (per query)")
    if hasattr(ranked, "merge_vector_many"):
        timed(ranked, "merge_vector_many", "merge (a round's queries at once)")
    timed(engine, "_inline", "final k's columns (_inline)")
    timed(convert, "records_to_query_response", "reply conversion")
    fanout, receive = shards.ShardSet.fanout, dataplane.ReadClient.receive
    round_started = [0]

    def fanout_marked(self, calls):
        round_started[0] = time.perf_counter_ns()
        return fanout(self, calls)

    arrivals: list[int] = []

    def receive_marked(self, sock, deadline):
        try:
            return receive(self, sock, deadline)
        finally:  # the k-th reply of a round arrived this long after the round began
            arrivals.append(time.perf_counter_ns() - round_started[0])
            if len(arrivals) == 3:
                for n, t in enumerate(sorted(arrivals)):
                    STAGES[f"reply {n + 1} of 3 in, after the round began"].append(t)
                arrivals.clear()

    shards.ShardSet.fanout, dataplane.ReadClient.receive = fanout_marked, receive_marked


def install_server_timers() -> None:
    from vectord.server import budgets, convert, servicers
    from vectord.storage.collection import Collection

    timed(servicers.RecordsServicer, "Query", "servicer Query")
    timed(servicers, "vectors_from_proto", "request conversion (vectors_from_proto)")
    timed(budgets, "check_query", "budget check")
    timed(convert, "records_to_query_response", "reply conversion")
    timed(Collection, "query_with_plan", "engine query_with_plan")


def serve_wrapped(role: str, argv: list[str]) -> int:
    """Runs `vectord serve` or `vectord cluster up` with timers; SIGUSR1 writes them to
    $VECTORD_PROFILE_OUT and clears them (the warm-up is left out that way)."""
    (install_gateway_timers if role == "gateway" else install_server_timers)()

    def dump(*_):
        Path(os.environ["VECTORD_PROFILE_OUT"]).write_text(json.dumps(dict(STAGES)))
        STAGES.clear()

    signal.signal(signal.SIGUSR1, dump)
    from vectord.server.cli import main

    return main(argv)


def replica_timers(replica) -> None:
    """Run in a replica actor (``__ray_call__``): timers around its read handler and engine query."""
    import time as _time

    stats = replica.profile = {"replica read handler (query)": [], "replica engine query": [],
                               "replica engine query_with_plan (a batch's bare hits)": []}

    def wrap(fn, stage):
        def wrapper(*args, **kwargs):
            started = _time.perf_counter_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                stats[stage].append(_time.perf_counter_ns() - started)
        return wrapper

    replica.reads.handlers["query"] = wrap(replica.reads.handlers["query"], "replica read handler (query)")
    replica.collection.query = wrap(replica.collection.query, "replica engine query")
    # a batch of bare hits reaches the engine here instead (ShardReplica.query_columns)
    replica.collection.query_with_plan = wrap(replica.collection.query_with_plan,
                                              "replica engine query_with_plan (a batch's bare hits)")


def replica_stats(replica) -> dict:
    import os as _os

    out = {k: list(v) for k, v in replica.profile.items()}
    out["niceness"] = _os.getpriority(_os.PRIO_PROCESS, 0)
    for v in replica.profile.values():
        v.clear()
    return out


def replica_self_time(replica, vectors, n: int = 200) -> list[int]:
    """The engine's query alone in the replica, nothing else running on the path."""
    import time as _time

    out = []
    for i in range(n):
        started = _time.perf_counter_ns()
        replica.collection.query(vectors[i % len(vectors)][None], n_results=10,
                                 include=["distances", "documents", "metadatas"])
        out.append(_time.perf_counter_ns() - started)
    return out


def p50(ns: list[int]) -> float:
    return round(float(np.median(ns)) / 1e6, 3) if ns else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_workload_arguments(parser)
    parser.add_argument("--batch", type=int, default=1,
                        help="queries per request (default 1; above 1: distances only, as the batched benchmark)")
    parser.add_argument("--out", help="also write the stage medians here (JSON)")
    parser.add_argument("--role", choices=["gateway", "server"], help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.role:
        return serve_wrapped(args.role, rest)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    import vectord

    data, queries = seeded(args.records, args.dim, max(args.queries, 100, args.batch))
    tmp = Path(tempfile.mkdtemp(prefix="vectord-cluster-profile-"))
    cluster, _ = simulated_cluster()
    me = [sys.executable, str(Path(__file__).resolve())]
    env = {"VECTORD_PROFILE_OUT": str(tmp / "stages-gateway.json")}
    gateway, gateway_address = start(
        [*me, "--role", "gateway", "cluster", "up", "--address", cluster.address, "--port", "0", "--data-dir",
         str(tmp / "cluster"), "--shards", "3", "--replicas", "2", "--planner-cost-per-ef", "10"],
        "vectord cluster gateway listening", tmp / "gateway.log", env)
    server, server_address = start(
        [*me, "--role", "server", "serve", "--port", "0", "--data-dir", str(tmp / "single"),
         "--planner-cost-per-ef", "10"], "vectord listening", tmp / "server.log",
        {"VECTORD_PROFILE_OUT": str(tmp / "stages-server.json")})
    results: dict = {"records": args.records, "dim": args.dim, "queries": args.queries, "batch": args.batch,
                     "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    try:
        clients = {"cluster": vectord.Client(gateway_address, timeout=120),
                   "single": vectord.Client(server_address, timeout=120)}
        cols = {name: c.create_collection("bench", dim=args.dim) for name, c in clients.items()}
        for col in cols.values():
            load(col, data)
        actors = replica_actors(clients["cluster"], "bench")
        ray.get([a.__ray_call__.remote(replica_timers) for a in actors])
        for col in cols.values():  # warm
            for q in queries[:30]:
                col.query(query_embeddings=q[None], n_results=10)
        for proc in (gateway, server):
            proc.send_signal(signal.SIGUSR1)
        ray.get([a.__ray_call__.remote(replica_stats) for a in actors])
        time.sleep(0.5)
        e2e: dict[str, list[int]] = {"cluster": [], "single": []}
        beat: dict[str, list[int]] = {"cluster": [], "single": []}
        include = {"include": ["distances"]} if args.batch > 1 else {}
        for lo in range(0, args.queries, args.batch):
            for name, col in cols.items():
                started = time.perf_counter_ns()
                col.query(query_embeddings=queries[lo:lo + args.batch], n_results=10, **include)
                e2e[name].append(time.perf_counter_ns() - started)
                started = time.perf_counter_ns()
                clients[name].heartbeat()
                beat[name].append(time.perf_counter_ns() - started)
        for proc in (gateway, server):
            proc.send_signal(signal.SIGUSR1)
        time.sleep(1.0)
        stages = {name: json.loads((tmp / f"stages-{name}.json").read_text()) for name in ("gateway", "server")}
        per_replica = ray.get([a.__ray_call__.remote(replica_stats) for a in actors])
        replica: dict[str, list[int]] = collections.defaultdict(list)
        results["replica_niceness"] = [part.pop("niceness") for part in per_replica]
        for part in per_replica:
            for k, v in part.items():
                replica[k] += v
        alone = ray.get(actors[0].__ray_call__.remote(replica_self_time, queries[:100]))
        results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        table = {
            f"SDK query round trip ({args.batch} {'query' if args.batch == 1 else 'queries'})": {"cluster": p50(e2e["cluster"]), "single": p50(e2e["single"])},
            "SDK heartbeat round trip (gRPC floor)": {"cluster": p50(beat["cluster"]), "single": p50(beat["single"])},
        }
        for stage in stages["gateway"].keys() | stages["server"].keys():
            table[stage] = {"cluster": p50(stages["gateway"].get(stage, [])),
                            "single": p50(stages["server"].get(stage, []))}
        for stage, v in replica.items():
            table[stage] = {"cluster": p50(v), "single": float("nan")}
        table["replica engine query, alone (no socket, no other shard running)"] = {"cluster": p50(alone),
                                                                                     "single": float("nan")}
        results["p50_ms"] = table
        results["calls"] = {stage: len(v) for stage, v in {**stages["gateway"], **replica}.items()}
    finally:
        stop(gateway, server, cluster)
    print(f"load average before {results['load_average_before']}, after {results['load_average_after']}; "
          f"replicas' niceness {results['replica_niceness']}")
    print("| stage | cluster p50, ms | single p50, ms | calls (cluster) |\n| --- | --- | --- | --- |")
    for stage, v in results["p50_ms"].items():
        calls = results["calls"].get(stage, -(-args.queries // args.batch))
        print(f"| {stage} | {v['cluster']} | {v['single']} | {calls} |")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
