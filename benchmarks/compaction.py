"""Queries during compaction (issue 12): how long one client's queries wait while `vectord
compact` runs, and how much memory the server takes meanwhile.

    python benchmarks/compaction.py [--n 50000] [--dim 384] [--deleted 0.4] \
        [--storage-from /tmp/old/storage] [--out benchmarks/results/compaction-DATE]
    python benchmarks/compaction.py --n 200000 --seal-rows 50000 --max-segment-rows 50000 \
        --compare-sealing --out benchmarks/results/compaction-segments-DATE

In one run, through a real `vectord serve` subprocess and the SDK over gRPC:

1. n random vectors (clustered, dim ``--dim``) are added, a ``--deleted`` share of them
   deleted, and the log checkpointed by the server itself (no compaction yet);
2. steady state: one client queries (k=10, cosine, defaults) for ``--seconds``;
3. during compaction: the same client queries while the rpc of ``vectord compact``
   (Admin.Checkpoint with compact, called from this process so that no CLI start shares
   the CPU) runs, from a moment before it starts until it returns.

It reports p50, p99 and the longest single query of both phases, and the server's RSS
(sampled from /proc every 20 ms): the median in the steady state and the peak during
compaction. ``--storage-from DIR`` serves with another ``storage/`` package (e.g. a
``git worktree`` of the commit before a change), everything else unchanged, so that the
old engine and the new are measured with the same server, client and machine.

Sealed segments (docs/segments.md): ``--seal-rows N --max-segment-rows M`` start the server
with those flags. The ingest then pauses after every N records until the server has sealed
them (explain's plan lists the segments), so that the collection holds n / N sealed
segments of N records and an empty tail before the deletes. ``--compare-sealing`` runs
twice in one invocation, one state (no sealing) then sealing, and reports both.

In both modes the server's background compaction is held off (its ``compact_min_dead`` is
set out of reach in the server process, as benchmarks/segments_compaction.py does
in-process), so that the compaction measured is the one the rpc runs: a sealing server
would otherwise compact each segment by itself as the deletes pass its threshold, before
the steady state. The rpc's ``compact=True`` compacts every segment with a deleted slot,
one at a time, then the tail. The deleted slots before and after it, and the segments'
sizes, are read from the server itself (its Prometheus metrics and explain).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import urllib.request

import grpc
import numpy as np

import vectord
import vectord.errors
from vectord.v1 import admin_pb2, admin_pb2_grpc

NAME = "bench"
K = 10
#: The client's deadline: long, so that a query's wait is measured, not cut at the SDK's
#: default 30 s (the old engine's compaction of 100k x 384 held a query past it).
CLIENT_TIMEOUT_S = 600.0

# Serves like `python -m vectord serve`, with vectord.storage taken from another tree
# (the editable install's finder maps each package to a folder; the map is read at import).
LAUNCHER = """
import dataclasses, runpy, sys
storage = sys.argv.pop(1)
compact_min_dead = int(sys.argv.pop(1))
if storage:
    for module in list(sys.modules.values()):
        mapping = getattr(module, "MAPPING", None)
        if isinstance(mapping, dict) and "vectord.storage" in mapping:
            mapping["vectord.storage"] = storage
            break
    else:
        sys.exit("--storage-from needs vectord installed editable (pip install -e .)")
import vectord.storage
print("engine:", vectord.storage.__file__, file=sys.stderr, flush=True)
if compact_min_dead:  # background compaction out of reach: only Admin.Checkpoint(compact=True) compacts
    vectord.storage.Tuning = dataclasses.make_dataclass(
        "Tuning", [("compact_min_dead", int, dataclasses.field(default=compact_min_dead))],
        bases=(vectord.storage.Tuning,))
sys.argv[0] = "vectord"
runpy.run_module("vectord", run_name="__main__")
"""


def engine(log_path: Path) -> str:
    """The storage package the server imported (its first log line)."""
    for line in log_path.read_text().splitlines():
        if line.startswith("engine: "):
            return str(Path(line.split(" ", 1)[1]).parent)
    raise RuntimeError(f"{log_path}: the server did not say which storage package it runs")


#: The server's compact_min_dead: no background compaction (see the module docstring).
NO_BACKGROUND_COMPACTION = 1 << 40


def start(data_dir: Path, storage: str, flags: list[str]) -> tuple[subprocess.Popen, str, str, str]:
    """The server, its address, the storage package it imported and its metrics address."""
    log_path = data_dir.parent / "server.log"
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, storage, str(NO_BACKGROUND_COMPACTION), "serve",
                             "--data-dir", str(data_dir), "--port", "0", "--metrics-port", "0", *flags],
                            stdout=subprocess.PIPE, stderr=open(log_path, "wb"), text=True)
    deadline = time.monotonic() + 120
    metrics = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("vectord metrics on "):
            metrics = line.rsplit(" ", 1)[1].strip()
        if line.startswith("vectord listening on "):
            return proc, line.rsplit(" ", 1)[1].strip(), engine(log_path), metrics
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"server did not start: {log_path.read_text()[-2000:]}")


def rss_mib(pid: int, key: str = "VmRSS:") -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return 0.0


def children_anon_mib(pid: int) -> float:
    """The anonymous memory (RssAnon: their own, not the files they map, which the server
    maps too) of ``pid``'s child processes: the graph writers of storage/graph_child.py."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                if int(handle.read().rsplit(")", 1)[1].split()[1]) != pid:
                    continue
            total += rss_mib(int(entry.name), "RssAnon:")
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return total


