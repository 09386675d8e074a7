"""`vectord cluster up|join|status|down`: a vectord cluster on top of Ray.

    vectord cluster up [--address ADDR] [--port 50051] [--data-dir ./vectord-cluster]
        starts Ray's head here (`ray start --head`) unless --address names a running Ray
        cluster, then serves the gateway in the foreground (SIGTERM/SIGINT stop it; the
        shard actors are detached and keep running)
    vectord cluster join --address HEAD:6379     adds this machine to the cluster (`ray start`)
    vectord cluster status [--address ADDR]      every collection's shards and replicas
    vectord cluster down [--address ADDR] [--stop-ray]
        stops every shard actor and the controller (their data stays on disk)
    vectord cluster import SOURCE -c NAME --gateway HOST:PORT [--address ADDR]
        streams JSONL/Parquet/.npy through Ray Data into a collection (cluster/ingest.py)
    vectord cluster delete-snapshot NAME [--address ADDR]
        deletes a cluster snapshot: its manifest and its copies on every node (cluster/snapshots.py)
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading

RAY_START_HINT = "`ray` is not installed: pip install \"vectord[cluster]\""


def no_usage_stats() -> None:
    """Ray reports usage statistics to its vendor by default; vectord promises no telemetry
    (README), so it is turned off for every Ray process these commands start or join."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"


def register(sub) -> None:
    """Adds the `cluster` command and its subcommands to the `vectord` parser."""
    cluster = sub.add_parser("cluster", help="run a sharded, replicated cluster on Ray (vectord[cluster])",
                             description="A vectord cluster: shard actors on Ray nodes behind one gRPC gateway.")
    commands = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION", help="one of:")
    up = commands.add_parser("up", help="start Ray's head here (unless --address) and serve the gateway")
    up.add_argument("--address", help="a running Ray cluster's address (host:port, or 'auto'); "
                    "without it `ray start --head` runs here first")
    up.add_argument("--host", default="127.0.0.1", help="the gateway's listen address (default 127.0.0.1)")
    up.add_argument("--port", type=int, default=50051, help="the gateway's port, 0 for any free one (default 50051)")
    up.add_argument("--data-dir", default="./vectord-cluster",
                    help="node-local directory of shard replicas, the same path on every node "
                    "(default ./vectord-cluster)")
    up.add_argument("--shards", type=int, default=3, help="shards of a new collection (default 3)")
    up.add_argument("--replicas", type=int, default=2, help="replicas of each shard, on distinct nodes (default 2)")
    up.add_argument("--write-level", choices=["one", "quorum", "all"], default="quorum",
                    help="replicas that must apply a write before it is acknowledged (default quorum)")
    up.add_argument("--num-cpus", type=int, help="CPUs Ray may use on this node (with `ray start --head`)")
    up.add_argument("--allow-reset", action="store_true", help="let clients delete every collection at once")
    up.add_argument("--planner-cost-per-ef", type=int,
                    help="the shard replicas' query planner: cost of one unit of graph-search ef in exact vector "
                    "comparisons, as `vectord serve --planner-cost-per-ef` (default: $VECTORD_PLANNER_COST_PER_EF, "
                    "else the engine's)")
    up.add_argument("--shard-ef-scale", type=float, default=None,
                    help="a new collection's shards search at ef_search x this / shards (default 1 + 0.1 x "
                    "shards: the merged recall matches one node's, docs/cluster.md); 0: every shard at the "
                    "collection's full ef_search")
    up.set_defaults(func=up_command)
    join = commands.add_parser("join", help="add this machine to a cluster (`ray start --address`)")
    join.add_argument("--address", required=True, help="the head's Ray address, host:port (port 6379 by default)")
    join.add_argument("--num-cpus", type=int, help="CPUs Ray may use on this node")
    join.set_defaults(func=join_command)
    status = commands.add_parser("status", help="shards and replicas of every collection, and their health")
    status.add_argument("--address", default="auto", help="the Ray cluster's address (default auto: this machine's)")
    status.add_argument("--timeout-s", type=float, default=5.0, help="seconds to wait for the replicas, all asked at once (default 5)")
    status.set_defaults(func=status_command)
    down = commands.add_parser("down", help="stop every shard actor and the controller (data stays on disk)")
    down.add_argument("--address", default="auto", help="the Ray cluster's address (default auto: this machine's)")
    down.add_argument("--stop-ray", action="store_true", help="also run `ray stop` on this machine")
    down.set_defaults(func=down_command)
    imp = commands.add_parser("import", help="bulk import JSONL, Parquet or .npy through Ray Data, shard by shard")
    imp.add_argument("source", help="a .jsonl/.parquet/.npy file or directory, readable from every Ray node")
    imp.add_argument("-c", "--collection", required=True, help="the target collection (it must exist)")
    imp.add_argument("--gateway", required=True, help="the gateway's address, host:port")
    imp.add_argument("--address", default="auto", help="the Ray cluster's address (default auto: this machine's)")
    imp.add_argument("--format", choices=["jsonl", "parquet", "npy"], help="the source's format "
                     "(default: by its extension)")
    imp.add_argument("--batch-size", type=int, default=1000, help="records per write, one shard each (default 1000)")
    imp.add_argument("--workers", type=int, default=2, help="embedding actors, one CPU each (default 2)")
    imp.add_argument("--id-prefix", default="row-", help="ids of .npy rows: PREFIX<row number> (default row-)")
    imp.add_argument("--api-key", help="the gateway's API key (default: $VECTORD_API_KEY)")
    imp.set_defaults(func=import_command)
    drop = commands.add_parser("delete-snapshot", help="delete a cluster snapshot and its copies on every node")
    drop.add_argument("name", help="the snapshot's name (as `vectord snapshot list` shows it)")
    drop.add_argument("--address", default="auto", help="the Ray cluster's address (default auto: this machine's)")
    drop.set_defaults(func=delete_snapshot_command)


