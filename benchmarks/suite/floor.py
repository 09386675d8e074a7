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

The gRPC + hnswlib ceiling is the same server whose handler also searches: raw hnswlib's
``knn_query`` over the data set (the suite's settings) for the query floats the request
carries, answering the labels found in a reply of vectord's size. No Python gRPC server
answers a query with this index faster, so it splits a remote system's distance from the
floor into what the search itself costs and what the server adds around it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from .systems import EF, EF_CONSTRUCTION, M

# The servers' script, in three parts: imports; a handler ``answer(request, context) -> bytes``
# (the echo's or the search's); serving it on a free port, printed once the server is ready.
_IMPORTS = textwrap.dedent("""
    import sys
    from concurrent import futures
    from vectord.server.grpc_engine import import_grpc
    grpc = import_grpc()  # the I/O engine of vectord serve: a floor of the same gRPC
    from vectord.server.app import SERVER_OPTIONS
""")
#: Arguments: the reply sizes; a request's first 4 bytes say which reply to send.
_ECHO = textwrap.dedent("""
    replies = {int(size): b"r" * int(size) for size in sys.argv[1:]}
    def answer(request, context):
        return replies[int.from_bytes(request[:4], "little")]
""")
#: Arguments: the data (.npy), M, ef_construction, ef, k. A request: the reply size (4 bytes),
#: the queries (float32 rows), padding shorter than a row; the reply: k uint32 labels per
#: query, padded to the reply size.
_SEARCH = textwrap.dedent("""
    import hnswlib
    import numpy as np
    data = np.load(sys.argv[1])
    m, ef_construction, ef, k = (int(a) for a in sys.argv[2:6])
    dim = data.shape[1]
    index = hnswlib.Index(space="cosine", dim=dim)
    index.init_index(max_elements=len(data), M=m, ef_construction=ef_construction, random_seed=100)
    index.add_items(data, np.arange(len(data)))
    index.set_ef(ef)
    del data
    def answer(request, context):
        rows = (len(request) - 4) // (4 * dim)
        queries = np.frombuffer(request, np.float32, rows * dim, 4).reshape(rows, dim)
        labels = index.knn_query(queries, k=k)[0].astype(np.uint32).tobytes()
        return labels.ljust(int.from_bytes(request[:4], "little"), b"r")
""")
_SERVE = textwrap.dedent("""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=SERVER_OPTIONS)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(answer)})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()
""")
ECHO_SERVER = _IMPORTS + _ECHO + _SERVE
SEARCH_SERVER = _IMPORTS + _SEARCH + _SERVE


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
    #: The server (``python -c``), given ``server_args()``.
    server = ECHO_SERVER
    #: Whether a request carries its queries' float32 bytes (the echo's carry padding only).
    carries_queries = False

    def __init__(self, dim: int, k: int, batch_sizes: list[int]) -> None:
        import grpc

        from vectord.server.app import CHANNEL_OPTIONS

        self.sizes = {n: payload_sizes(dim, k, n) for n in sorted({1, *batch_sizes})}
        # a request of n queries as (head, padding), the queries' floats (if carried) between
        # them: the first 4 bytes tell the server which reply to send, the padding makes up
        # vectord's request size
        row = 4 * dim if self.carries_queries else 0
        self.frames = {n: (reply.to_bytes(4, "little"), b"q" * (request - 4 - row * n))
                       for n, (request, reply) in self.sizes.items()}
        # the search server counts a request's queries in whole rows
        assert not row or all(len(pad) < row for _, pad in self.frames.values())
        self.requests = {n: head + pad for n, (head, pad) in self.frames.items()}  # the echo's, whole
        self.proc = subprocess.Popen([sys.executable, "-c", self.server, *self.server_args()],
                                     stdout=subprocess.PIPE, text=True)
        try:
            port = int(self.proc.stdout.readline())
        except ValueError:
            self.close()
            raise RuntimeError(f"the {'search' if row else 'echo'} server did not start") from None
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS)
        self.call = self.channel.unary_unary("/bench.Echo/Echo")

    def server_args(self) -> list[str]:
        return [str(reply) for _, reply in self.sizes.values()]

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

    @staticmethod
    def batch_labels(answer) -> list[list[int]]:
        return answer

    def close(self) -> None:
        if getattr(self, "channel", None) is not None:
            self.channel.close()
        self.proc.kill()
        self.proc.wait()


class CeilingAdapter(FloorAdapter):
    """The gRPC + hnswlib ceiling as a system: the floor's calls carrying the real query
    floats to a server that searches its hnswlib index of ``data_file`` (built at start),
    and the labels it found, so that recall is measured as for raw hnswlib."""

    has_recall = True
    server = SEARCH_SERVER
    carries_queries = True

    def __init__(self, data_file: Path, dim: int, k: int, batch_sizes: list[int]) -> None:
        self.data_file, self.k = data_file, k
        super().__init__(dim, k, batch_sizes)

    def server_args(self) -> list[str]:
        return [str(self.data_file), str(M), str(EF_CONSTRUCTION), str(EF), str(self.k)]

    def searcher(self):
        call, (head, pad) = self.call, self.frames[1]

        def search(q, k, t):
            reply = call(head + np.asarray(q, np.float32).tobytes() + pad, timeout=600)
            return np.frombuffer(reply, np.uint32, k).tolist()
        return search

    def search_batch(self, queries, k):
        head, pad = self.frames[len(queries)]
        reply = self.call(head + np.asarray(queries, np.float32).tobytes() + pad, timeout=600)
        return np.frombuffer(reply, np.uint32, k * len(queries)).reshape(len(queries), k)

    @staticmethod
    def batch_labels(labels) -> list[list[int]]:
        return labels.tolist()
