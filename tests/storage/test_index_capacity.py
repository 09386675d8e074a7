"""The HNSW graph's growth: doubled while small, by an eighth once large (storage/index.py)."""

from __future__ import annotations

import numpy as np

from vectord.storage import index as index_module
from vectord.storage.index import HnswIndex, grown_capacity


def test_capacity_doubles_while_small_then_grows_by_an_eighth():
    assert grown_capacity(1_000) == 2_000
    assert grown_capacity(1_000_000) == 1_125_000


def test_a_large_graph_grows_by_an_eighth_and_keeps_every_vector(monkeypatch):
    monkeypatch.setattr(index_module, "LARGE_CAPACITY", 64)  # "large" at 64 elements, for speed
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((200, 8)).astype(np.float32)
    index = HnswIndex.create("l2", 8, m=8, ef_construction=50, ef_search=50, capacity=64)
    index.add(vectors[:64], np.arange(64))
    assert index.capacity == 64
    index.add(vectors[64:65], np.array([64]))
    assert index.capacity == 72  # 64 + 64 // 8, not 128
    index.add(vectors[65:], np.arange(65, 200))  # a batch past one step: as much as it needs
    assert index.capacity == 200 and index.count == 200
    labels, _, _ = index.search(vectors[150:151], 1)
    assert labels[0][0] == 150
