"""CPU per remote query: vectord's server and client against the suite's gRPC + hnswlib ceiling
and bare-gRPC floor (issue 13, item 1: where a remote call's time goes).

    python benchmarks/remote_cpu.py [--n 100000] [--seconds 5] [--rounds 3] [--out RESULT.json]

Three servers on GloVe n x 50 (cosine, M=16, ef_construction=100, ef=100, k=10, as the suite):
`vectord serve` (loaded through an embedded client first, graph complete; asked by the SDK as it
comes, queries over Records.QueryStream and concurrent ones batched, and by one set to send each
query as a Query call of its own), the ceiling (a bare
grpcio server whose handler runs raw hnswlib's ``knn_query``, benchmarks/suite/floor.py) and the
floor (the same server echoing bytes of vectord's sizes). Each is asked single queries from 1
and then 8 client threads for ``--seconds``, in rounds that alternate the servers; the CPU
time (user + system, /proc/PID/stat) that the server process and this client process spent
in each run, divided by the queries answered, says what a query costs each side. At 8 threads
the servers are not short of cores (on 2 cores vectord's used ~1.2 and its client ~0.45):
the per-query figures show how much more work vectord does than the ceiling, the gap a faster
8-thread figure would have to close.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.core import load_glove  # noqa: E402
from benchmarks.suite.floor import CeilingAdapter, FloorAdapter  # noqa: E402
from benchmarks.suite.systems import EF, EF_CONSTRUCTION, HNSW, M  # noqa: E402

K = 10
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def run(search, queries: np.ndarray, threads: int, seconds: float, server_pid: int) -> dict:
    """Single queries from ``threads`` threads for ``seconds``: QPS and CPU us per query."""
    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def worker(slot: int) -> None:
        i = slot
        while time.perf_counter() < deadline:
            search(queries[i % len(queries)][None, :])
            counts[slot] += 1
            i += threads

    server0, client0, t0 = cpu_seconds(server_pid), cpu_seconds(os.getpid()), time.perf_counter()
    pool = [threading.Thread(target=worker, args=(s,)) for s in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed, done = time.perf_counter() - t0, sum(counts)
    server, client = cpu_seconds(server_pid) - server0, cpu_seconds(os.getpid()) - client0
    return {"qps": done / elapsed, "server_us": server / done * 1e6, "client_us": client / done * 1e6,
            "server_cores": server / elapsed, "client_cores": client / elapsed}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="GloVe records (default 100,000)")
    p.add_argument("--seconds", type=float, default=5.0, help="each run's length (default 5)")
    p.add_argument("--rounds", type=int, default=3, help="rounds over the servers (default 3)")
    p.add_argument("--out", type=Path, help="write the results to this JSON file")
    args = p.parse_args()
    import vectord
    from vectord.testing import start_server

    everything = load_glove(args.n + 1000)
    data, queries = everything[:args.n], everything[args.n:]
    work = Path(tempfile.mkdtemp(prefix="remote-cpu-"))
    servers: dict = {}
    try:
        embedded = vectord.Client(path=str(work / "vectord"))
        col = embedded.create_collection("bench", dim=data.shape[1], metric="cosine", hnsw=HNSW)
        for start in range(0, args.n, 1000):
            col.add(ids=[str(i) for i in range(start, min(start + 1000, args.n))], embeddings=data[start:start + 1000])
        engine = embedded._transport._server.database.get_collection("bench")
        engine._indexer.drain()
        embedded.close()
        proc = start_server(work / "vectord", timeout=300)
        client = vectord.Client(proc.address, timeout=600)
        remote = client.get_collection("bench")
        servers["vectord remote"] = (lambda q: remote.query(query_embeddings=q, n_results=K, include=[]),
                                     proc.proc.pid, (client, proc))
        unary_client = vectord.Client(proc.address, timeout=600)
        unary_client._transport.stream_queries = False  # every query a Records.Query call of its own,
        unary_client._transport.coalesce_queries = False  # as before streams and batching (client/coalesce.py)
        unary = unary_client.get_collection("bench")
        servers["vectord remote, Query calls"] = (
            lambda q: unary.query(query_embeddings=q, n_results=K, include=[]), proc.proc.pid, (unary_client, None))
        np.save(work / "data.npy", data)
        ceiling = CeilingAdapter(work / "data.npy", data.shape[1], K, [1])
        search = ceiling.searcher()
        servers["gRPC + hnswlib ceiling"] = (lambda q: search(q, K, None), ceiling.proc.pid, ceiling)
        floor = FloorAdapter(data.shape[1], K, [1])
        echo = floor.searcher()
        servers["bare-gRPC floor"] = (lambda q: echo(q, K, None), floor.proc.pid, floor)
        for name, (call, _, _) in servers.items():  # warm: connections, caches
            for q in queries[:50]:
                call(q[None, :])
        results: dict = {name: {1: [], 8: []} for name in servers}
        order = list(servers)
        for r in range(args.rounds):
            for name in order if r % 2 == 0 else order[::-1]:
                call, pid, _ = servers[name]
                for threads in (1, 8):
                    res = run(call, queries, threads, args.seconds, pid)
                    results[name][threads].append(res)
                    print(f"round {r + 1} {name}, {threads} thread(s): " +
                          ", ".join(f"{k} {v:,.2f}" for k, v in res.items()), flush=True)
        summary = {name: {threads: {k: float(np.median([run_[k] for run_ in runs])) for k in runs[0]}
                          for threads, runs in by_threads.items()} for name, by_threads in results.items()}
        print(json.dumps(summary, indent=1))
        if args.out:
            args.out.write_text(json.dumps({"n": args.n, "seconds": args.seconds, "rounds": args.rounds,
                                            "settings": {"m": M, "ef_construction": EF_CONSTRUCTION, "ef": EF, "k": K},
                                            "medians": summary, "runs": results}, indent=1) + "\n")
    finally:
        for name, (_, _, owner) in servers.items():
            if name.startswith("vectord remote"):
                owner[0].close()
                if owner[1] is not None:
                    owner[1].terminate(timeout=300)
            else:
                owner.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