class Sampler(threading.Thread):
    """The server's RSS and its children's anonymous memory every 20 ms, with the time of
    each sample (time.monotonic: the same clock in every process of the machine). Run from
    outside the measured process: its /proc scans would hold that process's GIL."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.samples.append((time.monotonic(), rss_mib(self.pid), children_anon_mib(self.pid)))
            except OSError:
                return
            time.sleep(0.02)

    def between(self, start: float, end: float) -> list[float]:
        """The server's RSS in the samples from ``start`` to ``end``."""
        return [rss for t, rss, _ in self.samples if start <= t <= end]

    def with_children_between(self, start: float, end: float) -> list[float]:
        """The server's RSS plus its children's anonymous memory, sampled at one moment."""
        return [rss + children for t, rss, children in self.samples if start <= t <= end]


def gauge(metrics: str, name: str) -> float:
    """One of the collection's gauges from the server's /metrics (server/metrics.py)."""
    with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=30) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(f'vectord_collection_{name}{{collection="{NAME}"}}'):
                return float(line.rsplit(" ", 1)[1])
    raise RuntimeError(f"the server's metrics have no {name} for {NAME}")


def segments(col, probe: np.ndarray) -> list[int]:
    """The live records of each sealed segment (explain: a query without a filter counts all
    of a segment's live records as its candidates); [] for one state."""
    plan = col.query(query_embeddings=[probe.tolist()], n_results=1, explain=True)["plan"]
    return [part["candidates"] for part in plan.get("segments", []) if part["segment"] != "tail"]


def wait_sealed(col, probe: np.ndarray, rows: int, timeout: float = 1800.0) -> None:
    """Until the server's sealed segments hold ``rows`` records (its checkpointer seals)."""
    deadline = time.monotonic() + timeout
    while sum(segments(col, probe)) < rows:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not seal {rows} records in {timeout:.0f} s")
        time.sleep(0.5)


def data(n: int, dim: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(64, dim)).astype(np.float32)
    vectors = centers[rng.integers(0, 64, n)] + 0.5 * rng.normal(size=(n, dim)).astype(np.float32)
    return vectors.astype(np.float32)


def query_loop(col, queries: np.ndarray, stop: threading.Event, out: list, errors: list) -> None:
    """One client: a query at a time, back to back; (start time, seconds) of each, failed
    ones included (their time is how long they waited), and the failures' messages."""
    i = 0
    while not stop.is_set():
        q = queries[i % len(queries)]
        i += 1
        t0 = time.monotonic()
        try:
            col.query(query_embeddings=[q.tolist()], n_results=K, include=["distances"])
        except vectord.errors.VectordError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        out.append((t0, time.monotonic() - t0))


