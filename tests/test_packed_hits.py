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


def _request(queries, packed: bool, columns: bool = False, **fields) -> rpb.QueryRequest:
    request, _ = rq.query_request("c", queries, 7, None, None, ["distances"], None, False)
    request.packed_results = packed
    request.packed_columns = columns
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
    # as byte columns (packed_columns): the same hits, no repeated field set
    columns = stub.Query(_request(queries, True, columns=True))
    assert not columns.packed.ids and not columns.packed.distances and list(columns.packed.counts) == [7] * 5
    assert columns.packed.ids_joined.split(b"\xff") == [i.encode() for i in packed.packed.ids]
    assert np.frombuffer(columns.packed.distances_f32le, "<f4").tolist() == list(packed.packed.distances)
    # ... only with packed_results, and only for bare hits
    assert not stub.Query(_request(queries, False, columns=True)).HasField("packed")
    with_docs.packed_columns = True
    assert not stub.Query(with_docs).HasField("packed")
    half = stub.Query(_request(queries, True, columns=True, max_distance=float(np.median(list(packed.packed.distances)))))
    assert 0 < len(half.packed.ids_joined.split(b"\xff")) == sum(half.packed.counts) < 35
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

    def repeated(*args, **kwargs):  # packed, as repeated fields (a server that predates packed_columns)
        request, include = real(*args, **kwargs)
        request.packed_columns = False
        return request, include

    monkeypatch.setattr(rq, "query_request", repeated)
    as_fields = collection.query(query_embeddings=queries, n_results=7, include=["distances"])
    monkeypatch.setattr(rq, "query_request", unpacked)
    expected = collection.query(query_embeddings=queries, n_results=7, include=["distances"])
    assert packed == expected == as_fields
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


def test_packed_rows_read_byte_columns_and_refuse_broken_ones():
    ids = ["a", "bé", "\U0001F600", "d", "e\nf"]
    joined = b"\xff".join(i.encode() for i in ids)
    distances = np.array([0.5, 1, 0, 0.25, 2], "<f4").tobytes()
    packed = rpb.PackedHits(counts=[2, 0, 3], ids_joined=joined, distances_f32le=distances)
    assert rq.packed_rows(packed, distances=True) == ([["a", "bé"], [], ["\U0001F600", "d", "e\nf"]],
                                                      [[0.5, 1.0], [], [0.0, 0.25, 2.0]])
    assert rq.packed_rows(rpb.PackedHits(counts=[1], ids_joined=b"x"), distances=False) == ([["x"]], None)
    assert rq.packed_rows(rpb.PackedHits(counts=[0, 0]), distances=True) == ([[], []], [[], []])
    from vectord.errors import InternalError
    for broken in (rpb.PackedHits(counts=[2], ids_joined=b"ab"),
                   rpb.PackedHits(counts=[1], ids_joined=b"a\xffb"),
                   rpb.PackedHits(counts=[2], ids_joined=b"a\xffb", distances_f32le=np.array([1], "<f4").tobytes())):
        with pytest.raises(InternalError):
            rq.packed_rows(broken, distances=True)


def test_ids_are_joined_as_gathered():
    from vectord.storage.id_index import IdColumn

    ids = ["a", "bé", "\U0001F600x", "ddd", "é"]
    column = IdColumn(ids)
    for labels in ([0], [4, 0, 2], [1, 1, 3], list(range(5))):
        at = np.asarray(labels, np.int64)
        assert column.joined(at) == b"\xff".join(ids[i].encode() for i in labels)
        blob, ends = column.gather(at)
        assert blob == b"".join(ids[i].encode() for i in labels) and ends.tolist()[-1] == len(blob)
    assert column.joined(np.zeros(0, np.int64)) == b""


def test_the_engine_answers_bare_hits_as_columns_equal_to_its_records(tmp_path):
    """Searcher.query_with_plan(columns=True): the tail's path and the sealed segments' path,
    with non-ASCII ids, max_distance cutting rows short."""
    from vectord.storage import Database, HitColumns, Tuning

    rng = np.random.default_rng(11)
    vectors = rng.standard_normal((400, 6)).astype(np.float32)
    ids = [f"r{i}" if i % 5 else f"é{i}\U0001F600" for i in range(400)]
    queries = rng.standard_normal((9, 6)).astype(np.float32)
    with Database(tmp_path / "db", tuning=Tuning(seal_rows=100, exact_threshold=50)) as db:
        col = db.create_collection("c", dim=6)
        col.add(ids[:300], vectors[:300])
        for sealed in (False, True):
            if sealed:
                col.checkpoint()  # seals the tail (seal_rows=100)
                col.add(ids[300:], vectors[300:])
                assert col.sealed
            for include in ([], ["distances"]):
                full, _ = col.query_with_plan(queries, 8, include=["distances"])
                for max_distance in (None, float(np.median(np.concatenate([r.distances for r in full])))):
                    rows, _ = col.query_with_plan(queries, 8, include=include, max_distance=max_distance)
                    packed, _ = col.query_with_plan(queries, 8, include=include, max_distance=max_distance,
                                                    columns=True)
                    assert isinstance(packed, HitColumns), (sealed, include, max_distance)
                    got = packed.rows()
                    assert [r.ids for r in got] == [r.ids for r in rows], (sealed, include, max_distance)
                    if include:
                        assert [r.distances.tolist() for r in got] == [r.distances.tolist() for r in rows]
                    else:
                        assert all(r.distances is None for r in got + rows)
                    if max_distance is not None:
                        assert 0 < sum(packed.counts) < 9 * 8  # rows cut short, some empty maybe
        # anything beyond bare hits: Records per query, as without columns
        rows, _ = col.query_with_plan(queries, 3, include=["metadatas"], columns=True)
        assert isinstance(rows, list) and len(rows) == 9
        grouped, _ = col.query_with_plan(queries, 3, include=[], group_by="g", columns=True)
        assert isinstance(grouped, list)
