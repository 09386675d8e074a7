"""Search paths: exact, HNSW, filtered, and hnswlib's edge cases."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from vectord.storage import Database, Field, Tuning


def clustered(n, dim, seed=0, clusters=50):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim))
    return (centers[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dim))).astype(np.float32)


def brute_force(vectors, queries, k):
    vn = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    return np.argsort(-(qn @ vn.T), axis=1)[:, :k]


def recall(found_ids, truth_rows, ids):
    hits = sum(len(set(f) & {ids[j] for j in t}) for f, t in zip(found_ids, truth_rows))
    return hits / truth_rows.size


@pytest.fixture
def db(tmp_path):
    database = Database(tmp_path / "d", tuning=Tuning(exact_threshold=500, exact_filter_limit=300, graph_cost_per_ef=0,
                                                     checkpoint_min_bytes=1 << 40))
    yield database
    database.close()


def test_hnsw_recall_against_brute_force(db):
    vectors, queries = clustered(3000, 32), clustered(100, 32, seed=1)
    ids = [f"v{i}" for i in range(len(vectors))]
    col = db.create_collection("r", dim=32)
    col.add(ids, vectors)
    assert col._index is not None
    found = [r.ids for r in col.query(queries, n_results=10)]
    assert recall(found, brute_force(vectors, queries, 10), ids) >= 0.95


@pytest.mark.parametrize("selectivity", [0.5, 0.1, 0.01])
def test_filtered_queries_return_only_matches_with_high_recall(db, selectivity):
    vectors, queries = clustered(3000, 16), clustered(50, 16, seed=2)
    ids = [f"v{i}" for i in range(len(vectors))]
    bucket = np.arange(len(vectors)) % int(1 / selectivity)
    col = db.create_collection("f", dim=16)
    col.add(ids, vectors, metadatas=[{"b": int(b)} for b in bucket])
    results = col.query(queries, n_results=10, where=Field("b", "eq", 0))
    allowed = np.flatnonzero(bucket == 0)
    truth = allowed[brute_force(vectors[allowed], queries, 10)]
    for r in results:
        assert all(int(i[1:]) % int(1 / selectivity) == 0 for i in r.ids)
    assert recall([r.ids for r in results], truth, ids) >= 0.95


def test_k_larger_than_live_count_and_deletions(db):
    vectors = clustered(600, 8)
    ids = [f"v{i}" for i in range(600)]
    col = db.create_collection("k", dim=8)
    col.add(ids, vectors)
    col.delete(ids=ids[:590])  # the graph keeps 590 deleted nodes
    result = col.query(vectors[:3], n_results=50)
    assert all(sorted(r.ids) == sorted(ids[590:]) for r in result)
    col.delete(ids=ids[590:])
    assert col.query(vectors[:1], n_results=5)[0].ids == []


def test_delete_then_re_add_the_same_id(db):
    vectors = clustered(600, 8)
    col = db.create_collection("re", dim=8)
    col.add([f"v{i}" for i in range(600)], vectors)
    col.delete(ids=["v7"])
    col.add(["v7"], vectors[100:101])
    assert col.query(vectors[100:101], n_results=2)[0].ids[:2] in (["v7", "v100"], ["v100", "v7"])
    assert col.count() == 600


def test_update_moves_a_vector_in_the_graph(db):
    vectors = clustered(600, 8)
    col = db.create_collection("u", dim=8)
    col.add([f"v{i}" for i in range(600)], vectors)
    far = -vectors[0] * 10
    col.update(["v1"], far[None, :])
    assert col.query(far[None, :], n_results=1)[0].ids == ["v1"]


def test_concurrent_writers_and_readers_across_resizes(db):
    """hnswlib add and query must never overlap: the read/write lock serialises them."""
    col = db.create_collection("c", dim=16)
    vectors = clustered(4000, 16)
    errors = []

    def writer(t):
        try:
            for start in range(t * 1000, t * 1000 + 1000, 50):
                col.add([f"v{i}" for i in range(start, start + 50)], vectors[start:start + 50])
                col.delete(ids=[f"v{start}"])
        except Exception as exc:
            errors.append(exc)

    def reader():
        try:
            for i in range(200):
                col.query(vectors[i:i + 4], n_results=5)
                col.count(where=Field("x", "exists", False))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert col.count() == 4000 - 80


@pytest.mark.parametrize("seal", [False, True])
def test_a_batch_of_queries_answers_each_row_as_that_query_alone(tmp_path, seal):
    """A batch's hits are read at once and cut per query (Collection._select_hits, the
    segmented answer): every column, distances and max_distance, in one graph or in sealed
    segments plus the tail, must equal what each query gets on its own."""
    tuning = Tuning(exact_threshold=1 << 30, checkpoint_min_bytes=1 << 40, compact_min_dead=1 << 30,
                    **({"seal_rows": 50, "merge_factor": 10} if seal else {}))
    with Database(tmp_path / "d", tuning=tuning) as database:
        col = database.create_collection("c", dim=8, metric="l2")
        vectors = clustered(400, 8)
        for start in range(0, 400, 40):  # several writes: with seal_rows 50, several segments
            rows = range(start, start + 40)
            col.add([f"v{i}" for i in rows], vectors[start:start + 40], documents=[f"doc {i}" for i in rows],
                    metadatas=[{"i": i} for i in rows])
            col.checkpoint()
        col.delete(ids=[f"v{i}" for i in range(0, 400, 7)])
        assert bool(col.sealed) == seal
        queries = clustered(12, 8, seed=3)
        include = ["embeddings", "documents", "metadatas", "distances"]
        limit = float(np.median(col.query(queries, n_results=10, include=["distances"])[0].distances))
        for max_distance in (None, limit):
            batch = col.query(queries, n_results=10, include=include, max_distance=max_distance)
            for q, records in enumerate(batch):
                alone = col.query(queries[q:q + 1], n_results=10, include=include, max_distance=max_distance)[0]
                assert records.ids == alone.ids and records.documents == alone.documents
                assert records.metadatas == alone.metadatas
                np.testing.assert_array_equal(records.embeddings, alone.embeddings)
                # a batch's distances come from one matrix product: the same to the float's last bits or so
                np.testing.assert_allclose(records.distances, alone.distances, rtol=1e-5)
            if max_distance is not None:  # the cut left some rows short, and some long
                assert {len(r.ids) for r in batch} != {10}
