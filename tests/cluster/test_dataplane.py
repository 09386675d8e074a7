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


class RayShaped:
    """A replica called in-process with Ray's `.remote()` shape (ray.get is patched), noting
    which methods went over "Ray"."""

    def __init__(self, replica, calls):
        self.replica, self.calls = replica, calls

    def __getattr__(self, name):
        method = getattr(self.replica, name)
        self.calls.append(name)
        return type("M", (), {"remote": staticmethod(lambda *a, **k: method(*a, **k))})


def test_a_direct_read_goes_only_to_a_replica_with_every_acknowledged_write(tmp_path, monkeypatch):
    from vectord.cluster.shards import STALE, Replica, Shard, ShardSet

    ray = pytest.importorskip("ray")
    monkeypatch.setattr(ray, "get", lambda value, timeout=None: value)
    ahead, behind = ShardReplica(str(tmp_path / "a"), CONFIG), ShardReplica(str(tmp_path / "b"), CONFIG)
    for r in (ahead, behind):
        r.apply(1, "put", {"ids": ["a", "b"], "embeddings": VECTORS[:2]})
    ahead.apply(2, "put", {"ids": ["c"], "embeddings": VECTORS[2:3]})  # level one: acknowledged by one replica
    servers = [dataplane.ReadServer("127.0.0.1", dataplane.replica_handlers(r)) for r in (ahead, behind)]
    over_ray: list[str] = []
    replicas = [Replica(0, i, f"n{i}", f"r{i}", RayShaped(r, over_ray)) for i, r in enumerate((ahead, behind))]
    for replica, r, server in zip(replicas, (ahead, behind), servers):
        replica.seen({"applied": r.applied, "endpoint": server.endpoint()})
    shards = ShardSet("docs", [Shard(0, replicas, seq=2, acked=2)])
    for _ in range(4):  # the readers rotate, the lagging one never answers on the direct path
        assert shards.fanout({0: ("count", (), {})})[0] == 3
    assert over_ray == [] and not replicas[1].reader._idle
    servers[0].close()  # the replica that has it is gone: marked out of sync, the other asked over Ray
    assert shards.fanout({0: ("count", (), {})})[0] == 2 and over_ray == ["count"]
    assert replicas[0].state == STALE and "read failed" in replicas[0].reason
    servers[1].close()
    for r in (ahead, behind):
        r.close()


def test_a_batch_without_columns_travels_flat_and_merges_as_per_query(served):
    from vectord.cluster import ranked

    replica, _, client = served
    queries = np.array([[0, 0, 0.1], [1, 1, 1], [0, 2, 0]], np.float32)
    flat = call(client, "query", vectors=queries, n_results=3)
    assert isinstance(flat, dataplane.FlatHits) and len(flat) == 3 and flat.width() == 3
    with_columns = call(client, "query", vectors=queries[:1], n_results=2, columns=["documents"])
    assert isinstance(with_columns, list) and with_columns[0][2].documents == replica.query(
        queries[:1], 2, columns=["documents"])[0][2].documents
    # the batch merge of flat replies is the per-query merge, query by query
    assert ranked.merge_vector_many([flat, flat], 3, 2) == [ranked.merge_vector([flat[q], flat[q]], 2)
                                                            for q in range(3)]


def test_bare_hits_travel_as_the_engines_joined_id_bytes(tmp_path):
    replica = ShardReplica(str(tmp_path / "r"), CONFIG)
    ids = ["a", "é", "日本", "x y"]
    replica.apply(1, "put", {"ids": ids, "embeddings": VECTORS})
    try:
        handler = dataplane.replica_handlers(replica)["query"]
        queries = np.array([[0, 0, 0.1], [0, 2, 0]], np.float32)
        wire = handler(dataplane.pack_array(queries), n_results=4)
        assert set(wire) == {"lengths", "joined", "distances"} and isinstance(wire["joined"], bytes)
        flat = dataplane.decode("query", wire)
        local = replica.query(queries, 4)
        assert [list(flat[q][0]) for q in range(2)] == [ids_ for ids_, _ in local]
        assert all(np.array_equal(flat[q][1], local[q][1]) for q in range(2))
        off = queries + np.float32(0.1)  # no record at distance 0 of these
        empty = dataplane.decode("query", handler(dataplane.pack_array(off), n_results=4, max_distance=0.0))
        assert empty.lengths == [0, 0] and empty.ids == []
    finally:
        replica.close()


