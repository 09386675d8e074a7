"""Query features of issue 14: max_distance, group_by, chunked documents and classify.

Each runs remote (a real server) and embedded (the ``client`` fixture), in memory, through
the CLI, and with bad input (InvalidArgument naming the field, the value and the limit).
"""

from __future__ import annotations

import json
import math

import grpc
import numpy as np
import pytest

import vectord
from serverproc import start_server
from vectord.errors import AlreadyExistsError, InvalidArgumentError
from vectord.server.cli import main
from vectord.storage import Database
from vectord.storage import classify as knn
from vectord.storage.checkpoint import WAL
from vectord.storage.search import MAX_GROUP_FETCH
from vectord.storage.types import Tuning
from vectord.storage.wal import WriteAheadLog
from vectord.v1 import records_pb2 as rpb
from vectord.v1 import records_pb2_grpc

LONG = " ".join(f"Sentence {i} tells how the old whale swam across the cold northern ocean." for i in range(24))
BREAD = " ".join(f"Step {i}: knead the bread dough, let it rise and bake it in a hot oven." for i in range(16))


def _points(collection, n=40):
    """Records on the x axis at x = 0, 1, ..., n-1 (l2: distance to the origin is x^2)."""
    vectors = np.zeros((n, 2), np.float32)
    vectors[:, 0] = np.arange(n)
    collection.add(ids=[f"p{i}" for i in range(n)], embeddings=vectors,
                   metadatas=[{"even": i % 2 == 0, "src": {"doc": f"d{i // 4}"}, **({"tag": i % 3} if i % 5 else {})}
                              for i in range(n)])
    return vectors


# ------------------------------------------------------------------ max_distance
def test_max_distance_cuts_farther_hits(client):
    points = client.create_collection("md", dim=2, metric="l2")
    _points(points)
    origin = [[0.0, 0.0]]
    result = points.query(query_embeddings=origin, n_results=10, max_distance=9.0)
    assert result["ids"] == [["p0", "p1", "p2", "p3"]]  # x^2 <= 9: fewer than n_results
    assert result["distances"][0] == [0.0, 1.0, 4.0, 9.0]
    # with a filter: the cut applies to the matching records
    result = points.query(query_embeddings=origin, n_results=10, max_distance=16.0, where={"even": False})
    assert result["ids"] == [["p1", "p3"]]
    # nothing within: an empty row, not an error
    assert points.query(query_embeddings=[[-10.0, 0.0]], n_results=3, max_distance=1.0)["ids"] == [[]]
    # max_distance 0 keeps exact matches only
    assert points.query(query_embeddings=[[2.0, 0.0]], n_results=3, max_distance=0)["ids"] == [["p2"]]


@pytest.mark.parametrize("bad, needle", [(-1.0, "-1.0"), (float("nan"), "nan"), (float("inf"), "inf")])
def test_max_distance_bad_values_are_refused(client, bad, needle):
    points = client.create_collection("md-bad", dim=2, metric="l2")
    _points(points, 4)
    with pytest.raises(InvalidArgumentError, match=r"max_distance: must be a finite number >= 0, got " + needle):
        points.query(query_embeddings=[[0.0, 0.0]], max_distance=bad)
    with pytest.raises(InvalidArgumentError, match="max_distance must be a number"):
        points.query(query_embeddings=[[0.0, 0.0]], max_distance="1")


