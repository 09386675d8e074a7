"""Id-path speed of two storage trees, embedded, in one run (issue 13, item 4: packed ids).

    python benchmarks/ids_ab.py --a /tmp/ids-base --b . [--n 100000] [--rounds 3] [--out PATH.json]

The packed id column and hash index (storage/id_index.py) replaced a dict and a SortedList;
this checks that the paths that look ids up did not slow down. Each tree (a checkout whose
``src/vectord/<part>`` links to its own packages, run with ``PYTHONPATH=<tree>/src:<tree>``)
runs in its own worker; both load GloVe 100k x 50 (else random vectors) through
``vectord.Client(path=...)`` in batches of 1,000 with metadata, one after the other. Then
rounds alternate A, B, A, B, ... (the shared machine's load falls on both alike); a round:

- ingest: 20,000 new records into a fresh collection (batches of 1,000);
- get by ids: every record of the 100k collection, pages of 5,000 ids (include metadatas);
- single gets: 2,000 ``get(ids=[one])``;
- unchanged upserts: 20 batches of 1,000 existing ids with their own vectors (lookup path);
- pages by id: the whole collection with ``page_token`` cursors, pages of 1,000.

Reported: each round's seconds per step, the medians, and B / A ratios of the medians
(below 1: B faster).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

HNSW = {"m": 16, "ef_construction": 100, "ef_search": 100}
STEPS = ("ingest_20k", "get_by_ids", "single_gets", "unchanged_upserts", "pages_by_id")


def _data(n: int) -> np.ndarray:
    try:
        from core import load_glove

        return load_glove(n)
    except Exception:  # noqa: BLE001 - the data set is optional: random vectors instead
        return np.random.default_rng(0).standard_normal((n, 50)).astype(np.float32)


def _ingest(col, ids: list[str], data: np.ndarray) -> None:
    for start in range(0, len(ids), 1000):
        end = min(start + 1000, len(ids))
        col.add(ids=ids[start:end], embeddings=data[start:end],
                metadatas=[{"bucket": i % 1000} for i in range(start, end)])


def _worker(n: int, workdir: str) -> None:
    """Runs in a child: loads, then answers "round" lines with one JSON line each."""
    import vectord

    data = _data(n)
    client = vectord.Client(path=workdir)
    col = client.create_collection("bench", dim=data.shape[1], metric="cosine", hnsw=HNSW)
    ids = [str(i) for i in range(n)]
    t0 = time.perf_counter()
    _ingest(col, ids, data)
    print(json.dumps({"ready": True, "ingest_100k_s": time.perf_counter() - t0}), flush=True)
    rng = np.random.default_rng(3)
    for r, line in enumerate(sys.stdin):
        if line.strip() != "round":
            break
        out = {}
        fresh = client.create_collection(f"fresh{r}", dim=data.shape[1], metric="cosine", hnsw=HNSW)
        t0 = time.perf_counter()
        _ingest(fresh, [f"f{i}" for i in range(20_000)], data[:20_000])
        out["ingest_20k"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for s in range(0, n, 5000):
            got = col.get(ids=ids[s:s + 5000], include=["metadatas"])
            assert len(got["ids"]) == min(5000, n - s)
        out["get_by_ids"] = time.perf_counter() - t0
        singles = rng.integers(n, size=2000).tolist()
        t0 = time.perf_counter()
        for i in singles:
            col.get(ids=[ids[i]], include=[])
        out["single_gets"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(20):
            chosen = rng.choice(n, size=1000, replace=False)
            col.upsert(ids=[ids[i] for i in chosen], embeddings=data[chosen],
                       metadatas=[{"bucket": int(i) % 1000} for i in chosen])
        out["unchanged_upserts"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        token, seen = "", 0
        while token is not None:
            page = col.get(page_token=token, limit=1000, include=[])
            seen += len(page["ids"])
            token = page["next_page_token"]
        out["pages_by_id"] = time.perf_counter() - t0
        out["paged"] = seen
        client.delete_collection(f"fresh{r}")
        print(json.dumps(out), flush=True)
    client.close()


def _read(proc: subprocess.Popen) -> dict:
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"worker {proc.pid} ended early (rc {proc.wait()})")
    return json.loads(line)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", type=Path, help="tree of A (the baseline)")
    p.add_argument("--b", type=Path, help="tree of B (the change)")
    p.add_argument("--n", type=int, default=100_000, help="records of the collection read back (default 100,000)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per tree, alternating (default 3)")
    p.add_argument("--out", type=Path, help="write the results to this JSON file")
    p.add_argument("--worker", action="store_true", help="internal: run as one tree's worker")
    p.add_argument("--workdir", help="internal: the worker's data directory")
    args = p.parse_args()
    if args.worker:
        _worker(args.n, args.workdir)
        return 0
    out: dict = {"n": args.n, "rounds": args.rounds, "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="ids-ab-") as tmp:
        procs = {}
        for name, tree in (("A", args.a), ("B", args.b)):
            tree = tree.resolve()
            procs[name] = subprocess.Popen(
                [sys.executable, __file__, "--worker", "--n", str(args.n), "--workdir", str(Path(tmp) / name)],
                env=dict(os.environ, PYTHONPATH=f"{tree}/src:{tree}"), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, text=True, cwd=str(tree))
            out[name] = {"tree": str(tree), **_read(procs[name]), "rounds": []}  # one loads at a time
            print(name, out[name], flush=True)
        for r in range(args.rounds):
            for name in ("A", "B"):
                procs[name].stdin.write("round\n")
                procs[name].stdin.flush()
                out[name]["rounds"].append(_read(procs[name]))
                print(name, r, {k: round(v, 3) for k, v in out[name]["rounds"][-1].items()}, flush=True)
        for proc in procs.values():
            proc.stdin.close()
            proc.wait(timeout=600)
    out["load_after"] = os.getloadavg()
    out["ratio_b_over_a"] = {}
    for step in STEPS:
        for name in ("A", "B"):
            out[name][f"median_{step}"] = float(np.median([r[step] for r in out[name]["rounds"]]))
        out["ratio_b_over_a"][step] = out["B"][f"median_{step}"] / out["A"][f"median_{step}"]
    out["ratio_b_over_a"]["ingest_100k"] = out["B"]["ingest_100k_s"] / out["A"]["ingest_100k_s"]
    print(json.dumps(out["ratio_b_over_a"], indent=1))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
