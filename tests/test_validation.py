"""Bad input gets INVALID_ARGUMENT naming the field, the value and the limit, and changes nothing."""

from __future__ import annotations

import math

import grpc
import numpy as np
import pytest

import vectord
from vectord import limits


@pytest.fixture
def col(client):
    c = client.create_collection("v", dim=3, metric="cosine")
    c.add(ids=["keep"], embeddings=[[1, 2, 3]], metadatas=[{"k": 1}])
    return c


def assert_unchanged(col):
    got = col.get(include=["embeddings", "metadatas"])
    assert got["ids"] == ["keep"]
    assert got["metadatas"] == [{"k": 1}]
    np.testing.assert_array_equal(got["embeddings"], [[1, 2, 3]])


@pytest.mark.parametrize("kwargs, match", [
    (dict(ids=["x"], embeddings=[[1, 2]]), "expects dim 3, got 2"),
    (dict(ids=["x"], embeddings=[[1, math.nan, 2]]), r"embeddings\[0\] \(id 'x'\): NaN"),
    (dict(ids=["x", "y"], embeddings=[[1, 1, 1], [1, math.inf, 2]]), r"embeddings\[1\] \(id 'y'\)"),
    (dict(ids=["x"], embeddings=[[0, 0, 0]]), "zero vector in a cosine collection"),
    (dict(ids=[""], embeddings=[[1, 1, 1]]), r"ids\[0\]: id must be a non-empty string"),
    (dict(ids=["x" * (limits.MAX_ID_BYTES + 1)], embeddings=[[1, 1, 1]]), f"longer than {limits.MAX_ID_BYTES} bytes"),
    (dict(ids=["x"], embeddings=[[1, 1, 1]], metadatas=[{"": 1}]), "non-empty string not starting with"),
    (dict(ids=["x"], embeddings=[[1, 1, 1]], metadatas=[{"$bad": 1}]), "not starting with '\\$'"),
    (dict(ids=["x"], embeddings=[[1, 1, 1]], metadatas=[{"big": "x" * (limits.MAX_METADATA_BYTES + 1)}]),
     f"the limit is {limits.MAX_METADATA_BYTES}"),
    (dict(ids=["x"], embeddings=[[1, 1, 1]], documents=["x" * (limits.MAX_DOCUMENT_BYTES + 1)]),
     f"longer than {limits.MAX_DOCUMENT_BYTES} bytes"),
    (dict(ids=["x"], embeddings=[[1, 1, 1]], metadatas=[{"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}]),
     f"deeper than {limits.MAX_METADATA_DEPTH}"),
    (dict(ids=["x"], embeddings=[[1, 1, 1]], metadatas=[{"f": math.nan}]), "not a finite number"),
    (dict(ids=["x", "y"], embeddings=[[1, 1, 1]]), "1 vectors for 2 ids"),
    (dict(ids=["x"], embeddings=[[1, 1, 1]], documents=["a", "b"]), "2 documents for 1 ids"),
    (dict(ids=["x"]), "embeddings: required"),
])
def test_bad_writes_are_refused_and_change_nothing(col, kwargs, match):
    with pytest.raises(vectord.InvalidArgumentError, match=match):
        col.add(**kwargs)
    with pytest.raises(vectord.InvalidArgumentError):
        col.upsert(**{**kwargs, "ids": kwargs["ids"]}) if "embeddings" in kwargs else col.upsert(**kwargs)
    assert_unchanged(col)


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "../x", "x" * 129, "sp ace", "naïve"])
def test_bad_collection_names(client, name):
    with pytest.raises(vectord.InvalidArgumentError, match="collection name"):
        client.create_collection(name, dim=3)
    assert client.list_collections() == []


@pytest.mark.parametrize("kwargs, match", [
    (dict(dim=0), "dim must be an integer in 1..65536"),
    (dict(dim=limits.MAX_DIM + 1), "dim must be"),
    (dict(dim=3, hnsw={"m": 1}), r"hnsw.m must be an integer in 2..128, got 1"),
    (dict(dim=3, hnsw={"ef_construction": 5000}), "hnsw.ef_construction"),
    (dict(dim=3, hnsw={"bogus": 1}), "unknown hnsw parameter"),
    (dict(dim=3, metric="hamming"), "metric must be one of"),
])
def test_bad_collection_parameters(client, kwargs, match):
    with pytest.raises(vectord.InvalidArgumentError, match=match):
        client.create_collection("p", **kwargs)
    assert client.list_collections() == []


def test_bad_queries(col):
    with pytest.raises(vectord.InvalidArgumentError, match="n_results"):
        col.query(query_embeddings=[[1, 1, 1]], n_results=0)
    with pytest.raises(vectord.InvalidArgumentError, match="n_results"):
        col.query(query_embeddings=[[1, 1, 1]], n_results=limits.MAX_N_RESULTS + 1)
    with pytest.raises(vectord.InvalidArgumentError, match="expects dim 3"):
        col.query(query_embeddings=[[1, 1]])
    with pytest.raises(vectord.InvalidArgumentError, match="include"):
        col.get(include=["distances"])
    with pytest.raises(vectord.InvalidArgumentError, match="NaN"):
        col.query(query_embeddings=[[1, math.nan, 1]])


def test_raw_grpc_status_codes(server):
    """Other languages see plain status codes with readable messages."""
    from vectord.v1 import records_pb2, records_pb2_grpc, types_pb2

    client = vectord.Client(server.address)
    client.create_collection("raw", dim=2)
    channel = grpc.insecure_channel(server.address)
    stub = records_pb2_grpc.RecordsStub(channel)
    bad_bytes = records_pb2.WriteRequest(collection="raw", ids=["a"],
                                         embeddings=types_pb2.Vectors(dim=2, count=1, data_f32le=b"\0" * 7))
    with pytest.raises(grpc.RpcError) as err:
        stub.Add(bad_bytes, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "expected count*dim*4" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        stub.Count(records_pb2.CountRequest(collection="missing"), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    empty_filter = records_pb2.CountRequest(collection="raw", where=types_pb2.Filter())
    with pytest.raises(grpc.RpcError) as err:
        stub.Count(empty_filter, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    client.delete_collection("raw")
    channel.close()
    client.close()
