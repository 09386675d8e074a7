"""The SDK's semantics, run against a real server ("remote") and in-process ("embedded")."""

from __future__ import annotations

import numpy as np
import pytest

import vectord


def unit(*xs):
    return [float(x) for x in xs]


#: The four records of the ``docs`` collection most tests use (also the cluster's SDK tests').
DOCS = dict(
    ids=["a", "b", "c", "d"],
    embeddings=[unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1), unit(1, 1, 0)],
    documents=["apple pie", "banana split", None, "apple banana"],
    metadatas=[{"n": 1, "kind": "fruit", "tags": {"color": "red"}},
               {"n": 2, "kind": "fruit", "ok": True},
               {"n": 3.5, "kind": "veg"},
               {"kind": "mix"}],
)


@pytest.fixture
def docs(client):
    collection = client.create_collection("docs", dim=3, metric="cosine", metadata={"owner": "tests"})
    collection.add(**DOCS)
    return collection


def test_collection_lifecycle(client):
    created = client.create_collection("c1", dim=4, metric="l2", hnsw={"m": 8, "ef_search": 50},
                                       metadata={"a": 1})
    assert (created.name, created.dim, created.metric, created.metadata) == ("c1", 4, "l2", {"a": 1})
    assert created.hnsw == {"m": 8, "ef_construction": 100, "ef_search": 50}
    with pytest.raises(vectord.AlreadyExistsError):
        client.create_collection("c1", dim=4)
    again = client.get_or_create_collection("c1", dim=4, metric="l2")
    assert again.id == created.id
    with pytest.raises(vectord.AlreadyExistsError, match="dim 4"):
        client.get_or_create_collection("c1", dim=5, metric="l2")
    client.create_collection("c0", dim=2)
    assert [c.name for c in client.list_collections()] == ["c0", "c1"]
    assert client.get_collection("c1").dim == 4
    client.delete_collection("c1")
    with pytest.raises(vectord.NotFoundError):
        client.get_collection("c1")
    with pytest.raises(vectord.NotFoundError):
        client.delete_collection("c1")
    assert [c.name for c in client.list_collections()] == ["c0"]


def test_create_collection_on_one_server_accepts_one_shard_and_refuses_more(client):
    """A single server holds one shard in one replica: shards/replicas of 1 (or unset) are
    what it is, anything else is INVALID_ARGUMENT naming the field and value, and nothing
    is created (docs/cluster.md)."""
    one = client.create_collection("one", dim=2, shards=1, replicas=1)
    assert (one.shards, one.replicas) == (1, 1)
    assert (client.get_collection("one").shards, client.get_collection("one").replicas) == (1, 1)
    assert client.get_or_create_collection("one", shards=1).id == one.id
    for kwargs, named in (({"shards": 3}, "shards: got 3"), ({"replicas": 2}, "replicas: got 2"),
                          ({"shards": 1, "replicas": 5}, "replicas: got 5")):
        with pytest.raises(vectord.InvalidArgumentError, match=named) as raised:
            client.create_collection("many", dim=2, **kwargs)
        assert "one shard" in str(raised.value) and "1 or unset" in str(raised.value)
        with pytest.raises(vectord.InvalidArgumentError, match=named):
            client.get_or_create_collection("one", **kwargs)
    with pytest.raises(vectord.InvalidArgumentError, match="shards must be an integer in 1"):
        client.create_collection("many", dim=2, shards=0)
    assert [c.name for c in client.list_collections()] == ["one"]


def test_add_refuses_existing_or_repeated_ids_and_writes_nothing(docs):
    with pytest.raises(vectord.AlreadyExistsError, match="'a'"):
        docs.add(ids=["z", "a"], embeddings=[unit(1, 2, 3), unit(1, 2, 3)])
    with pytest.raises(vectord.InvalidArgumentError, match="twice"):
        docs.add(ids=["y", "y"], embeddings=[unit(1, 2, 3), unit(1, 2, 3)])
    assert docs.count() == 4
    assert docs.get(ids=["z", "y"])["ids"] == []


