"""Compaction built beside the live state, then swapped in by one short step.

Compaction drops deleted slots by relabelling the live records 0..n-1, which means a new
vector file, new record columns, a new metadata index and full-text index and a new HNSW
graph. All of that is built here, under no lock, from a ``Frozen`` view of the state taken
in one short step (copies of the record columns' slot lists and of the live labels; the
vectors below the view's slot count are never rewritten), while queries and writes go on.
The writes applied meanwhile are kept (``Collection._delta``; storage/maintenance.py); the swap, under the write
lock, puts the new structures in and applies those writes to them again, by id, as log
replay does. Before, the rebuild ran under the write lock, and one query through a real
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
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import graph_child
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
    #: ``index`` as a child process wrote it beside the rows file (storage/graph_child.py):
    #: (path, MANIFEST entry), for ``Segment.write`` to move into place; None: none written.
    graph_file: tuple[Path, dict] | None = None


def due(slots: int, live: int, has_index: bool, min_dead: int, ratio: float, force: bool) -> bool:
    """Whether to compact: any deleted slot when forced or when there is no graph (exact
    search reads every slot), else past max(min_dead, ratio x slots) deleted."""
    dead = slots - live
    if dead == 0:
        return False
    return force or not has_index or dead >= max(min_dead, ratio * slots)


@dataclass
class Frozen:
    """What a compaction reads of the collection, as of one moment (see ``freeze``)."""

    labels: np.ndarray  # live labels, in order
    ids: list
    documents: list
    metadatas: list
    sqnorms: np.ndarray  # of the live labels
    vectors: VectorStore  # read only below the slot count the view was taken at
    slots: int
    has_index: bool
    analyze: object  # the full-text analyzer, or None


def freeze(state) -> Frozen:
    """The view a compaction builds from a collection's ``State`` (storage/state.py); the
    caller holds the writers' mutex (O(slots) list copies: a few milliseconds per million
    slots)."""
    records, vectors = state.records, state.vectors
    labels = records.live().copy()
    fulltext = state.fulltext
    return Frozen(labels, list(records.ids), list(records.documents), list(records.metadatas),
                  np.ascontiguousarray(vectors.sqnorms[labels]), vectors, vectors.slots,
                  state.index is not None, fulltext.analyze if fulltext is not None else None)


def write_rows(fs: FileSystem | None, directory: Path | None, blocks, live: int, dim: int,
               sqnorms: np.ndarray) -> VectorStore:
    """The ``live`` rows that ``blocks()`` yields, as a new VectorStore: with ``directory``,
    written block by block to a ``compact-*.npy`` file there and mapped (so that a rebuild
    adds its graph to the footprint, not a copy of the vectors); without, in memory."""
    if directory is None:
        rows = np.empty((live, dim), np.float32)
        written = 0
        for block in blocks():
            rows[written:written + len(block)] = block
            written += len(block)
        return VectorStore.in_memory(rows) if live else VectorStore(dim)
    path = directory / f"{PREFIX}{next(_names):06d}-{time.time_ns()}.npy"
    handle = fs.create(path)
    try:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                  "fortran_order": False, "shape": (live, dim)}
        np.lib.format.write_array_header_1_0(handle, header)
        for block in blocks():
            handle.write(memoryview(np.ascontiguousarray(block)).cast("B"))
    except BaseException:
        handle.close()
        raise
    fs.finish(handle)
    return VectorStore.mapped(path, dim, sqnorms=sqnorms)


def build(frozen: Frozen, config, tuning, fs: FileSystem | None, directory: Path | None,
          nice: int = 0, child: tuple[int, int] | None = None) -> Compacted:
    """Builds the compacted state of ``frozen`` (labels 0..n-1 in the old label order).

    Runs under no lock. ``directory`` None builds the vectors in memory. The graph, the
    CPU-heavy part, is built by a thread ``nice`` steps lower in priority (``_fill_graph``);
    with ``child`` (threads, nice: a new segment's, ``segment.graph_child_of``), a large one
    is first written by a child process (``fill_graph``).

    Raises:
        OSError: writing the new vector file failed (nothing was changed; the caller
            removes the partial file with ``remove_leftovers``).
    """
    labels = frozen.labels
    live = len(labels)
    index = None
    if frozen.has_index or live >= tuning.exact_threshold:
        hnsw = config.hnsw
        index = HnswIndex.create(config.metric, config.dim, hnsw["m"], hnsw["ef_construction"],
                                 hnsw["ef_search"], capacity=max(live, 16),
                                 threads=min(tuning.maintenance_threads, tuning.index_threads))
    vectors = write_rows(fs, directory, lambda: frozen.vectors.blocks(labels), live, config.dim, frozen.sqnorms)
    graph_file = None
    if index is not None:
        if directory is None:
            rows = vectors.all()
            _fill_graph(index, lambda: (rows[i:i + 8192] for i in range(0, live, 8192)), nice)
        else:
            # read again, block by block, with plain reads: mapping the new file's pages
            # would add them to the footprint during the build
            graph_file = fill_graph(index, lambda: frozen.vectors.blocks(labels), nice, vectors, child)
    if index is not None:
        index.threads = tuning.index_threads  # searches and later adds use the usual count
    order = labels.tolist()
    ids, documents, metadatas = frozen.ids, frozen.documents, frozen.metadatas
    records = RecordStore.from_columns(list(range(live)), [ids[label] for label in order],
                                       [documents[label] for label in order],
                                       [metadatas[label] for label in order], slots=live)
    meta_index = MetadataIndex.build_groups(records.metadata_groups())
    fulltext = None
    if frozen.analyze is not None:
        documents = records.documents
        fulltext = FullTextIndex.build(frozen.analyze, ((label, documents[label]) for label in range(live)))
    return Compacted(vectors, records, meta_index, fulltext, index, frozen.slots - live, graph_file)


def fill_graph(index: HnswIndex, blocks, nice: int, rows: VectorStore,
               child: tuple[int, int] | None) -> tuple[Path, dict] | None:
    """Fills ``index`` with ``blocks()`` (``_fill_graph``), the rows of the file ``rows``
    maps. With ``child`` (threads, nice), a child process first writes the same graph to a
    file beside ``rows`` (storage/graph_child.py; before this process's build, so that the
    two graphs are never in memory at once); returns (its path, MANIFEST entry), or None."""
    saved = None
    if child is not None and rows.filename is not None:
        saved = graph_child.prepare(rows.filename, index, rows.slots, *child)
    _fill_graph(index, blocks, nice)
    return saved


def _fill_graph(index: HnswIndex, blocks, nice: int) -> None:
    """Adds the rows of ``blocks()`` (labels 0..n-1 in order) to ``index`` in a new thread ``nice`` steps lower in CPU
    priority (Linux: a thread's nice value is its own, and the threads hnswlib starts for the
    graph inherit it), so that on a loaded machine the queries' threads run first and the
    build takes the time they leave. Only the graph is built there: hnswlib releases the GIL
    while it adds, so the low-priority thread rarely holds the GIL that queries need (the
    Python parts of a compaction run at the caller's priority). ``nice`` 0: in the caller."""
    def fill() -> None:
        written = 0
        for block in blocks():
            index.add(block, np.arange(written, written + len(block), dtype=np.int64))
            written += len(block)

    if nice <= 0:
        fill()
        return
    outcome: dict = {}

    def target() -> None:
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        except (AttributeError, OSError):  # not Linux, or not allowed: build at the usual priority
            pass
        try:
            fill()
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="compaction-graph", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]


def remove_leftovers(fs: FileSystem, directory: Path, keep: Path | None = None) -> None:
    """Removes compaction vector files no generation needs any longer (all but ``keep``,
    the one the collection maps now): after a checkpoint copied them into its generation,
    or after a crash; and graph files a child wrote beside them that no segment took (a
    crash's, or a seal's that failed)."""
    for path in [*directory.glob(f"{PREFIX}*.npy"), *directory.glob(f"{PREFIX}*{graph_child.SUFFIX}")]:
        if keep is None or path.name != keep.name:
            try:
                fs.remove(path)
            except OSError:  # best effort; the next checkpoint or start tries again
                log.warning("cannot remove %s", path)