# ------------------------------------------------------------------ group_by
def test_group_by_nested_path_and_group_size(client):
    points = client.create_collection("gb", dim=2, metric="l2")
    _points(points)
    origin = [[0.0, 0.0]]
    one = points.query(query_embeddings=origin, n_results=3, group_by="src.doc")
    assert one["ids"] == [["p0", "p4", "p8"]] and one["groups"] == [["d0", "d1", "d2"]]
    two = points.query(query_embeddings=origin, n_results=2, group_by="src.doc", group_size=3,
                       include=["distances", "metadatas"])
    assert two["ids"] == [["p0", "p1", "p2", "p4", "p5", "p6"]]
    assert two["groups"] == [["d0"] * 3 + ["d1"] * 3]
    assert two["distances"][0] == sorted(two["distances"][0])  # best group first, best hits first
    # records without the key (tag missing on every 5th) are in no group; ints group by value
    tags = points.query(query_embeddings=origin, n_results=10, group_by="tag")
    assert tags["ids"] == [["p1", "p2", "p3"]] and tags["groups"] == [[1, 2, 0]]  # fewer groups than asked
    # with max_distance: only hits within it, so fewer groups
    near = points.query(query_embeddings=origin, n_results=5, group_by="src.doc", group_size=2, max_distance=36.0)
    assert near["ids"] == [["p0", "p1", "p4", "p5"]]
    # with a filter
    odd = points.query(query_embeddings=origin, n_results=2, group_by="src.doc", where={"even": False})
    assert odd["ids"] == [["p1", "p5"]]
    # without group_by there is no groups column
    assert "groups" not in points.query(query_embeddings=origin, n_results=1)


def test_group_by_each_query_of_a_call_has_its_own_groups(client):
    points = client.create_collection("gb-multi", dim=2, metric="l2")
    _points(points)
    result = points.query(query_embeddings=[[0.0, 0.0], [39.0, 0.0]], n_results=2, group_by="src.doc",
                          include=["distances"])
    assert result["ids"] == [["p0", "p4"], ["p39", "p35"]]
    assert result["groups"] == [["d0", "d1"], ["d9", "d8"]]


def test_group_by_grows_the_search_past_one_crowded_group(client):
    """The 600 nearest records are all group "near": the search must grow to find others."""
    crowd = client.create_collection("gb-crowd", dim=2, metric="l2")
    vectors = np.zeros((640, 2), np.float32)
    vectors[:, 0] = np.arange(640) / 1000
    vectors[600:, 0] += 5
    crowd.add(ids=[f"r{i}" for i in range(640)], embeddings=vectors,
              metadatas=[{"g": "near" if i < 600 else f"far{i % 4}"} for i in range(640)])
    result = crowd.query(query_embeddings=[[0.0, 0.0]], n_results=3, group_by="g")
    assert result["groups"] == [["near", "far0", "far1"]]
    assert result["ids"] == [["r0", "r600", "r601"]]


def test_group_by_on_the_graph_path(tmp_path):
    """The same answers when the HNSW graph runs the searches (and grows them)."""
    db = Database(tmp_path / "d", tuning=Tuning(exact_threshold=16, graph_cost_per_ef=0))
    try:
        collection = db.create_collection("g", dim=2, metric="l2")
        vectors = np.zeros((400, 2), np.float32)
        vectors[:, 0] = np.arange(400)
        collection.add([f"r{i}" for i in range(400)], vectors, None,
                       [{"g": "a" if i < 300 else f"b{i % 3}"} for i in range(400)])
        records, plan = collection.query_with_plan(np.zeros((1, 2), np.float32), n_results=3, group_by="g")
        assert plan.strategy == "hnsw"
        assert records[0].groups == ["a", "b0", "b1"] and records[0].ids == ["r0", "r300", "r301"]
        capped = collection.query(np.zeros((1, 2), np.float32), n_results=50, max_distance=25.0)
        assert capped[0].ids == [f"r{i}" for i in range(6)]
    finally:
        db.close()
    assert MAX_GROUP_FETCH >= 10_000  # the documented bound of the oversampling


def test_group_by_bad_input(client):
    points = client.create_collection("gb-bad", dim=2, metric="l2")
    _points(points, 4)
    with pytest.raises(InvalidArgumentError, match=r"group_size must be an integer in 1\.\.10000, got 0"):
        points.query(query_embeddings=[[0.0, 0.0]], group_by="tag", group_size=0)
    with pytest.raises(InvalidArgumentError, match=r"group_size: n_results 100 x group_size 200 = 20000 hits, "
                                                   r"the limit is 10000"):
        points.query(query_embeddings=[[0.0, 0.0]], n_results=100, group_by="tag", group_size=200)
    with pytest.raises(InvalidArgumentError, match=r"group_by: '\$tag' is not a metadata path"):
        points.query(query_embeddings=[[0.0, 0.0]], group_by="$tag")
    with pytest.raises(InvalidArgumentError, match="group_size needs group_by"):
        points.query(query_embeddings=[[0.0, 0.0]], group_size=2)