def test_write_results_report_counts(docs):
    result = docs.upsert(ids=["a", "e"], embeddings=[unit(1, 0, 0), unit(0, 1, 1)],
                         documents=["apple pie", "new"])
    assert (result["inserted"], result["updated"], result["unchanged"]) == (1, 0, 1)
    result2 = docs.update(ids=["b"], documents=["banana bread"])
    assert (result2["updated"], result2["seq"] > result["seq"]) == (1, True)
    assert docs.delete(ids=["e", "nope"]) == 1


def test_update_keeps_fields_not_given_and_merges_metadata(docs):
    docs.update(ids=["a"], metadatas=[{"n": 10, "kind": None, "extra": "x"}])
    got = docs.get(ids=["a"], include=["embeddings", "documents", "metadatas"])
    assert got["documents"] == ["apple pie"]
    assert got["metadatas"] == [{"n": 10, "tags": {"color": "red"}, "extra": "x"}]
    np.testing.assert_allclose(got["embeddings"], [unit(1, 0, 0)])
    with pytest.raises(vectord.NotFoundError, match="'missing'"):
        docs.update(ids=["b", "missing"], documents=["x", "y"])
    assert docs.get(ids=["b"])["documents"] == ["banana split"]


def test_upsert_replaces_vector_and_merges_metadata(docs):
    docs.upsert(ids=["b"], embeddings=[unit(0, 0, 1)], metadatas=[{"ok": None, "new": [1, "two", None]}])
    got = docs.get(ids=["b"], include=["embeddings", "metadatas", "documents"])
    np.testing.assert_allclose(got["embeddings"], [unit(0, 0, 1)])
    assert got["metadatas"] == [{"n": 2, "kind": "fruit", "new": [1, "two", None]}]
    assert got["documents"] == ["banana split"]


def test_get_by_ids_keeps_order_and_skips_missing(docs):
    assert docs.get(ids=["d", "nope", "a"])["ids"] == ["d", "a"]
    everything = docs.get(include=["embeddings", "documents", "metadatas"])
    assert everything["ids"] == ["a", "b", "c", "d"]
    assert everything["embeddings"].shape == (4, 3) and everything["embeddings"].dtype == np.float32
    assert everything["documents"][2] is None


def test_pages_by_filter_are_stable(docs):
    pages = [docs.get(where={"kind": {"$ne": "veg"}}, limit=2, offset=o)["ids"] for o in (0, 2, 4)]
    assert pages == [["a", "b"], ["d"], []]
    assert docs.peek(2)["ids"] == ["a", "b"]


@pytest.mark.parametrize("where, expected", [
    ({"kind": "fruit"}, ["a", "b"]),
    ({"n": {"$gt": 1}}, ["b", "c"]),
    ({"n": {"$gte": 1, }}, ["a", "b", "c"]),
    ({"n": {"$lt": 3.5}}, ["a", "b"]),
    ({"n": {"$lte": 3.5}}, ["a", "b", "c"]),
    ({"n": {"$ne": 2}}, ["a", "c", "d"]),
    ({"kind": {"$in": ["veg", "mix"]}}, ["c", "d"]),
    ({"kind": {"$nin": ["veg", "mix"]}}, ["a", "b"]),
    ({"n": {"$exists": False}}, ["d"]),
    ({"tags.color": "red"}, ["a"]),
    ({"ok": True}, ["b"]),
    ({"$and": [{"kind": "fruit"}, {"n": {"$gt": 1}}]}, ["b"]),
    ({"$or": [{"kind": "veg"}, {"n": 1}]}, ["a", "c"]),
    ({"$not": {"kind": "fruit"}}, ["c", "d"]),
    ({"kind": "fruit", "n": 2}, ["b"]),
])
def test_where_filters(docs, where, expected):
    assert docs.get(where=where)["ids"] == expected
    assert docs.count(where=where) == len(expected)


def test_where_document(docs):
    assert docs.get(where_document={"$contains": "apple"})["ids"] == ["a", "d"]
    assert docs.get(where_document={"$not_contains": "apple"})["ids"] == ["b", "c"]
    assert docs.get(where={"kind": "fruit"}, where_document={"$contains": "banana"})["ids"] == ["b"]


@pytest.mark.parametrize("where", [
    {"n": {"$foo": 1}},
    {"$xor": [{"n": 1}]},
    {"n": {"$gt": "x"}},
    {"n": {"$in": []}},
    {"n": {"$in": "abc"}},
    {"n": {"$exists": 1}},
    {"n": {"$gt": 1, "$lt": 2}},
    {"$and": []},
])
def test_bad_filters_are_errors_not_empty_results(docs, where):
    with pytest.raises(vectord.InvalidArgumentError):
        docs.get(where=where)


