"""The vector store: mapped checkpoint vectors plus an in-memory tail, by label."""

from __future__ import annotations

import io

import numpy as np

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