# ------------------------------------------------------------------ chunked documents
def test_chunked_documents_group_replace_and_delete(client):
    books = client.create_collection("books")  # the built-in encoder
    books.add(ids=["plain"], documents=["A short note about whales."], metadatas=[{"source_id": "moby"}])
    written = books.add(ids=["moby", "bread"], documents=[LONG, BREAD], metadatas=[{"kind": "novel"}, {"kind": "recipe"}],
                        chunking={"tokens": 40, "overlap": 8})
    moby = books.get(where={"source_id": "moby", "chunk": {"$gte": 0}})
    n_moby = len(moby["ids"])
    n_bread = len(books.get(where={"source_id": "bread"})["ids"])
    assert n_moby > 3 and n_bread > 2 and written["inserted"] == n_moby + n_bread
    assert set(moby["ids"]) == {f"moby#{i}" for i in range(n_moby)}
    first = books.get(ids=["moby#0", "moby#1"])
    assert first["metadatas"][0] == {"kind": "novel", "source_id": "moby", "chunk": 0}
    assert first["documents"][0].startswith("Sentence 0 tells how the old whale")  # a slice of the original text
    assert LONG.find(first["documents"][1]) > 0  # chunks are slices of the source, in order
    # one best chunk per document
    hits = books.query(query_texts=["a whale in the ocean"], n_results=5, group_by="source_id",
                       where={"chunk": {"$gte": 0}})
    assert hits["groups"] == [["moby", "bread"]] and hits["ids"][0][0].startswith("moby#")
    # upsert of the source replaces ALL its chunks in one write (one seq)
    before = books.count()
    result = books.upsert(ids=["moby"], documents=["Call me Ishmael."], chunking=True)
    assert result["deleted"] == n_moby - 1 and result["updated"] == 1 and result["inserted"] == 0
    assert books.get(where={"source_id": "moby", "chunk": {"$gte": 0}})["ids"] == ["moby#0"]
    assert books.count() == before - (n_moby - 1)
    assert books.get(ids=["moby#0"])["metadatas"] == [{"source_id": "moby", "chunk": 0}]  # exactly the new metadata
    # add of an existing source is refused, writing nothing
    with pytest.raises(AlreadyExistsError, match="'moby'"):
        books.add(ids=["moby"], documents=["again"], chunking=True)
    # a plain upsert of the source id writes a record of that id and leaves the chunks alone
    books.upsert(ids=["bread"], documents=["Just bread."])
    assert books.get(ids=["bread"])["documents"] == ["Just bread."]
    assert len(books.get(where={"source_id": "bread"})["ids"]) == n_bread
    # deleting the source id deletes its chunks (and it); a record that merely has source_id stays
    assert books.delete(ids=["bread"]) == n_bread + 1
    assert books.get(where={"source_id": "bread"})["ids"] == []
    assert books.delete(ids=["moby"]) == 1
    assert books.get()["ids"] == ["plain"]


def test_chunked_upsert_is_one_log_record(tmp_path):
    """The old chunks' deletion and the new chunks are one logged put: a crash between them is
    impossible, and a restart replays it to the same state."""
    from vectord.server.encoders import BuiltinEncoders

    path = tmp_path / "data"
    db = Database(path, encoders=BuiltinEncoders())
    collection = db.create_collection("books")
    collection.put_chunked("add", ["moby"], [LONG], None, tokens=30, overlap=5)
    old = collection.count()
    seq = collection.info().seq
    result = collection.put_chunked("upsert", ["moby"], [BREAD[:200]], [{"v": 2}], tokens=30)
    assert result.seq == seq + 1
    records = list(WriteAheadLog.read(collection.path / WAL, db.fs))
    last = records[-1]
    assert last["seq"] == seq + 1 and last["op"] == "put"
    assert len(last["drop"]) == old - len(last["ids"]) and all(i.startswith("moby#") for i in last["drop"])
    state = collection.get(include=["documents", "metadatas"])
    db.close()
    reopened = Database(path, encoders=BuiltinEncoders())
    try:
        again = reopened.get_collection("books").get(include=["documents", "metadatas"])
        assert again.ids == state.ids and again.metadatas == state.metadatas
    finally:
        reopened.close()


