"""The bare-gRPC floor (issue 13, item 2): what one Python gRPC round trip costs on this
machine, in this run, with the payload sizes of vectord's own query calls.

A grpcio sync server in a subprocess (vectord's server options, 16 worker threads, no
interceptors, no work) echoes raw bytes: the request is as long as the SDK's QueryRequest
for one query of the data set's dimension (``include=[]``, as the suite's searches send),
the reply as long as vectord's QueryResponse of k ids. The client is one channel shared by
every client thread, as the suite's vectord remote adapter shares one ``Client``, and the
floor runs the same single-query and batched steps (measure.Session), in the same rounds as
the systems (rounds.py). Every remote figure is then reported as a fraction of it: 1.0 would
be a vectord call that costs no more than gRPC itself.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np


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


class FloorAdapter:
    """The echo server as a system of the protocol: ``searcher`` and ``search_batch`` make
    one round trip with the byte sizes of vectord's query of one (or ``len(queries)``)
    vectors; nothing is found, so there is no recall."""

    has_recall = False
    get_where = count_where = explain = None

    def __init__(self, dim: int, k: int, batch_sizes: list[int]) -> None:
        import grpc

        from vectord.server.app import CHANNEL_OPTIONS

        self.sizes = {n: payload_sizes(dim, k, n) for n in sorted({1, *batch_sizes})}
        self.proc = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, *(str(s[1]) for s in self.sizes.values())],
                                     stdout=subprocess.PIPE, text=True)
        try:
            port = int(self.proc.stdout.readline())
        except ValueError:
            self.close()
            raise RuntimeError("the echo server did not start") from None
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS)
        self.call = self.channel.unary_unary("/bench.Echo/Echo")
        # the first 4 bytes tell the echo server which reply to send
        self.requests = {n: s[1].to_bytes(4, "little") + b"q" * (s[0] - 4) for n, s in self.sizes.items()}

    def figures(self) -> dict[str, int]:
        one, batch = self.sizes[1], self.sizes[max(self.sizes)]
        return {"request_bytes": one[0], "reply_bytes": one[1], "batch_request_bytes": batch[0],
                "batch_reply_bytes": batch[1]}

    def after_ingest(self) -> None:
        pass

    def searcher(self):
        call, one = self.call, self.requests[1]

        def search(q, k, t):
            call(one, timeout=600)
            return []
        return search

    def search_batch(self, queries, k):
        self.call(self.requests[len(queries)], timeout=600)
        return [[] for _ in queries]

    def close(self) -> None:
        if getattr(self, "channel", None) is not None:
            self.channel.close()
        self.proc.kill()
        self.proc.wait()
