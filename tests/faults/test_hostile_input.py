"""Hostile input through raw gRPC stubs (no SDK checks in the way): every limit of
src/vectord/limits.py with its status code, a message naming the limit, and nothing changed;
unknown operators and ill-typed operands; deadlines."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest

import vectord
from faults_helpers import Stubs, code_of, healthy
from serverproc import start_server
from vectord import limits
from vectord.v1 import admin_pb2, collections_pb2 as cpb, records_pb2 as rpb, types_pb2 as pb

DIM = 4
INVALID, EXHAUSTED = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED
LIMIT_RESULTS: dict[str, tuple] = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = start_server(tmp_path_factory.mktemp("hostile") / "data")
    client = vectord.Client(proc.address, timeout=60)
    col = client.create_collection("h", dim=DIM, metric="l2")
    col.add(ids=["keep"], embeddings=[[1, 2, 3, 4]], documents=["kept"], metadatas=[{"k": 1}])
    client.close()
    yield proc
    assert proc.terminate() == 0, proc.log()


@pytest.fixture(scope="module")
def stubs(server):
    s = Stubs(server.address)
    yield s
    s.close()


def vectors(n, dim=DIM, value=1.0):
    return pb.Vectors(dim=dim, count=n, data_f32le=np.full((n, dim), value, "<f4").tobytes())


def state(stubs):
    """Everything a refused call must leave as it was."""
    names = [c.name for c in stubs.collections.ListCollections(cpb.ListCollectionsRequest(), timeout=30).collections]
    got = stubs.records.Get(rpb.GetRequest(collection="h", include=pb.Include(
        embeddings=True, documents=True, metadatas=True)), timeout=30)
    return names, got.SerializeToString(deterministic=True)


def nested_filter(depth):
    node = pb.Filter(field=pb.FieldCondition(path="k", op=pb.FieldCondition.EQ, value=pb.Value(int_value=1)))
    for _ in range(depth - 1):
        node = pb.Filter(negation=node)
    return node


def nested_metadata(depth):
    value = pb.Value(int_value=1)
    for _ in range(depth - 1):
        value = pb.Value(map_value=pb.Metadata(fields={"a": value}))
    return pb.Metadata(fields={"a": value})


def field(op, value):
    return pb.Filter(field=pb.FieldCondition(path="k", op=op, value=value))


def write(**kwargs):
    kwargs.setdefault("collection", "h")
    return rpb.WriteRequest(**kwargs)


F = pb.FieldCondition
CASES = {
    # name: (limit value, rpc, request, code, text the message must contain)
    "batch_records": (limits.MAX_BATCH_RECORDS, "records.Add",
                      write(ids=[f"i{n}" for n in range(limits.MAX_BATCH_RECORDS + 1)]),
                      INVALID, f"the limit is {limits.MAX_BATCH_RECORDS}"),
    "batch_get_ids": (limits.MAX_BATCH_RECORDS, "records.Get",
                      rpb.GetRequest(collection="h", ids=[f"i{n}" for n in range(limits.MAX_BATCH_RECORDS + 1)]),
                      INVALID, f"the limit is {limits.MAX_BATCH_RECORDS}"),
    "batch_delete_ids": (limits.MAX_BATCH_RECORDS, "records.Delete",
                         rpb.DeleteRequest(collection="h", ids=[f"i{n}" for n in range(limits.MAX_BATCH_RECORDS + 1)]),
                         INVALID, f"the limit is {limits.MAX_BATCH_RECORDS}"),
    "id_bytes": (limits.MAX_ID_BYTES, "records.Upsert",
                 write(ids=["é" * (limits.MAX_ID_BYTES // 2) + "x"], embeddings=vectors(1)),
                 INVALID, f"longer than {limits.MAX_ID_BYTES} bytes"),
    "dim": (limits.MAX_DIM, "collections.CreateCollection",
            cpb.CreateCollectionRequest(name="big", dim=limits.MAX_DIM + 1, metric=cpb.L2), INVALID, str(limits.MAX_DIM)),
    "dim_mismatch": (DIM, "records.Upsert", write(ids=["x"], embeddings=vectors(1, DIM + 1)),
                     INVALID, f"expects dim {DIM}"),
    "n_results": (limits.MAX_N_RESULTS, "records.Query",
                  rpb.QueryRequest(collection="h", queries=vectors(1), n_results=limits.MAX_N_RESULTS + 1),
                  INVALID, str(limits.MAX_N_RESULTS)),
    "queries_per_call": (limits.MAX_QUERIES, "records.Query",
                         rpb.QueryRequest(collection="h", queries=vectors(limits.MAX_QUERIES + 1), n_results=1),
                         INVALID, str(limits.MAX_QUERIES)),
    "metadata_bytes": (limits.MAX_METADATA_BYTES, "records.Upsert",
                       write(ids=["x"], embeddings=vectors(1), metadatas=rpb.MetadataList(values=[pb.Metadata(
                           fields={"big": pb.Value(string_value="x" * limits.MAX_METADATA_BYTES)})])),
                       INVALID, f"the limit is {limits.MAX_METADATA_BYTES}"),
    "metadata_depth": (limits.MAX_METADATA_DEPTH, "records.Upsert",
                       write(ids=["x"], embeddings=vectors(1), metadatas=rpb.MetadataList(
                           values=[nested_metadata(limits.MAX_METADATA_DEPTH + 1)])),
                       INVALID, f"deeper than {limits.MAX_METADATA_DEPTH}"),
    "document_bytes": (limits.MAX_DOCUMENT_BYTES, "records.Upsert",
                       write(ids=["x"], embeddings=vectors(1), documents=rpb.DocumentList(values=[
                           pb.OptionalString(value="x" * (limits.MAX_DOCUMENT_BYTES + 1))])),
                       INVALID, f"longer than {limits.MAX_DOCUMENT_BYTES} bytes"),
    "filter_depth": (limits.MAX_FILTER_DEPTH, "records.Count",
                     rpb.CountRequest(collection="h", where=nested_filter(limits.MAX_FILTER_DEPTH + 1)),
                     INVALID, f"deeper than {limits.MAX_FILTER_DEPTH}"),
    "filter_depth_delete": (limits.MAX_FILTER_DEPTH, "records.Delete",
                            rpb.DeleteRequest(collection="h", where=nested_filter(limits.MAX_FILTER_DEPTH + 1)),
                            INVALID, f"deeper than {limits.MAX_FILTER_DEPTH}"),
    "collection_name": (limits.MAX_COLLECTION_NAME, "collections.CreateCollection",
                        cpb.CreateCollectionRequest(name="n" * (limits.MAX_COLLECTION_NAME + 1), dim=2, metric=cpb.L2),
                        INVALID, str(limits.MAX_COLLECTION_NAME)),
    "unknown_field_operator": (None, "records.Count",
                               rpb.CountRequest(collection="h", where=field(99, pb.Value(int_value=1))),
                               INVALID, "unknown operator"),
    "unknown_document_operator": (None, "records.Delete", rpb.DeleteRequest(
        collection="h", where=pb.Filter(document=pb.DocumentCondition(op=7, text="kept"))), INVALID, "unknown operator"),
    "unknown_metric": (None, "collections.CreateCollection",
                       cpb.CreateCollectionRequest(name="m", dim=2, metric=42), INVALID, "metric"),
    "no_operator": (None, "records.Count", rpb.CountRequest(collection="h", where=field(0, pb.Value(int_value=1))),
                    INVALID, "no operator"),
    "gt_string": (None, "records.Count", rpb.CountRequest(collection="h", where=field(F.GT, pb.Value(string_value="a"))),
                  INVALID, "needs a number"),
    "in_scalar": (None, "records.Delete", rpb.DeleteRequest(collection="h", where=field(F.IN, pb.Value(int_value=1))),
                  INVALID, "needs a non-empty list"),
    "exists_int": (None, "records.Get", rpb.GetRequest(collection="h", where=field(F.EXISTS, pb.Value(int_value=1))),
                   INVALID, "true or false"),
    "eq_map": (None, "records.Delete", rpb.DeleteRequest(collection="h", where=field(
        F.EQ, pb.Value(map_value=pb.Metadata(fields={"k": pb.Value(int_value=1)})))), INVALID, "string, number or bool"),
    "nan_metadata": (None, "records.Upsert", write(ids=["keep"], embeddings=vectors(1), metadatas=rpb.MetadataList(
        values=[pb.Metadata(fields={"f": pb.Value(double_value=float("nan"))})])), INVALID, "not a finite number"),
    "nan_vector": (None, "records.Upsert", write(ids=["keep"], embeddings=vectors(1, value=float("nan"))),
                   INVALID, "NaN"),
    "hnsw_m": (128, "collections.CreateCollection",
               cpb.CreateCollectionRequest(name="m", dim=2, metric=cpb.L2, hnsw=cpb.HnswParams(m=129)), INVALID, "2..128"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_limit_through_raw_grpc(stubs, case):
    limit, rpc, request, expected, text = CASES[case]
    before = state(stubs)
    service, method = rpc.split(".")
    code, details = code_of(getattr(getattr(stubs, service), method), request, timeout=60)
    LIMIT_RESULTS[case] = (limit, code.name)
    assert code == expected, (case, code, details)
    assert text in details, (case, details)
    assert state(stubs) == before


def test_message_size_is_the_same_on_both_ends_and_enforced(server, stubs):
    from vectord.client.transport import CHANNEL_OPTIONS as SDK
    from vectord.server.app import CHANNEL_OPTIONS as SERVER

    assert dict(SDK) == dict(SERVER) == {"grpc.max_send_message_length": limits.MAX_MESSAGE_BYTES,
                                         "grpc.max_receive_message_length": limits.MAX_MESSAGE_BYTES}
    info = stubs.admin.GetServerInfo(admin_pb2.GetServerInfoRequest(), timeout=30)
    assert info.max_message_bytes == limits.MAX_MESSAGE_BYTES
    assert info.max_batch_records == limits.MAX_BATCH_RECORDS
    before = state(stubs)
    # a client that would send more than the limit: the server refuses it
    n = limits.MAX_MESSAGE_BYTES // (DIM * 4) + 16
    big = write(ids=["x"], embeddings=pb.Vectors(dim=DIM, count=n, data_f32le=b"\0" * (n * DIM * 4)))
    assert big.ByteSize() > limits.MAX_MESSAGE_BYTES
    loose = Stubs(server.address, options=[("grpc.max_send_message_length", 2 * limits.MAX_MESSAGE_BYTES)])
    code, details = code_of(loose.records.Upsert, big, timeout=120)
    loose.close()
    LIMIT_RESULTS["message_bytes"] = (limits.MAX_MESSAGE_BYTES, code.name)
    assert code == EXHAUSTED, details
    assert str(limits.MAX_MESSAGE_BYTES) in details, details
    # the SDK's own channel refuses to send it at all, with the same limit
    code, details = code_of(stubs.records.Upsert, big, timeout=120)
    assert code == EXHAUSTED and str(limits.MAX_MESSAGE_BYTES) in details, details
    assert state(stubs) == before and healthy(server.address)


def test_number_of_collections(tmp_path, monkeypatch):
    """The real limit is 10,000 directories; lowered here, through a real (in-process) server."""
    from vectord.server.app import create_server
    from vectord.server.settings import Settings
    from vectord.storage import Database

    monkeypatch.setattr(limits, "MAX_COLLECTIONS", 3)
    db = Database(tmp_path / "d")
    running = create_server(Settings(port=0, host="127.0.0.1"), db)
    stubs = Stubs(f"127.0.0.1:{running.port}")
    try:
        for i in range(3):
            stubs.collections.CreateCollection(cpb.CreateCollectionRequest(name=f"c{i}", dim=2, metric=cpb.L2), timeout=30)
        code, details = code_of(stubs.collections.CreateCollection,
                                cpb.CreateCollectionRequest(name="c3", dim=2, metric=cpb.L2), timeout=30)
        LIMIT_RESULTS["collections"] = (limits.MAX_COLLECTIONS, code.name)
        assert code == EXHAUSTED and "3 collections, the limit" in details, details
        names = [c.name for c in stubs.collections.ListCollections(cpb.ListCollectionsRequest(), timeout=30).collections]
        assert names == ["c0", "c1", "c2"]
        assert len(list((tmp_path / "d" / "collections").iterdir())) == 3
    finally:
        stubs.close()
        running.stop(1)
        db.close()


def test_expired_and_tiny_deadlines_never_half_apply_a_batch(server, stubs):
    # 3,000 records of dim 256 (3 MB): below the HNSW threshold, so a batch is one log record
    n, dim = 3000, 256
    stubs.collections.CreateCollection(cpb.CreateCollectionRequest(name="dl", dim=dim, metric=cpb.L2), timeout=30)
    ids = [f"d{i}" for i in range(n)]
    request = write(collection="dl", ids=ids, embeddings=pb.Vectors(
        dim=dim, count=n, data_f32le=np.random.default_rng(1).normal(size=(n, dim)).astype("<f4").tobytes()))
    count = lambda: stubs.records.Count(rpb.CountRequest(collection="dl"), timeout=30).count  # noqa: E731
    before = count()
    code, _ = code_of(stubs.records.Upsert, request, timeout=0)  # already expired
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    seen = set()
    for timeout in (0.0005, 0.002, 0.01, 0.05):
        code, _ = code_of(stubs.records.Upsert, request, timeout=timeout)
        seen.add(code)
        assert code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.OK)
        deadline = time.monotonic() + 30
        now = count()
        while time.monotonic() < deadline:  # let a call that still runs on the server finish
            time.sleep(0.3)
            if count() == now:
                break
            now = count()
        assert now in (before, before + n), f"half-applied batch: {now - before} of {n}"
        if now != before:
            stubs.records.Delete(rpb.DeleteRequest(collection="dl", ids=ids), timeout=60)
        assert count() == before
    assert grpc.StatusCode.DEADLINE_EXCEEDED in seen
    stubs.collections.DeleteCollection(cpb.DeleteCollectionRequest(name="dl"), timeout=30)
    assert healthy(server.address)


def test_zz_report_limits():
    for name, (limit, code) in sorted(LIMIT_RESULTS.items()):
        print(f"limit {name:<28} {limit!s:>10}  -> {code}")
