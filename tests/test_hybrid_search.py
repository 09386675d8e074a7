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
    with pytest.raises(vectord.InvalidArgumentError, match="give no query_embeddings"):
        col.query(query_embeddings=[[1, 0, 0, 0]], query_texts=["apt"], rank="bm25")  # without max_distance
    with pytest.raises(vectord.InvalidArgumentError, match=r"max_distance: rank='bm25'.*no encoder.*query_embeddings"):
        col.query(query_texts=["apt"], rank="bm25", max_distance=0.5)
    with pytest.raises(vectord.InvalidArgumentError, match="max_distance: must be a finite number >= 0"):
        col.query(query_embeddings=[[1, 0, 0, 0]], query_texts=["apt"], rank="hybrid", max_distance=-1.0)
    with pytest.raises(vectord.InvalidArgumentError, match="group_size: n_results 10 x group_size 5000"):
        col.query(query_texts=["apt"], rank="bm25", group_by="topic", group_size=5000)


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
    """A record outside the vector list (past the fusion window) but found by BM25 gets its
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


def test_storage_query_answers_every_rank_as_the_server_does():
    """Collection.query (what embedded code and storage callers use) takes max_distance and
    group_by with rank bm25/hybrid too, with the same answers as query_ranked (the server's path)."""
    from vectord.storage import Database

    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((40, 4)).astype(np.float32)
    db = Database(None)
    col = db.create_collection("c", dim=4)
    col.add([f"r{i}" for i in range(40)], vectors, [f"apt git {'perl ' * (i % 3)}" for i in range(40)],
            [{"source": f"s{i % 5}"} for i in range(40)])
    q = vectors[:1]
    for rank in ("bm25", "hybrid"):
        for kw in ({"max_distance": 1.0}, {"group_by": "source", "group_size": 1}):
            vec = None if rank == "bm25" and "max_distance" not in kw else q  # bm25 needs one only to cut
            got = col.query(vec, 5, texts=["perl"], rank=rank, include=["distances", "metadatas"], **kw)[0]
            want = col.query_ranked(rank, ["perl"], vec, 5, include=["distances", "metadatas"], **kw)[0]
            assert got.ids == want.ids and got.ids, (rank, kw)
            if "max_distance" in kw:
                assert all(d <= 1.0 for d in got.distances)
            else:
                assert len({m["source"] for m in got.metadatas}) == len(got.ids)


# ------------------------------------------------------------------ max_distance and group_by
Q, TEXT = [[1.0, 0.0, 0.0, 0.0]], "perl apt git"  # the text hits apt, dpkg, git, perl and regex


def _nearest(col):
    out = col.query(query_embeddings=Q, n_results=len(IDS))
    return dict(zip(out["ids"][0], out["distances"][0]))


def test_max_distance_cuts_both_lists_of_a_hybrid_query_before_fusion(client):
    """A hit farther than max_distance is no candidate of either list (as a filter); the
    fusion ranks the records left, by their ranks among them."""
    col = make(client)
    distance = _nearest(col)
    vector = list(distance)  # nearest first
    bm25 = col.query(query_texts=[TEXT], rank="bm25", n_results=10)["ids"][0]
    cut = sorted(distance.values())[2]  # 3 records within: apt, none, regex
    out = col.query(query_embeddings=Q, query_texts=[TEXT], rank="hybrid", n_results=10, max_distance=cut)
    order, fused = _rrf([i for i in vector if distance[i] <= cut], [i for i in bm25 if distance[i] <= cut])
    assert out["ids"][0] == order and len(order) == 3
    assert np.allclose(out["scores"][0], [fused[i] for i in order], rtol=1e-5)
    assert np.allclose(out["distances"][0], [distance[i] for i in order], atol=1e-5)
    assert max(out["distances"][0]) <= cut
    # weighted fusion too, and a cut below every record leaves nothing
    out = col.query(query_embeddings=Q, query_texts=[TEXT], rank="hybrid", fusion="weighted", max_distance=cut)
    assert set(out["ids"][0]) == set(order)
    assert col.query(query_embeddings=[[-1, -1, -1, -1]], query_texts=[TEXT], rank="hybrid",
                     max_distance=0.0)["ids"] == [[]]


def test_max_distance_on_bm25_measures_each_hit_against_the_query_vector(client):
    col = make(client)
    distance = _nearest(col)
    bm25 = col.query(query_texts=[TEXT], rank="bm25", n_results=10)
    score = dict(zip(bm25["ids"][0], bm25["scores"][0]))
    cut = sorted(distance.values())[2]
    out = col.query(query_embeddings=Q, query_texts=[TEXT], rank="bm25", n_results=10, max_distance=cut)
    kept = [i for i in bm25["ids"][0] if distance[i] <= cut]
    assert out["ids"][0] == kept and 0 < len(kept) < len(bm25["ids"][0])  # BM25 order, far hits cut
    assert np.allclose(out["scores"][0], [score[i] for i in kept])  # the BM25 scores, unchanged
    assert np.allclose(out["distances"][0], [distance[i] for i in kept], atol=1e-5)


def test_max_distance_on_bm25_reads_deeper_for_hits_within_it(client):
    """The 30 best BM25 hits are all far: the n_results best within max_distance lie deeper,
    and a bm25 query reads on (x4) to find them, as a filter would."""
    col = client.create_collection("deep-cut", dim=2)
    vectors = np.array([[-1.0, 0.0]] * 30 + [[1.0, 0.0]] * 10, np.float32)
    docs = ["apple apple apple"] * 30 + [f"apple pie number {i}" for i in range(10)]
    col.add(ids=[f"r{i}" for i in range(40)], embeddings=vectors, documents=docs)
    out = col.query(query_texts=["apple"], query_embeddings=[[1.0, 0.0]], rank="bm25", n_results=3,
                    max_distance=0.5, explain=True)
    assert out["ids"] == [["r30", "r31", "r32"]]
    assert np.allclose(out["distances"][0], 0.0, atol=1e-6)
    assert out["plan"]["postings"] > 40  # the postings of "apple" were read more than once


def test_max_distance_on_bm25_embeds_the_text_with_the_collection_encoder(client):
    notes = client.create_collection("notes-cut")  # the built-in encoder
    notes.add(ids=IDS[:5], documents=[d for d in DOCS.values() if d])
    text = "fix a git commit in perl"  # BM25 hits: apt (fix), git, perl
    nearest = notes.query(query_texts=[text], n_results=5)
    distance = dict(zip(nearest["ids"][0], nearest["distances"][0]))
    bm25 = notes.query(query_texts=[text], rank="bm25", n_results=5)["ids"][0]
    cut = sorted(distance[i] for i in bm25)[1]  # two of the three within
    out = notes.query(query_texts=[text], rank="bm25", n_results=5, max_distance=cut)
    assert out["ids"][0] == [i for i in bm25 if distance[i] <= cut]
    assert np.allclose(out["distances"][0], [distance[i] for i in out["ids"][0]], atol=1e-4)


def _grouped(ranking: list[str], n_results: int, group_size: int) -> list[str]:
    """The expected group_by of a ranking: groups by best hit, group_size hits each."""
    groups: dict[str, list[str]] = {}
    for record_id in ranking:
        topic = META[IDS.index(record_id)]["topic"]
        if topic not in groups and len(groups) < n_results:
            groups[topic] = []
        if topic in groups and len(groups[topic]) < group_size:
            groups[topic].append(record_id)
    return [i for hits in groups.values() for i in hits]


@pytest.mark.parametrize("rank", ["bm25", "hybrid"])
def test_group_by_groups_the_bm25_and_hybrid_rankings(client, rank):
    col = make(client)
    kwargs = {"query_texts": [TEXT], "rank": rank, **({"query_embeddings": Q} if rank == "hybrid" else {})}
    ranking = col.query(n_results=10, **kwargs)
    for n_results, group_size in ((2, 1), (3, 2), (10, 1)):
        out = col.query(n_results=n_results, group_by="topic", group_size=group_size, **kwargs)
        assert out["ids"][0] == _grouped(ranking["ids"][0], n_results, group_size), (n_results, group_size)
        assert out["groups"][0] == [META[IDS.index(i)]["topic"] for i in out["ids"][0]]
        score = dict(zip(ranking["ids"][0], ranking["scores"][0]))
        assert np.allclose(out["scores"][0], [score[i] for i in out["ids"][0]], rtol=1e-5)
    # with max_distance: grouping of the cut ranking
    distance = _nearest(col)
    cut = sorted(distance.values())[2]
    cut_ranking = col.query(n_results=10, max_distance=cut, **{"query_embeddings": Q, **kwargs})["ids"][0]
    out = col.query(n_results=10, group_by="topic", max_distance=cut, **{"query_embeddings": Q, **kwargs})
    assert out["ids"][0] == _grouped(cut_ranking, 10, 1) and out["ids"][0]
    assert all(distance[i] <= cut for i in out["ids"][0])


def test_group_by_deepens_a_bm25_ranking_past_one_crowded_group(client):
    """60 strong hits of one group fill the first depth (32); the second group's only hit is
    found by deepening the ranking."""
    col = client.create_collection("crowded", dim=2)
    ids = [f"a{i}" for i in range(60)] + ["b"]
    docs = ["apple apple apple"] * 60 + ["apple " + " ".join(f"word{j}" for j in range(30))]
    col.add(ids=ids, embeddings=np.ones((61, 2), np.float32), documents=docs,
            metadatas=[{"g": "a"}] * 60 + [{"g": "b"}])
    out = col.query(query_texts=["apple"], rank="bm25", n_results=2, group_by="g")
    assert out["ids"] == [["a0", "b"]] and out["groups"] == [["a", "b"]]
    out = col.query(query_texts=["apple"], rank="bm25", n_results=2, group_by="g", group_size=3, explain=True)
    assert out["ids"] == [["a0", "a1", "a2", "b"]]
    assert out["plan"]["postings"] > 61  # more than one pass over the postings of "apple"


def test_cli_query_rank_with_max_distance_and_group_by(tmp_path, capsys):
    server = start_server(tmp_path / "data")
    try:
        with vectord.Client(server.address, timeout=30) as client:
            make(client, "docs")
            notes = client.create_collection("notes")  # the built-in encoder: the CLI sends text only
            notes.add(ids=IDS[:5], documents=[d for d in DOCS.values() if d], metadatas=META[:5])
            expected = notes.query(query_texts=[TEXT], rank="hybrid", n_results=10, group_by="topic",
                                   max_distance=0.9)["ids"][0]
        assert main(["query", TEXT, "-c", "docs", "--rank", "bm25", "--group-by", "topic", "--json",
                     "--address", server.address]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [r["group"] for r in rows] == ["git", "perl", "debian"] and all(r["score"] > 0 for r in rows)
        assert main(["query", TEXT, "-c", "notes", "--rank", "hybrid", "--group-by", "topic", "--max-distance",
                     "0.9", "--json", "--address", server.address]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [r["id"] for r in rows] == expected and all(r["distance"] <= 0.9 for r in rows)
        assert len({r["group"] for r in rows}) == len(rows)
        # a collection without an encoder: --vector beside the TEXT is the query vector
        with vectord.Client(server.address, timeout=30) as client:
            docs = client.get_collection("docs")
            cut = sorted(_nearest(docs).values())[2]
            expected = docs.query(query_texts=[TEXT], query_embeddings=Q, rank="bm25", max_distance=cut)["ids"][0]
        assert main(["query", TEXT, "-c", "docs", "--rank", "bm25", "--vector", json.dumps(Q[0]), "--max-distance",
                     str(cut), "--json", "--address", server.address]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [r["id"] for r in rows] == expected and rows and all(r["distance"] <= cut for r in rows)
        assert main(["query", TEXT, "-c", "docs", "--rank", "hybrid", "--vector", json.dumps(Q[0]), "--json",
                     "--address", server.address]) == 0
        assert json.loads(capsys.readouterr().out)[0]["id"] == "apt"
    finally:
        assert server.terminate() == 0


def test_a_hybrid_query_whose_text_straddles_a_model_switch_is_refused_retryably(tmp_path):
    """The query text embedded with the old model must not be searched among the new
    model's vectors (storage/ranking.py reads the model once, checks it under the lock):
    UNAVAILABLE (the SDK retries idempotent calls), never a mixed or dimension-error answer."""
    pytest.importorskip("onnxruntime")
    import tiny_model
    from vectord.server.encoders import BuiltinEncoders
    from vectord.storage import Database, reembed

    tiny_model.build(tmp_path / "models" / "tiny")
    with Database(tmp_path / "d", encoders=BuiltinEncoders(models_dir=tmp_path / "models")) as db:
        col = db.create_collection("docs", encoder="tiny-test")
        words = tiny_model.WORDS
        col.add(ids=["a", "b"], documents=[f"{words[0]} {words[1]}", f"{words[2]} {words[3]}"])
        original = col._embed

        def switching_to(model):
            def embed_then_switch(texts, field, *args):
                vectors = original(texts, field, *args)
                if field == "query_texts":
                    assert reembed.step(col, db.encoders, model).switched
                return vectors
            return embed_then_switch

        text = f"{words[0]} {words[1]}"
        col._embed = switching_to("vectord-gru-mini")
        with pytest.raises(vectord.UnavailableError, match="switched to model 'vectord-gru-mini'.*retry"):
            col.query(texts=[text], n_results=1, rank="hybrid")
        col._embed = original
        assert col.config.dim == 384
        assert col.query(texts=[text], n_results=1, rank="hybrid")[0].ids == ["a"]  # the retry
        # bm25 with max_distance embeds the text too: the same check
        col._embed = switching_to("tiny-test")
        with pytest.raises(vectord.UnavailableError, match="switched to model 'tiny-test'.*retry"):
            col.query_ranked("bm25", [text], max_distance=2.0)
        col._embed = original
        assert col.query_ranked("bm25", [text], max_distance=2.0)[0].ids[0] == "a"


def test_rrf_fuses_the_best_20_of_each_list():
    """RRF's window is max(n_results, 20) (storage/ranking.py, RRF_WINDOW): a record past
    the 20th of a list gets nothing from it. Record i is the (i+1)-th nearest and the
    (30-i)-th by BM25, so record 0 (nearest, BM25 30th) scores 1/61 exactly, not 1/61 + 1/90."""
    from vectord.storage import Database

    angles = np.arange(30) * 0.01
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    docs = [" ".join(["apple"] * (i + 1)) for i in range(30)]  # more apples, higher BM25
    with Database(None) as db:
        col = db.create_collection("c", dim=2)
        col.add([f"r{i}" for i in range(30)], vectors, docs)
        found = col.query(np.array([[1.0, 0.0]], np.float32), 20, texts=["apple"], rank="hybrid")[0]
        score = dict(zip(found.ids, found.scores.tolist()))
        assert score["r0"] == pytest.approx(1 / 61) and score["r29"] == pytest.approx(1 / 61)
        assert score["r10"] == pytest.approx(1 / 71 + 1 / 80)  # 11th nearest, 20th by BM25
        assert "r9" not in score or score["r9"] == pytest.approx(1 / 70)  # 21st by BM25: vector only
        # n_results above 20 widens the window: record 0 then has its BM25 rank too
        wide = col.query(np.array([[1.0, 0.0]], np.float32), 30, texts=["apple"], rank="hybrid")[0]
        assert dict(zip(wide.ids, wide.scores.tolist()))["r0"] == pytest.approx(1 / 61 + 1 / 90)