def test_chunking_bad_input(client):
    books = client.create_collection("books-bad")
    window = next(m["max_tokens"] for m in client.list_models() if m["is_default"])  # read, never assumed
    with pytest.raises(InvalidArgumentError, match=r"chunking\.overlap: must be 0\.\.9 \(less than tokens 10\), "
                                                   r"got 10"):
        books.add(ids=["a"], documents=["some text"], chunking={"tokens": 10, "overlap": 10})
    with pytest.raises(InvalidArgumentError, match=rf"chunking\.tokens: must be 1\.\.{window - 2} .* got {window - 1}"):
        books.add(ids=["a"], documents=["some text"], chunking={"tokens": window - 1})
    with pytest.raises(InvalidArgumentError, match="chunking: unknown key"):
        books.add(ids=["a"], documents=["some text"], chunking={"size": 3})
    with pytest.raises(InvalidArgumentError, match="key 'chunk' is set by chunking"):
        books.add(ids=["a"], documents=["some text"], metadatas=[{"chunk": 1}], chunking=True)
    with pytest.raises(InvalidArgumentError, match="chunking: applies to add and upsert, not update"):
        books._write("Update", ["a"], None, ["x"], None, True)
    assert books.count() == 0
    vectors = client.create_collection("vectors-only", dim=2)
    with pytest.raises(InvalidArgumentError, match="chunking: collection 'vectors-only' has no encoder"):
        vectors.add(ids=["a"], documents=["some text"], chunking=True)


def test_encoder_chunk_cuts_on_word_boundaries():
    from vectord import encoder

    model = encoder.load()
    text = "Héllo   World! " + " ".join(f"token{i} embedding" for i in range(80))
    chunks = model.chunk(text, 20, 5)
    assert len(chunks) > 5
    for piece in chunks:
        assert piece in text and not piece[0].isspace() and len(model.tokenize([piece])[0]) <= 22
    assert chunks[0].startswith("Héllo   World!")  # original case, accents and spacing kept
    assert text.endswith(chunks[-1])
    assert model.chunk("", 0, 0) == [""] and model.chunk("short", 0, 0) == ["short"]
    # the window is read from the model: 0 means max_tokens - 2
    assert len(model.tokenize([model.chunk(text, 0, 0)[0]])[0]) <= model.max_tokens


# ------------------------------------------------------------------ classify
def test_vote_is_distance_weighted_and_deterministic():
    near_one = knn.vote(["a", "b", "b"], [0.01, 0.5, 0.5])
    assert near_one.label == "a"  # 1/0.011 against 2/0.501
    assert [s[0] for s in near_one.scores] == ["a", "b"] and math.isclose(sum(s[1] for s in near_one.scores), 1)
    tie = knn.vote(["b", "a"], [0.2, 0.2])
    assert tie.label == "a"  # equal weight and votes, equal nearest: the smaller label
    assert knn.vote([None, [1], {"x": 1}], [0.1, 0.1, 0.1]).label is None
    assert knn.vote([1, 1.0, True], [0.1, 0.1, 0.1]).scores[0][2] == 2  # 1 and 1.0 one label, True another


