"""Recall@10 over several builds, as mean and spread (issue 13, item 5).

    python benchmarks/recall_seeds.py [--seeds 5] [--n 100000] \
        [--chroma-venv ../venv-chroma] [--out benchmarks/results/recall-seeds-DATE]

One build of an HNSW graph is one draw: the same data and settings built again give another
recall. So each system is built ``--seeds`` times on GloVe 100k x 50 (M=16,
ef_construction=100, ef=100, k=10, cosine, batches of 1,000), build ``s`` inserting the
records in the order of permutation ``s`` (neither vectord nor Chroma takes a graph seed;
raw hnswlib also gets ``random_seed=s``), and the same 1,000 held-out queries are asked of
every build (in one batched call). Reported: mean, standard deviation, min and max of
recall@10 per system; a difference between two systems is called only when it is larger
than both systems' spreads (max - min) and than 2 standard errors of the difference.

Systems: vectord (embedded, in memory: the same engine and graph as the server), raw
hnswlib, and Chroma (``EphemeralClient``, in its own virtualenv, as the suite runs it) when
``--chroma-venv`` has chromadb.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.suite import datasets  # noqa: E402
from benchmarks.suite.measure import recall  # noqa: E402
from benchmarks.suite.systems import chroma_python  # noqa: E402

M, EF_CONSTRUCTION, EF, K = 16, 100, 100, 10

CHROMA_BUILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import chromadb
    from chromadb.config import Settings
    data, queries, order = (np.load(sys.argv[i]) for i in (1, 2, 3))
    client = chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))
    col = client.create_collection("seed", configuration={"hnsw": {"space": "cosine", "max_neighbors": %d,
                                   "ef_construction": %d, "ef_search": %d}}, embedding_function=None)
    for s in range(0, len(order), 1000):
        part = order[s:s + 1000]
        col.add(ids=[str(i) for i in part], embeddings=data[part])
    found = col.query(query_embeddings=queries, n_results=%d, include=[])["ids"]
    print(json.dumps({"found": [[int(i) for i in row] for row in found], "chromadb": chromadb.__version__}))
""" % (M, EF_CONSTRUCTION, EF, K))


def build_vectord(data, queries, order) -> list[list[int]]:
    import vectord

    client = vectord.Client()  # in memory: nothing written, the same engine
    col = client.create_collection("seed", dim=data.shape[1], metric="cosine",
                                   hnsw={"m": M, "ef_construction": EF_CONSTRUCTION, "ef_search": EF})
    for s in range(0, len(order), 1000):
        part = order[s:s + 1000]
        col.add(ids=[str(i) for i in part], embeddings=data[part])
    found = col.query(query_embeddings=queries, n_results=K, include=[])["ids"]
    client.close()
    return [[int(i) for i in row] for row in found]


def build_hnswlib(data, queries, order, seed: int) -> list[list[int]]:
    import hnswlib

    index = hnswlib.Index(space="cosine", dim=data.shape[1])
    index.init_index(max_elements=len(data), M=M, ef_construction=EF_CONSTRUCTION, random_seed=seed)
    for s in range(0, len(order), 1000):
        part = order[s:s + 1000]
        index.add_items(data[part], part)
    index.set_ef(EF)
    return index.knn_query(queries, k=K)[0].tolist()


def build_chroma(python: Path, data, queries, order, tmp: Path) -> tuple[list[list[int]], str]:
    for name, array in (("data", data), ("queries", queries), ("order", order)):
        np.save(tmp / f"{name}.npy", array)
    proc = subprocess.run([str(python), "-c", CHROMA_BUILD, *(str(tmp / f"{n}.npy") for n in ("data", "queries", "order"))],
                          capture_output=True, text=True, env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    if proc.returncode != 0:
        raise RuntimeError(f"Chroma build failed: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["found"], out["chromadb"]


def summary(values: list[float]) -> dict:
    a = np.asarray(values)
    return {"mean": float(a.mean()), "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "min": float(a.min()),
            "max": float(a.max()), "spread": float(a.max() - a.min()), "runs": [float(v) for v in a]}


def verdict(a: dict, b: dict, n: int) -> str:
    diff = a["mean"] - b["mean"]
    se = (a["sd"] ** 2 / n + b["sd"] ** 2 / n) ** 0.5
    if abs(diff) > max(a["spread"], b["spread"]) and abs(diff) > 2 * se:
        return f"{'higher' if diff > 0 else 'lower'} by {abs(diff):.4f} (beyond both spreads and 2 s.e. {2 * se:.4f})"
    return f"no difference: {diff:+.4f} is within the spread ({max(a['spread'], b['spread']):.4f}) or 2 s.e. ({2 * se:.4f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="builds per system")
    parser.add_argument("--n", type=int, default=100_000, help="records (GloVe words)")
    parser.add_argument("--chroma-venv", type=Path, default=Path(os.environ.get(
        "VECTORD_BENCH_CHROMA_VENV", ROOT.parent / "venv-chroma")), help="virtualenv with chromadb")
    parser.add_argument("--out", default=f"benchmarks/results/recall-seeds-{time.strftime('%Y-%m-%d')}",
                        help="results path without extension (.json and .md written)")
    args = parser.parse_args()
    ds = datasets.load("glove-100k", args.n, 1000, K, [], print)
    python = chroma_python(args.chroma_venv)
    runs: dict[str, list[float]] = {"vectord": [], "hnswlib": []}
    if python is not None:
        runs["Chroma"] = []
    chroma_version = None
    with tempfile.TemporaryDirectory(prefix="vectord-seeds-") as tmp:
        for seed in range(args.seeds):
            order = np.random.default_rng(seed).permutation(len(ds.data))
            t0 = time.perf_counter()
            runs["vectord"].append(recall(build_vectord(ds.data, ds.queries, order), ds.truth))
            runs["hnswlib"].append(recall(build_hnswlib(ds.data, ds.queries, order, seed), ds.truth))
            if python is not None:
                found, chroma_version = build_chroma(python, ds.data, ds.queries, order, Path(tmp))
                runs["Chroma"].append(recall(found, ds.truth))
            print(f"seed {seed}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in runs.items())
                  + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    stats = {name: summary(values) for name, values in runs.items()}
    verdicts = {f"vectord vs {other}": verdict(stats["vectord"], stats[other], args.seeds)
                for other in stats if other != "vectord"}
    lines = ["| system | builds | mean recall@10 | s.d. | min | max | spread |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, s in stats.items():
        lines.append(f"| {name} | {len(s['runs'])} | {s['mean']:.4f} | {s['sd']:.4f} | {s['min']:.4f} | "
                     f"{s['max']:.4f} | {s['spread']:.4f} |")
    lines += ["", *(f"- {k}: {v}" for k, v in verdicts.items())]
    if python is None:
        lines.append(f"- Chroma: chromadb is not installed in {args.chroma_venv}; not measured.")
    out = {"machine": f"{os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}",
           "data": ds.source, "n": len(ds.data), "queries": len(ds.queries), "seeds": args.seeds,
           "chromadb": chroma_version, "stats": stats, "verdicts": verdicts}
    Path(args.out + ".json").write_text(json.dumps(out, indent=1))
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
