"""One collection: its records in memory, its log and checkpoints on disk, its index.

Thread-safety: every public method is safe to call from many threads. Reads share the
collection's read/write lock; writes hold it alone, after the writers' mutex that also
serialises them with checkpoints (which take the write lock only for short steps). A write
appends its log record and applies it under the lock, then waits for the group fsync
outside it, and returns only once the record is durable.

State: records live in ``slots`` (integer labels, never reused until compaction). An update
gives a record a new label and marks the old one deleted; the HNSW graph, when there is one,
uses the same labels. Ids, documents and metadata are columns of a ``RecordStore``
(records.py); the original vectors are a ``VectorStore`` (vectors.py), mapped from the
checkpoint's file.

This file holds the state, recovery, writes and reads. Queries and upkeep are parts the
collection owns and delegates to, each reading it through the interface storage/state.py
documents (``Host``): ``Searcher`` (search.py; keyword and hybrid ranks in its ``Ranker``,
ranking.py) and ``Maintenance`` (maintenance.py: checkpoints, compaction, snapshots, stats).
The structures queries read are one ``State`` (state.py), replaced whole by a compaction.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any, ContextManager, Iterable, Sequence

import numpy as np

from vectord.errors import (
    AlreadyExistsError,
    DataLossError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    VectordError,
)
from . import layout as disk
from . import chunking, compaction, validation
from .chunking import CHUNK_KEY, SOURCE_KEY  # chunk records' metadata keys (importers use them from here)
from .filters import Field, Filter, compile_filter
from .analyzers import analyzer, fulltext_config
from .fsio import FileSystem
from .fulltext import FullTextIndex
from .heap import release_free_heap
from .index import HnswIndex
from .indexer import Indexer
from .maintenance import Maintenance
from .memory import MemoryLog
from .metadata_index import MetadataIndex
from .planner import Plan
from .records import RecordStore
from .rwlock import RWLock
from .search import Searcher
from .segment import Segment
from .state import State
from .types import (CollectionConfig, CollectionInfo, EncoderRegistry, HitColumns, Records, Tuning, WriteResult,
                    split_rows)
from .vectors import VectorStore
from .wal import WriteAheadLog

log = logging.getLogger(__name__)

GET_INCLUDE_DEFAULT = frozenset({"documents", "metadatas"})
INCLUDE_FIELDS = frozenset({"embeddings", "documents", "metadatas", "distances"})


class _ModelSwitched(Exception):
    """A write's vectors were made by the model the collection had before a re-embed's switch."""


def _identical(a: Any, b: Any) -> bool:
    """Equality that also compares types (True, 1 and 1.0 are different metadata values)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b))
    return a == b


def _merge(old: dict[str, Any], new: dict[str, Any] | None) -> dict[str, Any]:
    """Metadata merge: new keys override, a key set to None is removed."""
    if new is None:
        return old
    merged = dict(old)
    for key, value in new.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _kept_hits(labels: np.ndarray, distances: np.ndarray,
               max_distance: float | None) -> tuple[np.ndarray, list[int], np.ndarray]:
    """The hits of a search's rows (``labels`` -1 padded), nearer than ``max_distance`` when
    given: their labels and distances flat, and each row's count."""
    if max_distance is None and (labels.size == 0 or labels.min() >= 0):  # every row full: no mask (~3 us)
        return labels.ravel(), [labels.shape[1]] * len(labels), distances.reshape(-1)
    keep = labels >= 0
    if max_distance is not None:
        keep &= distances <= max_distance
    return labels[keep], keep.sum(axis=1).tolist(), distances[keep]


def _check_manifest(path: Path, manifest: dict[str, Any], config: CollectionConfig) -> None:
    """A MANIFEST that passed its checksum must still describe a collection this engine
    could have written; sizes from it are trusted only within the limits (a crafted dim or
    slot count must not make recovery allocate gigabytes)."""
    try:
        validation.collection_name(config.name)
        validation.dim(config.dim)
        validation.metric(config.metric)
        if validation.hnsw_params(config.hnsw) != config.hnsw:
            raise InvalidArgumentError(f"hnsw parameters {config.hnsw!r} are incomplete")
        fulltext_config(config.fulltext)
    except InvalidArgumentError as exc:
        raise DataLossError(f"collection {path.name}: MANIFEST config is invalid: {exc.message}") from exc
    generation, slots, seq = manifest["generation"], manifest["slots"], manifest["applied_seq"]
    if not (isinstance(slots, int) and isinstance(seq, int) and slots >= 0 and seq >= 0) or (
            generation is None and slots != 0) or (
            generation is not None and generation != f"gen-{seq:020d}"):
        raise DataLossError(f"collection {path.name}: MANIFEST generation {generation!r}, slots {slots!r} "
                            f"and applied seq {seq!r} do not agree")


def _load_index(index_path: Path, config: CollectionConfig, tuning: Tuning,
                manifest: dict[str, Any], slots: int) -> tuple[HnswIndex | None, str | None]:
    """Loads the generation's graph: (index, None), or (None, why) when hnswlib cannot.

    The file passed its checksum, yet it may still be refused (storage/graph_file.py checks
    its structure: a file of another format, or damage written before the checksum was
    taken). The graph is a derived cache: the caller rebuilds it from the verified vectors,
    as for a checksum failure.
    """
    covered = manifest["index"].get("covered")
    if covered is not None and (isinstance(covered, bool) or not isinstance(covered, int)
                                or not 0 <= covered <= slots):
        problem = f"{index_path}: MANIFEST says the graph covers {covered!r} of {slots} slots"
        log.warning("%s; the index will be rebuilt from the stored vectors", problem)
        return None, problem
    try:
        return HnswIndex.load(index_path, config.metric, config.dim, config.hnsw["m"],
                              config.hnsw["ef_construction"], config.hnsw["ef_search"],
                              capacity=slots, deleted=manifest["index"]["deleted"],
                              threads=tuning.index_threads,
                              covered=manifest["index"].get("covered")), None
    except (RuntimeError, ValueError, MemoryError) as exc:
        problem = f"{index_path}: hnswlib cannot load it ({exc})"
        log.warning("%s; the index will be rebuilt from the stored vectors", problem)
        return None, problem