def test_the_gateways_hit_columns_are_the_merged_hits_in_order():
    from vectord.cluster.engine import ClusterCollection

    tops = [[("b", 0.5, None), ("日本", 0.75, None)], [], [("a", 1.0, None)]]
    columns = ClusterCollection._hit_columns(tops, True)
    assert columns.counts == [2, 0, 1] and columns.ids() == ["b", "日本", "a"]
    assert columns.ids_joined == "b".encode() + b"\xff" + "日本".encode() + b"\xff" + b"a"
    assert columns.distances.dtype == np.float32 and columns.distances.tolist() == [0.5, 0.75, 1.0]
    assert ClusterCollection._hit_columns(tops, False).distances is None
    assert ClusterCollection._hit_columns([[], []], True).ids_joined == b""


def test_the_batch_merge_equals_the_per_query_merge_with_ties_twins_nan_and_short_lists():
    from vectord.cluster import ranked

    rng = np.random.default_rng(7)
    count, depth = 40, 5
    shards = []
    for s in range(3):
        ids = [[f"s{s}-{q}-{j}" for j in range(4)] for q in range(count)]
        dist = np.sort(rng.random((count, 4)).astype(np.float32), axis=1)
        shards.append((ids, dist))
    shards[1][1][3] = shards[0][1][3]  # query 3: every distance tied across two shards
    shards[2][0][5][0] = shards[0][0][5][0]  # query 5: one id on two shards (kept once, nearest)
    shards[2][1][7][1] = np.nan  # query 7: a NaN
    shards[0][1][9][2] = shards[0][1][9][3] = shards[1][1][9][0]  # query 9: a tie at the cut
    parts = [dataplane.FlatHits([4] * count, [i for row in ids for i in row], dist.ravel()) for ids, dist in shards]
    want = [ranked.merge_vector([part[q] for part in parts], depth) for q in range(count)]
    assert ranked.merge_vector_many(parts, count, depth) == want
    assert len({h[0] for h in want[5]}) == depth  # the twin counted once
    deep = [ranked.merge_vector([p[q] for p in parts], 20) for q in range(count)]  # fewer hits than asked
    assert repr(ranked.merge_vector_many(parts, count, 20)) == repr(deep)  # repr: a NaN equals itself
    short = dataplane.FlatHits([4] * (count - 1) + [2], parts[0].ids[:-2], parts[0].distances[:-2])
    assert short.width() is None  # ragged: merged query by query, same answer
    mixed = [short, [p for p in parts[1]], parts[2]]
    assert ranked.merge_vector_many(mixed, count, depth) == [ranked.merge_vector([m[q] for m in mixed], depth)
                                                             for q in range(count)]


def test_a_round_builds_one_request_frame_for_every_shard_asked_the_same(tmp_path, monkeypatch):
    from vectord.cluster.shards import Replica, Shard, ShardSet

    pytest.importorskip("ray")
    replicas, servers = [], []
    for s in range(3):
        r = ShardReplica(str(tmp_path / f"s{s}"), CONFIG)
        r.apply(1, "put", {"ids": [f"{s}{i}" for i in "abcd"], "embeddings": VECTORS})
        servers.append(dataplane.ReadServer("127.0.0.1", dataplane.replica_handlers(r)))
        replica = Replica(s, 0, "n0", f"r{s}", None)
        replica.seen({"applied": 1, "endpoint": servers[-1].endpoint()})
        replicas.append((r, replica))
    built = []
    request = dataplane.request
    monkeypatch.setattr(dataplane, "request", lambda method, kwargs: built.append(method) or request(method, kwargs))
    shards = ShardSet("docs", [Shard(s, [replica], seq=1, acked=1) for s, (_, replica) in enumerate(replicas)])
    asked = {"vectors": VECTORS[:2], "n_results": 2, "where": None, "max_distance": None}
    found = shards.fanout({s: ("query", (), asked) for s in range(3)})
    assert built == ["query"]
    assert [found[s][0][0] for s in range(3)] == [[f"{s}a", f"{s}b"] for s in range(3)]
    for server in servers:
        server.close()
    for r, _ in replicas:
        r.close()


def test_a_replica_takes_an_ordinary_priority_where_allowed():
    import os
    import threading

    from vectord.cluster.replica import normal_priority

    seen = []

    def niced():  # as Ray starts its workers: nice 15 (raising niceness needs no privilege)
        os.setpriority(os.PRIO_PROCESS, 0, 15)
        seen.append(normal_priority())

    thread = threading.Thread(target=niced)
    thread.start()
    thread.join()
    assert seen == [0 if os.geteuid() == 0 else 15]
