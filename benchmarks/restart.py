"""Restart times of a large collection through a real server: after a clean shutdown, and
after kill -9 with many records still in the log (issue 12's recovery targets).

    python benchmarks/restart.py --n 1000000 --dim 384 --log-records 100000 \
        --work /work/cache/bench-restart --out benchmarks/results/restart-DATE

Steps, each timed from the server process's start to its first answered query:

1. a base collection of ``--n`` clustered vectors (metadata ``{"bucket": i % 1000}``) is
   built once in-process (the embedded client, same engine and files as the server),
   checkpointed (sealed and merged) and closed cleanly; ``--work`` keeps it for later runs of the same code (``--rebuild`` to
   build again, e.g. after the on-disk format changed);
2. **clean**: a server starts on a copy of it (empty log) and answers one query;
3. **crash**: on that copy, the server is sent ``--log-records`` more records (acknowledged,
   so fsynced in the log; at 1M x 384 the log stays under the checkpoint threshold), then
   killed with SIGKILL; a new server starts, replays the log and answers one query. Its
   count must be n + log-records: nothing acknowledged may be lost.

Also reported: the server's RSS after each restart, and the log's size before the crash.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.core import clustered  # noqa: E402

HNSW = {"m": 16, "ef_construction": 100, "ef_search": 100}
NAME = "bench"


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def batches(start: int, stop: int, dim: int, size: int):
    for first in range(start, stop, size):
        last = min(stop, first + size)
        # the seed depends on the batch, so a rebuild makes the same data
        vectors = clustered(last - first, dim, seed=10_000 + first)
        yield ([str(i) for i in range(first, last)], vectors,
               [{"bucket": i % 1000} for i in range(first, last)])


def build_base(base: Path, n: int, dim: int, batch: int) -> float:
    import vectord

    if base.exists():
        shutil.rmtree(base)
    started = time.perf_counter()
    client = vectord.Client(path=str(base))
    col = client.create_collection(NAME, dim=dim, metric="cosine", hnsw=HNSW)
    for done, (ids, vectors, metadatas) in enumerate(batches(0, n, dim, batch)):
        col.add(ids=ids, embeddings=vectors, metadatas=metadatas)
        if done % 20 == 0:
            print(f"  base: {len(ids) * (done + 1):,} / {n:,} "
                  f"({time.perf_counter() - started:,.0f} s)", flush=True)
    client.checkpoint(NAME)  # sealed and merged, as maintenance leaves it (a close does neither)
    client.close()
    return time.perf_counter() - started


def first_query(data_dir: Path, query: np.ndarray):
    """Seconds from a server's start to its first answered query; the server and its count."""
    import vectord
    from vectord.testing import start_server

    started = time.perf_counter()
    proc = start_server(data_dir, timeout=1800)
    client = vectord.Client(proc.address, timeout=1800)
    col = client.get_collection(NAME)
    col.query(query_embeddings=query[None, :], n_results=10, include=[])
    seconds = time.perf_counter() - started
    count = col.count()
    client.close()
    return seconds, proc, count


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="records in the base collection")
    p.add_argument("--dim", type=int, default=384, help="vector dimension")
    p.add_argument("--log-records", type=int, default=100_000, help="records left in the log for the crash case")
    p.add_argument("--batch", type=int, default=5000, help="records per write")
    p.add_argument("--work", type=Path, required=True, help="work directory (keeps the base collection)")
    p.add_argument("--rebuild", action="store_true", help="build the base collection again")
    p.add_argument("--out", type=Path, help="write OUT.json and OUT.md")
    args = p.parse_args()

    import vectord
    from vectord.testing import start_server

    args.work.mkdir(parents=True, exist_ok=True)
    base = args.work / "base"
    marker = args.work / "base.json"
    wanted = {"n": args.n, "dim": args.dim}
    build_s = None
    if args.rebuild or not marker.exists() or json.loads(marker.read_text()) != wanted:
        marker.unlink(missing_ok=True)
        build_s = build_base(base, args.n, args.dim, args.batch)
        marker.write_text(json.dumps(wanted))
        print(f"base built in {build_s:,.0f} s", flush=True)
    query = clustered(1, args.dim, seed=1)[0]
    run = args.work / "run"
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(base, run)
    load_at_start = os.getloadavg()

    clean_s, proc, count = first_query(run, query)
    clean_rss = rss_bytes(proc.proc.pid)
    assert count == args.n, f"clean restart counted {count:,}, expected {args.n:,}"
    print(f"clean restart: {clean_s:.2f} s, RSS {clean_rss / 2**20:,.0f} MiB", flush=True)

    # the crash case: more records, acknowledged, then SIGKILL
    client = vectord.Client(proc.address, timeout=1800)
    col = client.get_collection(NAME)
    for ids, vectors, metadatas in batches(args.n, args.n + args.log_records, args.dim, args.batch):
        col.add(ids=ids, embeddings=vectors, metadatas=metadatas)
    client.close()
    wal_bytes = sum(f.stat().st_size for f in run.rglob("*.log")) or sum(
        f.stat().st_size for f in run.rglob("wal*") if f.is_file())
    proc.kill()
    crash_s, proc, count = first_query(run, query)
    crash_rss = rss_bytes(proc.proc.pid)
    expected = args.n + args.log_records
    lost = expected - count
    print(f"crash restart ({args.log_records:,} records in a {wal_bytes / 2**20:,.0f} MiB log): {crash_s:.2f} s, "
          f"RSS {crash_rss / 2**20:,.0f} MiB, count {count:,} (lost {lost})", flush=True)
    proc.terminate(timeout=1800)

    result = {"n": args.n, "dim": args.dim, "log_records": args.log_records, "build_s": build_s,
              "clean_restart_s": clean_s, "clean_rss": clean_rss, "crash_restart_s": crash_s,
              "crash_rss": crash_rss, "wal_bytes": wal_bytes, "lost": lost,
              "load_at_start": load_at_start, "machine": f"{os.cpu_count()} cores, {platform.platform()}"}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
        rows = [
            f"# Restart of {args.n:,} x {args.dim} through a real server",
            "",
            f"Command: `python benchmarks/restart.py --n {args.n} --dim {args.dim} --log-records "
            f"{args.log_records} --work WORK --out {args.out}`. Machine: {result['machine']}; load average at "
            f"start {load_at_start[0]:.1f} / {load_at_start[1]:.1f} / {load_at_start[2]:.1f}.",
            "",
            "| case | seconds to the first answered query | server RSS MiB | target |",
            "|---|---:|---:|---|",
            f"| clean shutdown, empty log | {clean_s:.2f} | {clean_rss / 2**20:,.0f} | <= 10 s |",
            f"| kill -9 with {args.log_records:,} records ({wal_bytes / 2**20:,.0f} MiB) in the log | "
            f"{crash_s:.2f} | {crash_rss / 2**20:,.0f} | <= 15 s |",
            "",
            f"Acknowledged records lost by the kill: {lost}.",
        ]
        args.out.with_suffix(".md").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
