"""A repeated filter's matches and gathered vectors are reused until the next write
(storage/search.py MatchCache): every write, compaction and bool/number distinction shows in
the next answer as if nothing were kept."""

from __future__ import annotations

import numpy as np
import pytest

from vectord.storage import Database, Field, Tuning
from vectord.storage import search as search_module

DIM = 8


def unit(rng, n):
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def exact_ids(col, query, where_ok, k=5):
    """Brute force over the live records that pass ``where_ok(metadata)``."""
    got = col.get(include=["embeddings", "metadatas"])
    keep = [i for i, m in enumerate(got.metadatas) if where_ok(m)]
    if not keep:
        return []
    vectors = np.asarray(got.embeddings)[keep]
    dist = 1 - (vectors @ query) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(query)
    return [got.ids[keep[i]] for i in np.argsort(dist, kind="stable")[:k]]


@pytest.fixture
def col(tmp_path):
    # graph from 200 records; a filter of a few dozen matches is answered exactly
    database = Database(tmp_path / "d", tuning=Tuning(exact_threshold=200, checkpoint_min_bytes=1 << 40,
                                                     compact_min_dead=1, compact_ratio=0.01))
    collection = database.create_collection("c", dim=DIM)
    rng = np.random.default_rng(0)
    collection.add([f"r{i}" for i in range(400)], unit(rng, 400), metadatas=[{"b": i % 10} for i in range(400)])
    yield collection
    database.close()


def ids_of(col, query, where, k=5):
    return col.query(query[None, :], n_results=k, where=where, include=[])[0].ids


def asked_thrice(col, query, where, k=5):
    """The answer once the filter's matches and vectors are kept (from the third ask on)."""
    first = ids_of(col, query, where, k)
    assert ids_of(col, query, where, k) == ids_of(col, query, where, k) == first
    return first


def test_a_repeated_filter_reuses_its_matches_and_vectors(col):
    searcher = col._searcher
    query = unit(np.random.default_rng(1), 1)[0]
    where = Field("b", "lt", 1)
    first, plan = col.query_with_plan(query[None, :], n_results=5, where=where, include=[])
    assert plan.strategy == "exact" and plan.candidates == 40
    assert searcher._cache.get(col.state, where) is None  # asked once: nothing kept
    assert ids_of(col, query, where) == first[0].ids  # asked again: kept from now on
    labels, _ = searcher._matching(where, None)
    assert searcher._matching(where, None)[0] is labels  # the kept array, not resolved again
    assert not labels.flags.writeable
    gathered = searcher._cache.gathered(col.state, labels)
    assert gathered is not None and len(gathered[0]) == 40 and not gathered[0].flags.writeable
    assert ids_of(col, query, where) == first[0].ids == exact_ids(col, query, lambda m: m["b"] < 1)


@pytest.mark.parametrize("write", ["add", "delete", "update_out", "update_in", "upsert_vector"])
def test_every_write_shows_in_the_next_answer(col, write):
    rng = np.random.default_rng(2)
    query = unit(rng, 1)[0]
    where = Field("b", "lt", 1)
    before = asked_thrice(col, query, where)
    if write == "add":  # the nearest possible match, added after the filter was kept
        col.add(["new"], query[None, :], metadatas=[{"b": 0}])
    elif write == "delete":
        col.delete([before[0]])
    elif write == "update_out":
        col.update([before[0]], metadatas=[{"b": 5}])
    elif write == "update_in":
        col.update(["r1"], embeddings=query[None, :], metadatas=[{"b": 0}])
    else:  # the same metadata, the vector moved far away
        col.upsert([before[0]], -query[None, :], metadatas=[{"b": 0}])
    after = ids_of(col, query, where)
    assert after == exact_ids(col, query, lambda m: m["b"] < 1)
    assert after != before


