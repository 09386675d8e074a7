"""CPU time of one 100-query batch: raw hnswlib ``knn_query`` in this process against the
suite's gRPC + hnswlib ceiling (benchmarks/suite/floor.py), issue 13's batched target.

    python benchmarks/batch_cpu.py [--n 100000] [--calls 30] [--rounds 4]

GloVe n x 50 (cosine, M=16, ef_construction=100, ef=100, k=10, random_seed 100 for both
indexes). In each round, ``--calls`` batches of 100 held-out queries go to raw knn_query (2
threads) and then to the ceiling's server; printed per batch: the wall time, and the CPU
time (user + system, /proc and os.times) of this process and of the server's. The
difference says whether a remote batch is slower because its server does more work for
the same search (CPU) or because the work runs less in parallel (wall at equal CPU).
Then raw knn_query with 1 thread, for the single-core cost of the same batches.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.core import load_glove  # noqa: E402
from benchmarks.suite.floor import CeilingAdapter  # noqa: E402
from benchmarks.suite.systems import EF, EF_CONSTRUCTION, K, M  # noqa: E402

BATCH = 100


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    import hnswlib

    everything = load_glove(args.n + 1000)
    data, queries = everything[:args.n], everything[args.n:args.n + 1000].copy()
    workdir = Path(tempfile.mkdtemp())
    np.save(workdir / "data.npy", data)
    raw = hnswlib.Index(space="cosine", dim=data.shape[1])
    raw.init_index(max_elements=args.n, M=M, ef_construction=EF_CONSTRUCTION, random_seed=100)
    raw.add_items(data, np.arange(args.n))
    raw.set_ef(EF)
    ceiling = CeilingAdapter(workdir / "data.npy", data.shape[1], K, [BATCH])
    server = ceiling.proc.pid

    def run(search) -> tuple[float, float, float]:
        """Per batch, in ms: wall, this process's CPU, the server's CPU."""
        mine, theirs, started = os.times(), process_cpu_s(server), time.perf_counter()
        for i in range(args.calls):
            start = (i * BATCH) % len(queries)
            search(queries[start:start + BATCH])
        wall = time.perf_counter() - started
        after = os.times()
        cpu = (after.user + after.system) - (mine.user + mine.system)
        return (wall * 1e3 / args.calls, cpu * 1e3 / args.calls,
                (process_cpu_s(server) - theirs) * 1e3 / args.calls)

    try:
        ceiling.search_batch(queries[:BATCH], K)  # connected, warmed
        print(f"GloVe {args.n:,} x {data.shape[1]}, batches of {BATCH}, {args.calls} a round; ms a batch")
        for r in range(args.rounds):
            wall, cpu, _ = run(lambda q: raw.knn_query(q, k=K, num_threads=2))
            c_wall, c_client, c_server = run(lambda q: ceiling.search_batch(q, K))
            print(f"round {r + 1}: raw knn_query (2 threads) wall {wall:.2f}, CPU {cpu:.2f} | ceiling wall "
                  f"{c_wall:.2f}, server CPU {c_server:.2f}, client CPU {c_client:.2f}", flush=True)
        for r in range(2):
            wall, cpu, _ = run(lambda q: raw.knn_query(q, k=K, num_threads=1))
            print(f"raw knn_query (1 thread) wall {wall:.2f}, CPU {cpu:.2f}")
    finally:
        ceiling.close()


if __name__ == "__main__":
    main()
