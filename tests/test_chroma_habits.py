"""Chroma habits the engine now meets, and storage contracts seen through the SDK, in
every mode: a real server ("remote"), a data directory ("embedded") and in memory."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

import vectord


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