def summary(latencies: list[float]) -> dict:
    ms = np.asarray(latencies) * 1000
    return {"queries": len(ms), "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max())}


def run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="vectord-compaction-bench-"))
    load_start = os.getloadavg()
    flags = []
    if args.seal_rows:
        flags += ["--seal-rows", str(args.seal_rows), "--max-segment-rows", str(args.max_segment_rows)]
    else:  # one state: a server seals by size by default (64 MiB of vectors)
        flags += ["--seal-mib", "0"]
    if args.merge_factor:
        flags += ["--merge-factor", str(args.merge_factor)]
    proc, address, engine_dir, metrics = start(work / "data", args.storage_from or "", flags)
    try:
        client = vectord.Client(address, timeout=CLIENT_TIMEOUT_S)
        channel = grpc.insecure_channel(address)
        admin = admin_pb2_grpc.AdminStub(channel)  # what `vectord compact` calls
        col = client.create_collection(NAME, dim=args.dim)
        vectors = data(args.n, args.dim)
        ids = [f"r{i}" for i in range(args.n)]
        t0 = time.monotonic()
        seal_waits_s = 0.0
        for start_ in range(0, args.n, 2000):
            col.add(ids=ids[start_:start_ + 2000], embeddings=vectors[start_:start_ + 2000].tolist())
            added = min(args.n, start_ + 2000)
            if args.seal_rows and added % args.seal_rows == 0:
                w0 = time.monotonic()  # segments of exactly seal_rows records, an empty tail at the end
                wait_sealed(col, vectors[0], added)
                seal_waits_s += time.monotonic() - w0
        ingest_s = time.monotonic() - t0
        rng = np.random.default_rng(2)
        gone = rng.choice(args.n, int(args.n * args.deleted), replace=False)
        for start_ in range(0, len(gone), 5000):
            col.delete(ids=[ids[i] for i in gone[start_:start_ + 5000].tolist()])
        queries = data(500, args.dim, seed=3)
        # the background checkpointer's turn, if the log asked for one (and, with segments,
        # its seals of the tail that a fast ingest leaves: storage/segments.py)
        time.sleep(args.settle)
        segments_before = segments(col, vectors[0])
        deleted_before = gauge(metrics, "deleted_slots")
        sampler = Sampler(proc.pid)
        sampler.start()
        # steady state
        stop, steady, errors = threading.Event(), [], []
        worker = threading.Thread(target=query_loop, args=(col, queries, stop, steady, errors))
        t_steady = time.monotonic()
        worker.start()
        time.sleep(args.seconds)
        stop.set()
        worker.join()
        t_steady_end = time.monotonic()
        # during compaction
        stop, during = threading.Event(), []
        worker = threading.Thread(target=query_loop, args=(col, queries, stop, during, errors))
        worker.start()
        time.sleep(1.0)
        c0 = time.monotonic()
        reply = admin.Checkpoint(admin_pb2.CheckpointRequest(collection=NAME, compact=True), timeout=1800)
        c1 = time.monotonic()
        time.sleep(0.5)
        stop.set()
        worker.join()
        sampler.stop.set()
        sampler.join()
        in_window = [s for t, s in during if t + s >= c0 and t <= c1]
        segments_after = segments(col, vectors[0])
        deleted_after = gauge(metrics, "deleted_slots")
        steady_rss = sampler.between(t_steady, t_steady_end)
        peak_rss = max(sampler.between(c0, c1 + 0.5))
        peak_tree = max(sampler.with_children_between(c0, c1 + 0.5))
        after = col.count()
        result = {
            "n": args.n, "dim": args.dim, "deleted": len(gone), "live_after": after,
            "storage": engine_dir, "server_flags": flags, "ingest_s": ingest_s, "seal_waits_s": seal_waits_s,
            "segments_before": segments_before, "segments_after": segments_after,
            "deleted_slots_before": deleted_before, "deleted_slots_after": deleted_after,
            "compact_s": c1 - c0, "compacted_slots": reply.compacted_slots,
            "steady": summary([s for _, s in steady]), "during": summary(in_window),
            "rss_steady_mib": float(np.median(steady_rss)), "rss_peak_mib": float(peak_rss),
            "rss_with_children_peak_mib": float(peak_tree),
            "query_errors": errors, "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
        }
        result["p99_ratio"] = result["during"]["p99_ms"] / result["steady"]["p99_ms"]
        result["rss_ratio"] = result["rss_peak_mib"] / result["rss_steady_mib"]
        result["rss_with_children_ratio"] = result["rss_with_children_peak_mib"] / result["rss_steady_mib"]
        client.close()
        channel.close()
        return result
    finally:
        proc.terminate()
        proc.wait(60)
        subprocess.run(["rm", "-rf", str(work)])


def _load(load) -> str:
    return " / ".join(f"{x:.2f}" for x in load) if load else "-"


def _sizes(sizes: list[int] | None) -> str:
    if sizes is None:
        return "-"
    return f"{len(sizes)}: " + ", ".join(f"{size:,}" for size in sizes) if sizes else "0 (one state)"


