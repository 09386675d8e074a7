"""The sealed segments and the tail seen as one label space, for keyword and hybrid ranking.

``Ranker`` (storage/ranking.py) ranks by labels of one state. With sealed segments
(storage/segment.py, docs/segments.md) a ``SegmentedRanker`` runs the same code over
*handles*: ``rank << SHIFT | label``, where ``rank`` numbers the holders oldest first
(the sealed segments in order, the tail last), so that the Ranker's "ties by label, older
records first" still holds. ``Merged`` answers what the Ranker asks of its state (records'
count and metadata, vectors, the full-text index, filter matches, selection, vector
search) over every holder at once. BM25 scores use the collection's statistics (document
count, average length, document frequencies summed over the segments' indexes), so a
record scores as it would in one index.

Built per query under the collection's read lock (the pinned list).
"""

from __future__ import annotations

import numpy as np

from .ranking import Ranker

SHIFT = 40
MASK = (1 << SHIFT) - 1


class Merged:
    """Every holder of a collection as one label space of handles (see the module docstring)."""

    def __init__(self, host, searcher) -> None:
        self.host, self.searcher = host, searcher
        self.states = [segment.state for segment in host.sealed] + [host.state]
        self.tail_rank = len(self.states) - 1
        self.sqnorms = _Sqnorms(self)

    # ------------------------------------------------------------------ handles
    def split(self, handles: np.ndarray):
        """(rank, positions in ``handles``, local labels) for each holder ``handles`` name."""
        handles = np.asarray(handles, np.int64)
        ranks = handles >> SHIFT
        for rank in np.unique(ranks).tolist():
            positions = np.flatnonzero(ranks == rank)
            yield rank, positions, handles[positions] & MASK

    @staticmethod
    def encode(rank: int, labels: np.ndarray) -> np.ndarray:
        return np.where(labels >= 0, (np.int64(rank) << SHIFT) | labels, -1).astype(np.int64)

    # ------------------------------------------------------------------ as records
    def __len__(self) -> int:
        return sum(len(state.records) for state in self.states)

    def metadata(self, handle: int) -> dict:
        return self.states[handle >> SHIFT].records.metadata(handle & MASK)

    # ------------------------------------------------------------------ as vectors
    def take(self, handles: np.ndarray) -> np.ndarray:
        out = np.empty((len(handles), self.host.config.dim), np.float32)
        for rank, positions, labels in self.split(handles):
            out[positions] = self.states[rank].vectors.take(labels)
        return out

    # ------------------------------------------------------------------ as the host
    def _matching(self, where, predicate) -> tuple[np.ndarray, str]:
        parts = [self.encode(rank, self.host._matching_in(state, where, predicate))
                 for rank, state in enumerate(self.states)]
        return np.concatenate(parts) if parts else np.empty(0, np.int64), "segments"

    def _select(self, handles: list[int], include):
        return self.host._select_pairs([(self.states[h >> SHIFT], h & MASK) for h in handles], include)

    def _search(self, queries: np.ndarray, k: int, where, predicate):
        holders, labels, distances, plan = self.searcher._search_segmented(queries, k, where, predicate)
        # holder 0 is the tail, holder i + 1 the sealed segment i
        ranks = np.where(holders == 0, self.tail_rank, holders - 1)
        handles = np.where(labels >= 0, (ranks << SHIFT) | labels, -1).astype(np.int64)
        return handles, distances, plan

    # ------------------------------------------------------------------ as the full-text index
    @property
    def fulltext(self) -> "MergedFullText | None":
        if self.host.state.fulltext is None:
            return None
        return MergedFullText(self)


class MergedFullText:
    """The holders' full-text indexes as one, scored with the collection's statistics."""

    def __init__(self, merged: Merged) -> None:
        self.merged = merged
        self.indexes = [state.fulltext for state in merged.states]

    def __len__(self) -> int:
        return sum(len(index) for index in self.indexes)

    def search(self, query: str, k: int, allowed: np.ndarray | None = None):
        terms = list(dict.fromkeys(self.indexes[-1].analyze(query)))
        docs = len(self)
        empty = np.zeros(0, np.int64), np.zeros(0, np.float64)
        if not terms or docs == 0 or k <= 0:
            return (*empty, 0)
        total_terms = sum(index._total_terms for index in self.indexes)
        stats = (docs, total_terms / docs, {term: sum(index.df(term) for index in self.indexes) for term in terms})
        allowed_by_rank = None
        if allowed is not None:
            allowed_by_rank = {rank: labels for rank, _, labels in self.merged.split(allowed)}
        handles, scores, scanned = [], [], 0
        for rank, index in enumerate(self.indexes):
            local = None if allowed_by_rank is None else allowed_by_rank.get(rank, np.empty(0, np.int64))
            labels, found, read = index.search(query, k, local, stats=stats)
            handles.append(Merged.encode(rank, labels))
            scores.append(found)
            scanned += read
        handles, scores = np.concatenate(handles), np.concatenate(scores)
        order = np.lexsort((handles, -scores))[:k]
        return handles[order], scores[order], scanned


class _Sqnorms:
    def __init__(self, merged: Merged) -> None:
        self.merged = merged

    def __getitem__(self, handles) -> np.ndarray:
        handles = np.asarray(handles, np.int64)
        out = np.empty(len(handles), np.float32)
        for rank, positions, labels in self.merged.split(handles):
            out[positions] = self.merged.states[rank].vectors.sqnorms[labels]
        return out


class _HostView:
    """The collection as a ``SegmentedRanker`` sees it: its own, but for ``_matching`` and
    ``_select``, which speak handles."""

    def __init__(self, host, merged: Merged) -> None:
        self._real, self._merged = host, merged

    def __getattr__(self, name):
        return getattr(self._real, name)

    def _matching(self, where, predicate):
        return self._merged._matching(where, predicate)

    def _select(self, handles, include):
        return self._merged._select(handles, include)


class SegmentedRanker(Ranker):
    """``Ranker`` over every holder of a collection (handles for labels); made per query
    by ``Ranker.answer`` when the collection has sealed segments, and used under the read
    lock that the answer takes (the view is built when first read, under it)."""

    def __init__(self, ranker: Ranker) -> None:
        super().__init__(ranker._host, ranker._searcher)
        self._real_host, self._real_searcher = ranker._host, ranker._searcher
        self._merged: Merged | None = None

    def _view(self) -> Merged:
        host = self._real_host
        if self._merged is None or self._merged.states[-1] is not host.state or \
                len(self._merged.states) != len(host.sealed) + 1 or any(
                    a is not b.state for a, b in zip(self._merged.states, host.sealed)):
            # (re)built under the read lock: the list a query pins (a seal or merge may have
            # swapped it before the lock was taken)
            self._merged = Merged(self._real_host, self._real_searcher)
            self._host = _HostView(self._real_host, self._merged)
            self._searcher = self._merged
        return self._merged

    @property
    def _records(self):
        return self._view()

    @property
    def _vectors(self):
        return self._view()

    @property
    def _fulltext(self):
        return self._view().fulltext
