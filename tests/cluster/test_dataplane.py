"""The direct read path between the gateway and a replica (cluster.dataplane), without Ray:
a ShardReplica in this process behind a ReadServer on loopback."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from vectord.cluster import dataplane
from vectord.cluster.replica import ShardReplica
from vectord.errors import InvalidArgumentError
from vectord.storage import filters as f

CONFIG = {"dim": 3, "metric": "l2", "hnsw": {"m": 16, "ef_construction": 100, "ef_search": 50}, "fulltext": None}
VECTORS = np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3]], np.float32)


@pytest.fixture()
def served(tmp_path):
    replica = ShardReplica(str(tmp_path / "r"), CONFIG)
    replica.apply(1, "put", {"ids": ["a", "b", "c", "d"], "embeddings": VECTORS, "documents": ["A", "B", None, "D"],
                             "metadatas": [{"n": 1}, {"n": 2}, None, {"n": 4, "tags": ["x", "y"]}]})
    server = dataplane.ReadServer("127.0.0.1", dataplane.replica_handlers(replica))
    client = dataplane.ReadClient(server.endpoint())
    yield replica, server, client
    client.close()
    server.close()
    replica.close()


def call(client, method, **kwargs):
    sock = client.send(method, dataplane.encode(method, kwargs))
    return dataplane.decode(method, client.receive(sock, time.monotonic() + 5))


def test_reads_answer_as_the_replica_does_in_process(served):
    replica, _, client = served
    where = f.And((f.Field("n", "gte", 2), f.Not(f.Field("n", "eq", 3))))  # a filter tree travels whole
    for kwargs in ({"n_results": 3}, {"n_results": 4, "where": where}, {"n_results": 2, "max_distance": 1.5}):
        queries = np.array([[0, 0, 0.1], [1, 1, 1]], np.float32)
        direct = call(client, "query", vectors=queries, **kwargs)
        local = replica.query(queries, **kwargs)
        assert [ids for ids, _ in direct] == [ids for ids, _ in local]
        for (_, got), (_, want) in zip(direct, local):
            assert np.array_equal(got, want) and got.dtype == np.float32
    got = call(client, "get", ids=["d", "c", "zz"], include=["embeddings", "documents", "metadatas"])
    want = replica.get(ids=["d", "c", "zz"], include=["embeddings", "documents", "metadatas"])
    assert got.ids == want.ids == ["d", "c"]
    assert got.documents == want.documents and got.metadatas == want.metadatas
    assert np.array_equal(got.embeddings, want.embeddings)
    page = call(client, "get", after="", limit=2, include=[])
    assert page.ids == ["a", "b"] and page.next_after == "b"
    assert call(client, "count", where=where) == 2
    assert call(client, "count") == 4


def test_the_engines_errors_come_back_as_themselves_and_the_connection_is_reused(served):
    _, _, client = served
    with pytest.raises(InvalidArgumentError, match="limit and offset"):
        call(client, "get", limit=-1)
    assert call(client, "count") == 4  # the same connection, still in step
    assert len(client._idle) == 1


def test_a_wrong_token_gets_no_answer(served):
    _, server, _ = served
    stranger = dataplane.ReadClient([*server.address, "0" * 32])
    with pytest.raises(dataplane.ReplicaDown):
        stranger.send("count", {})
    with socket.create_connection(server.address, timeout=5) as sock:  # a request in place of the token
        dataplane._send(sock, ["count", {}])
        sock.settimeout(5)
        assert sock.recv(1) == b""  # closed without a reply


def test_a_replica_that_is_gone_is_replica_down_not_an_answer(served):
    _, server, client = served
    assert call(client, "count") == 4
    server.close()
    time.sleep(0.1)
    with pytest.raises(dataplane.ReplicaDown):
        call(client, "count")
        call(client, "count")  # the idle connection may take one send before it reports the close
