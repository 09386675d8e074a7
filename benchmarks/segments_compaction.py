"""Queries during compaction, one state vs sealed segments (docs/segments.md), in-process.

    python benchmarks/segments_compaction.py [--n 50000] [--dim 128] [--segments 4] [--out PATH]

Each engine runs in its own subprocess, one after the other, on the same data: n clustered
vectors added in batches (of n / segments / 5 with segments), checkpointed; with segments, ``seal_rows`` =
``max_segment_rows`` = n / segments, so the collection ends as that many sealed segments;
then 40% of the records (spread over all of them) deleted. One thread queries (k=10)
back to back for ``--seconds`` (steady state), then while ``checkpoint(compact=True)``
runs: one state rebuilds everything; segments compact one segment at a time. Reported:
p50 / p99 / longest query of both phases, and the process's RSS: median in the steady
state, and the peak during compaction (VmHWM, reset before it through /proc/self/clear_refs);
and the peak RSS of the largest child process of the whole run (the graph writers of
storage/graph_child.py, outside the process's RSS).

In-process (no gRPC) on purpose: it isolates the engine; benchmarks/compaction.py measures
through a real server (its server has no knob yet for max_segment_rows, and a server
that seals compacts due segments in the background by itself).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys, threading, time, tempfile
import numpy as np
from vectord.storage import Database, Tuning
n, dim, segments, seconds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
rows = n // segments if segments else 0
tuning = Tuning(seal_rows=rows, max_segment_rows=rows, compact_min_dead=1 << 40)
rng = np.random.default_rng(1)
centers = rng.normal(size=(64, dim)).astype(np.float32)
vectors = (centers[rng.integers(0, 64, n)] + 0.5 * rng.normal(size=(n, dim))).astype(np.float32)
queries = (centers[rng.integers(0, 64, 500)] + 0.5 * rng.normal(size=(500, dim))).astype(np.float32)
with Database(tempfile.mkdtemp() + "/d", tuning=tuning, checkpoint_interval_s=3600) as db:
    col = db.create_collection("c", dim=dim)
    ids = [f"r{i}" for i in range(n)]
    batch = max(1, rows // 5) if segments else 2500  # a seal at exactly rows records
    for s in range(0, n, batch):
        col.add(ids[s:s + batch], vectors[s:s + batch])
        if segments:
            col.checkpoint()
    col.checkpoint()
    col._indexer.drain(600)
    gone = np.random.default_rng(2).choice(n, int(0.4 * n), replace=False)
    for s in range(0, len(gone), 5000):
        col.delete(ids=[ids[i] for i in gone[s:s + 5000].tolist()])
    col._indexer.drain(600)
    def loop(stop, out):
        i = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            col.query(queries[i % 500:i % 500 + 1], n_results=10, include=[])
            out.append((t0, time.perf_counter() - t0))
            i += 1
    def phase(action):
        stop, out = threading.Event(), []
        worker = threading.Thread(target=loop, args=(stop, out))
        worker.start()
        t0 = time.perf_counter()
        action()
        t1 = time.perf_counter()
        stop.set(); worker.join()
        return [s for t, s in out if t + s >= t0 and t <= t1], t1 - t0
    rss = []
    def steady():
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            rss.append(status("VmRSS:")); time.sleep(0.05)
    steady_lat, _ = phase(steady)
    open("/proc/self/clear_refs", "w").write("5")  # VmHWM := VmRSS
    during, took = phase(lambda: col.checkpoint(compact=True))
    peak = status("VmHWM:")
    def summary(lat):
        ms = np.asarray(lat) * 1000
        return {"queries": len(ms), "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
                "max_ms": float(ms.max())}
    import resource  # the largest child process's peak (storage/graph_child.py's graph writers)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"segments": len(col.sealed), "live": col.count(), "compact_s": took,
                      "children_peak_rss_mib": children,
                      "steady": summary(steady_lat), "during": summary(during),
                      "rss_steady_mib": float(np.median(rss)), "rss_peak_mib": peak}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50_000, help="records added (default 50,000)")
    parser.add_argument("--dim", type=int, default=128, help="vector dimension (default 128)")
    parser.add_argument("--segments", type=int, default=4, help="sealed segments of the segment engine (default 4)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of steady-state queries (default 10)")
    parser.add_argument("--compare-tree", metavar="TREE",
                        help="also run the segment engine from this checkout (PYTHONPATH=TREE/src:TREE, its "
                             "src/vectord/<part> linked to its packages), before this one's: an A/B in one run")
    parser.add_argument("--no-one-state", action="store_true", help="skip the one-state engine")
    parser.add_argument("--out", help="write the results as JSON to this path")
    args = parser.parse_args()
    results = {}
    runs = [] if args.no_one_state else [("one state", 0, None)]
    if args.compare_tree:
        runs.append((f"{args.segments} segments ({args.compare_tree})", args.segments, args.compare_tree))
    runs.append((f"{args.segments} segments", args.segments, None))
    for name, segments, tree in runs:
        env = dict(os.environ)
        if tree:
            env["PYTHONPATH"] = f"{tree}/src:{tree}"
        proc = subprocess.run([sys.executable, "-c", CHILD, str(args.n), str(args.dim), str(segments),
                               str(args.seconds)], capture_output=True, text=True, timeout=3600, env=env)
        if proc.returncode:
            sys.exit(proc.stderr[-3000:])
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, r in results.items():
        r["p99_ratio"] = r["during"]["p99_ms"] / r["steady"]["p99_ms"]
        r["rss_ratio"] = r["rss_peak_mib"] / r["rss_steady_mib"]
        print(f"{name}: segments {r['segments']}, live {r['live']}, compaction {r['compact_s']:.1f} s; "
              f"steady p50/p99/max {r['steady']['p50_ms']:.2f}/{r['steady']['p99_ms']:.2f}/{r['steady']['max_ms']:.1f} ms; "
              f"during p50/p99/max {r['during']['p50_ms']:.2f}/{r['during']['p99_ms']:.2f}/{r['during']['max_ms']:.1f} ms "
              f"({r['during']['queries']} queries); p99 ratio {r['p99_ratio']:.2f}; "
              f"RSS steady {r['rss_steady_mib']:.0f} MiB, peak {r['rss_peak_mib']:.0f} MiB, ratio {r['rss_ratio']:.2f}; "
              f"largest child process peak {r.get('children_peak_rss_mib', 0):.0f} MiB")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"args": vars(args), "results": results}, handle, indent=1)


if __name__ == "__main__":
    main()