def test_compaction_renumbers_labels_and_the_answer_stays_right(col):
    query = unit(np.random.default_rng(3), 1)[0]
    where = Field("b", "lt", 2)
    asked_thrice(col, query, where)
    col.delete([f"r{i}" for i in range(0, 400, 3)])
    asked_thrice(col, query, where)
    assert col.checkpoint(force=True, compact=True)
    assert ids_of(col, query, where) == exact_ids(col, query, lambda m: m["b"] < 2)


def test_a_bool_filter_is_never_answered_with_a_numbers_matches(tmp_path):
    database = Database(tmp_path / "d", tuning=Tuning(checkpoint_min_bytes=1 << 40))
    col = database.create_collection("c", dim=DIM)
    rng = np.random.default_rng(4)
    col.add([f"r{i}" for i in range(20)], unit(rng, 20),
            metadatas=[{"f": True} if i % 2 else {"f": 1} for i in range(20)])
    query = unit(rng, 1)[0]
    numbers = set(asked_thrice(col, query, Field("f", "eq", 1), k=20))
    bools = set(asked_thrice(col, query, Field("f", "eq", True), k=20))
    assert numbers == {f"r{i}" for i in range(0, 20, 2)} and bools == {f"r{i}" for i in range(1, 20, 2)}
    database.close()


def test_kept_matches_and_vectors_stay_within_their_bounds(monkeypatch):
    cache = search_module.MatchCache(entries=2, max_labels=100)

    class State:  # what MatchCache reads of a collection's state
        def __init__(self):
            self.records = type("R", (), {"slots": 1000, "__len__": lambda s: 1000})()
            self.meta_index = type("M", (), {})()
            self.vectors = type("V", (), {"slots": 250, "dim": 4})()

    state = State()

    def put(where, labels):
        cache.put(state, where, (labels, "index"))  # a first ask is only remembered
        return cache.put(state, where, (labels, "index"))[0]

    assert cache.put(state, Field("b", "eq", 0), (np.arange(40, dtype=np.int64), "index"))[0].flags.writeable
    assert cache.get(state, Field("b", "eq", 0)) is None
    kept = [put(Field("b", "eq", i), np.arange(40, dtype=np.int64)) for i in range(3)]
    assert cache.get(state, Field("b", "eq", 0)) is None  # the least recently used went first
    assert cache.get(state, Field("b", "eq", 2))[0] is kept[2]
    assert put(Field("b", "eq", 9), np.arange(101, dtype=np.int64)).flags.writeable
    assert cache.get(state, Field("b", "eq", 9)) is None  # more labels than it keeps in all
    # vectors: at most 1/8 of the bytes of 250 x 4 float32 (500 bytes)
    small = np.zeros((20, 4), np.float32)
    cache.keep_gathered(state, kept[2], small[:8], np.zeros(8, np.float32))  # 160 bytes
    assert cache.gathered(state, kept[2]) is not None
    cache.keep_gathered(state, kept[1], small, np.zeros(20, np.float32))  # 400 bytes: drops the other
    assert cache.gathered(state, kept[2]) is None and cache.gathered(state, kept[1]) is not None
    cache.keep_gathered(state, kept[2], np.zeros((40, 4), np.float32), np.zeros(40, np.float32))
    assert cache.gathered(state, kept[2]) is None  # 800 bytes never fit
    state.records.slots = 1001  # a write: nothing kept is valid any more
    assert cache.get(state, Field("b", "eq", 2)) is None and cache.gathered(state, kept[1]) is None
    # never more labels than live records (8 bytes a record)
    type(state.records).__len__ = lambda s: 50
    put(Field("b", "eq", 3), np.arange(40, dtype=np.int64))
    put(Field("b", "eq", 4), np.arange(20, dtype=np.int64))
    assert cache.get(state, Field("b", "eq", 3)) is None and cache.get(state, Field("b", "eq", 4)) is not None
    put(Field("b", "eq", 5), np.arange(60, dtype=np.int64))
    assert cache.get(state, Field("b", "eq", 5)) is None