def _ray_cli(*args: str) -> int:
    no_usage_stats()
    if args[0] == "start":
        args = (*args, "--disable-usage-stats")
    # Ray's workers (the shard replicas among them) run at nice 15 by default: a replica
    # serving reads is the node's main work, so it runs at an ordinary priority (nice 0;
    # cluster/replica.py, normal_priority)
    env = {**os.environ, "RAY_worker_niceness": os.environ.get("RAY_worker_niceness", "0")}
    return subprocess.call([sys.executable, "-m", "ray.scripts.scripts", *args], env=env)


def _connect(address: str):
    try:
        import ray
    except ImportError:
        print(f"vectord cluster: {RAY_START_HINT}", file=sys.stderr)
        raise SystemExit(2) from None
    from .controller import NAMESPACE

    no_usage_stats()
    ray.init(address=address, namespace=NAMESPACE, logging_level="ERROR", log_to_driver=False)
    return ray


def up_command(args: argparse.Namespace) -> int:
    from vectord.errors import VectordError
    from vectord.server.settings import Settings

    from vectord.server.grpc_engine import import_grpc

    import_grpc()  # before Ray imports grpc: it picks gRPC's I/O engine for the gateway (server/grpc_engine.py)
    try:
        import ray  # noqa: F401
    except ImportError:
        print(f"vectord cluster: {RAY_START_HINT}", file=sys.stderr)
        return 2
    address = args.address
    if address is None:
        extra = [f"--num-cpus={args.num_cpus}"] if args.num_cpus is not None else []
        if _ray_cli("start", "--head", *extra) != 0:
            print("vectord cluster: `ray start --head` failed", file=sys.stderr)
            return 1
        address = "auto"
    ray = _connect(address)
    from .database import ClusterDatabase
    from .gateway import create_gateway

    encoders = None
    try:
        from vectord.server.encoders import BuiltinEncoders

        encoders = BuiltinEncoders(threads=2)
    except ImportError:
        pass
    try:
        settings = Settings.load(host=args.host, port=args.port, allow_reset=args.allow_reset or None,
                                 planner_cost_per_ef=args.planner_cost_per_ef)
        database = ClusterDatabase(args.data_dir, encoders=encoders, write_level=args.write_level,
                                   shards=args.shards, replicas=args.replicas,
                                   planner_cost_per_ef=settings.planner_cost_per_ef, ef_scale=args.shard_ef_scale)
        running = create_gateway(settings, database)
    except (VectordError, OSError) as exc:
        print(f"vectord cluster: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"vectord cluster gateway listening on {settings.host}:{running.port}", flush=True)
    while not stop.wait(0.5):
        pass
    running.stop(5.0)
    database.close()
    ray.shutdown()
    return 0


def join_command(args: argparse.Namespace) -> int:
    extra = [f"--num-cpus={args.num_cpus}"] if args.num_cpus is not None else []
    return _ray_cli("start", f"--address={args.address}", *extra)


def replica_health(timeout_s: float = 5.0) -> list[dict]:
    """One row per replica of every collection: its shard, node, applied writes, records, and
    state (in_sync when it answers and has applied as many writes as the best of its shard).
    Every replica is asked at once: a lost node's replicas cost one timeout in all."""
    import ray

    from .controller import NAMESPACE, controller_actor
    from .health import answers
    from .replica import replica_name

    controller = controller_actor(create=False)
    shards, refs = [], {}  # each shard's rows; every replica's status() call by (shard, replica)
    for table in ray.get(controller.tables.remote(), timeout=timeout_s):
        for s, nodes in enumerate(table["placement"]):
            shard_rows = []
            for r, node in enumerate(nodes):
                row = {"collection": table["name"], "shard": s, "replica": r, "node": node, "applied": None,
                       "count": None, "state": "down"}
                try:
                    actor = ray.get_actor(replica_name(table["config"]["id"], s, r), namespace=NAMESPACE)
                    refs[len(shards), r] = actor.status.remote()
                except Exception as exc:
                    row["error"] = exc.__class__.__name__
                shard_rows.append(row)
            shards.append(shard_rows)
    for (s, r), status in answers(refs, timeout_s).items():
        if isinstance(status, Exception):
            shards[s][r]["error"] = status.__class__.__name__
        else:
            shards[s][r].update(applied=status["applied"], count=status["count"], state="up")
    rows = []
    for shard_rows in shards:
        best = max([row["applied"] for row in shard_rows if row["applied"] is not None] or [0])
        for row in shard_rows:
            if row["state"] == "up":
                row["state"] = "in_sync" if row["applied"] == best else "behind"
        rows.extend(shard_rows)
    return rows


def status_command(args: argparse.Namespace) -> int:
    ray = _connect(args.address)
    try:
        rows = replica_health(args.timeout_s)
    except ValueError:
        print("vectord cluster: no vectord cluster on this Ray cluster (run `vectord cluster up`)", file=sys.stderr)
        return 1
    alive = sum(1 for n in ray.nodes() if n.get("Alive"))
    print(f"{alive} Ray node(s) alive")
    print(f"{'collection':<24} {'shard':>5} {'replica':>7} {'node':<14} {'applied':>8} {'records':>8}  state")
    for row in rows:
        print(f"{row['collection']:<24} {row['shard']:>5} {row['replica']:>7} {row['node'][:12]:<14} "
              f"{row['applied'] if row['applied'] is not None else '-':>8} "
              f"{row['count'] if row['count'] is not None else '-':>8}  {row['state']}")
    return 0 if all(row["state"] == "in_sync" for row in rows) else 1


def down_command(args: argparse.Namespace) -> int:
    ray = _connect(args.address)
    from .controller import NAMESPACE, controller_actor
    from .replica import replica_name

    stopped = 0
    try:
        controller = controller_actor(create=False)
    except ValueError:
        controller = None
    if controller is not None:
        for table in ray.get(controller.tables.remote()):
            for s, nodes in enumerate(table["placement"]):
                for r in range(len(nodes)):
                    try:
                        actor = ray.get_actor(replica_name(table["config"]["id"], s, r), namespace=NAMESPACE)
                    except ValueError:
                        continue
                    try:
                        ray.get(actor.close.remote(), timeout=10)  # a final checkpoint
                    except Exception:
                        pass
                    ray.kill(actor, no_restart=True)
                    stopped += 1
        ray.kill(controller, no_restart=True)
    print(f"stopped {stopped} shard replica(s){' and the controller' if controller is not None else ''}")
    ray.shutdown()
    if args.stop_ray:
        return _ray_cli("stop")
    return 0


def delete_snapshot_command(args: argparse.Namespace) -> int:
    from types import SimpleNamespace

    from vectord.errors import VectordError

    from . import snapshots
    from .controller import controller_actor

    ray = _connect(args.address)
    try:
        snapshots.delete(SimpleNamespace(controller=controller_actor(create=False), timeout_s=30.0), args.name)
    except ValueError:
        print("vectord cluster: no vectord cluster on this Ray cluster (run `vectord cluster up`)", file=sys.stderr)
        return 1
    except VectordError as exc:
        print(f"vectord cluster: {exc.message}", file=sys.stderr)
        return 1
    finally:
        ray.shutdown()
    print(f"deleted snapshot {args.name!r}")
    return 0


def import_command(args: argparse.Namespace) -> int:
    import vectord
    from vectord.errors import VectordError

    from .ingest import run_import, source_format

    if args.batch_size < 1 or args.workers < 1:
        print(f"vectord cluster import: --batch-size and --workers must be >= 1, got {args.batch_size}, "
              f"{args.workers}", file=sys.stderr)
        return 2
    try:
        fmt = source_format(args.source, args.format)
    except ValueError as exc:
        print(f"vectord cluster import: {exc}", file=sys.stderr)
        return 2
    try:
        import ray.data as _ray_data  # noqa: F401 (its pandas is an extra of ray)
    except ImportError:
        print("vectord cluster import: Ray Data is not installed: pip install \"vectord[cluster]\"", file=sys.stderr)
        return 2
    ray = _connect(args.address)
    from .controller import controller_actor

    try:
        tables = [t for t in ray.get(controller_actor(create=False).tables.remote(), timeout=30)
                  if t["name"] == args.collection]
    except ValueError:
        print("vectord cluster import: no vectord cluster on this Ray cluster (run `vectord cluster up`)",
              file=sys.stderr)
        return 1
    if not tables:
        print(f"vectord cluster import: collection {args.collection!r} does not exist on the cluster "
              "(create it through the gateway first)", file=sys.stderr)
        return 1
    client = vectord.Client(args.gateway, api_key=args.api_key or os.environ.get("VECTORD_API_KEY"), timeout=120)
    try:
        run_import(client, tables[0], client.get_collection(args.collection), args.source, fmt,
                   workers=args.workers, batch_size=args.batch_size, id_prefix=args.id_prefix)
    except (VectordError, ValueError, OSError) as exc:
        print(f"vectord cluster import: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    finally:
        client.close()
        ray.shutdown()
    return 0
