"""The bare-gRPC floor (issue 13, item 2): what one Python gRPC round trip costs on this
machine, in this run, with the payload sizes of vectord's own query calls.

A grpcio sync server in a subprocess (vectord's server options, 16 worker threads, no
interceptors, no work) echoes raw bytes: the request is as long as the SDK's QueryRequest
for one query of the data set's dimension (``include=[]``, as the suite's searches send),
the reply as long as vectord's QueryResponse of k ids. The client is one channel shared by
every client thread, as the suite's vectord remote adapter shares one ``Client``, and the
floor runs the same ``single_queries`` and batched measurements. Every remote figure is then
reported as a fraction of it: 1.0 would be a vectord call that costs no more than gRPC
itself.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any, Callable

import numpy as np

from .measure import single_queries, timed_calls

ECHO_SERVER = textwrap.dedent("""
    import sys
    from concurrent import futures
    import grpc
    from vectord.server.app import SERVER_OPTIONS
    replies = {int(size): b"r" * int(size) for size in sys.argv[1:]}
    def echo(request, context):
        return replies[int.from_bytes(request[:4], "little")]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=SERVER_OPTIONS)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()
""")


def payload_sizes(dim: int, k: int, queries: int) -> tuple[int, int]:
    """(request bytes, reply bytes) of a vectord query of ``queries`` vectors of ``dim``
    asking ``k`` ids each, as the SDK and the servicer build them (ids of 5-6 digits)."""
    from vectord.client import requests as rq
    from vectord.v1 import records_pb2 as rpb

    request, _ = rq.query_request("bench", np.zeros((queries, dim), np.float32), k, None, None, [], None, False)
    reply = rpb.QueryResponse(results=[rpb.QueryResult(ids=[str(10_000 + i) for i in range(k)])
                                       for _ in range(queries)])
    return request.ByteSize(), reply.ByteSize()


def run_floor(ds, config: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    """The floor's single-query QPS/p50/p99 at each thread count and its batched
    throughput, with the payload sizes of this data set's vectord calls."""
    import grpc

    from vectord.server.app import CHANNEL_OPTIONS

    k = config["k"]
    single = payload_sizes(ds.dim, k, 1)
    batch = payload_sizes(ds.dim, k, config["query_batch"])
    proc = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(single[1]), str(batch[1])],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS)
        call = channel.unary_unary("/bench.Echo/Echo")

        def request(size: tuple[int, int]) -> bytes:
            return size[1].to_bytes(4, "little") + b"q" * (size[0] - 4)

        one = request(single)

        def make_search():
            def search(q, k, t):
                call(one, timeout=600)
                return []
            return search

        out: dict[str, Any] = {"request_bytes": single[0], "reply_bytes": single[1],
                               "batch_request_bytes": batch[0], "batch_reply_bytes": batch[1]}
        for threads in config["threads"]:
            r = single_queries(make_search, ds.queries, k, None, threads, config["max_seconds"])
            out[f"qps_t{threads}"], out[f"p50_t{threads}"], out[f"p99_t{threads}"] = r["qps"], r["p50_ms"], r["p99_ms"]
            log(f"  {threads} thread(s): {r['qps']:,.0f} round trips/s, p50 {r['p50_ms']:.3f} ms "
                f"({single[0]} B out, {single[1]} B back)")
        many = request(batch)
        lat, _ = timed_calls(lambda: call(many, timeout=600), 5, config["max_seconds"])
        out["batch_qps"] = config["query_batch"] / float(np.median(lat))
        log(f"  batched ({config['query_batch']} per call): {out['batch_qps']:,.0f} queries/s "
            f"({batch[0]:,} B out, {batch[1]:,} B back)")
        channel.close()
        return out
    finally:
        proc.kill()
        proc.wait()
