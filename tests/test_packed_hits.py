"""Packed hits (QueryRequest.packed_results): a batch's bare hits in one message.

The server packs only hits of ids and distances, and only when asked; the SDK asks for
batches and reads either shape, so its answers are the same as from unpacked replies, and
it still reads servers that predate the field (they answer in ``results``).
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from vectord.client import requests as rq
from vectord.server import convert
from vectord.storage.types import Records
from vectord.v1 import records_pb2 as rpb
from vectord.v1 import records_pb2_grpc


def _fill(collection, n=60, dim=4):
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    collection.add(ids=[f"r{i}" for i in range(n)], embeddings=vectors,
                   documents=[f"doc {i}" for i in range(n)], metadatas=[{"i": i} for i in range(n)])
    return rng.standard_normal((5, dim)).astype(np.float32)


def _request(queries, packed: bool, **fields) -> rpb.QueryRequest:
    request, _ = rq.query_request("c", queries, 7, None, None, ["distances"], None, False)
    request.packed_results = packed
    for name, value in fields.items():
        setattr(request, name, value)
    return request


def test_the_server_packs_bare_hits_when_asked_and_only_then(server):
    import vectord

    collection = vectord.Client(server.address).create_collection("c", dim=4)
    queries = _fill(collection)
    stub = records_pb2_grpc.RecordsStub(grpc.insecure_channel(server.address))
    packed = stub.Query(_request(queries, True))
    plain = stub.Query(_request(queries, False))
    assert not packed.results and list(packed.packed.counts) == [7] * 5
    assert not plain.HasField("packed") and len(plain.results) == 5
    assert list(packed.packed.ids) == [i for r in plain.results for i in r.ids]
    assert list(packed.packed.distances) == [d for r in plain.results for d in r.distances]
    # columns beyond ids and distances: never packed, whatever the request says
    with_docs = _request(queries, True)
    with_docs.include.documents = True
    answer = stub.Query(with_docs)
    assert not answer.HasField("packed") and [list(r.documents) for r in answer.results]
    grouped = stub.Query(_request(queries, True, group_by="i"))
    assert not grouped.HasField("packed") and grouped.results[0].groups
    # rows of different lengths (max_distance) keep their own counts, empty ones included
    cut = stub.Query(_request(queries, True, max_distance=0.0))
    assert list(cut.packed.counts) == [0] * 5 and not cut.packed.ids
    vectord.Client(server.address).delete_collection("c")


def test_the_sdk_answers_a_batch_as_an_unpacked_reply_would(client, monkeypatch):
    collection = client.create_collection("c", dim=4)
    queries = _fill(collection)
    packed = collection.query(query_embeddings=queries, n_results=7, include=["distances"])
    bare = collection.query(query_embeddings=queries, n_results=7, include=[])
    with_docs = collection.query(query_embeddings=queries, n_results=7)
    # the same queries, the request not asking for packing (as an older SDK sends them)
    real = rq.query_request

    def unpacked(*args, **kwargs):
        request, include = real(*args, **kwargs)
        request.packed_results = False
        return request, include

    monkeypatch.setattr(rq, "query_request", unpacked)
    expected = collection.query(query_embeddings=queries, n_results=7, include=["distances"])
    assert packed == expected
    assert bare["ids"] == expected["ids"] and bare["distances"] is None
    assert with_docs["ids"] == expected["ids"] and with_docs["documents"][0][0].startswith("doc ")
    assert collection.query(query_embeddings=queries[:1], n_results=3)["ids"] == [expected["ids"][0][:3]]


def test_packed_rows_cut_the_hits_per_query():
    packed = rpb.PackedHits(counts=[2, 0, 3], ids=["a", "b", "c", "d", "e"], distances=[0.5, 1, 0, 0.25, 2])
    assert rq.packed_rows(packed, distances=True) == ([["a", "b"], [], ["c", "d", "e"]],
                                                      [[0.5, 1.0], [], [0.0, 0.25, 2.0]])
    assert rq.packed_rows(packed, distances=False) == ([["a", "b"], [], ["c", "d", "e"]], None)


def test_the_sdk_asks_for_packing_for_batches_only():
    one, _ = rq.query_request("c", [[1.0, 0.0]], 3, None, None, None, None, False)
    two, _ = rq.query_request("c", [[1.0, 0.0], [0.0, 1.0]], 3, None, None, None, None, False)
    texts, _ = rq.query_request("c", None, 3, None, None, None, ["a", "b"], False)
    # single queries stay unpacked: the coalescer joins them and hands out rows of `results`
    assert (one.packed_results, two.packed_results, texts.packed_results) == (False, True, True)


@pytest.mark.parametrize("distances", [True, False])
def test_convert_packs_what_it_would_have_sent_per_query(distances):
    results = [Records(ids=["x", "y"], distances=np.array([0.1, 0.2], np.float32) if distances else None),
               Records(ids=[], distances=np.array([], np.float32) if distances else None)]
    packed = convert.records_to_query_response(results, packed=True)
    plain = convert.records_to_query_response(results)
    assert list(packed.packed.counts) == [2, 0] and list(packed.packed.ids) == ["x", "y"]
    assert list(packed.packed.distances) == [d for r in plain.results for d in r.distances]
    assert rq.query_result(packed, rq.include_message(["distances"] if distances else [], rq.QUERY_INCLUDE,
                                                      allow_distances=True), 2, False) == \
        rq.query_result(plain, rq.include_message(["distances"] if distances else [], rq.QUERY_INCLUDE,
                                                  allow_distances=True), 2, False)
