"""Compaction built beside the live state, then swapped in by one short step.

Compaction drops deleted slots by relabelling the live records 0..n-1, which means a new
vector file, new record columns, a new metadata index and full-text index and a new HNSW
graph. All of that is built here from the collection's current state while queries go on
(the caller holds the writers' mutex, so nothing changes the state meanwhile, and queries
only read it); only the swap of the finished structures takes the write lock, for a few
assignments. Before, the rebuild ran under the write lock, and one query through a real
server waited 16.1 s (issue 12).

Memory: the new vectors are written to a file beside the collection's files and mapped
(``compact-<seq>-<n>.npy``; an in-memory collection holds them in memory), read from the
old file with plain reads block by block (``VectorStore.blocks``), so a compaction adds
the new graph to the footprint, not a second copy of the vectors. The file is never named
by a MANIFEST: the next checkpoint copies it into its generation and removes it, and a
start removes any a crash left behind (``remove_leftovers``).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fsio import FileSystem
from .fulltext import FullTextIndex
from .index import HnswIndex
from .metadata_index import MetadataIndex
from .records import RecordStore
from .vectors import VectorStore

log = logging.getLogger(__name__)

PREFIX = "compact-"
_names = itertools.count()


@dataclass
class Compacted:
    """The structures of the compacted state, ready to swap in."""

    vectors: VectorStore
    records: RecordStore
    meta_index: MetadataIndex
    fulltext: FullTextIndex | None
    index: HnswIndex | None
    dropped: int


def due(slots: int, live: int, has_index: bool, min_dead: int, ratio: float, force: bool) -> bool:
    """Whether to compact: any deleted slot when forced or when there is no graph (exact
    search reads every slot), else past max(min_dead, ratio x slots) deleted."""
    dead = slots - live
    if dead == 0:
        return False
    return force or not has_index or dead >= max(min_dead, ratio * slots)


def build(collection, fs: FileSystem | None, directory: Path | None, seq: int) -> Compacted:
    """Builds the compacted state of ``collection`` without changing it.

    The caller holds the collection's writers' mutex (the state cannot change) and no lock
    that queries wait on. ``directory`` None builds the vectors in memory.

    Raises:
        OSError: writing the new vector file failed (nothing was changed; the caller
            removes the partial file with ``remove_leftovers``).
    """
    old_vectors, old_records = collection._vectors, collection._records
    config, tuning = collection.config, collection.tuning
    labels = old_records.live()
    live = len(labels)
    want_graph = collection._index is not None or live >= tuning.exact_threshold
    index = None
    if want_graph:
        hnsw = config.hnsw
        index = HnswIndex.create(config.metric, config.dim, hnsw["m"], hnsw["ef_construction"],
                                 hnsw["ef_search"], capacity=max(live, 16),
                                 threads=min(tuning.maintenance_threads, tuning.index_threads))
    sqnorms = np.ascontiguousarray(old_vectors.sqnorms[labels])
    if directory is None:
        rows = np.empty((live, config.dim), np.float32)
        written = 0
        for block in old_vectors.blocks(labels):
            rows[written:written + len(block)] = block
            if index is not None:
                index.add(block, np.arange(written, written + len(block), dtype=np.int64))
            written += len(block)
        vectors = VectorStore.in_memory(rows) if live else VectorStore(config.dim)
    else:
        path = directory / f"{PREFIX}{seq:020d}-{next(_names)}.npy"
        handle = fs.create(path)
        try:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                      "fortran_order": False, "shape": (live, config.dim)}
            np.lib.format.write_array_header_1_0(handle, header)
            written = 0
            for block in old_vectors.blocks(labels):
                handle.write(memoryview(np.ascontiguousarray(block)).cast("B"))
                if index is not None:
                    index.add(block, np.arange(written, written + len(block), dtype=np.int64))
                written += len(block)
        except BaseException:
            handle.close()
            raise
        fs.finish(handle)
        vectors = VectorStore.mapped(path, config.dim, sqnorms=sqnorms)
    if index is not None:
        index.threads = tuning.index_threads  # searches and later adds use the usual count
    records = old_records.compacted()
    meta_index = MetadataIndex.build(records.metadata_items())
    fulltext = None
    if collection._fulltext is not None:
        documents = records.documents
        fulltext = FullTextIndex.build(collection._fulltext.analyze,
                                       ((label, documents[label]) for label in range(live)))
    return Compacted(vectors, records, meta_index, fulltext, index, old_vectors.slots - live)


def remove_leftovers(fs: FileSystem, directory: Path, keep: Path | None = None) -> None:
    """Removes compaction vector files no generation needs any longer (all but ``keep``,
    the one the collection maps now): after a checkpoint copied them into its generation,
    or after a crash."""
    for path in directory.glob(f"{PREFIX}*.npy"):
        if keep is None or path.name != keep.name:
            try:
                fs.remove(path)
            except OSError:  # best effort; the next checkpoint or start tries again
                log.warning("cannot remove %s", path)
