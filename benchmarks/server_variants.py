"""Which gRPC server shape is cheapest per call (issue 13, item 1): the sync server vectord
uses against ``grpc.aio``, measured as bare echoes with vectord's payload sizes.

    python benchmarks/server_variants.py [--calls 1500] [--rounds 4] \
        [--out benchmarks/results/server-variants-DATE]

Each variant is an echo server in its own subprocess (vectord's server options), 223 bytes in
and 110 bytes back (a real one-query request and its 10-id reply); one client thread, one
channel, the variants interleaved in ``--rounds`` rounds so that drift on a shared machine
hits all alike. With ``--knn`` every handler first runs a bare hnswlib search (20,000 random
50-d vectors, M=16, ef 100; GIL released): what the server shape does to a handler that
does real work.

- ``sync-16``: ``grpc.server`` with a 16-thread pool: what vectord serves with;
- ``sync-2``: the same, 2 threads;
- ``aio-inline``: ``grpc.aio.server``, the handler an ``async def`` run on the event loop
  (no hand-off to a thread; a long query would block every other call);
- ``aio-pool``: ``grpc.aio.server`` with a sync handler, run in its migration thread pool
  (what keeping vectord's sync servicers under aio would mean);
- ``sync-16, no client retries``: the sync server, the client channel with
  ``grpc.enable_retries = 0`` (gRPC's own retry buffering off; the SDK retries itself).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

SERVER = textwrap.dedent("""
    import asyncio, sys
    from concurrent import futures
    import grpc
    from vectord.server.app import SERVER_OPTIONS
    mode, knn = sys.argv[1], sys.argv[2] == "1"
    reply = b"r" * 110
    if knn:
        import numpy as np, hnswlib
        data = np.random.default_rng(0).standard_normal((20000, 50)).astype(np.float32)
        index = hnswlib.Index(space="cosine", dim=50)
        index.init_index(max_elements=20000, M=16, ef_construction=100)
        index.add_items(data)
        index.set_ef(100)
        queries, turn = data[:1000] + 0.1, [0]
        def work():
            turn[0] = (turn[0] + 1) % 1000
            index.knn_query(queries[turn[0]:turn[0] + 1], k=10, num_threads=1)
    else:
        def work():
            pass
    def echo(request, context):
        work()
        return reply
    async def aecho(request, context):
        work()
        return reply
    def handlers(fn):
        return [grpc.method_handlers_generic_handler("bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(fn)})]
    if mode.startswith("sync"):
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=int(mode.split("-")[1])), options=SERVER_OPTIONS)
        server.add_generic_rpc_handlers(handlers(echo))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        print(port, flush=True)
        server.wait_for_termination()
    else:
        async def main():
            server = grpc.aio.server(options=SERVER_OPTIONS, migration_thread_pool=futures.ThreadPoolExecutor(16))
            server.add_generic_rpc_handlers(handlers(aecho if mode == "aio-inline" else echo))
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            print(port, flush=True)
            await server.wait_for_termination()
        asyncio.run(main())
""")

VARIANTS = {"sync-16": ("sync-16", False), "sync-2": ("sync-2", False), "aio-inline": ("aio-inline", False),
            "aio-pool": ("aio-pool", False), "sync-16, no client retries": ("sync-16", True)}


def main() -> None:
    import grpc

    from vectord.server.app import CHANNEL_OPTIONS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1500, help="calls per variant per round")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds")
    parser.add_argument("--out", default=f"benchmarks/results/server-variants-{time.strftime('%Y-%m-%d')}",
                        help="results path without extension (.json and .md written)")
    args = parser.parse_args()
    results, lines = {}, []
    for knn in (False, True):
        servers = {}
        try:
            for name, (mode, _) in VARIANTS.items():
                if mode not in servers:
                    proc = subprocess.Popen([sys.executable, "-c", SERVER, mode, "1" if knn else "0"],
                                            stdout=subprocess.PIPE, text=True)
                    servers[mode] = (proc, int(proc.stdout.readline()))
            samples = {name: [] for name in VARIANTS}
            request = b"q" * 223
            for _ in range(args.rounds):
                for name, (mode, no_retries) in VARIANTS.items():
                    options = CHANNEL_OPTIONS + ([("grpc.enable_retries", 0)] if no_retries else [])
                    channel = grpc.insecure_channel(f"127.0.0.1:{servers[mode][1]}", options=options)
                    call = channel.unary_unary("/bench.Echo/Echo")
                    for _ in range(100):
                        call(request)
                    for _ in range(args.calls):
                        t0 = time.perf_counter_ns()
                        call(request)
                        samples[name].append(time.perf_counter_ns() - t0)
                    channel.close()
        finally:
            for proc, _ in servers.values():
                proc.kill()
                proc.wait()
        label = "handler runs a bare hnswlib search" if knn else "empty handler"
        base = float(np.median(samples["sync-16"]))
        for name, ns in samples.items():
            us = np.asarray(ns) / 1000
            results[f"{name} | {label}"] = {"median_us": float(np.median(us)), "p99_us": float(np.percentile(us, 99)),
                                            "x_sync16": float(np.median(ns)) / base}
            lines.append(f"| {name} | {label} | {np.median(us):,.0f} | {np.percentile(us, 99):,.0f} | "
                         f"{float(np.median(ns)) / base:.2f} |")
            print(lines[-1], flush=True)
    table = ["| server | handler | median us | p99 us | x sync-16 (same handler) |", "|---|---|---:|---:|---:|", *lines]
    Path(args.out + ".json").write_text(json.dumps(results, indent=1))
    Path(args.out + ".md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
