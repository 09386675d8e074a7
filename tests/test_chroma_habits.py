"""Chroma habits the engine now meets, and storage contracts seen through the SDK, in
every mode: a real server ("remote"), a data directory ("embedded") and in memory.

What Chroma users do in their first hour, and what they should get: get_or_create_collection
on an existing collection, Collection.modify, heartbeat, reset, and the messages for an
unreachable server and a missing API key."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time

import grpc
import numpy as np
import pytest

import vectord
from serverproc import start_server
from vectord.server import auth
from vectord.server.settings import Settings
from vectord.v1 import collections_pb2 as cpb
from vectord.v1 import collections_pb2_grpc


@pytest.fixture(params=["remote", "embedded", "memory"])
def client(request, tmp_path):
    if request.param == "remote":
        c = vectord.Client(request.getfixturevalue("server").address, timeout=60)
    elif request.param == "embedded":
        c = vectord.Client(path=str(tmp_path / "embedded"))
    else:
        c = vectord.Client()
    yield c
    if request.param == "remote":
        for collection in c.list_collections():
            c.delete_collection(collection.name)
    c.close()


def test_contains_and_not_contains_on_list_metadata(client):
    col = client.create_collection("tagged", dim=2)
    col.add(ids=["a", "b", "c", "d"], embeddings=[[1, 0], [0, 1], [1, 1], [1, 2]],
            metadatas=[{"tags": ["red", "big"]}, {"tags": ["blue", 3]}, {"tags": "red"}, {}])
    assert col.get(where={"tags": {"$contains": "red"}})["ids"] == ["a"]
    assert col.get(where={"tags": {"$contains": 3.0}})["ids"] == ["b"]  # numbers by value
    assert col.get(where={"tags": {"$not_contains": "red"}})["ids"] == ["b", "c", "d"]
    assert col.count(where={"$or": [{"tags": {"$contains": "big"}}, {"tags": {"$contains": "blue"}}]}) == 2
    hits = col.query(query_embeddings=[[1, 0]], n_results=4, where={"tags": {"$contains": "blue"}})
    assert hits["ids"] == [["b"]]
    with pytest.raises(vectord.InvalidArgumentError, match=r"\$contains needs a string, number or bool"):
        col.get(where={"tags": {"$contains": ["red"]}})


def test_metadata_keys_with_a_dot_are_refused_and_nested_paths_agree(client):
    col = client.create_collection("dotted", dim=2)
    col.add(ids=["n"], embeddings=[[1, 0]], documents=["doc"], metadatas=[{"a": {"b": 1}}])
    for write in (lambda: col.add(ids=["d"], embeddings=[[0, 1]], metadatas=[{"a.b": 1}]),
                  lambda: col.upsert(ids=["n"], embeddings=[[0, 1]], metadatas=[{"x": {"a.b": 1}}]),
                  lambda: col.update(ids=["n"], metadatas=[{"x": [{"a.b": 1}]}])):
        with pytest.raises(vectord.InvalidArgumentError, match=r"key 'a\.b' contains '\.'"):
            write()
    assert col.count(where={"a.b": 1}) == 1
    assert col.get(where={"a.b": 1}, where_document={"$contains": "doc"})["ids"] == ["n"]
    assert col.get(ids=["n"])["metadatas"] == [{"a": {"b": 1}}]


def test_an_encoder_collection_refuses_raw_vectors_on_writes(client):
    notes = client.create_collection("notes")  # the default built-in encoder
    notes.add(ids=["a"], documents=["a cat sat on the mat"])
    raw = np.ones((1, notes.dim), np.float32)
    for write in (lambda: notes.add(ids=["b"], embeddings=raw, documents=["text"]),
                  lambda: notes.upsert(ids=["a"], embeddings=raw),
                  lambda: notes.update(ids=["a"], embeddings=raw)):
        with pytest.raises(vectord.InvalidArgumentError,
                           match=rf"collection 'notes' embeds its documents with the built-in model "
                                 rf"'{notes.encoder}'.*pass documents.*dim={notes.dim}"):
            write()
    assert notes.count() == 1
    stored = notes.get(ids=["a"], include=["embeddings"])["embeddings"][0]
    np.testing.assert_allclose(stored, client.embed(["a cat sat on the mat"])[0], rtol=1e-5, atol=1e-6)
    # a query by vector changes nothing stored: allowed, as in Chroma
    assert notes.query(query_embeddings=[stored], n_results=1)["ids"] == [["a"]]


def test_an_in_memory_client_writes_nothing_and_each_is_its_own(tmp_path, monkeypatch):
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    with vectord.Client() as one, vectord.Client() as two:
        docs = one.create_collection("docs", dim=3, metadata={"owner": "me"})
        docs.add(ids=["a", "b"], embeddings=[[1, 0, 0], [0, 1, 0]], documents=["x", "y"],
                 metadatas=[{"k": 1}, {"k": 2}])
        assert docs.query(query_embeddings=[[1, 0, 0]], n_results=1)["ids"] == [["a"]]
        assert one.checkpoint() == 0
        assert [c.name for c in one.list_collections()] == ["docs"]
        assert two.list_collections() == []  # not shared
        two.create_collection("docs", dim=5)
        assert one.get_collection("docs").dim == 3 and one.get_collection("docs").count() == 2
        with pytest.raises(vectord.FailedPreconditionError, match="in memory"):
            _list_snapshots(one)
    assert os.listdir(cwd) == [] and os.listdir(tmp) == []
    with pytest.raises(vectord.InvalidArgumentError, match="not both"):
        vectord.Client("localhost:1", path=str(tmp_path / "d"))


def _list_snapshots(client):
    from vectord.v1 import admin_pb2

    return client._call("Admin", "ListSnapshots", admin_pb2.ListSnapshotsRequest())


# ==============================================================================
KEY = "chroma-habits-key"


@pytest.fixture(scope="module")
def reset_server(tmp_path_factory):
    """A server started with --allow-reset and an API key."""
    proc = start_server(tmp_path_factory.mktemp("reset") / "data", "--allow-reset", env={"VECTORD_API_KEY": KEY})
    yield proc
    assert proc.terminate() == 0, proc.log()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------- get_or_create_collection
def test_get_or_create_returns_the_existing_collection_when_no_settings_are_given(client):
    """Was AlreadyExistsError for any collection whose settings differ from the defaults."""
    created = client.create_collection("g", dim=4, metric="l2", hnsw={"m": 8}, metadata={"v": 1})
    for kwargs in ({}, {"dim": 4}, {"metric": "l2"}, {"hnsw": {"m": 8}}, {"metadata": {"other": 2}}):
        again = client.get_or_create_collection("g", **kwargs)
        assert (again.id, again.dim, again.metric, again.hnsw["m"]) == (created.id, 4, "l2", 8), kwargs
        assert again.metadata == {"v": 1}  # metadata only for a new collection, as in Chroma
    assert [c.name for c in client.list_collections()] == ["g"]


@pytest.mark.parametrize("kwargs, says", [
    ({"metric": "cosine"}, "metric 'l2' (asked for 'cosine')"),
    ({"dim": 5}, "dim 4 (asked for 5)"),
    ({"hnsw": {"m": 16}}, "hnsw.m 8 (asked for 16)"),
    ({"dim": 5, "metric": "ip"}, "dim 4 (asked for 5); metric 'l2' (asked for 'ip')"),
])
def test_get_or_create_with_conflicting_settings_names_them(client, kwargs, says):
    """Was a message printing Python's None for the settings not given."""
    client.create_collection("g", dim=4, metric="l2", hnsw={"m": 8})
    with pytest.raises(vectord.AlreadyExistsError) as info:
        client.get_or_create_collection("g", **kwargs)
    assert says in str(info.value)
    assert "None" not in str(info.value)
    assert client.get_collection("g").metric == "l2"