def test_classify_texts_and_vectors(client):
    news = client.create_collection("news")
    texts = {"sports": ["The striker scored twice and the team won the football match.",
                        "The tennis final went to five sets before the champion won.",
                        "He won a gold medal in swimming at the championship."],
             "weather": ["Heavy rain and strong wind are expected tonight.",
                         "Snow fell overnight and the roads are icy this morning.",
                         "The forecast says sunny skies and warm temperatures all week."]}
    ids, docs, metas = [], [], []
    for label, examples in texts.items():
        for i, text in enumerate(examples):
            ids.append(f"{label}{i}")
            docs.append(text)
            metas.append({"topic": {"name": label}})
    news.add(ids=ids, documents=docs, metadatas=metas)
    news.add(ids=["unlabelled"], documents=["The goalkeeper saved a penalty in the football match."])
    results = news.classify(texts=["The team won the match with a late goal.", "Rain and wind tonight."],
                            label_key="topic.name", k=3)
    assert [r["label"] for r in results] == ["sports", "weather"]
    assert math.isclose(sum(results[0]["scores"].values()), 1.0)
    assert list(results[0]["scores"])[0] == "sports" and sum(results[0]["votes"].values()) == 3
    vectors = client.embed(["The team won the match with a late goal."])
    assert news.classify(embeddings=vectors, label_key="topic.name", k=3)[0]["label"] == "sports"
    # a key no record has: nothing votes
    assert news.classify(texts=["x"], label_key="nope")[0] == {"label": None, "scores": {}, "votes": {}}
    # a filter narrows the voters
    only = news.classify(texts=["The team won the match."], label_key="topic.name", where={"topic.name": "weather"})
    assert only[0]["label"] == "weather"


def test_classify_bad_input(client):
    news = client.create_collection("news-bad", dim=2)
    news.add(ids=["a"], embeddings=[[1.0, 0.0]], metadatas=[{"label": "x"}])
    with pytest.raises(InvalidArgumentError, match=r"k: must be 1\.\.1000 \(storage\.classify\.MAX_K\), got 1001"):
        news.classify(embeddings=[[1.0, 0.0]], k=1001)
    with pytest.raises(InvalidArgumentError, match=r"k must be an integer in 1\.\.\d+, got 0"):
        news.classify(embeddings=[[1.0, 0.0]], k=0)
    with pytest.raises(InvalidArgumentError, match="give either texts or embeddings"):
        news.classify()
    with pytest.raises(InvalidArgumentError, match=r"label_key: '\$x' is not a metadata path"):
        news.classify(embeddings=[[1.0, 0.0]], label_key="$x")
    assert news.classify(embeddings=[[1.0, 0.0]], k=1) == [{"label": "x", "scores": {"x": 1.0}, "votes": {"x": 1}}]


def test_raw_grpc_defaults_and_refusals(server):
    """What another language's client sends: zero values mean the defaults; bad values are
    INVALID_ARGUMENT naming the field."""
    with vectord.Client(server.address) as client:
        points = client.create_collection("raw", dim=2, metric="l2")
        _points(points, 8)
    with grpc.insecure_channel(server.address) as channel:
        stub = records_pb2_grpc.RecordsStub(channel)
        from vectord.wire import vectors_to_proto

        query = vectors_to_proto(np.zeros((1, 2), np.float32))
        reply = stub.Query(rpb.QueryRequest(collection="raw", queries=query, n_results=2, group_by="src.doc"))
        assert [g.string_value for g in reply.results[0].groups] == ["d0", "d1"]
        with pytest.raises(grpc.RpcError) as exc:
            stub.Query(rpb.QueryRequest(collection="raw", queries=query, max_distance=-0.5))
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "max_distance" in exc.value.details()
        reply = stub.Classify(rpb.ClassifyRequest(collection="raw", vectors=query, label_key="tag"))
        assert reply.results[0].label.int_value in (0, 1, 2) and len(reply.results[0].scores) == 3
        with pytest.raises(grpc.RpcError) as exc:
            stub.Classify(rpb.ClassifyRequest(collection="raw", vectors=query, k=5000))
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "k: must be 1..1000" in exc.value.details()
        with pytest.raises(grpc.RpcError) as exc:
            stub.Add(rpb.WriteRequest(collection="raw", ids=["z"], chunking=rpb.Chunking(tokens=3)))
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_in_memory_client():
    with vectord.Client() as client:
        points = client.create_collection("mem", dim=2, metric="l2")
        _points(points, 12)
        result = points.query(query_embeddings=[[0.0, 0.0]], n_results=2, group_by="src.doc", max_distance=20.0)
        assert result["ids"] == [["p0", "p4"]]
        assert points.classify(embeddings=[[0.0, 0.0]], label_key="even", k=3)[0]["label"] is True
        books = client.create_collection("books")
        books.add(ids=["moby"], documents=[LONG], chunking={"tokens": 50})
        chunks = books.count()
        assert chunks > 2 and books.delete(ids=["moby"]) == chunks and books.count() == 0


