"""The vector store: mapped checkpoint vectors plus an in-memory tail, by label."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from vectord.storage import vectors as vectors_module
from vectord.storage.vectors import VectorStore


def _write(store: VectorStore, path) -> None:
    buffer = io.BytesIO()
    store.write_npy(buffer)
    path.write_bytes(buffer.getvalue())


def test_mapped_base_and_tail_read_as_one_array(tmp_path):
    rng = np.random.default_rng(0)
    first, second = rng.standard_normal((70_000, 8), np.float32), rng.standard_normal((5, 8), np.float32)
    store = VectorStore.in_memory(first)
    _write(store, tmp_path / "v.npy")
    store.rebase(tmp_path / "v.npy")
    assert store.base_slots == 70_000 and isinstance(store._base, np.memmap)
    assert store.append(second) == 70_000
    everything = np.concatenate([first, second])
    labels = np.array([70_004, 3, 69_999, 70_000, 0])
    assert np.array_equal(store.take(labels), everything[labels])  # mixed base and tail
    assert np.array_equal(store.take(labels[:1]), everything[labels[:1]])  # tail only
    assert np.array_equal(store.row(3), first[3]) and np.array_equal(store.all(), everything)
    assert np.allclose(store.sqnorms, (everything ** 2).sum(axis=1), rtol=1e-5)
    _write(store, tmp_path / "w.npy")  # base copied from its file, then the tail
    assert np.array_equal(np.load(tmp_path / "w.npy"), everything)
    reopened = VectorStore.mapped(tmp_path / "w.npy", 8)  # norms computed block by block
    assert reopened.slots == 70_005 and np.allclose(reopened.sqnorms, store.sqnorms, rtol=1e-5)


def test_an_empty_store_writes_and_maps(tmp_path):
    store = VectorStore(4)
    _write(store, tmp_path / "v.npy")
    reopened = VectorStore.mapped(tmp_path / "v.npy", 4)
    assert reopened.slots == 0 and reopened.take(np.array([], np.int64)).shape == (0, 4)
    reopened.append(np.ones((2, 4), np.float32))
    assert reopened.take(np.array([1])).tolist() == [[1.0] * 4]


def _rss_file_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise AssertionError("no RssFile in /proc/self/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_reading_every_mapped_vector_keeps_the_map_resident_set_under_the_budget(tmp_path, monkeypatch):
    """Issue 13: returning every embedding once must not leave a second resident copy of the
    vectors in the server; the pages are released past the budget and read again intact."""
    monkeypatch.setattr(vectors_module, "RESIDENT_BUDGET_BYTES", 4 << 20)
    rows = np.random.default_rng(3).standard_normal((40_000, 128)).astype(np.float32)  # 20 MiB
    np.save(tmp_path / "v.npy", rows)
    store = VectorStore.mapped(tmp_path / "v.npy", 128, budget=vectors_module.ResidentBudget())
    before = _rss_file_kib()
    peak = 0
    for start in range(0, len(rows), 1000):
        got = store.take(np.arange(start, start + 1000))
        np.testing.assert_array_equal(got, rows[start:start + 1000])
        peak = max(peak, _rss_file_kib() - before)
    assert peak < 8 * 1024, f"the map held {peak} KiB resident with a 4 MiB budget"
    np.testing.assert_array_equal(store.row(39_999), rows[39_999])  # released pages read back intact


def test_maps_that_fit_in_the_budget_together_are_never_released(tmp_path, monkeypatch):
    released = []
    monkeypatch.setattr(VectorStore, "release", lambda self: released.append(1))
    budget = vectors_module.ResidentBudget(64 << 10)
    stores = []
    for i in range(2):  # 2 x 12.5 KiB
        np.save(tmp_path / f"v{i}.npy", np.ones((400, 8), np.float32))
        stores.append(VectorStore.mapped(tmp_path / f"v{i}.npy", 8, budget=budget))
    for _ in range(1_000):  # 400 rows a read: far past the budget in charges
        for store in stores:
            store.take(np.arange(400))
    assert not released
    np.save(tmp_path / "v2.npy", np.ones((2_000, 8), np.float32))  # 62.5 KiB more: together past it
    stores.append(VectorStore.mapped(tmp_path / "v2.npy", 8, budget=budget))
    for _ in range(100):
        stores[0].take(np.arange(400))
    assert released  # the small map read is released now that the maps together exceed the budget


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_many_maps_each_under_the_budget_share_one_budget(tmp_path):
    """Regression (issue 13, s8-a): a budget per map let a collection of many segments keep
    230 MiB of its 1M x 384 originals resident after every embedding was read back once. Ten
    maps of 2.5 MiB each under a 4 MiB budget, all read through: the process holds at most
    about the budget of them, and the released pages read back intact."""
    budget = vectors_module.ResidentBudget(4 << 20)
    rng = np.random.default_rng(5)
    maps, stores = [], []
    for i in range(10):
        rows = rng.standard_normal((5_000, 128)).astype(np.float32)  # 2.5 MiB
        np.save(tmp_path / f"seg{i}.npy", rows)
        maps.append(rows)
        stores.append(VectorStore.mapped(tmp_path / f"seg{i}.npy", 128, budget=budget))
    before = _rss_file_kib()
    peak = 0
    for rows, store in zip(maps, stores):
        for start in range(0, 5_000, 500):
            np.testing.assert_array_equal(store.take(np.arange(start, start + 500)), rows[start:start + 500])
            peak = max(peak, _rss_file_kib() - before)
    assert peak < 8 * 1024, f"the maps held {peak} KiB resident with a 4 MiB budget for all"
    for rows, store in zip(maps, stores):
        np.testing.assert_array_equal(store.row(4_999), rows[4_999])


def test_a_store_is_released_by_a_read_of_another_map_from_another_thread(tmp_path):
    import threading

    budget = vectors_module.ResidentBudget(16 << 10)
    for name in ("a", "b"):
        np.save(tmp_path / f"{name}.npy", np.arange(4_000 * 8, dtype=np.float32).reshape(4_000, 8))
    a = VectorStore.mapped(tmp_path / "a.npy", 8, budget=budget)
    b = VectorStore.mapped(tmp_path / "b.npy", 8, budget=budget)
    released = []
    original = VectorStore.release
    a.release = lambda: (released.append("a"), original(a))  # instance attribute: only a's
    a.take(np.arange(10))  # a read, under the budget: a waits for the next release
    reader = threading.Thread(target=lambda: [b.take(np.arange(4_000)) for _ in range(3)])
    reader.start()
    reader.join()
    assert released == ["a"]  # released once, by b's reads, and not again: a was not read since
    np.testing.assert_array_equal(a.take(np.arange(10)), np.arange(80, dtype=np.float32).reshape(10, 8))