def test_get_or_create_with_a_conflicting_encoder(client):
    client.create_collection("g", dim=4)
    with pytest.raises(vectord.AlreadyExistsError, match=r"encoder none \(it takes caller-supplied vectors\) "
                                                         r"\(asked for '.+'\)") as info:
        client.get_or_create_collection("g", encoder="default")
    assert "None" not in str(info.value)


def test_get_or_create_over_raw_grpc_leaves_unset_fields_out_of_the_comparison(server):
    """Other languages: zero fields are "not given" (collections.proto, CreateCollection)."""
    with vectord.Client(server.address) as client:
        created = client.create_collection("raw-g", dim=3, metric="ip")
    with grpc.insecure_channel(server.address) as channel:
        stub = collections_pb2_grpc.CollectionsStub(channel)
        info = stub.CreateCollection(cpb.CreateCollectionRequest(name="raw-g", get_or_create=True), timeout=30)
        assert (info.id, info.dim, info.metric) == (created.id, 3, cpb.IP)
        with pytest.raises(grpc.RpcError) as error:
            stub.CreateCollection(cpb.CreateCollectionRequest(name="raw-g", get_or_create=True, metric=cpb.L2),
                                  timeout=30)
        assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert "metric 'ip' (asked for 'l2')" in error.value.details()
        stub.DeleteCollection(cpb.DeleteCollectionRequest(name="raw-g"), timeout=30)


