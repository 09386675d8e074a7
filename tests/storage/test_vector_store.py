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
    store = VectorStore.mapped(tmp_path / "v.npy", 128)
    before = _rss_file_kib()
    peak = 0
    for start in range(0, len(rows), 1000):
        got = store.take(np.arange(start, start + 1000))
        np.testing.assert_array_equal(got, rows[start:start + 1000])
        peak = max(peak, _rss_file_kib() - before)
    assert peak < 8 * 1024, f"the map held {peak} KiB resident with a 4 MiB budget"
    np.testing.assert_array_equal(store.row(39_999), rows[39_999])  # released pages read back intact


def test_a_map_under_the_budget_is_never_released(tmp_path, monkeypatch):
    released = []
    monkeypatch.setattr(VectorStore, "release", lambda self: released.append(1))
    np.save(tmp_path / "v.npy", np.ones((100, 8), np.float32))
    store = VectorStore.mapped(tmp_path / "v.npy", 8)
    for _ in range(10_000):
        store.take(np.arange(100))
    assert not released