def test_query_nearest_first_with_distances(docs):
    result = docs.query(query_embeddings=[unit(1, 0.1, 0), unit(0, 0, 1)], n_results=2,
                        include=["distances", "documents", "metadatas", "embeddings"])
    assert result["ids"] == [["a", "d"], ["c", "a"]] or result["ids"][1][0] == "c"
    assert result["ids"][0] == ["a", "d"]
    first = result["distances"][0]
    assert first[0] <= first[1]
    expected = 1 - np.dot([1, 0.1, 0], [1, 0, 0]) / np.linalg.norm([1, 0.1, 0])
    assert first[0] == pytest.approx(expected, abs=1e-6)
    assert result["documents"][0] == ["apple pie", "apple banana"]
    assert result["embeddings"][0].shape == (2, 3)


def test_query_with_filter_returns_only_matches_and_clamps_k(docs):
    result = docs.query(query_embeddings=[unit(1, 0, 0)], n_results=10, where={"kind": "fruit"})
    assert result["ids"] == [["a", "b"]]
    assert docs.query(query_embeddings=[unit(1, 0, 0)], n_results=100)["ids"][0][0] == "a"
    assert len(docs.query(query_embeddings=[unit(1, 0, 0)], n_results=100)["ids"][0]) == 4


@pytest.mark.parametrize("metric, expected", [
    ("l2", [0.0, 2.0]),     # squared Euclidean
    ("ip", [0.0, 1.0]),     # 1 - dot
])
def test_distance_definitions(client, metric, expected):
    col = client.create_collection(f"m-{metric}", dim=2, metric=metric)
    col.add(ids=["x", "y"], embeddings=[[1, 0], [0, 1]])
    result = col.query(query_embeddings=[[1, 0]], n_results=2)
    assert result["ids"] == [["x", "y"]]
    assert result["distances"][0] == pytest.approx(expected, abs=1e-6)


def test_delete_by_filter_and_ids(docs):
    assert docs.delete(where={"kind": "fruit"}) == 2
    assert docs.delete(ids=["c", "d"], where={"kind": "veg"}) == 1
    assert docs.get()["ids"] == ["d"]
    with pytest.raises(vectord.InvalidArgumentError):
        docs.delete()


def test_numpy_and_list_inputs_agree(client):
    col = client.create_collection("np", dim=4)
    vectors = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float64)
    col.add(ids=[str(i) for i in range(5)], embeddings=vectors)
    col.upsert(ids=["5"], embeddings=vectors[0].tolist())
    got = col.get(ids=["0", "5"], include=["embeddings"])["embeddings"]
    np.testing.assert_allclose(got[0], vectors[0].astype(np.float32))
    np.testing.assert_allclose(got[1], got[0])


def test_read_your_writes_after_restart_of_embedded(tmp_path):
    path = str(tmp_path / "d")
    with vectord.Client(path=path) as c:
        col = c.create_collection("r", dim=2)
        col.add(ids=["a"], embeddings=[[1, 2]], metadatas=[{"big": 2**62, "f": 0.5}])
    with vectord.Client(path=path) as c:
        got = c.get_collection("r").get(include=["embeddings", "metadatas"])
        assert got["metadatas"] == [{"big": 2**62, "f": 0.5}]
        assert isinstance(got["metadatas"][0]["big"], int)


def test_large_batches_are_split_by_the_sdk(client):
    """A write bigger than the message limit goes through in several calls."""
    from vectord import limits

    dim = 16_384  # few, wide vectors: over the limit, yet below the HNSW threshold (fast)
    n = limits.MAX_MESSAGE_BYTES // (dim * 4) + 100
    col = client.create_collection("big", dim=dim, metric="l2")
    vectors = np.random.default_rng(1).random((n, dim), dtype=np.float32)
    result = col.add(ids=[f"r{i}" for i in range(n)], embeddings=vectors)
    assert result["inserted"] == n
    assert col.count() == n
    np.testing.assert_array_equal(col.get(ids=[f"r{n - 1}"], include=["embeddings"])["embeddings"][0], vectors[-1])
