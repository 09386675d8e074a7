"""Load: 16 concurrent clients, mixed reads and writes, against a real server.

No error beyond the documented back-pressure (``maximum_concurrent_rpcs`` ->
RESOURCE_EXHAUSTED), p99 latency reported, resident memory (VmRSS) flat after warm-up.
CI runs about a minute (``VECTORD_LOAD_SECONDS`` changes it); the long mode
(``VECTORD_LONG=1``) runs 10 minutes and writes its figures to benchmarks/results/.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
import pytest

import vectord
from faults_helpers import LONG
from faults_helpers import Stubs, healthy
from serverproc import start_server
from vectord.v1 import collections_pb2 as cpb, records_pb2 as rpb, types_pb2 as pb

THREADS, DIM, IDS, PRELOAD = 16, 64, 4000, 2000
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _percentile(values, q):
    return float(np.percentile(np.asarray(values), q)) if values else 0.0


def run_load(tmp_path, seconds: float):
    server = start_server(tmp_path / "data")
    pid = server.proc.pid
    stop = threading.Event()
    latencies: dict[str, list[float]] = {"query": [], "get": [], "upsert": [], "delete": []}
    errors: list[str] = []
    backpressure = [0]
    samples: list[tuple[float, int]] = []
    lock = threading.Lock()
    try:
        setup = vectord.Client(server.address, timeout=60)
        col = setup.create_collection("load", dim=DIM, metric="cosine")
        rng = np.random.default_rng(0)
        col.add(ids=[f"r{i}" for i in range(PRELOAD)], embeddings=rng.normal(size=(PRELOAD, DIM)).astype(np.float32),
                metadatas=[{"i": i, "even": i % 2 == 0} for i in range(PRELOAD)])
        setup.close()

        def worker(seed: int) -> None:
            rnd = random.Random(seed)
            vec_rng = np.random.default_rng(seed)
            client = vectord.Client(server.address, timeout=30)
            c = client.get_collection("load")
            while not stop.is_set():
                roll = rnd.random()
                started = time.perf_counter()
                try:
                    if roll < 0.45:
                        kind = "query"
                        c.query(query_embeddings=vec_rng.normal(size=(1, DIM)).astype(np.float32), n_results=10,
                                where={"even": True} if roll < 0.1 else None)
                    elif roll < 0.65:
                        kind = "get"
                        c.get(ids=[f"r{i}" for i in rnd.sample(range(IDS), 5)])
                    elif roll < 0.95:
                        kind = "upsert"
                        n = rnd.randint(1, 10)
                        ids = list({f"r{rnd.randrange(IDS)}" for _ in range(n)})
                        c.upsert(ids=ids, embeddings=vec_rng.normal(size=(len(ids), DIM)).astype(np.float32),
                                 metadatas=[{"i": rnd.randrange(1000), "even": rnd.random() < 0.5} for _ in ids])
                    else:
                        kind = "delete"
                        c.delete(ids=[f"r{i}" for i in rnd.sample(range(IDS), 3)])
                except vectord.ResourceExhaustedError:
                    with lock:
                        backpressure[0] += 1
                    continue
                except Exception as exc:  # noqa: BLE001 - every other error fails the test
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                with lock:
                    latencies[kind].append(time.perf_counter() - started)
            client.close()

        def sampler() -> None:
            start = time.monotonic()
            while not stop.wait(1.0):
                samples.append((time.monotonic() - start, _rss_kib(pid)))

        threads = [threading.Thread(target=worker, args=(s,)) for s in range(THREADS)]
        probe = threading.Thread(target=sampler)
        started = time.monotonic()
        for t in threads:
            t.start()
        probe.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(60)
        probe.join(10)
        elapsed = time.monotonic() - started
        assert healthy(server.address)
        assert server.proc.poll() is None
    finally:
        stop.set()
        code = server.terminate()
    assert code == 0, server.log()[-3000:]

    everything = [x for v in latencies.values() for x in v]
    # RSS: the first 20% is warm-up; then the last third must not exceed 1.3x the first third
    steady = [rss for t, rss in samples if t >= 0.2 * seconds]
    third = max(1, len(steady) // 3)
    first, last = float(np.mean(steady[:third])), float(np.mean(steady[-third:]))
    report = {
        "seconds": round(elapsed, 1), "threads": THREADS, "ops": len(everything),
        "ops_per_s": round(len(everything) / elapsed, 1), "errors": len(errors),
        "resource_exhausted": backpressure[0],
        "p50_ms": round(_percentile(everything, 50) * 1000, 2),
        "p99_ms": round(_percentile(everything, 99) * 1000, 2),
        "p99_ms_by_op": {k: round(_percentile(v, 99) * 1000, 2) for k, v in latencies.items()},
        "rss_mib_first_third": round(first / 1024, 1), "rss_mib_last_third": round(last / 1024, 1),
        "rss_mib_max": round(max(r for _, r in samples) / 1024, 1),
        "rss_growth": round(last / first, 3),
        # (seconds, MiB) about every tenth of the run: the shape, not only the two averages
        "rss_mib_series": [(round(t), round(r / 1024, 1)) for t, r in samples[:: max(1, len(samples) // 20)]],
    }
    return report, errors


SECONDS = float(os.environ.get("VECTORD_LOAD_SECONDS", "600" if LONG else "60"))


@pytest.mark.timeout(SECONDS + 300)
def test_sixteen_clients_mixed_load(tmp_path):
    seconds = SECONDS
    report, errors = run_load(tmp_path, seconds)
    print(f"\nload: {json.dumps(report)}")
    if LONG:
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"load-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps(report, indent=2) + "\n")
    assert not errors, errors[:10]
    assert report["ops"] > 100
    assert report["rss_growth"] <= 1.3, report


def test_back_pressure_is_resource_exhausted(tmp_path):
    server = start_server(tmp_path / "data", "--max-concurrent-rpcs", "1")
    stubs = Stubs(server.address)
    try:
        stubs.collections.CreateCollection(cpb.CreateCollectionRequest(name="bp", dim=128, metric=cpb.L2), timeout=30)
        rng = np.random.default_rng(0)
        data = rng.normal(size=(3000, 128)).astype("<f4")
        stubs.records.Add(rpb.WriteRequest(collection="bp", ids=[f"r{i}" for i in range(3000)],
                                           embeddings=pb.Vectors(dim=128, count=3000, data_f32le=data.tobytes())),
                          timeout=60)
        query = rpb.QueryRequest(collection="bp", n_results=50, queries=pb.Vectors(
            dim=128, count=300, data_f32le=rng.normal(size=(300, 128)).astype("<f4").tobytes()))
        calls = [stubs.records.Query.future(query, timeout=60) for _ in range(24)]
        codes = {}
        details = set()
        for call in calls:
            try:
                call.result()
                code = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                code = exc.code()
                details.add(exc.details())
            codes[code.name] = codes.get(code.name, 0) + 1
        print(f"\nback-pressure with --max-concurrent-rpcs 1, 24 concurrent queries: {codes} {details}")
        assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}, (codes, details)
        assert codes.get("RESOURCE_EXHAUSTED", 0) >= 1 and codes.get("OK", 0) >= 1, codes
        # the server is not wedged: calls after the burst succeed. The server frees a call's
        # slot just after the client has its answer, so a call right behind the burst may
        # itself meet the limit of 1: back-pressure, retried briefly as a client would.
        def after_burst(call):
            for _ in range(40):
                try:
                    return call()
                except grpc.RpcError as exc:
                    if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                        raise
                    time.sleep(0.05)
            raise AssertionError("the server still refuses calls 2 s after the burst")

        assert after_burst(lambda: stubs.records.Count(rpb.CountRequest(collection="bp"), timeout=30)).count == 3000
        assert after_burst(lambda: healthy(server.address))
    finally:
        stubs.close()
        assert server.terminate() == 0, server.log()