# ---------------------------------------------------------------- Collection.modify
def test_modify_renames_and_replaces_metadata(client):
    docs = client.create_collection("docs", dim=3, metric="l2", metadata={"a": 1, "b": 2})
    docs.add(ids=["x", "y"], embeddings=[[1, 0, 0], [0, 1, 0]])
    docs.modify(name="articles", metadata={"c": 3})
    assert (docs.name, docs.metadata) == ("articles", {"c": 3})
    again = client.get_collection("articles")
    assert (again.id, again.metadata, again.dim, again.metric) == (docs.id, {"c": 3}, 3, "l2")
    assert docs.count() == 2 and docs.get(ids=["y"])["ids"] == ["y"]
    with pytest.raises(vectord.NotFoundError):
        client.get_collection("docs")
    docs.modify(metadata={})  # clears it; the name stays
    assert (client.get_collection("articles").metadata, docs.name) == ({}, "articles")
    docs.modify(name="articles")  # the same name: nothing to do
    assert [c.name for c in client.list_collections()] == ["articles"]


def test_modify_refuses_a_taken_or_bad_name_and_changes_nothing(client):
    docs = client.create_collection("docs", dim=3, metadata={"a": 1})
    client.create_collection("other", dim=3)
    with pytest.raises(vectord.AlreadyExistsError, match="'docs' to 'other'"):
        docs.modify(name="other", metadata={"b": 2})
    with pytest.raises(vectord.InvalidArgumentError, match="collection name"):
        docs.modify(name="../escape")
    with pytest.raises(vectord.InvalidArgumentError, match="nested deeper"):
        docs.modify(metadata={"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}})
    assert client.get_collection("docs").metadata == {"a": 1}
    assert [c.name for c in client.list_collections()] == ["docs", "other"]
    stale = client.get_collection("other")
    client.delete_collection("other")
    with pytest.raises(vectord.NotFoundError):
        stale.modify(name="again")


def test_modify_is_durable_across_restarts_embedded(tmp_path):
    path = str(tmp_path / "data")
    with vectord.Client(path=path) as client:
        docs = client.create_collection("docs", dim=3)
        docs.add(ids=["x"], embeddings=[[1, 0, 0]])
        docs.modify(name="renamed", metadata={"k": "v"})
    with vectord.Client(path=path) as client:
        assert [(c.name, c.metadata, c.count()) for c in client.list_collections()] == [("renamed", {"k": "v"}, 1)]


def test_modify_survives_kill_9(tmp_path):
    """A rename that returned is in the MANIFEST: no checkpoint or clean stop needed."""
    proc = start_server(tmp_path / "data")
    try:
        with vectord.Client(proc.address) as client:
            docs = client.create_collection("docs", dim=3)
            docs.add(ids=["x"], embeddings=[[1, 0, 0]])
            client.checkpoint("docs")
            docs.add(ids=["y"], embeddings=[[0, 1, 0]])  # in the log only
            docs.modify(name="renamed", metadata={"k": 1})
            docs.add(ids=["z"], embeddings=[[0, 0, 1]])
    finally:
        proc.kill()
    proc = start_server(tmp_path / "data")
    try:
        with vectord.Client(proc.address) as client:
            [renamed] = client.list_collections()
            assert (renamed.name, renamed.metadata, renamed.count()) == ("renamed", {"k": 1}, 3)
    finally:
        assert proc.terminate() == 0


def test_async_modify_and_heartbeat(tmp_path):
    async def main():
        async with vectord.AsyncClient(path=str(tmp_path / "data")) as client:
            docs = await client.create_collection("docs", dim=3)
            await docs.modify(name="renamed", metadata={"k": 1})
            assert ((await client.get_collection("renamed")).metadata, docs.name) == ({"k": 1}, "renamed")
            assert abs(await client.heartbeat() - time.time_ns()) < 60e9
            with pytest.raises(vectord.FailedPreconditionError, match="allow_reset=True"):
                await client.reset()

    asyncio.run(main())


def test_new_rpcs_are_writes_for_auth_and_in_the_fuzzer():
    roles = auth.method_roles()
    assert roles["/vectord.v1.Collections/ModifyCollection"] == auth.READ_WRITE
    assert roles["/vectord.v1.Admin/Reset"] == auth.READ_WRITE
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "faults"))
    from test_fuzz import METHODS

    assert {"/vectord.v1.Collections/ModifyCollection", "/vectord.v1.Admin/Reset"} <= set(METHODS)


