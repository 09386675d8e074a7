"""Nearest-neighbour search: exact (numpy) and approximate (hnswlib).

``HnswIndex`` wraps one hnswlib index and handles its pitfalls (REFERENCE.md): capacity
grown geometrically before adding, ``k`` clamped to the live count, ``ef >= k``, the
"contiguous 2D array" failure turned into a signal to fall back to exact search, ``ef``
set after every load, and ``replace_deleted`` never used (an update is mark-deleted plus an
add under a new label). It is not thread-safe: the collection's read/write lock guards it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hnswlib
import numpy as np

log = logging.getLogger(__name__)

_SPACES = {"cosine": "cosine", "l2": "l2", "ip": "ip"}


class IndexSearchFailed(Exception):
    """hnswlib could not return k results (too many deletions for this ef)."""


def exact_search(
    vectors: np.ndarray,
    sqnorms: np.ndarray,
    labels: np.ndarray,
    queries: np.ndarray,
    k: int,
    metric: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force k nearest among candidate ``vectors`` (row i has label ``labels[i]`` and
    squared norm ``sqnorms[i]``).

    Returns (labels, distances), each (n_queries, min(k, len(labels))), nearest first.
    Distances: cosine 1 - cos, l2 squared Euclidean, ip 1 - dot.
    """
    k = min(k, len(labels))
    n = len(queries)
    if k == 0:
        return np.empty((n, 0), np.int64), np.empty((n, 0), np.float32)
    dots = queries @ vectors.T  # (n, m)
    if metric == "cosine":
        qn = np.sqrt((queries * queries).sum(axis=1, keepdims=True))
        dist = 1.0 - dots / (qn * np.sqrt(sqnorms)[None, :])
    elif metric == "ip":
        dist = 1.0 - dots
    else:
        qsq = (queries * queries).sum(axis=1, keepdims=True)
        dist = np.maximum(qsq - 2.0 * dots + sqnorms[None, :], 0.0)
    if k < dist.shape[1]:
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(dist.shape[1]), (n, dist.shape[1]))
    part_dist = np.take_along_axis(dist, part, axis=1)
    order = np.argsort(part_dist, axis=1, kind="stable")
    best = np.take_along_axis(part, order, axis=1)
    return labels[best], np.take_along_axis(part_dist, order, axis=1).astype(np.float32)


class HnswIndex:
    """One hnswlib index whose labels are the collection's record labels."""

    def __init__(self, metric: str, dim: int, m: int, ef_construction: int, ef_search: int,
                 threads: int = 1) -> None:
        self.metric, self.dim = metric, dim
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search
        self.threads = threads
        self._index = hnswlib.Index(space=_SPACES[metric], dim=dim)
        self.deleted = 0

    @classmethod
    def create(cls, metric: str, dim: int, m: int, ef_construction: int, ef_search: int,
               capacity: int, threads: int = 1) -> "HnswIndex":
        index = cls(metric, dim, m, ef_construction, ef_search, threads)
        index._index.init_index(max_elements=max(capacity, 16), M=m,
                                ef_construction=ef_construction, random_seed=100)
        index._index.set_ef(ef_search)
        return index

    @classmethod
    def load(cls, path: Path, metric: str, dim: int, m: int, ef_construction: int,
             ef_search: int, capacity: int, deleted: int, threads: int = 1) -> "HnswIndex":
        """Loads a file whose checksum, dim and metric the caller has already verified."""
        index = cls(metric, dim, m, ef_construction, ef_search, threads)
        index._index.load_index(str(path), max_elements=max(capacity, 16))
        index._index.set_ef(ef_search)  # ef is not saved in the file
        index.deleted = deleted
        return index

    @property
    def count(self) -> int:
        """Elements in the graph, deleted ones included."""
        return self._index.get_current_count()

    def add(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        needed = self.count + len(labels)
        capacity = self._index.get_max_elements()
        if needed > capacity:
            self._index.resize_index(max(needed, capacity * 2))
        self._index.add_items(vectors, labels, num_threads=self.threads)

    def mark_deleted(self, labels) -> None:
        for label in labels:
            self._index.mark_deleted(int(label))
            self.deleted += 1

    def search(self, queries: np.ndarray, k: int, ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Approximate k nearest; k must not exceed the live count.

        Raises:
            IndexSearchFailed: hnswlib found fewer than k live results.
        """
        self._index.set_ef(max(ef or self.ef_search, k))
        try:
            labels, dist = self._index.knn_query(queries, k=k, num_threads=self.threads if len(queries) > 1 else 1)
        except RuntimeError as exc:
            raise IndexSearchFailed(str(exc)) from exc
        return labels.astype(np.int64), dist

    def save(self, path: Path) -> None:
        self._index.save_index(str(path))
