"""What a collection's parts share: its in-memory structures, and the one interface the
parts read them through.

A ``Collection`` (storage/collection.py) owns its state, log and locks, and delegates its
queries and upkeep to small parts, each with one job:

- ``Searcher`` (storage/search.py): vector queries, planning, filters, grouping;
- ``Ranker`` (storage/ranking.py): keyword (BM25) and hybrid queries;
- ``Maintenance`` (storage/maintenance.py): checkpoints, compaction, snapshots, statistics.

A part holds a reference to its collection (its "host") and uses only what ``Host`` lists.
The structures a query reads are one ``State`` object, replaced whole (by a compaction or a
re-embed's switch) under the write lock, so a query holding the read lock sees one
consistent set of them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, ContextManager, Iterable, Protocol

import numpy as np

from .fulltext import FullTextIndex
from .index import HnswIndex
from .metadata_index import MetadataIndex
from .records import RecordStore
from .rwlock import RWLock
from .types import CollectionConfig, Records, Tuning
from .vectors import VectorStore


@dataclass
class State:
    """A collection's records and the structures derived from them; all share one label
    space (a record's slot number: the row of its vector, its node in the graph)."""

    vectors: VectorStore  # every slot's vector, mapped from the checkpoint's file
    records: RecordStore  # ids, documents, metadata as columns; which slots are live
    meta_index: MetadataIndex  # metadata value -> labels, for filters
    fulltext: FullTextIndex | None  # term -> labels (BM25); None with analyzer "none"
    index: HnswIndex | None  # the HNSW graph; None below Tuning.exact_threshold


class Host(Protocol):
    """What a part may use of its collection. Reads hold ``reading()``; only Maintenance
    changes anything, and only as the collection's writers do (writers' mutex, then the
    write lock)."""

    config: CollectionConfig  # replaced (never mutated) by a re-embed's switch
    tuning: Tuning
    state: State  # replaced whole under the write lock
    path: Any  # the collection's directory (None in memory)
    fs: Any

    def reading(self) -> ContextManager[None]:
        """The read lock, the collection checked open."""

    def _embed(self, texts, field: str, truncated: list[int] | None = None) -> np.ndarray:
        """Texts embedded by the collection's encoder (no lock needed)."""

    def _include(self, include: Iterable[str] | None, default: frozenset[str]) -> frozenset[str]: ...

    def _select(self, labels: list[int], include: frozenset[str]) -> Records:
        """The records at ``labels`` (read lock held)."""

    def _matching(self, where, predicate) -> tuple[np.ndarray, str]:
        """Live labels matching a filter and how they were found (read lock held)."""

    # used by Maintenance only
    _lock: RWLock  # queries share it; a change of state holds it alone, briefly
    _writers: threading.Lock  # serialises changes of state; taken before _lock
    _checkpoint_mutex: threading.RLock  # one checkpoint or compaction at a time
    _wal: Any  # the log (wal.py, or memory.py's MemoryLog)
    _manifest: dict[str, Any]  # the MANIFEST on disk
    _applied_seq: int  # the last log record the checkpoint on disk holds
    _delta: list[dict[str, Any]] | None  # log records applied while a compaction builds
    _closed: bool
    _failed: str | None

    def _check_open(self) -> None: ...

    def _check_writable(self) -> None: ...

    def _apply(self, record: dict[str, Any]) -> None:
        """Applies one log record to ``state`` (write lock held)."""

    def _log_and_apply(self, record: dict[str, Any]) -> int:
        """Appends a record to the log and applies it (write lock held); returns its seq."""


class StateReader:
    """Base of the query parts (Searcher, Ranker): the host's config and tuning, and the
    structures of its current ``State``, read under the host's read lock."""

    def __init__(self, host: Host) -> None:
        self._host = host

    @property
    def config(self) -> CollectionConfig:
        return self._host.config

    @property
    def tuning(self) -> Tuning:
        return self._host.tuning

    @property
    def _records(self) -> RecordStore:
        return self._host.state.records

    @property
    def _vectors(self) -> VectorStore:
        return self._host.state.vectors

    @property
    def _index(self) -> HnswIndex | None:
        return self._host.state.index

    @property
    def _meta_index(self) -> MetadataIndex:
        return self._host.state.meta_index

    @property
    def _fulltext(self) -> FullTextIndex | None:
        return self._host.state.fulltext