# ---------------------------------------------------------------- heartbeat
def test_heartbeat_is_the_server_clock_in_nanoseconds(client):
    before = time.time_ns()
    beat = client.heartbeat()
    assert isinstance(beat, int)
    assert before - 5e9 < beat < time.time_ns() + 5e9  # same machine: the same clock


# ---------------------------------------------------------------- reset
@pytest.mark.parametrize("mode", ["remote", "embedded", "memory"])
def test_reset_is_refused_unless_allowed(request, tmp_path, mode):
    """A server without --allow-reset, a data directory without allow_reset=True, and an
    in-memory client given allow_reset=False refuse, naming the flag; nothing changes."""
    if mode == "remote":
        client = vectord.Client(request.getfixturevalue("server").address)
    else:
        client = vectord.Client(path=str(tmp_path / "d")) if mode == "embedded" else vectord.Client(allow_reset=False)
    with client:
        client.create_collection("keep", dim=3)
        try:
            with pytest.raises(vectord.FailedPreconditionError, match="--allow-reset") as info:
                client.reset()
            assert "VECTORD_ALLOW_RESET" in str(info.value) and "allow_reset=True" in str(info.value)
            assert [c.name for c in client.list_collections()] == ["keep"]
            assert client.server_info()["allow_reset"] is False
        finally:
            client.delete_collection("keep")


def test_reset_in_memory_is_allowed_by_default():
    with vectord.Client() as client:
        client.create_collection("a", dim=3)
        assert client.server_info()["allow_reset"] is True
        assert client.reset() == 1 and client.list_collections() == []


def test_reset_embedded_when_allowed(tmp_path):
    with vectord.Client(path=str(tmp_path / "data"), allow_reset=True) as client:
        for name in ("a", "b"):
            client.create_collection(name, dim=3).add(ids=["x"], embeddings=[[1, 0, 0]])
        assert client.reset() == 2
        assert client.list_collections() == []
        assert client.create_collection("a", dim=3).count() == 0  # names free again
    assert [p.name for p in (tmp_path / "data" / "collections").iterdir()] != []  # only "a"
    with vectord.Client(path=str(tmp_path / "data")) as client:
        assert [c.name for c in client.list_collections()] == ["a"]


def test_reset_remote_when_the_server_allows_it(reset_server):
    with vectord.Client(reset_server.address, api_key=KEY) as client:
        assert client.server_info()["allow_reset"] is True
        for name in ("a", "b", "c"):
            client.create_collection(name, dim=3)
        assert client.reset() == 3
        assert client.list_collections() == []
        assert client.reset() == 0


def test_allow_reset_setting_from_the_environment(monkeypatch):
    assert Settings.load().allow_reset is False
    monkeypatch.setenv("VECTORD_ALLOW_RESET", "1")
    assert Settings.load().allow_reset is True


# ---------------------------------------------------------------- messages
def test_unreachable_server_says_so(tmp_path):
    address = f"127.0.0.1:{_free_port()}"
    expected = f"no vectord server at {address} (is `vectord serve` running there?)"
    with vectord.Client(address, timeout=5) as client:
        with pytest.raises(vectord.UnavailableError) as info:
            client.heartbeat()
    assert str(info.value) == expected

    async def main():
        async with vectord.AsyncClient(address, timeout=5) as client:
            with pytest.raises(vectord.UnavailableError) as info:
                await client.list_collections()
        assert str(info.value) == expected

    asyncio.run(main())


def test_missing_or_wrong_api_key_says_how_to_give_one(reset_server):
    with vectord.Client(reset_server.address) as client:
        with pytest.raises(vectord.UnauthenticatedError, match="missing API key") as info:
            client.list_collections()
    for hint in ("api_key=", "--api-key", "VECTORD_API_KEY"):
        assert hint in str(info.value)
    with vectord.Client(reset_server.address, api_key="wrong") as client:
        with pytest.raises(vectord.UnauthenticatedError, match="invalid API key") as info:
            client.list_collections()
    for hint in ("api_key=", "--api-key", "VECTORD_API_KEY"):
        assert hint in str(info.value)
