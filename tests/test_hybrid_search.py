"""Keyword (BM25) and hybrid ranking through the SDK, against a real server and embedded;
the full-text config per collection; recovery of the index after kill -9; the CLI's --rank.

The engine's BM25 is checked against a brute-force formula in tests/storage/test_fulltext.py;
here the checks are end to end: the right records, in the right order, with filters."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import vectord  # noqa: E402
from serverproc import start_server  # noqa: E402
from vectord.server.cli import main  # noqa: E402

DOCS = {
    "apt": "How do I fix broken dependencies with apt-get install",
    "dpkg": "dpkg installs a package file; apt resolves its dependencies",
    "git": "How do I undo a git commit that was already pushed",
    "perl": "How do I sort a hash by value in Perl",
    "regex": "Perl regular expressions match text; a regex can capture groups",
    "none": None,  # a record without a document: never a keyword hit
}
IDS = list(DOCS)
VECTORS = np.eye(len(IDS), 4, dtype=np.float32) + 0.1  # record i points mostly along axis i % 4
VECTORS[4] = [0.1, 0.1, 0.1, 1.0]
VECTORS[5] = [1.0, 1.0, 0.1, 0.1]
META = [{"topic": t} for t in ("debian", "debian", "git", "perl", "perl", "none")]


def make(client, name="kw", **kwargs):
    col = client.create_collection(name, dim=4, **kwargs)
    col.add(ids=IDS, embeddings=VECTORS, documents=list(DOCS.values()), metadatas=META)
    return col


def test_bm25_ranks_documents_by_the_query_terms(client):
    col = make(client)
    out = col.query(query_texts=["apt dependencies"], rank="bm25", n_results=5)
    # only documents holding a term; both hold both terms once, and apt's is shorter
    # (6 terms after stop words and stemming, against 7)
    assert out["ids"] == [["apt", "dpkg"]]
    scores = out["scores"][0]
    assert scores[0] > scores[1] > 0
    assert all(math.isnan(d) for d in out["distances"][0])  # no query vector
    # stemming and case: "Installs" and "install" are one term
    assert col.query(query_texts=["INSTALLING"], rank="bm25")["ids"] == [["apt", "dpkg"]]
    assert col.query(query_texts=["zebra"], rank="bm25")["ids"] == [[]]
    many = col.query(query_texts=["perl", "git commit"], rank="bm25", n_results=1)
    assert many["ids"] == [["perl"], ["git"]]


def test_vector_rank_is_the_default_and_has_no_scores(client):
    col = make(client)
    out = col.query(query_embeddings=[[1, 0, 0, 0]], n_results=2)
    assert out["ids"][0][0] == "apt" and "scores" not in out


def test_filters_apply_to_all_three_ranks(client):
    col = make(client)
    where, where_document = {"topic": "perl"}, {"$contains": "regex"}
    for rank in ("vector", "bm25", "hybrid"):
        # unfiltered, "perl apt git" hits apt, dpkg, git, perl and regex
        kwargs = {"query_texts": ["perl apt git"]} if rank != "vector" else {"query_embeddings": [[1, 0, 0, 0]]}
        if rank == "hybrid":
            kwargs["query_embeddings"] = [[1, 0, 0, 0]]
        out = col.query(n_results=10, where=where, **kwargs, rank=rank)
        assert set(out["ids"][0]) <= {"perl", "regex"} and out["ids"][0], rank
        assert all(m["topic"] == "perl" for m in out["metadatas"][0])
        out = col.query(n_results=10, where_document=where_document, **kwargs, rank=rank)
        assert out["ids"][0] == ["regex"], rank
    assert col.query(query_texts=["How do I"], rank="bm25")["ids"] == [[]]  # stop words only
    out = col.query(query_texts=["perl"], rank="bm25", where={"topic": "debian"})
    assert out["ids"] == [[]]


def _rrf(*lists, k=60):
    fused = {}
    for ids in lists:
        for rank, id_ in enumerate(ids, start=1):
            fused[id_] = fused.get(id_, 0.0) + 1 / (k + rank)
    return sorted(fused, key=lambda i: (-fused[i], IDS.index(i))), fused


def test_hybrid_fuses_vector_and_bm25_rankings(client):
    col = make(client)
    q, text = [[0.0, 0.0, 1.0, 0.2]], "perl hash"
    vector = col.query(query_embeddings=q, n_results=6)["ids"][0]
    bm25 = col.query(query_texts=[text], rank="bm25", n_results=6)["ids"][0]
    out = col.query(query_embeddings=q, query_texts=[text], rank="hybrid", n_results=3)
    order, fused = _rrf(vector, bm25)
    assert out["ids"][0] == order[:3]
    assert np.allclose(out["scores"][0], [fused[i] for i in order[:3]], rtol=1e-5)
    # distances are the vector distances of each result, also those found by BM25 alone
    nearest = col.query(query_embeddings=q, n_results=6)
    by_id = dict(zip(nearest["ids"][0], nearest["distances"][0]))
    assert np.allclose(out["distances"][0], [by_id[i] for i in out["ids"][0]], atol=1e-5)
    # weighted fusion: alpha 1 follows the vector ranking, 0 the BM25 ranking first
    top_vector = col.query(query_embeddings=q, query_texts=[text], rank="hybrid", fusion="weighted",
                           hybrid_alpha=1.0, n_results=1)
    assert top_vector["ids"][0] == vector[:1]
    top_bm25 = col.query(query_embeddings=q, query_texts=[text], rank="hybrid", fusion="weighted",
                         hybrid_alpha=0.0, n_results=1)
    assert top_bm25["ids"][0] == bm25[:1] and top_bm25["scores"][0][0] == pytest.approx(1.0)


def test_explain_reports_the_rank_and_postings(client):
    col = make(client)
    out = col.query(query_texts=["apt dependencies"], rank="bm25", explain=True)
    plan = out["plan"]
    assert plan["rank"] == "bm25" and plan["strategy"] == "bm25"
    assert plan["postings"] == 4  # apt: 2 documents, depend: 2
    assert plan["candidates"] == 5  # indexed documents (the record without one is not)
    out = col.query(query_embeddings=[[1, 0, 0, 0]], query_texts=["apt"], rank="hybrid", explain=True,
                    where={"topic": "debian"})
    assert out["plan"]["rank"] == "hybrid" and out["plan"]["fusion"] == "rrf" and out["plan"]["postings"] == 2
    assert col.query(query_embeddings=[[1, 0, 0, 0]], explain=True)["plan"]["rank"] == "vector"


def test_bad_rank_arguments_are_refused_naming_the_field(client):
    col = make(client)
    with pytest.raises(vectord.InvalidArgumentError, match="rank"):
        col.query(query_texts=["x"], rank="fuzzy")
    with pytest.raises(vectord.InvalidArgumentError, match="fusion"):
        col.query(query_texts=["x"], rank="hybrid", fusion="max")
    with pytest.raises(vectord.InvalidArgumentError, match=r"hybrid_alpha.*\[0, 1\].*1.5"):
        col.query(query_texts=["x"], rank="hybrid", hybrid_alpha=1.5)
    with pytest.raises(vectord.InvalidArgumentError, match="query_texts: rank='bm25' needs the query text"):
        col.query(query_embeddings=[[1, 0, 0, 0]], rank="bm25")
    with pytest.raises(vectord.InvalidArgumentError, match="has no encoder"):
        col.query(query_texts=["apt"], rank="hybrid")  # no vectors and nothing to embed with
    with pytest.raises(vectord.InvalidArgumentError, match="one vector per query text"):
        col.query(query_embeddings=[[1, 0, 0, 0]] * 2, query_texts=["apt"], rank="hybrid")
    with pytest.raises(vectord.InvalidArgumentError, match="rank='vector' only"):
        col.query(query_texts=["apt"], rank="bm25", max_distance=0.5)


def test_fulltext_settings_are_kept_and_checked(client):
    zh = client.create_collection("zh", dim=4, fulltext={"analyzer": "cjk", "stemming": False})
    zh.add(ids=["a", "b", "c"], embeddings=VECTORS[:3],
           documents=["北京是中国的首都", "东京是日本的首都", "我爱北京天安门"])
    # bigrams: 北京 in a (7 bigrams) and c (6, shorter: first); never across 东京 of b
    assert zh.query(query_texts=["北京"], rank="bm25")["ids"] == [["c", "a"]]
    assert zh.query(query_texts=["日本首都"], rank="bm25")["ids"][0][0] == "b"
    off = client.create_collection("off", dim=4, fulltext={"analyzer": "none"})
    off.add(ids=["a"], embeddings=VECTORS[:1], documents=["text"])
    with pytest.raises(vectord.FailedPreconditionError, match="no full-text index"):
        off.query(query_texts=["text"], rank="bm25")
    with pytest.raises(vectord.InvalidArgumentError, match="fulltext.analyzer: 'klingon'"):
        client.create_collection("bad", dim=4, fulltext={"analyzer": "klingon"})
    with pytest.raises(vectord.InvalidArgumentError, match="unknown setting"):
        client.create_collection("bad", dim=4, fulltext={"language": "fr"})
    assert "bad" not in [c.name for c in client.list_collections()]


def test_writes_and_deletes_keep_the_index_current(client):
    col = make(client)
    col.update(ids=["git"], documents=["apt pinning in Debian"])
    col.delete(ids=["apt"])
    assert col.query(query_texts=["apt"], rank="bm25")["ids"] == [["git", "dpkg"]] or \
        col.query(query_texts=["apt"], rank="bm25")["ids"] == [["dpkg", "git"]]
    assert col.query(query_texts=["commit"], rank="bm25")["ids"] == [[]]  # the old text is gone
    col.upsert(ids=["apt"], embeddings=VECTORS[:1], documents=["zebra"])
    assert col.query(query_texts=["zebra"], rank="bm25")["ids"] == [["apt"]]


def test_hybrid_embeds_query_texts_with_the_collection_encoder(client):
    notes = client.create_collection("notes")  # the built-in encoder
    notes.add(ids=list(DOCS)[:5], documents=[d for d in DOCS.values() if d])
    out = notes.query(query_texts=["undo a pushed git commit"], rank="hybrid", n_results=2)
    assert out["ids"][0][0] == "git" and len(out["scores"][0]) == 2
    assert all(not math.isnan(d) for d in out["distances"][0])


def test_bm25_results_survive_kill_9(tmp_path):
    data = tmp_path / "data"
    server = start_server(data)
    try:
        client = vectord.Client(server.address, timeout=30)
        col = client.create_collection("kw", dim=4, fulltext={"analyzer": "standard", "stop_words": False})
        rng = np.random.default_rng(7)
        words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
        ids = [f"r{i}" for i in range(300)]
        docs = [" ".join(rng.choice(words, size=rng.integers(1, 9))) for _ in ids]
        col.add(ids=ids, embeddings=rng.standard_normal((300, 4)).astype(np.float32) + 0.01, documents=docs)
        client._call("Admin", "Checkpoint", __import__("vectord.v1.admin_pb2", fromlist=["x"]).CheckpointRequest(
            collection="kw"))
        # after the checkpoint: writes only in the log
        col.update(ids=ids[:40], documents=["alpha alpha omega"] * 40)
        col.delete(ids=ids[40:60])
        queries = ["alpha", "beta gamma", "omega theta", "zeta"]
        before = [col.query(query_texts=[q], rank="bm25", n_results=20) for q in queries]
        client.close()
        server.kill()
        server = start_server(data)
        client = vectord.Client(server.address, timeout=30)
        col = client.get_collection("kw")
        after = [col.query(query_texts=[q], rank="bm25", n_results=20) for q in queries]
        for b, a in zip(before, after):
            assert a["ids"] == b["ids"]
            assert np.allclose(a["scores"], b["scores"])
        assert col.count() == 280
        client.close()
    finally:
        assert server.terminate() == 0, server.log()


def test_cli_query_rank(tmp_path, capsys):
    server = start_server(tmp_path / "data")
    try:
        with vectord.Client(server.address, timeout=30) as client:
            make(client, "docs")
        assert main(["query", "apt dependencies", "-c", "docs", "--rank", "bm25", "--json",
                     "--address", server.address]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [r["id"] for r in rows] == ["apt", "dpkg"] and rows[0]["score"] > 0 and rows[0]["distance"] is None
        assert main(["query", "apt dependencies", "-c", "docs", "--rank", "bm25", "--address", server.address]) == 0
        table = capsys.readouterr().out
        assert "score" in table and "dpkg" in table
        with pytest.raises(SystemExit, match="needs a TEXT"):
            main(["query", "-c", "docs", "--vector", "[1, 0, 0, 0]", "--rank", "bm25", "--address", server.address])
    finally:
        assert server.terminate() == 0


def test_manifest_without_fulltext_opens_with_the_defaults_and_a_bad_one_is_refused(tmp_path):
    """A MANIFEST written before the full-text index (no config.fulltext) opens with the
    default analyzer and its documents indexed; a crafted analyzer marks the collection
    damaged instead of serving it."""
    from vectord.storage import Database
    from vectord.storage import checkpoint as disk
    from vectord.storage.fsio import REAL

    db = Database(tmp_path / "d")
    col = db.create_collection("c", dim=2)
    col.add(["a", "b"], [[1, 0], [0, 1]], ["apples here", "pears there"])
    path = col.path
    db.close()
    manifest = disk.read_manifest(path)
    assert manifest["config"]["fulltext"] == {"analyzer": "standard", "stemming": True, "stop_words": True}
    del manifest["config"]["fulltext"]
    disk.write_manifest(REAL, path, manifest)
    db = Database(tmp_path / "d")
    assert db.get_collection("c").query(texts=["apple"], rank="bm25")[0].ids == ["a"]
    db.close()
    manifest = disk.read_manifest(path)
    manifest["config"]["fulltext"] = {"analyzer": "klingon"}
    disk.write_manifest(REAL, path, manifest)
    db = Database(tmp_path / "d")
    assert "fulltext.analyzer: 'klingon'" in db.damaged_collections()["c"]
    db.close()


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_hybrid_distances_of_results_found_by_bm25_alone(metric):
    """A record outside the vector list (the fusion window is 50) but found by BM25 gets its
    distance computed exactly, by the metric's formula."""
    from vectord.storage import Database

    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((120, 4)).astype(np.float32)
    if metric == "ip":
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    query = -vectors[7]  # record 7 is as far as can be: never in the vector window
    db = Database(None)
    col = db.create_collection("c", dim=4, metric=metric)
    col.add([f"r{i}" for i in range(120)], vectors, ["zebra" if i == 7 else f"filler {i}" for i in range(120)])
    found = col.query(query[None, :], 5, texts=["zebra"], rank="hybrid")[0]
    assert "r7" in found.ids
    for id_, distance in zip(found.ids, found.distances):
        v = vectors[int(id_[1:])]
        expected = {"cosine": 1 - v @ query / (np.linalg.norm(v) * np.linalg.norm(query)),
                    "l2": float(((v - query) ** 2).sum()), "ip": 1 - v @ query}[metric]
        assert distance == pytest.approx(expected, abs=1e-4), id_
