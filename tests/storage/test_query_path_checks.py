"""The single-query shortcuts on the engine's query path (issue 13) decide as the full
checks do: storage.validation.vectors' one-dot-product test for a single vector, the
collection's reusable read guard, and the unmasked hits of full rows."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from vectord.errors import InvalidArgumentError, NotFoundError
from vectord.storage import validation
from vectord.storage.database import Database
from vectord.storage.rwlock import RWLock


def check(rows, metric="cosine"):
    array = np.asarray(rows, np.float32)
    return validation.vectors(array, len(array), array.shape[1], metric, [f"q{i}" for i in range(len(array))], "q")


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_single_vector_with_a_nan_or_infinity_is_refused(metric, bad):
    with pytest.raises(InvalidArgumentError, match=r"q\[0\] \(id 'q0'\): NaN or infinite"):
        check([[1.0, bad, 2.0]], metric)


def test_a_single_zero_vector_is_refused_for_cosine_only():
    with pytest.raises(InvalidArgumentError, match="zero vector in a cosine collection"):
        check([[0.0, 0.0, 0.0]])
    assert check([[0.0, 0.0, 0.0]], "l2").shape == (1, 3)
    assert check([[0.0, 0.0, 0.0]], "ip").shape == (1, 3)


def test_a_single_vector_whose_square_overflows_is_still_valid():
    # 1e20 squared passes float32's range, not float64's
    out = check([[1e20, -1e20, 3.0]])
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, np.asarray([[1e20, -1e20, 3.0]], np.float32))


def test_a_single_tiny_vector_whose_square_underflows_is_not_zero():
    assert check([[1e-30, 0.0, 0.0]]).shape == (1, 3)


def test_a_checked_read_that_fails_its_check_releases_the_lock():
    lock, calls = RWLock(), []

    def closed():
        calls.append(1)
        raise NotFoundError("closed")

    guard = lock.checked_read(closed)
    with pytest.raises(NotFoundError):
        with guard:
            pass
    written = threading.Event()

    def writer():
        with lock.write():
            written.set()

    t = threading.Thread(target=writer)
    t.start()
    assert written.wait(5), "a reader that failed its check still holds the lock"
    t.join()
    assert calls == [1]


def test_one_read_guard_serves_many_threads_at_once():
    lock = RWLock()
    guard = lock.read()
    inside, release = threading.Barrier(3), threading.Event()

    def reader():
        with guard:
            inside.wait(5)
            release.wait(5)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait(5)  # both readers hold it together
    release.set()
    for t in threads:
        t.join()
    with lock.write():  # and both let it go
        pass


def test_a_deleted_collection_refuses_queries(tmp_path):
    db = Database(tmp_path / "db")
    col = db.create_collection("c", dim=3, metric="l2")
    col.add(["a"], np.ones((1, 3), np.float32))
    db.delete_collection("c")
    with pytest.raises(NotFoundError, match="was deleted or closed"):
        col.query(np.ones((1, 3), np.float32), n_results=1)
    db.close()


def test_full_rows_and_short_rows_give_the_same_hits(tmp_path):
    """The unmasked path (every row full) and the masked one (a -1 padded row, or
    max_distance) cut the same hits per query."""
    db = Database(tmp_path / "db")
    col = db.create_collection("c", dim=2, metric="l2")
    col.add([f"r{i}" for i in range(5)], np.arange(10, dtype=np.float32).reshape(5, 2))
    labels = np.array([[0, 1, 2], [4, 3, 2]])
    distances = np.array([[0.0, 1.0, 2.0], [0.5, 1.5, 2.5]], np.float32)
    with col.reading():
        full = col._select_hits(labels, distances, None, frozenset({"distances"}))
        masked = col._select_hits(labels, distances, 10.0, frozenset({"distances"}))
        short = col._select_hits(np.array([[0, 1, -1], [4, -1, -1]]), distances, None, frozenset({"distances"}))
    assert [r.ids for r in full] == [r.ids for r in masked] == [["r0", "r1", "r2"], ["r4", "r3", "r2"]]
    for a, b in zip(full, masked):
        np.testing.assert_array_equal(a.distances, b.distances)
    assert [r.ids for r in short] == [["r0", "r1"], ["r4"]]
    np.testing.assert_array_equal(short[1].distances, [0.5])
    db.close()
