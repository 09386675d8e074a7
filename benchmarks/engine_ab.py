"""Query throughput and recall of two code trees, embedded or through a server, in one run
(issue 12's gate; issue 13's batched path).

    python benchmarks/engine_ab.py --a /work/base-tree --b . [--n 100000] [--queries 1000] \
        [--rounds 5] [--batch 1] [--remote] [--out benchmarks/results/NAME.json]

``--batch B`` sends B queries per call (1: single queries); ``--remote`` starts each tree's
own ``vectord serve`` on the worker's data directory and queries it over gRPC.

Each tree is a checkout whose ``src/vectord/<part>`` links to its own packages (run each
worker with ``PYTHONPATH=<tree>/src:<tree>``). Both engines load GloVe 100k x 50 (cosine, M=16,
ef_construction=100, ef=100 as benchmarks/core.py) through ``vectord.Client(path=...)`` in
batches of 1,000 with metadata, one after the other (never at the same time); then query
rounds alternate A, B, A, B, ... so that the shared machine's load falls on both alike. Each
round is ``--queries`` single queries (k=10, include nothing). Reported: ingest rate, the
seconds after the last write until the engine's exact tail is indexed (B only, when it has
one: ``stats()["tail_slots"]``), each round's QPS and p50/p99, the median, recall@10 against
exact cosine top-10, and B / A ratios; the load averages before and after.
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

M, EF_CONSTRUCTION, EF, BATCH = 16, 100, 100, 1000


def _worker(n: int, nq: int, workdir: str, batch: int = 1, remote: bool = False) -> None:
    """Runs in a child: ingest, then answers "round" lines with one JSON line each."""
    import vectord
    from core import load_glove

    everything = load_glove(n + nq)
    data, queries = everything[:n], everything[n:]
    client = vectord.Client(path=workdir)
    col = client.create_collection("bench", dim=data.shape[1], metric="cosine",
                                   hnsw={"m": M, "ef_construction": EF_CONSTRUCTION, "ef_search": EF})
    ids = [str(i) for i in range(n)]
    started = time.perf_counter()
    for start in range(0, n, BATCH):
        end = min(start + BATCH, n)
        col.add(ids=ids[start:end], embeddings=data[start:end], metadatas=[{"i": i} for i in range(start, end)])
    ingest_s = time.perf_counter() - started
    engine = client._transport._server.database.get_collection("bench")
    catch_up, tail_at_end = None, None
    if "tail_slots" in engine.stats():
        tail_at_end = engine.stats()["tail_slots"]
        t0 = time.perf_counter()
        while engine.stats()["tail_slots"]:
            time.sleep(0.01)
        catch_up = time.perf_counter() - t0
    print(json.dumps({"ready": True, "ingest_per_s": n / ingest_s, "ingest_s": ingest_s,
                      "tail_at_end": tail_at_end, "catch_up_s": catch_up,
                      "storage": sys.modules[type(engine).__module__].__file__}), flush=True)
    server = None
    if remote:  # the same data, served by this tree's own server
        from vectord.testing import start_server

        client.close()
        server = start_server(Path(workdir), timeout=300)
        client = vectord.Client(server.address, timeout=600)
        col = client.get_collection("bench")
    for q in queries[:20]:
        col.query(query_embeddings=q[None, :], n_results=10, include=[])
    for line in sys.stdin:
        if line.strip() != "round":
            break
        latencies, found = [], []
        t_start = time.perf_counter()
        for at in range(0, len(queries), batch):
            t0 = time.perf_counter()
            rows = col.query(query_embeddings=queries[at:at + batch], n_results=10, include=[])["ids"]
            latencies.append(time.perf_counter() - t0)
            found.extend([int(i) for i in row] for row in rows)
        elapsed = time.perf_counter() - t_start
        lat = np.array(latencies) * 1000
        print(json.dumps({"qps": len(queries) / elapsed, "p50": float(np.percentile(lat, 50)),
                          "p99": float(np.percentile(lat, 99)), "found": found}), flush=True)
    client.close()
    if server is not None:
        server.terminate(timeout=300)


def _start(tree: Path, n: int, nq: int, workdir: Path, batch: int, remote: bool) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=f"{tree}/src:{tree}")
    return subprocess.Popen([sys.executable, __file__, "--worker", "--n", str(n), "--queries", str(nq),
                             "--workdir", str(workdir), "--batch", str(batch)] + (["--remote"] if remote else []),
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(tree))


def _read(proc: subprocess.Popen) -> dict:
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"worker {proc.pid} ended early (rc {proc.wait()})")
    return json.loads(line)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", type=Path, help="tree of engine A (the baseline)")
    p.add_argument("--b", type=Path, help="tree of engine B (the change)")
    p.add_argument("--n", type=int, default=100_000, help="GloVe vectors loaded (default 100,000)")
    p.add_argument("--queries", type=int, default=1000, help="single queries per round (default 1,000)")
    p.add_argument("--rounds", type=int, default=5, help="query rounds per engine, alternating (default 5)")
    p.add_argument("--batch", type=int, default=1, help="queries per call (default 1: single queries)")
    p.add_argument("--remote", action="store_true", help="query each tree's own server over gRPC")
    p.add_argument("--out", type=Path, help="write the results to this JSON file")
    p.add_argument("--worker", action="store_true", help="internal: run as one engine's worker")
    p.add_argument("--workdir", help="internal: the worker's data directory")
    args = p.parse_args()
    if args.worker:
        _worker(args.n, args.queries, args.workdir, args.batch, args.remote)
        return 0
    from core import exact_top10, load_glove, recall

    everything = load_glove(args.n + args.queries)
    truth = exact_top10(everything[:args.n], everything[args.n:])
    load_before = os.getloadavg()
    out: dict = {"n": args.n, "queries": args.queries, "rounds": args.rounds, "batch": args.batch,
                 "remote": args.remote, "load_before": load_before}
    with tempfile.TemporaryDirectory(prefix="engine-ab-") as tmp:
        procs = {}
        for name, tree in (("A", args.a), ("B", args.b)):
            procs[name] = _start(tree.resolve(), args.n, args.queries, Path(tmp) / name, args.batch, args.remote)
            out[name] = {"tree": str(tree), **_read(procs[name])}  # ingest finished before the next starts
            out[name]["rounds"] = []
            print(name, {k: v for k, v in out[name].items() if k != "rounds"}, flush=True)
        for r in range(args.rounds):
            for name in ("A", "B"):
                procs[name].stdin.write("round\n")
                procs[name].stdin.flush()
                res = _read(procs[name])
                res["recall"] = recall(res.pop("found"), truth)
                out[name]["rounds"].append(res)
                print(name, r, {k: round(v, 4) for k, v in res.items()}, flush=True)
        for proc in procs.values():
            proc.stdin.close()
            proc.wait(timeout=600)
    out["load_after"] = os.getloadavg()
    for name in ("A", "B"):
        rounds = out[name]["rounds"]
        out[name]["median_qps"] = float(np.median([r["qps"] for r in rounds]))
        out[name]["median_p99"] = float(np.median([r["p99"] for r in rounds]))
        out[name]["recall"] = float(np.mean([r["recall"] for r in rounds]))
    out["qps_ratio_b_over_a"] = out["B"]["median_qps"] / out["A"]["median_qps"]
    out["per_round_ratios"] = [b["qps"] / a["qps"] for a, b in zip(out["A"]["rounds"], out["B"]["rounds"])]
    out["recall_ratio_b_over_a"] = out["B"]["recall"] / out["A"]["recall"]
    out["ingest_ratio_b_over_a"] = out["B"]["ingest_per_s"] / out["A"]["ingest_per_s"]
    print(json.dumps({k: v for k, v in out.items() if k not in ("A", "B")}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
