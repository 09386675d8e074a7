"""The technical-documentation evaluation helpers (issue 10): pool trimming, BM25, eval2 set files."""
import json

import numpy as np

try:
    from vectord.encoder.training import evalsets2, evaluate
    from vectord.encoder.training.evalsets import RetrievalSet
except ImportError:
    from encoder.training import evalsets2, evaluate
    from encoder.training.evalsets import RetrievalSet

DOCS = ["postgres vacuum reclaims storage of dead tuples",
        "git rebase replays commits onto another base",
        "perl regular expressions match text patterns",
        "debian apt installs packages from repositories",
        "kernel modules load drivers at run time"]


def test_trim_pool_keeps_every_positive_and_remaps_gold():
    rs = RetrievalSet("s", ["q1", "q2"], [f"d{i}" for i in range(10)], [7, 2])
    t = evaluate.trim_pool(rs, 4)
    assert len(t.docs) == 4
    assert [t.docs[g] for g in t.gold] == ["d7", "d2"]
    assert t.docs == ["d0", "d1", "d2", "d7"]  # pool order kept
    assert evaluate.trim_pool(rs, 0) is rs


def test_bm25_finds_keyword_matches_and_misses_paraphrases():
    rs = RetrievalSet("s", ["how does vacuum reclaim storage", "replay commits on a new base",
                            "what makes a device work when the system is running"], DOCS, [0, 1, 4])
    r = evaluate.bm25_retrieval(rs)
    assert r["R@1"] == 2 / 3  # the third query shares no word with its document
    assert r["R@10"] == 2 / 3  # a document scoring 0 is not "found" even in a pool smaller than 10


def test_retrieval_metrics_from_vectors():
    eye = np.eye(3, dtype=np.float32)
    vec = {"a": eye[0], "b": eye[1], "c": eye[2], "qa": eye[0], "qb": eye[2]}
    rs = RetrievalSet("s", ["qa", "qb"], ["a", "b", "c"], [0, 1])
    r = evaluate.retrieval(lambda ts: np.stack([vec[t] for t in ts]), rs)
    assert r["R@1"] == 0.5
    assert r["MRR@10"] == (1 + 1 / 2) / 2  # qb ties b and a at 0 and beats neither c: rank 2 (ties favour gold)


def test_eval2_files_round_trip(tmp_path):
    (tmp_path / "x.passages.jsonl").write_text("".join(json.dumps({"id": f"p{i}", "text": d}) + "\n"
                                                       for i, d in enumerate(DOCS)))
    (tmp_path / "x.queries.jsonl").write_text(json.dumps({"id": "q0", "text": "apt", "positive": "p3"}) + "\n")
    (tmp_path / "index.json").write_text(json.dumps({"x": {"queries": 1, "pool": 5}}))
    assert evalsets2.available(tmp_path) == ["x"]
    rs = evalsets2.load(tmp_path, "x")
    assert rs.docs == DOCS and rs.queries == ["apt"] and rs.gold == [3]
