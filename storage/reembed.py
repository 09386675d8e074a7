"""Re-embedding a collection with another model, online and resumable (issue 10, item 6).

How it stays correct while the collection is in use:

* The new vectors are built **beside** the collection, keyed by record id and by a digest of
  the document they were computed from. The collection itself is untouched: queries and
  writes go on with the old model, and writes need nothing special.
* Each ``step`` embeds up to ``batch`` records whose document has no new vector yet, or has
  changed since it got one (a write during the re-embed: it gets a new, higher label, so a
  walk in label order from a cursor meets it), and persists that batch (one
  checksummed file, written with temp + fsync + rename) in ``<collection>/reembed/``. A
  restarted server reloads those files and continues: progress is never lost, only the batch
  in flight at a crash.
* When at most ``batch`` records remain, the step **holds writes** (the collection's writers'
  mutex; queries go on), embeds the rest (so every write that arrived meanwhile is covered:
  no write lost, none left with an old-model vector) and switches: a new checkpoint
  generation holding the new vectors and graph, then a MANIFEST naming it with the new
  config (model identity and dim), replaced atomically. That rename is the one durable
  switch: before it, a crash leaves the old collection (and the progress files); after it,
  the new one. Memory is swapped under the write lock only after the MANIFEST is durable.

Deleted records are simply not carried over; their slots keep zero vectors until the next
compaction. The whole new vector set is built in memory at the switch (n x dim float32).

A collection with sealed segments (storage/segment.py, docs/segments.md): the walk goes
through the segments' records (oldest first), then the tail's, in label order within each;
a seal, merge or compaction (another list of record stores) starts the walk over, skipping
the records whose vector is current. The switch writes every live record, of every segment
and the tail, into one new generation (compacted: labels 0..n-1) and a MANIFEST that lists
no segment, in the same one durable step; the old segments' directories, unlisted then, are
removed after it (or at the next start). The sealing policy seals the tail again from there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from vectord.errors import FailedPreconditionError, InvalidArgumentError

from . import checkpoint as disk
from . import framing
from .analyzers import analyzer, fulltext_config
from .fsio import replace_atomically, storage_error
from .fulltext import FullTextIndex
from .index import HnswIndex
from .metadata_index import MetadataIndex
from .records import RecordStore
from .state import State
from .vectors import VectorStore

log = logging.getLogger(__name__)

DIRNAME = "reembed"
TARGET = "TARGET"
DEFAULT_BATCH = 1000
MAX_BATCH = 100_000

_locks: dict[int, threading.Lock] = {}
_locks_mutex = threading.Lock()


@dataclasses.dataclass
class Progress:
    """What a step reports (Admin.ReembedCollection's response)."""

    model: dict[str, Any]
    done: int
    total: int
    switched: bool
    truncated_texts: int = 0


class _State:
    """The new vectors built so far: id -> (digest of the document, vector)."""

    def __init__(self, target: dict[str, Any]) -> None:
        self.target = target
        self.vectors: dict[str, tuple[bytes, np.ndarray]] = {}
        self.parts = 0
        # The walk visits the record stores `stores` in order (the sealed segments', oldest
        # first, then the tail's); `cursor` = (position in it, label): the labels before it
        # are done. A label's document never changes (an update gives the record a new,
        # higher label in the tail; a segment only loses records), so a step walks on from
        # the cursor and costs O(batch), not O(collection). Other store objects (a compaction
        # relabelled the records, a seal or merge, or a restart) walk again from the start,
        # skipping the records whose vector is current (by digest).
        self.stores: list[Any] | None = None
        self.cursor: tuple[int, int] = (0, -1)


def _digest(document: str | None) -> bytes:
    return hashlib.blake2b((document or "").encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _lock(collection) -> threading.Lock:
    with _locks_mutex:
        return _locks.setdefault(id(collection), threading.Lock())


def _load(collection, target: dict[str, Any]) -> _State:
    """The progress for ``target``: from memory, else from the collection's directory; a
    progress for another model is discarded (a new re-embed starts over)."""
    state: _State | None = getattr(collection, "_reembed_state", None)
    if state is not None and state.target == target:
        return state
    state = _State(target)
    directory = collection.path / DIRNAME if collection.path is not None else None
    if directory is not None and directory.is_dir():
        stored = None
        try:
            stored = framing.decode_single((directory / TARGET).read_bytes(), f"{directory / TARGET}")
        except Exception as exc:  # noqa: BLE001 - damaged progress is dropped, never served
            log.warning("collection %r: re-embed progress unreadable (%s); starting over", collection.name, exc)
        if stored == target:
            for part in sorted(directory.glob("part-*")):
                try:
                    data = framing.decode_single(part.read_bytes(), str(part))
                    rows = np.frombuffer(data["vectors"], np.float32).reshape(-1, target["dim"])
                    for id_, digest, row in zip(data["ids"], data["digests"], rows):
                        state.vectors[id_] = (digest, row)
                    state.parts = max(state.parts, int(part.name.split("-")[1]) + 1)
                except Exception as exc:  # noqa: BLE001 - a damaged part is embedded again
                    log.warning("collection %r: re-embed part %s unreadable (%s); its records are "
                                "embedded again", collection.name, part.name, exc)
            log.info("collection %r: resuming re-embed with %r, %d records done", collection.name,
                     target["name"], len(state.vectors))
        else:
            _discard(collection)
    if directory is not None and not (directory / TARGET).is_file():
        collection.fs.mkdir(directory) if not directory.is_dir() else None
        replace_atomically(collection.fs, directory / TARGET, framing.encode_frame(target))
        collection.fs.fsync_dir(collection.path)
    collection._reembed_state = state
    return state


def _discard(collection) -> None:
    collection._reembed_state = None
    if collection.path is not None and (collection.path / DIRNAME).exists():
        collection.fs.remove_tree(collection.path / DIRNAME)
        collection.fs.fsync_dir(collection.path)


def _persist(collection, state: _State, ids: list[str], digests: list[bytes], vectors: np.ndarray) -> None:
    for id_, digest, row in zip(ids, digests, vectors):
        state.vectors[id_] = (digest, row)
    if collection.path is None or not ids:
        return
    path = collection.path / DIRNAME / f"part-{state.parts:08d}"
    replace_atomically(collection.fs, path, framing.encode_frame(
        {"ids": ids, "digests": digests, "vectors": np.ascontiguousarray(vectors, np.float32).tobytes()}))
    state.parts += 1


def _collect(records, label: int, state: _State, ids: list[str], documents: list[str],
             digests: list[bytes]) -> None:
    """Appends the record at ``label`` when it has no new vector for its current document."""
    id_, document = records.ids[label], records.documents[label]
    digest = _digest(document)
    have = state.vectors.get(id_)
    if have is None or have[0] != digest:
        ids.append(id_)
        documents.append(document or "")
        digests.append(digest)


def _stores(collection) -> list[Any]:
    """The record stores a walk visits: the sealed segments' (oldest first), then the tail's."""
    return [segment.records for segment in collection.sealed] + [collection._records]


def _same(stores: list[Any] | None, now: list[Any]) -> bool:
    return stores is not None and len(stores) == len(now) and all(a is b for a, b in zip(stores, now))


def _pending(collection, state: _State) -> tuple[list[str], list[str], list[bytes], int]:
    """(ids, documents, digests) of the live records without a current new vector, and the
    live count; under the read lock."""
    with collection._lock.read():
        collection._check_open()
        ids, documents, digests = [], [], []
        total = 0
        for records in _stores(collection):
            labels = records.live().tolist()
            for label in labels:
                _collect(records, label, state, ids, documents, digests)
            total += len(labels)
        return ids, documents, digests, total


def _walk(collection, state: _State,
          batch: int) -> tuple[list[str], list[str], list[bytes], tuple[int, int], int, int]:
    """From the cursor on, up to ``batch`` live records without a current new vector: (ids,
    documents, digests, the cursor after the last record walked, the live count, the live
    records after it)."""
    with collection._lock.read():
        collection._check_open()
        stores = _stores(collection)
        if not _same(state.stores, stores):
            state.stores, state.cursor = stores, (0, -1)
        at, after = state.cursor
        ids, documents, digests = [], [], []
        last, walked, beyond_total, total = state.cursor, 0, 0, 0
        for position, records in enumerate(stores):
            live = records.live()
            total += len(live)
            if position < at:
                continue
            beyond = live[int(np.searchsorted(live, after, side="right")):] if position == at else live
            beyond_total += len(beyond)
            for label in beyond.tolist():
                if len(ids) == batch:
                    break
                _collect(records, label, state, ids, documents, digests)
                last, walked = (position, label), walked + 1
        return ids, documents, digests, last, total, beyond_total - walked


def _embed(encoder, documents: list[str], dim: int) -> tuple[np.ndarray, int]:
    truncated: list[int] = []
    try:
        vectors = encoder.embed(documents, truncated=truncated)
    except TypeError:  # an encoder that cannot report truncation
        vectors = encoder.embed(documents)
    vectors = np.asarray(vectors, np.float32)
    if vectors.shape != (len(documents), dim) or not np.isfinite(vectors).all():
        raise FailedPreconditionError(f"re-embed: the model made vectors of shape {vectors.shape}, expected "
                                      f"({len(documents)}, {dim}) finite values")
    return vectors, len(truncated)


def step(collection, encoders, model: str, batch: int = 0, cancel: bool = False) -> Progress:
    """One call of Admin.ReembedCollection (see the module's docstring)."""
    if isinstance(batch, bool) or not isinstance(batch, int) or not 0 <= batch <= MAX_BATCH:
        raise InvalidArgumentError(f"batch: must be 0..{MAX_BATCH:,} records (0 means {DEFAULT_BATCH:,}), got {batch!r}")
    batch = batch or DEFAULT_BATCH
    if collection.config.encoder is None:
        raise FailedPreconditionError(
            f"collection {collection.name!r} has no encoder: its vectors are the caller's, so there are no "
            "documents to re-embed with a model")
    if encoders is None:
        raise FailedPreconditionError("no encoder is available in this process")
    encoder = encoders.get(model or "default")  # NotFoundError for an unknown model
    target = dict(encoder.identity())
    with _lock(collection):
        collection._check_writable()
        if cancel:
            _discard(collection)
            return Progress(target, 0, collection.count(), False)
        current = collection.config.encoder
        if current.get("sha256") == target["sha256"] and current.get("dim") == target["dim"] \
                and current.get("name") == target["name"]:
            _discard(collection)  # progress towards another model, if any, is moot
            total = collection.count()
            return Progress(target, total, total, True)
        try:
            state = _load(collection, target)
            ids, documents, digests, last, total, left = _walk(collection, state, batch)
            if left:  # more after this batch: embed it, persist it, move the cursor
                vectors, truncated = _embed(encoder, documents, target["dim"]) if ids else (None, 0)
                if ids:
                    _persist(collection, state, ids, digests, vectors)
                if _same(state.stores, _stores(collection)):  # (a compaction or seal meanwhile: walk again)
                    state.cursor = last
                return Progress(target, total - left, total, False, truncated)
            truncated = _switch(collection, encoder, state, target)  # the rest, with writes held
        except OSError as exc:
            raise storage_error(exc, f"re-embed collection {collection.name!r}") from exc
        total = collection.count()
        return Progress(target, total, total, True, truncated)


def _switch(collection, encoder, state: _State, target: dict[str, Any]) -> int:
    """Holds writes, embeds what remains, writes the new generation and MANIFEST, swaps."""
    c = collection
    with c._checkpoint_mutex, c._writers:
        c._check_writable()
        ids, documents, digests, _ = _pending(c, state)  # stable now: writes are held
        truncated = 0
        if ids:
            vectors, truncated = _embed(encoder, documents, target["dim"])
            _persist(c, state, ids, digests, vectors)
        dim = target["dim"]
        config = dataclasses.replace(c.config, encoder=target, dim=dim)
        with c._lock.read():
            sealed = bool(c.sealed)
            if sealed:  # every segment's and the tail's live records, into one compacted state
                records = _combined(c)
                labels = records.live()
                slots = len(labels)
                rows = np.zeros((slots, dim), np.float32)
                for label, id_ in enumerate(records.ids.take(labels.tolist())):
                    rows[label] = state.vectors[id_][1]
                graph = c._index is not None or any(segment.state.index is not None for segment in c.sealed)
            else:
                records = c._records
                labels = records.live()
                slots = c._vectors.slots
                rows = np.zeros((max(slots, 0), dim), np.float32)
                for label in labels.tolist():
                    rows[label] = state.vectors[records.ids[label]][1]
                graph = c._index is not None
            vectors = VectorStore.in_memory(rows) if slots else VectorStore(dim)
            index = None
            if graph or len(labels) >= c.tuning.exact_threshold:
                hnsw = config.hnsw
                index = HnswIndex.create(config.metric, dim, hnsw["m"], hnsw["ef_construction"], hnsw["ef_search"],
                                         capacity=max(slots, 16), threads=c.tuning.index_threads)
                for start in range(0, len(labels), 65536):
                    part = labels[start:start + 65536]
                    index.add(rows[part], part)
                index.covered = slots
            columns = records.to_columns() if c.path is not None else None
        new_state = None
        if sealed:  # the derived structures of the new label space (the tail's are relabelled)
            analyze = analyzer(fulltext_config(config.fulltext))
            documents = records.documents
            new_state = State(vectors, records, MetadataIndex.build_groups(records.metadata_groups()),
                              FullTextIndex.build(analyze, ((label, documents[label]) for label in range(slots)))
                              if analyze is not None else None, index)
        if c.path is None:  # in memory: nothing to make durable
            with c._lock.write():
                c.config = config
                if new_state is not None:
                    c.state, c.sealed = new_state, ()
                else:
                    c._vectors, c._index = vectors, index
            _discard(c)
            return truncated
        with c._lock.write():  # a fresh seq names the new generation (as checkpoint does)
            seq = c._log_and_apply({"op": "delete", "ids": []})
        c._wal.sync()
        try:
            name, files, index_meta = disk.write_generation(c.fs, c.path, seq, vectors, columns, index)
        except OSError:
            c._maintenance.discard(c.path / f"gen-{seq:020d}")  # the MANIFEST does not name it: nothing changed
            raise
        manifest = {**disk.new_manifest(config), "generation": name, "applied_seq": seq,
                    "slots": slots, "files": files, "index": index_meta}
        if sealed or c._manifest.get("segments") is not None:
            manifest["segments"] = []  # every record is in the new generation now
        try:
            disk.write_manifest(c.fs, c.path, manifest)  # the switch
        except OSError as exc:
            # Which MANIFEST the disk holds is unknown (the rename may be durable although the
            # directory fsync failed): a write now could be logged for the wrong model. Refuse
            # writes until a restart, which serves whichever MANIFEST is there, consistently.
            c._failed = f"re-embed switch to {target['name']!r}: writing the MANIFEST failed ({exc})"
            raise
        with c._lock.write():
            c.config, c._manifest, c._applied_seq = config, manifest, seq
            if new_state is not None:
                c.state, c.sealed = new_state, ()
            else:
                c._vectors, c._index = vectors, index
            c._vectors.rebase(c.path / name / disk.VECTORS)
            c._wal.reset()
        disk.remove_other_generations(c.fs, c.path, name)
        disk.remove_unlisted_segments(c.fs, c.path, manifest)  # the old segments, all in the generation now
        _discard(c)
        log.info("collection %r: re-embedded with %r %s (dim %d, %d records)", c.name, target["name"],
                 target.get("version", ""), dim, len(labels))
    return truncated


def _combined(c) -> RecordStore:
    """The live records of every sealed segment (oldest first) and the tail, in label order
    within each, as one store labelled 0..n-1 (the read lock held)."""
    ids: list[str] = []
    documents: list[str | None] = []
    metadatas: list[bytes | None] = []
    for records in _stores(c):
        order = records.live().tolist()
        ids += records.ids.take(order)
        documents += [records.documents[label] for label in order]
        metadatas += [records.metadatas[label] for label in order]
    return RecordStore.from_columns(list(range(len(ids))), ids, documents, metadatas, slots=len(ids))


def progress_dir(collection) -> Path | None:
    """Where a collection's re-embed progress is kept (None in memory)."""
    return collection.path / DIRNAME if collection.path is not None else None

