"""Where a remote batch's time goes (issue 13, batched queries at 100 per call).

    python benchmarks/batch_split.py [--per-call 100] [--rounds 7]

One process, GloVe 100k x 50 (the suite's data and settings), five ways to answer the same
``--per-call`` queries, measured in alternation (median call of 30, per round):

- ``raw2`` / ``raw1``: raw hnswlib ``knn_query`` in this process, 2 threads (the suite's
  baseline) and 1 thread;
- ``floor``: the suite's bare-gRPC echo with the same payload sizes (benchmarks/suite/floor.py);
- ``ceiling``: the same gRPC server searching raw hnswlib in its handler;
- ``remote``: a real `vectord serve` through the SDK (``include=[]``, a packed batch);
- ``engine``: that server's own time for the call, as ``explain`` reports it (validation,
  plan and search; the reply's conversion is outside it).

``remote - engine`` is then what the call costs around the search (gRPC, the servicer, the
SDK), and ``engine - raw2`` what the search costs in a server process over this one.

Beside each median, the CPU time (user + system, clock ticks: +-0.33 ms a call over 30) that
this process and, for ``ceiling`` and ``remote``, the server process spent per call: does a
remote batch cost its server more CPU for the same search, or run less in parallel?
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.core import load_glove  # noqa: E402
from benchmarks.suite.floor import CeilingAdapter, FloorAdapter  # noqa: E402
from benchmarks.suite.systems import EF, EF_CONSTRUCTION, HNSW, K, M  # noqa: E402

N = 100_000


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median_ms(call, n: int = 30, server: int | None = None) -> tuple[float, float, float]:
    """The median of ``n`` calls' wall times, and the CPU this process and ``server`` (a pid)
    spent per call, all in ms."""
    times = []
    mine, theirs = os.times(), process_cpu_s(server) if server else 0.0
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    after = os.times()
    cpu = (after.user + after.system) - (mine.user + mine.system)
    server_cpu = process_cpu_s(server) - theirs if server else 0.0
    return float(np.median(times)) * 1000, cpu * 1000 / n, server_cpu * 1000 / n


def main() -> None:
    import hnswlib

    import vectord
    from vectord.testing import start_server

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-call", type=int, default=100, help="queries per call (default 100)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of alternation (default 7)")
    args = parser.parse_args()

    vectors = load_glove(N + args.per_call)
    data, queries = vectors[:N], vectors[N:N + args.per_call].copy()
    work = Path(tempfile.mkdtemp(prefix="batch-split-"))
    raw = hnswlib.Index(space="cosine", dim=data.shape[1])
    raw.init_index(N, M=M, ef_construction=EF_CONSTRUCTION)
    raw.add_items(data, np.arange(N))
    raw.set_ef(EF)
    np.save(work / "data.npy", data)
    ceiling = CeilingAdapter(work / "data.npy", data.shape[1], K, [args.per_call])
    floor = FloorAdapter(data.shape[1], K, [args.per_call])
    server = start_server(work / "vectord", timeout=120)
    client = vectord.Client(server.address, timeout=600)
    try:
        col = client.create_collection("bench", dim=data.shape[1], metric="cosine", hnsw=HNSW)
        for start in range(0, N, 1000):
            col.add(ids=[str(i) for i in range(start, start + 1000)], embeddings=data[start:start + 1000])
        while col.query(query_embeddings=queries[:1], n_results=1, include=[], explain=True)["plan"].get("tail"):
            time.sleep(0.1)  # every record in the graph, as the suite waits
        ways = {
            "raw2": lambda: raw.knn_query(queries, k=K, num_threads=-1),
            "raw1": lambda: raw.knn_query(queries, k=K, num_threads=1),
            "floor": lambda: floor.search_batch(queries, K),
            "ceiling": lambda: ceiling.search_batch(queries, K),
            "remote": lambda: col.query(query_embeddings=queries, n_results=K, include=[]),
        }
        servers = {"ceiling": ceiling.proc.pid, "remote": server.proc.pid}
        rows: dict[str, list[float]] = {name: [] for name in [*ways, "engine"]}
        cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
        for _ in range(args.rounds):
            for name, call in ways.items():
                wall, mine, theirs = median_ms(call, server=servers.get(name))
                rows[name].append(wall)
                cpu[name].append((mine, theirs))
            rows["engine"].append(float(np.median([
                col.query(query_embeddings=queries, n_results=K, include=[], explain=True)["plan"]["elapsed_ms"]
                for _ in range(30)])))
        print(f"{args.per_call} queries per call, GloVe 100k x 50, median call per round (ms):")
        for name, values in rows.items():
            spent = ""
            if name in cpu:  # CPU per call, median over the rounds
                mine, theirs = np.median([c[0] for c in cpu[name]]), np.median([c[1] for c in cpu[name]])
                spent = f"   CPU: this process {mine:.2f}" + (f", server {theirs:.2f}" if name in servers else "")
            print(f"  {name:8s} {np.median(values):7.2f}   rounds: {' '.join(f'{v:.2f}' for v in values)}{spent}")
        raw2, remote = np.median(rows["raw2"]), np.median(rows["remote"])
        print(f"remote / raw2 throughput {raw2 / remote:.2f}; ceiling / raw2 {raw2 / np.median(rows['ceiling']):.2f}; "
              f"around the search (remote - engine) {remote - np.median(rows['engine']):.2f} ms")
    finally:
        client.close()
        server.terminate(timeout=60)
        floor.close()
        ceiling.close()


if __name__ == "__main__":
    main()
