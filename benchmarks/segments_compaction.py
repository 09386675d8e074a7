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
and, sampled every 20 ms from this process, the peak of the process's RSS plus its child
processes' anonymous memory (the graph writers of storage/graph_child.py, on by default;
``--no-graph-in-child``: saved in-process). The 10 longest queries during
compaction are attributed: the longest gap within each of a ticker thread of the engine's
process and of a ticker process beside it (a gap in both: the machine's scheduling; in the
process only: the engine, e.g. a C call holding the GIL, or a lock).

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

from compaction import Sampler  # benchmarks/compaction.py: RSS and child processes' memory

CHILD = r"""
import json, sys, threading, time, tempfile
import numpy as np
from vectord.storage import Database, Tuning
n, dim, segments, seconds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
if float(sys.argv[6]):
    sys.setswitchinterval(float(sys.argv[6]) / 1000)  # --switch-interval-ms
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
rows = n // segments if segments else 0
tuning = Tuning(seal_rows=rows, max_segment_rows=rows, compact_min_dead=1 << 40)
if hasattr(tuning, "graph_in_child"):  # a tree of before the flag has no such setting (--compare-tree)
    tuning.graph_in_child = sys.argv[5] == "child"
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
        kept = [(t, s) for t, s in out if t + s >= t0 and t <= t1]
        phase.pairs = kept  # (start, seconds) of each query, for the stalls below
        return [s for t, s in kept], t1 - t0
    rss = []
    def steady():
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            rss.append(status("VmRSS:")); time.sleep(0.05)
    steady_lat, _ = phase(steady)
    open("/proc/self/clear_refs", "w").write("5")  # VmHWM := VmRSS
    offset = time.time() - time.perf_counter()  # wall clock, shared with the machine's ticker
    gaps, ticking = [], threading.Event()
    def tick():  # this process's stalls (the GIL's and the scheduler's), > 30 ms
        last = time.perf_counter()
        while not ticking.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            if now - last > 0.03:
                gaps.append((last + offset, (now - last) * 1000))
            last = now
    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    window = [time.monotonic()]  # of the compaction, for the RSS sampled from outside
    during, took = phase(lambda: col.checkpoint(compact=True))
    window.append(time.monotonic())
    ticking.set(); ticker.join()
    peak = status("VmHWM:")
    # the 10 longest queries during compaction (wall-clock start, ms), and this process's tick gaps
    stalls = sorted(((t + offset, s * 1000) for t, s in phase.pairs), key=lambda x: -x[1])[:10]
    def summary(lat):
        ms = np.asarray(lat) * 1000
        return {"queries": len(ms), "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
                "max_ms": float(ms.max())}
    print(json.dumps({"segments": len(col.sealed), "live": col.count(), "compact_s": took,
                      "window": window, "stalls": stalls, "process_gaps": gaps,
                      "steady": summary(steady_lat), "during": summary(during),
                      "rss_steady_mib": float(np.median(rss)), "rss_peak_mib": peak}))
"""


# A separate process (no GIL shared with the engine) that wakes every millisecond and prints
# its gaps over 30 ms (wall clock, ms): the machine's scheduling stalls, to tell them from
# the engine's own (a long query with no gap here was the process's: the GIL or a lock).
MACHINE_TICKER = r"""
import sys, time
last = time.time()
while True:
    time.sleep(0.001)
    now = time.time()
    if now - last > 0.03:
        print(last, (now - last) * 1000, flush=True)
    last = now
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
    parser.add_argument("--graph-in-child", action=argparse.BooleanOptionalAction, default=True,
                        help="segment graphs saved by a child process (Tuning.graph_in_child; the default)")
    parser.add_argument("--switch-interval-ms", type=float, default=0.0,
                        help="sys.setswitchinterval in the engine's process (default 0: Python's, 5 ms)")
    args = parser.parse_args()
    results = {}
    runs = [] if args.no_one_state else [("one state", 0, None)]
    if args.compare_tree:
        runs.append((f"{args.segments} segments ({args.compare_tree})", args.segments, args.compare_tree))
    runs.append((f"{args.segments} segments", args.segments, None))
    machine = subprocess.Popen([sys.executable, "-c", MACHINE_TICKER], stdout=subprocess.PIPE, text=True)
    for name, segments, tree in runs:
        env = dict(os.environ)
        if tree:
            env["PYTHONPATH"] = f"{tree}/src:{tree}"
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(args.n), str(args.dim), str(segments),
                                 str(args.seconds), "child" if args.graph_in_child else "in-process",
                                 str(args.switch_interval_ms)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        sampler = Sampler(proc.pid)  # from this process: no /proc scans in the engine's
        sampler.start()
        out, err = proc.communicate(timeout=3600)
        sampler.stop.set()
        sampler.join()
        if proc.returncode:
            sys.exit(err[-3000:])
        result = results[name] = json.loads(out.strip().splitlines()[-1])
        start, end = result.pop("window")
        result["rss_with_children_peak_mib"] = max(sampler.with_children_between(start, end), default=0.0)
        result["children_anon_peak_mib"] = max((c for t, _, c in sampler.samples if start <= t <= end), default=0.0)
    machine.terminate()
    machine_gaps = [tuple(map(float, line.split())) for line in machine.communicate()[0].splitlines()]
    for r in results.values():  # each long query: the longest gap of this process's and the machine's ticker in it
        r["stalls"] = [{"start": t, "ms": ms,
                        "process_gap_ms": max([g for s, g in r["process_gaps"] if s < t + ms / 1000 and s + g / 1000 > t],
                                              default=0.0),
                        "machine_gap_ms": max([g for s, g in machine_gaps if s < t + ms / 1000 and s + g / 1000 > t],
                                              default=0.0)}
                       for t, ms in r["stalls"]]
        r["process_gaps"] = len(r["process_gaps"])
    for name, r in results.items():
        r["p99_ratio"] = r["during"]["p99_ms"] / r["steady"]["p99_ms"]
        r["rss_ratio"] = r["rss_peak_mib"] / r["rss_steady_mib"]
        print(f"{name}: segments {r['segments']}, live {r['live']}, compaction {r['compact_s']:.1f} s; "
              f"steady p50/p99/max {r['steady']['p50_ms']:.2f}/{r['steady']['p99_ms']:.2f}/{r['steady']['max_ms']:.1f} ms; "
              f"during p50/p99/max {r['during']['p50_ms']:.2f}/{r['during']['p99_ms']:.2f}/{r['during']['max_ms']:.1f} ms "
              f"({r['during']['queries']} queries); p99 ratio {r['p99_ratio']:.2f}; "
              f"RSS steady {r['rss_steady_mib']:.0f} MiB, peak {r['rss_peak_mib']:.0f} MiB, ratio {r['rss_ratio']:.2f}")
        r["rss_with_children_ratio"] = r["rss_with_children_peak_mib"] / r["rss_steady_mib"]
        print(f"    with its child processes (sampled every 20 ms: RSS + their anonymous memory): peak "
              f"{r['rss_with_children_peak_mib']:.0f} MiB, ratio {r['rss_with_children_ratio']:.2f} (target <= 1.2); "
              f"children's anonymous memory at most {r['children_anon_peak_mib']:.0f} MiB")
        for stall in r["stalls"][:5]:
            print(f"    query of {stall['ms']:.0f} ms: this process's longest tick gap in it {stall['process_gap_ms']:.0f} ms, "
                  f"the machine ticker's {stall['machine_gap_ms']:.0f} ms")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"args": vars(args), "results": results}, handle, indent=1)


if __name__ == "__main__":
    main()