class Collection:
    #: Why the checkpoint's index file could not be loaded (it was rebuilt), for `verify`.
    index_problem: str | None = None

    def __init__(self, fs: FileSystem | None, path: Path | None, config: CollectionConfig, tuning: Tuning,
                 manifest: dict[str, Any]) -> None:
        self.fs, self.path, self.config, self.tuning = fs, path, config, tuning
        self._manifest = manifest
        self._lock = RWLock()
        self._reading = self._lock.checked_read(self._check_open)
        # Serialises every change of state (writes, deletes, checkpoints, close) and is taken
        # before the write lock: a checkpoint holds it, not the write lock, while it writes
        # files, so that queries go on meanwhile (see Maintenance.checkpoint).
        self._writers = threading.Lock()
        # reentrant: snapshot() holds it across its own checkpoint and the file links
        self._checkpoint_mutex = threading.RLock()
        # The full-text index (fulltext.py): derived from the documents like the metadata
        # index, rebuilt at open; None when the collection's analyzer is "none".
        self.state = self._empty_state()
        self._failed: str | None = None
        self._closed = False
        #: Set when a close is under way (``stop_upkeep``): a checkpoint running then
        #: finishes the seal or merge in flight and starts no other (Maintenance).
        self._upkeep_stopped = threading.Event()
        self._applied_seq = manifest["applied_seq"]
        #: The log records applied while a compaction builds (None otherwise): its swap
        #: applies them again to the new structures (storage/compaction.py).
        self._delta: list[dict[str, Any]] | None = None
        self._wal: WriteAheadLog | MemoryLog | None = None
        #: Where this collection's encoder is found (set by the Database); see _embed.
        self.encoders: EncoderRegistry | None = None
        #: Read by stats() (the server's metrics collector reads it at scrape time).
        self.recovery_seconds = 0.0
        # the parts this collection delegates to (storage/state.py describes them)
        self._searcher = Searcher(self)
        self._ranker = self._searcher.ranker
        self._maintenance = Maintenance(self)
        #: Adds the exact tail to the graph in the background (storage/indexer.py); it
        #: runs once the collection is open (``_indexing``), never during log replay.
        self._indexer = Indexer(self)
        self._indexing = False
        #: The sealed segments, oldest first (storage/segment.py, docs/segments.md); ``state``
        #: is the mutable tail. An id lives in exactly one of them. Replaced whole under the
        #: write lock, so that a query pins the list by reading it once under the read lock.
        self.sealed: tuple[Segment, ...] = ()

    # ------------------------------------------------------------------ state
    # The structures of ``state`` by their former attribute names, for the write path below,
    # storage/reembed.py, verify.py, snapshots.py and tests.
    @property
    def _vectors(self) -> VectorStore:
        return self.state.vectors

    @_vectors.setter
    def _vectors(self, value: VectorStore) -> None:
        self.state.vectors = value

    @property
    def _records(self) -> RecordStore:
        return self.state.records

    @_records.setter
    def _records(self, value: RecordStore) -> None:
        self.state.records = value

    @property
    def _meta_index(self) -> MetadataIndex:
        return self.state.meta_index

    @_meta_index.setter
    def _meta_index(self, value: MetadataIndex) -> None:
        self.state.meta_index = value

    @property
    def _fulltext(self) -> FullTextIndex | None:
        return self.state.fulltext

    @_fulltext.setter
    def _fulltext(self, value: FullTextIndex | None) -> None:
        self.state.fulltext = value

    @property
    def _index(self) -> HnswIndex | None:
        return self.state.index

    @_index.setter
    def _index(self, value: HnswIndex | None) -> None:
        self.state.index = value

    def reading(self) -> ContextManager[None]:
        """The read lock, the collection checked open (what a query holds): ``with
        collection.reading():``."""
        return self._reading

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def create(cls, fs: FileSystem, path: Path, config: CollectionConfig, tuning: Tuning) -> "Collection":
        """Creates the collection's files in ``path`` (a new directory) durably."""
        fs.mkdir(path)
        manifest = disk.new_manifest(config)
        disk.write_manifest(fs, path, manifest)
        collection = cls(fs, path, config, tuning, manifest)
        collection._wal = WriteAheadLog(fs, path / disk.WAL, 0)
        fs.fsync_dir(path)
        collection._indexing = True
        return collection

    @classmethod
    def in_memory(cls, config: CollectionConfig, tuning: Tuning) -> "Collection":
        """A collection with no files (``path`` None): the same state and write path, with a
        ``MemoryLog`` for the log and no checkpoints (see storage/memory.py)."""
        collection = cls(None, None, config, tuning, {"generation": None, "applied_seq": 0})
        collection._wal = MemoryLog()
        collection._indexing = True
        return collection

    @classmethod
    def open(cls, fs: FileSystem, path: Path, tuning: Tuning) -> "Collection":
        """Recovers a collection: verified checkpoint, then idempotent log replay.

        Raises:
            DataLossError: the manifest, the checkpoint or the log is damaged.
        """
        try:
            return cls._open(fs, path, tuning)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
            # Checksummed content that does not have the expected shape (a bug, a format
            # change, a crafted file): this collection is damaged; the others still open.
            raise DataLossError(f"collection {path.name}: malformed MANIFEST or log record "
                                f"({type(exc).__name__}: {exc})") from exc

    @classmethod
    def _open(cls, fs: FileSystem, path: Path, tuning: Tuning) -> "Collection":
        started = time.monotonic()
        manifest = disk.read_manifest(path)
        config = CollectionConfig(**manifest["config"])
        _check_manifest(path, manifest, config)
        collection = cls(fs, path, config, tuning, manifest)
        collection.sealed = tuple(Segment.load(path, entry, config, tuning)
                                  for entry in manifest.get("segments", ()))
        if manifest["generation"] is not None:
            vectors, records, index_path = disk.load_generation(path, manifest)
            collection._vectors, collection._records = vectors, records
            collection._meta_index = MetadataIndex.build_groups(records.metadata_groups())
            collection._build_fulltext()
            if index_path is not None:  # the graph of exactly this generation; replay extends it
                collection._index, collection.index_problem = _load_index(
                    index_path, config, tuning, manifest, vectors.slots)
        # One record at a time: the log can be half the collection (idempotent: records the
        # checkpoint already holds are skipped).
        replayed, last_seq = 0, collection._applied_seq
        for record in WriteAheadLog.read(path / disk.WAL, fs):
            last_seq = max(last_seq, record["seq"])
            if record["seq"] > collection._applied_seq:
                collection._apply(record)
                replayed += 1
        # No saved graph, or a damaged one: rebuild it from the verified vectors (the graph
        # is a derived cache), once the collection is large enough to need one.
        try:
            collection._maybe_build_index()
        except RuntimeError as exc:  # hnswlib's error type; the vectors are all there is
            raise DataLossError(f"collection {path.name}: cannot rebuild the HNSW index from the "
                                f"stored vectors ({exc})") from exc
        collection._wal = WriteAheadLog(fs, path / disk.WAL, last_seq)
        compaction.remove_leftovers(fs, path)  # a crash's: no MANIFEST names them
        disk.remove_unlisted_segments(fs, path, manifest)
        release_free_heap()  # the decoded checkpoint and replay's garbage (storage/heap.py)
        collection.recovery_seconds = time.monotonic() - started
        collection._indexing = True
        collection._wake_indexer()  # the tail replay left, indexed in the background
        recovered = collection._live_count()
        log.info("collection %r (%s): recovered %d record%s, replayed %d log record%s in %.3f s",
                 config.name, config.id, recovered, "" if recovered == 1 else "s",
                 replayed, "" if replayed == 1 else "s", time.monotonic() - started)
        return collection

    def stop_upkeep(self) -> None:
        """From now on no checkpoint starts a seal, merge or compaction (one in flight
        finishes): a database's close calls it before it waits for its background
        checkpoint, which may have merges queued, minutes each on a large collection."""
        self._upkeep_stopped.set()

    def close(self, checkpoint: bool = True) -> None:
        """Writes a final checkpoint (when asked and healthy) and closes the log. The final
        checkpoint seals, merges and compacts nothing (``stop_upkeep`` first): a close takes
        as long as writing what the log holds, not a graph's rebuild; the next start's
        maintenance does what is due."""
        if self._closed:
            return
        self.stop_upkeep()
        self._indexing = False
        self._indexer.stop()  # the checkpoint saves the graph as far as it got (``covered``)
        failure = self._failed or (self._wal is not None and self._wal.failed)
        if checkpoint and failure:
            # Memory may hold writes that were reported failed (and cut from the log): a
            # checkpoint must not make them durable. The log holds every acknowledged write.
            log.warning("collection %r: no final checkpoint, the collection failed earlier (%s); "
                        "the next start recovers it from its log", self.config.name, failure)
        elif checkpoint:
            try:
                self.checkpoint()
            except VectordError as exc:  # e.g. disk full: the log still holds everything
                log.warning("collection %r: final checkpoint failed (%s); the next start "
                            "replays the log", self.config.name, exc)
            except Exception:  # unexpected: keep the traceback
                log.exception("collection %r: final checkpoint failed", self.config.name)
        with self._writers, self._lock.write():
            self._closed = True
            if self._wal is not None:
                self._wal.close()

    # ------------------------------------------------------------------ queries (search.py, ranking.py)
    def query(self, queries=None, n_results: int = 10, where: Filter | None = None,
              include: Iterable[str] | None = None, texts: Sequence[str] | None = None,
              max_distance: float | None = None, group_by: str | None = None,
              group_size: int = 1, rank: str = "vector", fusion: str = "rrf",
              hybrid_alpha: float = 0.5) -> list[Records]:
        """Nearest records to each query vector (or text, embedded), nearest first; see
        ``Searcher.query`` (storage/search.py)."""
        return self._searcher.query(queries, n_results, where, include, texts, max_distance=max_distance,
                                    group_by=group_by, group_size=group_size, rank=rank, fusion=fusion,
                                    hybrid_alpha=hybrid_alpha)

    def query_with_plan(self, queries=None, n_results: int = 10, where: Filter | None = None,
                        include: Iterable[str] | None = None,
                        texts: Sequence[str] | None = None, max_distance: float | None = None,
                        group_by: str | None = None, group_size: int = 1, rank: str = "vector",
                        fusion: str = "rrf", hybrid_alpha: float = 0.5,
                        columns: bool = False) -> tuple[list[Records] | HitColumns, Plan]:
        """``query``, plus the plan that answered it (for ``explain``); ``columns``: see
        ``Searcher.query_with_plan``."""
        return self._searcher.query_with_plan(queries, n_results, where, include, texts, max_distance,
                                              group_by, group_size, rank, fusion, hybrid_alpha, columns)

    def query_ranked(self, rank: str, texts: Sequence[str], queries=None, n_results: int = 10,
                     where: Filter | None = None, include: Iterable[str] | None = None, fusion: str = "rrf",
                     hybrid_alpha: float = 0.5, max_distance: float | None = None, group_by: str | None = None,
                     group_size: int = 1) -> list[Records]:
        """A "bm25" or "hybrid" query; see ``Ranker.query_ranked`` (storage/ranking.py).

        Example:
            >>> col.query_ranked("bm25", ["apt dependencies"], n_results=3, group_by="source")[0].ids
        """
        return self._ranker.query_ranked(rank, texts, queries, n_results, where, include, fusion, hybrid_alpha,
                                         max_distance, group_by, group_size)

    def query_ranked_with_plan(self, rank: str, texts: Sequence[str] | None, queries=None, n_results: int = 10,
                               where: Filter | None = None, include: Iterable[str] | None = None,
                               fusion: str = "rrf", hybrid_alpha: float = 0.5, max_distance: float | None = None,
                               group_by: str | None = None, group_size: int = 1) -> tuple[list[Records], Plan]:
        """``query_ranked``, plus the plan that answered it (for ``explain``)."""
        return self._ranker.query_ranked_with_plan(rank, texts, queries, n_results, where, include, fusion,
                                                   hybrid_alpha, max_distance, group_by, group_size)

    def _search(self, queries: np.ndarray, k: int, where, predicate):
        """(labels, distances, plan) of a vector search, the read lock held (benchmarks
        profile it); see ``Searcher._search``."""
        return self._searcher._search(queries, k, where, predicate)

    # ------------------------------------------------------------------ upkeep (maintenance.py)
    def needs_checkpoint(self) -> bool:
        return self._maintenance.needs_checkpoint()

    def checkpoint(self, force: bool = False, compact: bool = False) -> bool:
        """Writes a new generation and truncates the log; returns whether it wrote one (see
        ``Maintenance.checkpoint``)."""
        return self._maintenance.checkpoint(force, compact)

    def stats(self) -> dict[str, Any]:
        """Counters and sizes for monitoring; cheap, no lock (values may be a moment old)."""
        return self._maintenance.stats()

    def snapshot(self, link) -> dict[str, Any]:
        """A point-in-time copy (see ``Maintenance.snapshot``)."""
        return self._maintenance.snapshot(link)

    @property
    def checkpoint_count(self) -> int:
        return self._maintenance.checkpoint_count

    @property
    def checkpoint_seconds_total(self) -> float:
        return self._maintenance.checkpoint_seconds_total

    @property
    def compacted_slots_total(self) -> int:
        return self._maintenance.compacted_slots_total

    # ------------------------------------------------------------------ helpers
    @property
    def name(self) -> str:
        return self.config.name

    def _check_open(self) -> None:
        if self._closed:
            raise NotFoundError(f"collection {self.config.name!r} was deleted or closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self._failed is not None:
            raise FailedPreconditionError(
                f"collection {self.config.name!r} refuses writes until restart: {self._failed}")
        self._wal.check_writable()

    def _embed(self, texts: Sequence[str], field: str, truncated: list[int] | None = None) -> np.ndarray:
        """Embeds texts with the collection's own encoder, refusing any other model;
        ``truncated``, when given, gets the positions of the texts longer than its window.

        Runs outside the collection's lock: encoding is the slow part of a text write.
        """
        encoder = self._encoder(field)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise InvalidArgumentError(f"{field}[{i}]: a text is needed to embed, got {text!r}")
        if truncated is None:
            return encoder.embed(list(texts))
        return encoder.embed(list(texts), truncated=truncated)

    def _encoder(self, field: str):
        """The collection's own encoder, refusing any other model."""
        identity = self.config.encoder
        if identity is None:
            raise InvalidArgumentError(
                f"{field}: collection {self.config.name!r} has no encoder; give embeddings "
                "(or create the collection with encoder=...)")
        if self.encoders is None:
            raise FailedPreconditionError(f"{field}: no encoder is available in this process")
        encoder = self.encoders.get(identity["name"])
        if encoder.sha256 != identity["sha256"] or encoder.dim != identity["dim"]:
            raise FailedPreconditionError(
                f"collection {self.config.name!r} was built with encoder {identity['name']!r} "
                f"(sha256 {identity['sha256'][:12]}..., dim {identity['dim']}); this server's model has "
                f"sha256 {encoder.sha256[:12]}..., dim {encoder.dim}: refusing to mix vectors of "
                "different models")
        return encoder

    def _build_fulltext(self) -> None:
        """Rebuilds the full-text index from the live records' documents (at open and after
        compaction relabels the records)."""
        if self._fulltext is not None:
            documents = self._records.documents
            rows = () if not documents.any() else (  # vectors alone: no pass over every record
                (label, documents[label]) for label in self._records.live().tolist())
            self._fulltext = FullTextIndex.build(self._fulltext.analyze, rows)

    def _maybe_build_index(self) -> None:
        if self._index is None and len(self._records) >= self.tuning.exact_threshold:
            self._build_index()

    def _build_index(self) -> None:
        hnsw = self.config.hnsw
        labels = self._records.live()
        index = HnswIndex.create(self.config.metric, self.config.dim, hnsw["m"],
                                 hnsw["ef_construction"], hnsw["ef_search"],
                                 capacity=max(self._vectors.slots, 16),
                                 threads=self.tuning.index_threads)
        for start in range(0, len(labels), 65536):  # bounded copies out of the map
            part = labels[start:start + 65536]
            index.add(self._vectors.take(part), part)
        index.covered = self._vectors.slots
        self._index = index

    # ------------------------------------------------------------------ applying log records
    def _apply(self, record: dict[str, Any], new_ids: bool = False) -> None:
        """Applies one log record. Idempotent: a put sets records to exactly the logged
        values, a delete removes whatever is present. ``new_ids``: the writer looked every
        id of a put up under the write lock it still holds and found none (see _apply_put)."""
        if record["op"] == "put":
            if record.get("drop"):  # a chunked write: the source's old chunks go in the same record
                self._apply_delete(record["drop"])
            vectors = np.frombuffer(record["vectors"], np.float32).reshape(-1, self.config.dim)
            self._apply_put(record["ids"], vectors, record["documents"], record["metadatas"],
                            new_ids=new_ids and not record.get("drop"))
        elif record["op"] == "delete":
            self._apply_delete(record["ids"])
        else:
            raise DataLossError(f"collection {self.config.name!r}: unknown log op {record['op']!r}")

    def _apply_put(self, ids: Sequence[str], vectors: np.ndarray, documents: Sequence[Any],
                   metadatas: Sequence[Any], new_ids: bool = False) -> None:
        """``new_ids``: no id is live anywhere (known to the caller): nothing to drop, and
        the lookups that would find that are skipped (~1.3 us a record of a bulk load).
        A replayed record is looked up: the log does not say what was live then."""
        if not new_ids:
            found = self._records.lookup(ids)  # the tail's labels, None where not there
            self._drop_labels([label for label in found if label is not None])
            if self.sealed:  # an id not in the tail may be in one segment (or be new)
                self._drop_sealed([id_ for id_, label in zip(ids, found) if label is None])
        self._vectors.append(vectors)
        labels = self._records.append_many(ids, documents, metadatas).tolist()
        self._meta_index.add_many(labels, metadatas)
        if self._fulltext is not None:
            for label, document in zip(labels, documents):
                self._fulltext.add(label, document)
        if self._records.slots != self._vectors.slots:
            raise AssertionError(f"records and vectors disagree: {self._records.slots} vs {self._vectors.slots} slots")
        if self._index is None:
            self._maybe_build_index()
        else:
            self._wake_indexer()  # the new labels are the exact tail until it indexes them

    def _wake_indexer(self) -> None:
        if self._indexing and self._index is not None and self._indexer.tail_slots():
            self._indexer.wake()

    def _drop_labels(self, labels: list[int]) -> None:
        for label in labels:
            _, metadata = self._records.drop(label)
            self._meta_index.remove(label, metadata)
            if self._fulltext is not None:
                self._fulltext.remove(label)
        index = self._index
        if labels and index is not None:
            # marked in the graph; labels of the exact tail are not in it (the indexer skips
            # them), and those of an indexer step in flight are marked by that step
            index.mark_deleted(labels)

    def _apply_delete(self, ids: Sequence[str]) -> None:
        found = self._records.lookup(ids)
        self._drop_labels([label for label in found if label is not None])
        if self.sealed:
            self._drop_sealed([id_ for id_, label in zip(ids, found) if label is None])

    def _drop_sealed(self, ids: list[str]) -> None:
        """Marks ids held by sealed segments deleted there (their bitmaps; write lock held)."""
        if not self.sealed or not ids:
            return
        for segment in self.sealed:
            segment.delete(segment.records.live_labels(ids))

    # ------------------------------------------------------------------ segments
    def _empty_state(self) -> State:
        """A state holding nothing: a new collection's, and the tail after a seal."""
        analyze = analyzer(fulltext_config(self.config.fulltext))
        return State(VectorStore(self.config.dim), RecordStore(), MetadataIndex(),
                     FullTextIndex(analyze) if analyze is not None else None, None)

    def _find(self, id_: str) -> tuple[State, int] | None:
        """Where a live id is: (the tail's or a sealed segment's state, its label there).
        The tail first, then the segments newest first (an id lives in one of them)."""
        label = self.state.records.labels.get(id_)
        if label is not None:
            return self.state, label
        for segment in reversed(self.sealed):
            label = segment.records.labels.get(id_)
            if label is not None:
                return segment.state, label
        return None

    def _find_many(self, ids: Sequence[str]) -> list[tuple[State, int] | None]:
        """``_find`` of each id, looked up as batches (one per holder that may hold some)."""
        found = self.state.records.lookup(ids)
        out: list[tuple[State, int] | None] = [None if label is None else (self.state, label) for label in found]
        missing = [i for i, at in enumerate(out) if at is None]
        for segment in reversed(self.sealed):
            if not missing:
                break
            labels = segment.records.lookup([ids[i] for i in missing])
            for i, label in zip(missing, labels):
                if label is not None:
                    out[i] = (segment.state, label)
            missing = [i for i in missing if out[i] is None]
        return out

    def _holders(self) -> list[State]:
        """The states a read visits, oldest first: the sealed segments', then the tail."""
        return [segment.state for segment in self.sealed] + [self.state]

    def _live_count(self) -> int:
        return len(self.state.records) + sum(segment.live for segment in self.sealed)

    def _log_and_apply(self, record: dict[str, Any], new_ids: bool = False) -> int:
        """Appends a record to the log and applies it (caller holds the write lock;
        ``new_ids``: see ``_apply``)."""
        seq = self._wal.append(record)
        applied = {**record, "seq": seq}
        try:
            self._apply(applied, new_ids)
        except BaseException as exc:
            # The log holds a record memory does not: refuse everything until a restart
            # replays the log into a consistent state.
            self._failed = f"applying log record {seq} failed: {exc!r}"
            log.exception("collection %r: %s", self.config.name, self._failed)
            raise
        if self._delta is not None:
            self._delta.append(applied)
        return seq

    # ------------------------------------------------------------------ writes
    def add(self, ids, embeddings=None, documents=None, metadatas=None) -> WriteResult:
        """Inserts new records; fails, writing nothing, if any id exists."""
        return self._put("add", ids, embeddings, documents, metadatas)

    def upsert(self, ids, embeddings=None, documents=None, metadatas=None) -> WriteResult:
        """Inserts or replaces records; metadata merges by key (None removes a key)."""
        return self._put("upsert", ids, embeddings, documents, metadatas)

    def update(self, ids, embeddings=None, documents=None, metadatas=None) -> WriteResult:
        """Changes existing records, keeping fields not given; fails if any id is missing."""
        return self._put("update", ids, embeddings, documents, metadatas)

    def _put(self, kind: str, ids, embeddings, documents, metadatas) -> WriteResult:
        while True:  # again when a re-embed switched the model while this write was embedding
            try:
                return self._put_once(kind, ids, embeddings, documents, metadatas)
            except _ModelSwitched:
                continue

    def _check_model(self, embedded_with: dict[str, Any] | None) -> None:
        """Under the write lock: the vectors of this write are of the collection's model (a
        re-embed's switch, storage/reembed.py, may have changed it since they were made)."""
        if embedded_with is not None and self.config.encoder != embedded_with:
            raise _ModelSwitched()

    def _put_once(self, kind: str, ids, embeddings, documents, metadatas) -> WriteResult:
        ids = validation.ids(ids)
        n = len(ids)
        if embeddings is not None and self.config.encoder is not None:
            # Its stored vectors all come from its model: a caller's vectors, of another
            # model or none, would share the space unnoticed. (Queries by vector stay
            # allowed: they change nothing stored.)
            raise InvalidArgumentError(
                f"embeddings: collection {self.config.name!r} embeds its documents with the "
                f"built-in model {self.config.encoder['name']!r} and takes no embeddings, so that "
                "vectors of two models are never mixed; pass documents instead, or create a "
                f"collection with dim={self.config.dim} (and no encoder) for your own vectors")
        if documents is not None:
            documents = validation.documents(documents, n)
        truncated: list[int] = []  # documents longer than the encoder's window (never silent)
        embedded_with = None
        if embeddings is None and documents is not None and self.config.encoder is not None:
            embedded_with = self.config.encoder
            embeddings = self._embed(documents, "documents", truncated)
        if embeddings is not None:
            embeddings = validation.vectors(embeddings, n, self.config.dim, self.config.metric, ids)
        elif kind == "add":
            raise InvalidArgumentError("embeddings: required by add" + (
                " (or documents, which this collection's encoder embeds)" if self.config.encoder
                else " (this collection has no encoder)"))
        if metadatas is not None:
            metadatas = validation.metadatas(metadatas, n)
        result = WriteResult(truncated_texts=len(truncated))
        self._indexer.wait_for_room()  # backpressure: a bounded exact tail (storage/indexer.py)
        with self._writers, self._lock.write():
            self._check_writable()
            self._check_model(embedded_with)
            existing = self._find_many(ids)
            if kind == "add":
                for i, label in enumerate(existing):
                    if label is not None:
                        raise AlreadyExistsError(
                            f"add: record {ids[i]!r} (ids[{i}]) already exists in collection "
                            f"{self.config.name!r}; nothing was written (use upsert to replace)")
            elif kind == "update":
                for i, label in enumerate(existing):
                    if label is None:
                        raise NotFoundError(
                            f"update: record {ids[i]!r} (ids[{i}]) does not exist in collection "
                            f"{self.config.name!r}; nothing was written")
            new_ids = embeddings is not None and all(label is None for label in existing)
            if new_ids:  # a bulk load's batch: every record new, its rows as given (no per-record pass)
                put_ids, vectors = ids, embeddings
                put_docs = documents if documents is not None else [None] * n
                put_metas = [_merge({}, m) for m in metadatas] if metadatas is not None else [{} for _ in range(n)]
                result.inserted = n
            else:
                put_ids, put_rows, put_docs, put_metas = [], [], [], []
                for i, label in enumerate(existing):
                    document = documents[i] if documents is not None else None
                    metadata = metadatas[i] if metadatas is not None else None
                    if label is None:
                        if embeddings is None:
                            raise InvalidArgumentError(
                                f"embeddings: record {ids[i]!r} (ids[{i}]) is new and needs a vector")
                        vector = embeddings[i]
                        metadata = _merge({}, metadata)
                        result.inserted += 1
                    else:
                        holder, label = label
                        old_document = holder.records.documents[label]
                        old_metadata = holder.records.metadata(label)
                        old_vector = holder.vectors.row(label)
                        vector = embeddings[i] if embeddings is not None else old_vector
                        document = old_document if document is None else document
                        metadata = _merge(old_metadata, metadata)
                        if (document == old_document and _identical(metadata, old_metadata)
                                and np.array_equal(vector, old_vector)):
                            result.unchanged += 1
                            continue
                        result.updated += 1
                    put_ids.append(ids[i])
                    put_rows.append(vector)
                    put_docs.append(document)
                    put_metas.append(metadata)
            if put_ids:
                if not new_ids:
                    vectors = np.ascontiguousarray(np.stack(put_rows), dtype=np.float32)
                seq = self._log_and_apply({"op": "put", "ids": put_ids, "vectors": vectors.tobytes(),
                                           "documents": put_docs, "metadatas": put_metas}, new_ids)
            else:
                seq = self._wal.last_seq
        self._wal.sync_to(seq)
        result.seq = seq
        return result

    def put_chunked(self, kind: str, ids, documents, metadatas=None, tokens: int = 0,
                    overlap: int = 0) -> WriteResult:
        while True:  # again when a re-embed switched the model while this write was embedding
            try:
                return self._put_chunked_once(kind, ids, documents, metadatas, tokens, overlap)
            except _ModelSwitched:
                continue

    def _put_chunked_once(self, kind: str, ids, documents, metadatas=None, tokens: int = 0,
                          overlap: int = 0) -> WriteResult:
        """Stores each document as chunks of at most ``tokens`` word pieces (0: the most the
        encoder reads), consecutive chunks sharing ``overlap`` (see the encoder's ``chunk``).

        Chunk ``j`` of source ``id`` is the record ``f"{id}#{j}"`` with the source's metadata
        plus ``{"source_id": id, "chunk": j}``. ``kind`` "add" refuses a source that has
        records (chunks, or a record of that id); "upsert" replaces them: the old chunks (and
        a record of the source's own id) are deleted and the new chunks put by ONE log record,
        so a crash leaves either the old chunks or the new ones. ``deleted`` counts old
        records not overwritten by a new chunk of the same id.
        """
        ids, documents, metadatas = chunking.check_request(kind, self.config, ids, documents, metadatas)
        embedded_with = self.config.encoder
        encoder = self._encoder("documents")
        chunks = chunking.cut(encoder, ids, documents, metadatas, tokens, overlap)
        chunk_ids, chunk_docs, chunk_metas = chunks.ids, chunks.documents, chunks.metadatas
        vectors = validation.vectors(encoder.embed(chunk_docs), len(chunk_ids), self.config.dim,
                                     self.config.metric, chunk_ids)
        self._indexer.wait_for_room()  # backpressure: a bounded exact tail (storage/indexer.py)
        with self._writers, self._lock.write():
            self._check_writable()
            self._check_model(embedded_with)
            # the tail and the sealed segments alike (an id lives in one of them: _find_many)
            old = list(dict.fromkeys([i for i, at in zip(ids, self._find_many(ids)) if at is not None]
                                     + self._chunks_of(ids)))
            old_ids = set(old)
            if kind == "add":
                asked = set(ids)
                sources = {}
                for id_ in old:
                    holder, label = self._find(id_)
                    sources[id_ if id_ in asked else holder.records.metadata(label)[SOURCE_KEY]] = id_
                clash = [i for i in chunk_ids if self._find(i) is not None]
                if sources or clash:
                    source, existing = next(iter(sources.items())) if sources else (None, clash[0])
                    what = f"source {source!r} has" if source is not None else "the id of a new chunk has"
                    raise AlreadyExistsError(
                        f"add: {what} a record ({existing!r}) in collection {self.config.name!r}; "
                        "nothing was written (use upsert to replace a source's chunks)")
            new = set(chunk_ids)
            drop = sorted(old_ids - new)
            result = WriteResult(deleted=len(drop))
            result.updated = sum(at is not None for at in self._find_many(chunk_ids))
            result.inserted = len(chunk_ids) - result.updated
            seq = self._log_and_apply({"op": "put", "ids": chunk_ids, "vectors": vectors.tobytes(),
                                       "documents": chunk_docs, "metadatas": chunk_metas, "drop": drop})
        self._wal.sync_to(seq)
        result.seq = seq
        return result

    def _chunks_of(self, sources: Sequence[str]) -> list[str]:
        """Ids of the chunk records of these sources, in the tail and the sealed segments:
        metadata source_id in ``sources`` and an id of the form f"{source_id}#{chunk}" (so a
        record that merely has a ``source_id`` key of its own is never taken for a chunk)."""
        if not sources:
            return []
        where = Field(SOURCE_KEY, "in", list(dict.fromkeys(sources)))
        predicate = compile_filter(where)
        out = []
        for state in self._holders():
            records = state.records
            for label in self._matching_in(state, where, predicate).tolist():
                metadata = records.metadata(label)
                if records.ids[label] == f"{metadata.get(SOURCE_KEY)}#{metadata.get(CHUNK_KEY)}":
                    out.append(records.ids[label])
        return out

    def delete(self, ids: Sequence[str] | None = None, where: Filter | None = None) -> WriteResult:
        """Removes records by ids and/or filter (both given: records must match both).

        A source id of a chunked write deletes its chunks too (see ``put_chunked``)."""
        if ids is not None:
            ids = validation.ids(ids, allow_empty_batch=True)
        predicate = compile_filter(where)
        if ids is None and predicate is None:
            raise InvalidArgumentError("delete: give ids, where or where_document (refusing to delete everything)")
        with self._writers, self._lock.write():
            self._check_writable()
            if ids is not None:
                # a source id stands for its chunks too (chunked writes; see put_chunked)
                candidates = list(dict.fromkeys([i for i, at in zip(ids, self._find_many(ids)) if at is not None]
                                                + self._chunks_of(ids)))
                targets = [id_ for id_, (holder, label) in zip(candidates, self._find_many(candidates))
                           if predicate is None or predicate(holder.records.metadata(label),
                                                             holder.records.documents[label])]
            else:  # the tail's and every sealed segment's matches
                targets = [id_ for state in self._holders()
                           for id_ in state.records.ids.take(self._matching_in(state, where, predicate).tolist())]
            seq = self._log_and_apply({"op": "delete", "ids": targets}) if targets else self._wal.last_seq
        self._wal.sync_to(seq)
        return WriteResult(deleted=len(targets), seq=seq)

    # ------------------------------------------------------------------ reads
    def _select(self, labels: list[int], include: frozenset[str]) -> Records:
        records = self._records
        out = Records(ids=records.ids.take(labels))
        if "embeddings" in include:
            out.embeddings = self._vectors.take(np.asarray(labels, np.int64))
        if "documents" in include:
            out.documents = [records.documents[label] for label in labels]
        if "metadatas" in include:
            out.metadatas = [records.metadata(label) for label in labels]
        return out

    def _select_hits(self, labels: np.ndarray, distances: np.ndarray, max_distance: float | None,
                     include: frozenset[str]) -> list[Records]:
        """Each query's hits (the rows of ``labels``, -1 padded, and their ``distances``) as
        Records, nearer than ``max_distance`` when given (read lock held). The records of
        every row are read in one ``_select``: a batch of queries looks its ids up at once
        rather than row by row (~10 us a query, issue 13's batched path)."""
        hits, counts, hit_distances = _kept_hits(labels, distances, max_distance)
        everything = self._select(hits.tolist(), include)
        return split_rows(everything, counts, hit_distances if "distances" in include else None)

    def _hit_columns(self, labels: np.ndarray, distances: np.ndarray, max_distance: float | None,
                     include: frozenset[str]) -> HitColumns:
        """``_select_hits`` of bare hits (``include`` at most distances) as HitColumns: the
        ids' bytes gathered at once, no Records and no ``str`` per hit (read lock held)."""
        hits, counts, hit_distances = _kept_hits(labels, distances, max_distance)
        joined = self._records.ids.joined(hits.astype(np.int64, copy=False))
        return HitColumns(counts, joined, hit_distances if "distances" in include else None)

    def _select_pairs(self, pairs: list[tuple[State, int]], include: frozenset[str]) -> Records:
        """The records at (state, label) pairs, in order (read lock held): ``_select`` over
        the sealed segments and the tail."""
        ids: list[str] = [""] * len(pairs)
        by_state: dict[int, tuple[State, list[int], list[int]]] = {}
        for i, (state, label) in enumerate(pairs):  # each holder's ids looked up at once
            entry = by_state.get(id(state))
            if entry is None:
                entry = by_state[id(state)] = (state, [], [])
            entry[1].append(i)
            entry[2].append(label)
        for state, positions, labels in by_state.values():
            for i, id_ in zip(positions, state.records.ids.take(labels)):
                ids[i] = id_
        out = Records(ids=ids)
        if "embeddings" in include:
            rows = np.empty((len(pairs), self.config.dim), np.float32)
            for i, (state, label) in enumerate(pairs):
                rows[i] = state.vectors.row(label)
            out.embeddings = rows
        if "documents" in include:
            out.documents = [state.records.documents[label] for state, label in pairs]
        if "metadatas" in include:
            out.metadatas = [state.records.metadata(label) for state, label in pairs]
        return out

    def _matching_in(self, state: State, where, predicate) -> np.ndarray:
        """``_matching`` in the tail's or a sealed segment's state (read lock held)."""
        if state is self.state:
            return self._matching(where, predicate)[0]
        return next(segment for segment in self.sealed if segment.state is state).matching(where, predicate)

    def _get_segmented(self, ids, where, predicate, after, offset: int, limit: int | None,
                       include: frozenset[str]) -> Records:
        """``get`` over the sealed segments and the tail (read lock held); by filter, in
        segment order (oldest first, the tail last), then label order within each."""
        if ids is not None:
            pairs = [found for found in self._find_many(ids) if found is not None and (
                predicate is None or predicate(found[0].records.metadata(found[1]),
                                               found[0].records.documents[found[1]]))]
        elif after is not None:
            limit = limit or 1000
            wanted = offset + limit
            pages = []
            for state in self._holders():
                records = state.records
                labels = records.ids_after(after)  # live labels in id order (storage/records.py)
                if where is not None:
                    allowed = set(self._matching_in(state, where, predicate).tolist())
                    labels = (label for label in labels if label in allowed)
                pages.append([(records.ids[label], state, label) for label in itertools.islice(labels, wanted + 1)])
            merged = list(itertools.islice(heapq.merge(*pages, key=lambda hit: hit[0]), wanted + 1))
            page = merged[offset:wanted]
            found = self._select_pairs([(state, label) for _, state, label in page], include)
            found.next_after = page[-1][0] if len(merged) > wanted and page else None
            return found
        else:
            pairs = [(state, label) for state in self._holders()
                     for label in self._matching_in(state, where, predicate).tolist()]
        end = None if limit is None or limit == 0 else offset + limit
        return self._select_pairs(pairs[offset:end], include)

    def _passing(self, labels: list[int], predicate) -> list[int]:
        """The labels whose records pass ``predicate`` (all of them when it is None)."""
        if predicate is None:
            return labels
        records = self._records
        return [label for label in labels if predicate(records.metadata(label), records.documents[label])]

    @staticmethod
    def _include(include: Iterable[str] | None, default: frozenset[str]) -> frozenset[str]:
        if include is None:
            return default
        include = frozenset(include)
        unknown = include - INCLUDE_FIELDS
        if unknown:
            raise InvalidArgumentError(f"include: unknown field(s) {sorted(unknown)}; "
                                       f"choose from {sorted(INCLUDE_FIELDS)}")
        return include

    def _matching(self, where: Filter | None, predicate) -> tuple[np.ndarray, str]:
        """Live labels matching a filter, in label order, and how they were found.

        The metadata indexes answer what they can; conditions they cannot (document text)
        are checked record by record, on the indexes' candidates when there are any.
        """
        if where is None:
            return self._records.live(), "none"
        candidates, exact = self._meta_index.narrow(where, self._records.live_view())
        if exact:
            path = "index"
        elif candidates is not None:
            candidates = self._passing(list(candidates), predicate)
            path = "index+scan"
        else:
            candidates = [label for label, document, metadata in self._records.items()
                          if predicate(metadata, document)]
            path = "scan"
        if exact:  # the index's answer: already a sorted int64 array (storage/label_arrays.py)
            return candidates, path
        labels = np.fromiter(candidates, np.int64, len(candidates))
        labels.sort()
        return labels, path

    def get(self, ids: Sequence[str] | None = None, where: Filter | None = None,
            limit: int | None = None, offset: int | None = None,
            include: Iterable[str] | None = None, after: str | None = None) -> Records:
        """Reads records by id (in the order asked) or by filter (in label order).

        With ``after`` (cursor pages), records come in id order starting after that id, and
        ``Records.next_after`` is the cursor of the next page (None at the end). Id order is
        stable under concurrent writes: a record present for the whole scan is returned once.
        """
        include = self._include(include, GET_INCLUDE_DEFAULT)
        predicate = compile_filter(where)
        if ids is not None:
            ids = validation.ids(ids, allow_empty_batch=True)
        offset = offset or 0
        if offset < 0 or (limit is not None and limit < 0):
            raise InvalidArgumentError(f"limit and offset must not be negative, got {limit}, {offset}")
        with self._lock.read():
            self._check_open()
            if self.sealed:
                return self._get_segmented(ids, where, predicate, after, offset, limit, include)
            if ids is not None:
                labels = self._passing(self._records.live_labels(ids), predicate)
            elif after is not None:
                return self._page_by_id(where, predicate, after, offset, limit, include)
            else:
                labels = self._matching(where, predicate)[0].tolist()
            end = None if limit is None or limit == 0 else offset + limit
            return self._select(labels[offset:end], include)

    def _page_by_id(self, where, predicate, after: str, offset: int, limit: int | None,
                    include: frozenset[str]) -> Records:
        limit = limit or 1000
        wanted = offset + limit
        records = self._records
        if where is None:
            chosen = list(itertools.islice(records.ids_after(after), wanted + 1))
        else:
            labels = self._matching(where, predicate)[0]
            if len(labels) * 8 < len(records):  # few matches: sort them
                matched = sorted(zip(records.ids.take(labels.tolist()), labels.tolist()))
                start = bisect.bisect_right(matched, (after, math.inf))
                chosen = [label for _, label in matched[start:start + wanted + 1]]
            else:  # many matches: walk ids in order, keep the matching ones
                allowed = np.zeros(records.slots, np.bool_)
                allowed[labels] = True
                chosen = []
                for label in records.ids_after(after):
                    if allowed[label]:
                        chosen.append(label)
                        if len(chosen) > wanted:
                            break
        more = len(chosen) > wanted
        page = chosen[offset:wanted]
        found = self._select(page, include)
        found.next_after = found.ids[-1] if more and page else None
        return found

    def count(self, where: Filter | None = None) -> int:
        predicate = compile_filter(where)
        with self._lock.read():
            self._check_open()
            if self.sealed:
                return sum(len(self._matching_in(state, where, predicate)) for state in self._holders())
            if where is None:
                return len(self._records)
            estimate = self._meta_index.estimate(where, len(self._records))
            if estimate is not None and estimate[1]:  # exact from the index sizes
                return estimate[0]
            return len(self._matching(where, predicate)[0])

    def info(self) -> CollectionInfo:
        with self._lock.read():
            self._check_open()
            return CollectionInfo(config=self.config, count=self._live_count(), seq=self._wal.last_seq)