async def _async_features(address):
    from vectord.client.async_client import AsyncClient

    async with AsyncClient(address) as client:
        books = await client.create_collection("async-books")
        await books.add(ids=["moby", "bread"], documents=[LONG, BREAD], chunking={"tokens": 40})
        hits = await books.query(query_texts=["bake bread"], n_results=2, group_by="source_id", max_distance=1.5)
        labels = await books.classify(texts=["a whale"], label_key="source_id", k=5)
        return hits, labels


def test_async_sdk(server):
    import asyncio

    hits, labels = asyncio.run(_async_features(server.address))
    assert hits["groups"] == [["bread", "moby"]]
    assert labels[0]["label"] == "moby"


# ------------------------------------------------------------------ CLI
def test_cli_chunked_import_grouped_query_and_classify(tmp_path, capsys):
    data = tmp_path / "data"
    source = tmp_path / "books.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in [
        {"id": "moby", "document": LONG, "metadata": {"label": "sea"}},
        {"id": "bread", "document": BREAD, "metadata": {"label": "kitchen"}}]) + "\n")

    def run(*args):
        code = main([*args, "--data-dir", str(data)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out, err = run("import", str(source), "-c", "books", "--chunk-tokens", "40", "--chunk-overlap", "8",
                         "--no-progress")
    assert code == 0, err
    with vectord.Client(path=str(data)) as client:
        chunks = client.get_collection("books").get(where={"source_id": "moby"})
        assert len(chunks["ids"]) > 3 and all(m["label"] == "sea" for m in chunks["metadatas"])
    # a re-import replaces the chunks (same count: same text)
    assert run("import", str(source), "-c", "books", "--chunk-tokens", "40", "--chunk-overlap", "8",
               "--no-progress", "--restart")[0] == 0
    code, out, err = run("query", "a whale in the ocean", "-c", "books", "--group-by", "source_id", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["group"] for r in rows] == ["moby", "bread"]
    code, out, err = run("query", "a whale in the ocean", "-c", "books", "--max-distance", "0.0001", "--json")
    assert code == 0 and json.loads(out) == []
    code, out, err = run("query", "a whale", "-c", "books", "--group-by", "source_id", "--group-size", "2")
    assert code == 0 and out.count("[\"moby\"]") == 2
    code, out, err = run("classify", "the whale swam in the sea", "knead the dough", "-c", "books", "-k", "5",
                         "--json")
    assert code == 0, err
    assert [r["label"] for r in json.loads(out)] == ["sea", "kitchen"]
    code, out, err = run("classify", "the whale swam", "-c", "books")
    assert code == 0 and "sea" in out and "label" in out
    code, out, err = run("classify", "x", "-c", "books", "-k", "0")
    assert code == 1 and "k must be an integer" in err
    code, out, err = run("query", "x", "-c", "books", "--max-distance", "-1")
    assert code == 1 and "max_distance: must be a finite number >= 0, got -1.0" in err
    code, out, err = run("import", str(source), "-c", "books", "--chunk-tokens", "5", "--chunk-overlap", "5",
                         "--no-progress", "--restart")
    assert code == 1 and "chunking.overlap: must be 0..4" in err


# ------------------------------------------------------------------ docs
def test_long_documents_guide_samples_run(capsys):
    """docs/long-documents.md's Python samples run in order, as printed (in memory)."""
    import ast
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "long-documents.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 4
    exec(compile("\n".join(blocks), "docs/long-documents.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "['moby#0', 'moby#1']"
    assert ast.literal_eval(out[1]) == {"kind": "novel", "source_id": "moby", "chunk": 0}
    assert out[2].startswith("['moby#0'") and out[3] == "0"
    assert out[4] == "[['moby#0']]" and out[5] == "[['moby']]"