def report(results: dict[str, dict], command: str) -> str:
    """The results as a markdown table, one column per engine."""
    names = list(results)
    rows = [
        ("steady state: queries", lambda r: f"{r['steady']['queries']:,}"),
        ("steady state: p50 ms", lambda r: f"{r['steady']['p50_ms']:.2f}"),
        ("steady state: p99 ms", lambda r: f"{r['steady']['p99_ms']:.2f}"),
        ("steady state: longest query ms", lambda r: f"{r['steady']['max_ms']:.1f}"),
        ("compaction: seconds (Admin.Checkpoint compact=True)", lambda r: f"{r['compact_s']:.1f}"),
        ("sealed segments before compaction (live records each)",
         lambda r: _sizes(r.get("segments_before"))),
        ("sealed segments after compaction (live records each)", lambda r: _sizes(r.get("segments_after"))),
        ("deleted slots before -> after compaction (server metrics)",
         lambda r: f"{r['deleted_slots_before']:,.0f} -> {r['deleted_slots_after']:,.0f}"
         if "deleted_slots_before" in r else "-"),
        ("compaction: deleted slots dropped (rpc reply)", lambda r: f"{r['compacted_slots']:,}"),
        ("during compaction: queries", lambda r: f"{r['during']['queries']:,}"),
        ("during compaction: p50 ms", lambda r: f"{r['during']['p50_ms']:.2f}"),
        ("during compaction: p99 ms", lambda r: f"{r['during']['p99_ms']:.2f}"),
        ("during compaction: **longest query ms**", lambda r: f"**{r['during']['max_ms']:.1f}**"),
        ("p99 during / p99 steady (target <= 2)", lambda r: f"{r['p99_ratio']:.2f}"),
        ("RSS steady MiB (median)", lambda r: f"{r['rss_steady_mib']:.0f}"),
        ("RSS peak during compaction MiB", lambda r: f"{r['rss_peak_mib']:.0f}"),
        ("RSS peak / steady", lambda r: f"{r['rss_ratio']:.2f}"),
        ("peak of RSS + its child processes' anonymous memory MiB (graph writers)",
         lambda r: f"{r['rss_with_children_peak_mib']:.0f}" if "rss_with_children_peak_mib" in r else "-"),
        ("that peak / steady RSS (target <= 1.2)",
         lambda r: f"{r['rss_with_children_ratio']:.2f}" if "rss_with_children_ratio" in r else "-"),
        ("failed queries", lambda r: f"{len(r['query_errors'])}"),
        ("load average (1/5/15 min) at the run's start", lambda r: _load(r.get("loadavg_start"))),
        ("load average (1/5/15 min) at the run's end", lambda r: _load(r.get("loadavg_end"))),
    ]
    out = [f"`{command}`", "", "| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label, cell in rows:
        out.append(f"| {label} | " + " | ".join(cell(results[name]) for name in names) + " |")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50_000, help="records added (default 50,000)")
    parser.add_argument("--dim", type=int, default=384, help="vector dimension (default 384)")
    parser.add_argument("--deleted", type=float, default=0.4, help="share of the records deleted (default 0.4)")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds of steady-state queries (default 15)")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds between the writes and the steady state, for the server's background "
                             "checkpoints and seals (default 3)")
    parser.add_argument("--storage-from", help="serve with the storage/ package of this folder (the old engine)")
    parser.add_argument("--compare", metavar="OLD_STORAGE",
                        help="run twice in this invocation: with this storage/ folder (the old engine), "
                             "then with this checkout's, and report both side by side")
    parser.add_argument("--seal-rows", type=int, default=0,
                        help="start the server with --seal-rows N (sealed segments of N records; default 0: one "
                             "state)")
    parser.add_argument("--max-segment-rows", type=int, default=0,
                        help="start the server with --max-segment-rows N (default: --seal-rows)")
    parser.add_argument("--merge-factor", type=int, default=0,
                        help="start the server with --merge-factor N (default: the server's)")
    parser.add_argument("--compare-sealing", action="store_true",
                        help="run twice in this invocation: one state (no sealing), then with --seal-rows, and "
                             "report both side by side")
    parser.add_argument("--out", help="write the results to OUT.json (and OUT.md with --compare or "
                                      "--compare-sealing)")
    args = parser.parse_args()
    if args.seal_rows and args.n % args.seal_rows:
        parser.error(f"--n {args.n} must be a multiple of --seal-rows {args.seal_rows} (whole segments)")
    if args.seal_rows and args.seal_rows % 2000:
        parser.error(f"--seal-rows {args.seal_rows} must be a multiple of 2,000 (the benchmark's write batch)")
    if args.compare_sealing and not args.seal_rows:
        parser.error("--compare-sealing needs --seal-rows")
    args.max_segment_rows = args.max_segment_rows or args.seal_rows
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    if args.compare or args.compare_sealing:
        results = {}
        if args.compare:
            runs = [("old engine", {"storage_from": args.compare}), ("new engine", {"storage_from": None})]
        else:
            seal = args.seal_rows
            runs = [("one state", {"seal_rows": 0}),
                    (f"sealing ({seal:,} rows, {args.n // seal} segments)", {"seal_rows": seal})]
        for name, change in runs:
            vars(args).update(change)
            results[name] = run(args)
            print(name, json.dumps(results[name], indent=2), flush=True)
        command = "python benchmarks/compaction.py " + " ".join(sys.argv[1:])
        table = report(results, command)
        print(table)
        if args.out:
            Path(args.out + ".json").write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
            Path(args.out + ".md").write_text(table)
        return
    result = run(args)
    result["machine"] = machine
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out + ".json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
