"""One sealed segment: an immutable unit of a collection's records (docs/segments.md).

A ``Segment`` holds the structures today's ``State`` (storage/state.py) holds, in its own
label space 0..slots-1: the vectors (mapped from its directory), the record columns, the
metadata index, the full-text index and an HNSW graph (None below
``Tuning.exact_threshold``: searched exactly). It is written once, to its own directory,
and never changes afterwards, except for its *delete bitmap*: an upsert or a delete of one
of its ids marks the label deleted here (the record then lives in the tail, or nowhere).
The bitmap is written beside the directory by each checkpoint that changed it
(``<name>.deletes-<seq>``), and named, with its sha256, by the MANIFEST.

    seg-<seq>-<tag>/        vectors.npy, records.msgpack, index.hnsw (optional)
    seg-<seq>-<tag>.deletes-<seq>   np.packbits of the deleted labels (absent: none)

Thread-safety: as the collection's ``State``: queries read it under the collection's read
lock, ``delete`` runs under its write lock.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vectord.errors import DataLossError
from . import layout as disk
from .analyzers import analyzer, fulltext_config
from .fsio import FileSystem
from .fulltext import FullTextIndex
from .index import HnswIndex, IndexSearchFailed, exact_distances, exact_search
from .metadata_index import MetadataIndex
from .planner import EF_PER_FETCH, choose
from .records import RecordStore
from .state import State
from .types import CollectionConfig, Tuning
from .vectors import VectorStore

PREFIX = "seg-"
DELETES = ".deletes-"


@dataclass
class SegmentPlan:
    """How one segment answered a query (``Plan.segments`` in explain)."""

    segment: str  # its name ("tail" for the mutable tail)
    strategy: str  # "exact" or "hnsw"
    candidates: int  # the live records the filter allows in it
    ef: int  # the ef its graph search ran with (0: exact)


@dataclass
class Segment:
    """A sealed segment (see the module docstring)."""

    name: str
    state: State  # labels 0..slots-1; only the delete bitmap changes after sealing
    files: dict[str, Any] = field(default_factory=dict)  # its files' sha256 and size
    index_meta: dict[str, Any] | None = None
    #: The delete bitmap file the MANIFEST names (None: no deletes written yet), and
    #: whether deletes were made since it was written.
    deletes_file: dict[str, Any] | None = None
    dirty: bool = False
    #: Its graph as a child process wrote it before it was written (storage/graph_child.py):
    #: (path, MANIFEST entry), moved into its directory by ``write``; None: saved by ``write``.
    graph_file: tuple[Path, dict[str, Any]] | None = None

    # ------------------------------------------------------------------ reading
    @property
    def slots(self) -> int:
        return self.state.vectors.slots

    @property
    def live(self) -> int:
        return len(self.state.records)

    @property
    def records(self) -> RecordStore:
        return self.state.records

    def label_of(self, id_: str) -> int | None:
        return self.state.records.labels.get(id_)

    def deleted_mask(self) -> np.ndarray:
        """True at every deleted label (the delete bitmap)."""
        mask = np.ones(self.slots, np.bool_)
        mask[self.state.records.live()] = False
        return mask

    def matching(self, where, predicate) -> np.ndarray:
        """Live labels matching a filter, sorted (all live labels without one)."""
        records = self.state.records
        if where is None:
            return records.live()
        candidates, exact = self.state.meta_index.narrow(where, records.live_view())
        if exact:
            return candidates
        if candidates is not None:
            found = [label for label in candidates.tolist()
                     if predicate(records.metadata(label), records.documents[label])]
        else:
            found = [label for label, document, metadata in records.items() if predicate(metadata, document)]
        return np.asarray(sorted(found), np.int64)

    def search(self, queries: np.ndarray, k: int, where, predicate, config: CollectionConfig,
               tuning: Tuning, collection_live: int | None = None,
               ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray, SegmentPlan]:
        """The ``k`` nearest live records matching the filter, per query: (labels,
        distances, plan), labels (n, k) padded with -1. The planner (storage/planner.py)
        chooses graph or exact for this segment, and the ef is this search's own
        (``HnswIndex.search`` takes it per call).

        ``collection_live`` (the collection's live records, all segments): the planner
        weighs this segment's filter selectivity at the collection's size, as it would
        for one state of that size; a query searches every segment, so exact search of
        each costs the collection's size in all (4 segments of 12.5k x 128, 40% deleted:
        each exact, 6.3 ms a query; benchmarks/segments_compaction.py). ``ef_search``: the
        graph's base ef for this segment (the collection's by default; ``planner.segment_ef``)."""
        n = len(queries)
        candidates = self.matching(where, predicate)
        k = min(k, len(candidates))
        live = self.live
        index = self.state.index
        has_graph = index is not None and index.live > 0
        scale = max(collection_live or live, live)
        strategy, ef = choose(len(candidates) * scale // max(live, 1), scale, k, ef_search or config.hnsw["ef_search"],
                              has_graph,
                              tuning.exact_filter_limit, tuning.graph_cost_per_ef)
        plan = SegmentPlan(self.name, strategy, len(candidates), ef)
        if k == 0:
            plan.strategy, plan.ef = "exact", 0
            return np.full((n, 0), -1, np.int64), np.zeros((n, 0), np.float32), plan
        if strategy == "hnsw":
            try:
                if where is None:
                    labels, dist, plan.ef = index.search(queries, min(k, index.live), ef=ef)
                    return _padded(labels, dist, k) + (plan,)
                return self._graph_filtered(queries, k, ef, candidates, config) + (plan,)
            except IndexSearchFailed:
                plan.strategy, plan.ef = "exact", 0
        labels, dist = self._exact(candidates, queries, k, config)
        return _padded(labels, dist, k) + (plan,)

    def _exact(self, labels: np.ndarray, queries: np.ndarray, k: int, config: CollectionConfig):
        store = self.state.vectors
        if len(labels) == store.slots:
            return exact_search(store.all(), store.sqnorms, labels, queries, k, config.metric)
        if 2 * len(labels) >= store.slots:
            # most slots wanted: one pass over the mapped rows, the others' distances made
            # infinite, costs less than gathering the wanted rows (a segment with deletes)
            return _exact_masked(store, labels, queries, k, config.metric)
        return exact_search(store.take(labels), store.sqnorms[labels], labels, queries, k, config.metric)

    def _graph_filtered(self, queries: np.ndarray, k: int, ef: int, allowed: np.ndarray,
                        config: CollectionConfig):
        """Oversampled graph search, the allowed labels kept; a short row finished exactly."""
        index = self.state.index
        fetch = min(index.live, max(k, int(ef / EF_PER_FETCH)))
        labels, dist, _ = index.search(queries, fetch, ef=ef)
        out_l = np.full((len(queries), k), -1, np.int64)
        out_d = np.zeros((len(queries), k), np.float32)
        last = len(allowed) - 1
        for i in range(len(queries)):
            row = labels[i]
            keep = np.flatnonzero(allowed[np.minimum(np.searchsorted(allowed, row), last)] == row)[:k]
            row_l, row_d = row[keep], dist[i][keep]
            if len(row_l) < k:
                row_l, row_d = self._exact(allowed, queries[i:i + 1], k, config)
                row_l, row_d = row_l[0], row_d[0]
            out_l[i, :len(row_l)], out_d[i, :len(row_d)] = row_l, row_d
        return out_l, out_d

    # ------------------------------------------------------------------ the one change
    def delete(self, labels: list[int]) -> None:
        """Marks live labels deleted (the write lock held): the bitmap, and the derived
        structures' view of it, so that queries never return them."""
        if not labels:
            return
        state = self.state
        for label in labels:
            _, metadata = state.records.drop(label)
            state.meta_index.remove(label, metadata)
            if state.fulltext is not None:
                state.fulltext.remove(label)
        if state.index is not None:
            state.index.mark_deleted(labels)
        self.dirty = True

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, vectors: VectorStore, records: RecordStore, config: CollectionConfig, tuning: Tuning,
              index: HnswIndex | None, fulltext: FullTextIndex | None,
              meta_index: MetadataIndex | None = None, name: str | None = None,
              graph_file: tuple[Path, dict[str, Any]] | None = None) -> "Segment":
        """A segment of compacted structures (labels 0..n-1, all live), e.g. from
        ``compaction.build``; builds the graph when there is none and it is large enough.
        ``graph_file``: that graph as a child process wrote it (``Segment.graph_file``)."""
        if index is None and len(records) >= tuning.exact_threshold:
            hnsw = config.hnsw
            index = HnswIndex.create(config.metric, config.dim, hnsw["m"], hnsw["ef_construction"],
                                     hnsw["ef_search"], capacity=max(vectors.slots, 16),
                                     threads=tuning.index_threads)
            for part in np.array_split(records.live(), max(1, vectors.slots // 65536 + 1)):
                index.add(vectors.take(part), part)
        if index is not None:
            index.covered = vectors.slots
        if meta_index is None:
            meta_index = MetadataIndex.build_groups(records.metadata_groups())
        state = State(vectors, records, meta_index, fulltext, index)
        return cls(name or f"{PREFIX}new-{uuid.uuid4().hex[:8]}", state, graph_file=graph_file)

    def write(self, fs: FileSystem, directory: Path, seq: int) -> None:
        """Writes the segment's directory durably and maps its vectors from it; names it
        ``seg-<seq>-<tag>`` (a fresh name: a directory is never written twice). Its graph
        is the file a child wrote (``graph_file``) when there is one, else saved here."""
        name = f"{PREFIX}{seq:020d}-{uuid.uuid4().hex[:8]}"
        state = self.state
        if len(state.records) != state.vectors.slots:
            raise AssertionError(f"segment {name}: written with deleted slots (build it compacted)")
        written, files, index_meta = disk.write_generation(
            fs, directory, seq, state.vectors, state.records.to_columns(), state.index, name=name,
            graph_file=self.graph_file)
        self.graph_file = None  # moved
        built_from = state.vectors.filename  # a compaction-style file a seal or merge wrote, or None
        old = state.vectors.rebase(directory / written / disk.VECTORS)
        del old
        self.name, self.files, self.index_meta = written, files, index_meta
        if built_from is not None and built_from.name.startswith("compact-"):
            fs.remove(built_from)  # copied into the segment (else removed at the next start)

    def write_deletes(self, fs: FileSystem, directory: Path, seq: int) -> None:
        """Writes the delete bitmap (when deletes were made since the last) as a new file."""
        if not self.dirty and (self.deletes_file is not None or self.live == self.slots):
            return
        data = np.packbits(self.deleted_mask()).tobytes()
        file = f"{self.name}{DELETES}{seq:020d}"
        fs.write_file(directory / file, data)
        self.deletes_file = {"file": file, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        self.dirty = False

    def entry(self) -> dict[str, Any]:
        """What the MANIFEST lists of this segment."""
        return {"name": self.name, "slots": self.slots, "files": self.files, "index": self.index_meta,
                "deletes": self.deletes_file}

    @classmethod
    def load(cls, directory: Path, entry: dict[str, Any], config: CollectionConfig, tuning: Tuning) -> "Segment":
        """Loads and verifies one segment the MANIFEST lists, then applies its bitmap.

        Raises:
            DataLossError: a file is missing or fails its checksum (the graph excepted: a
                bad graph is rebuilt from the verified vectors).
        """
        name = entry["name"]
        if not isinstance(name, str) or not name.startswith(PREFIX) or "/" in name:
            raise DataLossError(f"collection {directory.name}: MANIFEST lists a segment named {name!r}")
        fake = {"generation": name, "files": entry["files"], "config": asdict(config),
                "slots": entry["slots"], "index": entry.get("index")}
        vectors, records, index_path = disk.load_generation(directory, fake)
        index = None
        if index_path is not None:
            hnsw = config.hnsw
            try:
                index = HnswIndex.load(index_path, config.metric, config.dim, hnsw["m"], hnsw["ef_construction"],
                                       hnsw["ef_search"], capacity=vectors.slots, deleted=0,
                                       threads=tuning.index_threads, covered=vectors.slots)
            except (RuntimeError, ValueError, MemoryError):
                index = None
        fulltext = None
        analyze = analyzer(fulltext_config(config.fulltext))
        if analyze is not None:
            documents = records.documents
            fulltext = FullTextIndex.build(analyze, ((label, documents[label]) for label in records.live().tolist()))
        segment = cls.build(vectors, records, config, tuning, index, fulltext, name=name)
        segment.files, segment.index_meta = entry["files"], entry.get("index")
        deletes = entry.get("deletes")
        if deletes:
            path = directory / deletes["file"]
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise DataLossError(f"{path}: missing ({exc})") from exc
            if len(data) != deletes["size"] or hashlib.sha256(data).hexdigest() != deletes["sha256"]:
                raise DataLossError(f"{path}: checksum mismatch (file damaged)")
            mask = np.unpackbits(np.frombuffer(data, np.uint8))[:segment.slots].astype(bool)
            segment.delete(np.flatnonzero(mask).tolist())
            segment.deletes_file, segment.dirty = deletes, False
        return segment


def merge_build(frozen: list, config: CollectionConfig, tuning: Tuning, fs: FileSystem | None = None,
                directory: Path | None = None) -> "Segment":
    """One segment of the live records of several segments' ``Frozen`` views
    (storage/compaction.py), in order, labels 0..n-1; built under no lock.

    With ``directory``, the rows are written block by block to a ``compact-*.npy`` file
    there (as compaction writes its vectors; ``Segment.write`` then copies it into the
    segment's directory and the caller removes it) and mapped, so that a merge adds its
    graph to the footprint, not a copy of the vectors; without, they are gathered in
    memory. The graph is built by a thread ``tuning.maintenance_nice`` steps lower,
    reading the sources again with plain reads (``compaction._fill_graph``).
    """
    from .compaction import fill_graph, write_rows  # compaction's rows file and graph thread
    live = sum(len(view.labels) for view in frozen)

    def blocks():
        for view in frozen:
            yield from view.vectors.blocks(view.labels)

    vectors = write_rows(fs, directory if live else None, blocks, live, config.dim,
                         np.concatenate([view.sqnorms for view in frozen]) if frozen else np.zeros(0, np.float32))
    ids: list = []
    documents: list = []
    metadatas: list = []
    for view in frozen:
        order = view.labels.tolist()
        ids += [view.ids[label] for label in order]
        documents += [view.documents[label] for label in order]
        metadatas += [view.metadatas[label] for label in order]
    records = RecordStore.from_columns(list(range(live)), ids, documents, metadatas, slots=live)
    index, graph_file = None, None
    if live >= tuning.exact_threshold:
        hnsw = config.hnsw
        index = HnswIndex.create(config.metric, config.dim, hnsw["m"], hnsw["ef_construction"], hnsw["ef_search"],
                                 capacity=max(live, 16), threads=min(tuning.maintenance_threads, tuning.index_threads))
        graph_file = fill_graph(index, blocks, tuning.maintenance_nice, vectors, graph_child_of(tuning))
        index.threads = tuning.index_threads
    fulltext = None
    analyze = frozen[0].analyze if frozen else None
    if analyze is not None:
        fulltext = FullTextIndex.build(analyze, enumerate(documents))
    return Segment.build(vectors, records, config, tuning, index, fulltext, graph_file=graph_file)


def graph_child_of(tuning: Tuning) -> tuple[int, int] | None:
    """(threads, nice) of the child process that writes a new segment's large graph
    (storage/graph_child.py), or None: ``Tuning.graph_in_child`` off."""
    if not tuning.graph_in_child:
        return None
    return min(tuning.maintenance_threads, tuning.index_threads), tuning.maintenance_nice


def merge_all(segments: list["Segment"], max_rows: int = 0) -> list[int] | None:
    """The positions of the segments to merge once a collection is done ingesting: all of
    them, or with ``max_rows`` the smallest ones whose live records fit in it together
    (at least two; else None)."""
    order = sorted(range(len(segments)), key=lambda i: segments[i].live)
    pick, total = [], 0
    for i in order:
        if max_rows and total + segments[i].live > max_rows:
            break
        pick.append(i)
        total += segments[i].live
    return sorted(pick) if len(pick) >= 2 else None


def _exact_masked(store: VectorStore, labels: np.ndarray, queries: np.ndarray, k: int, metric: str):
    """``exact_search`` over ``labels`` (sorted), computed over every slot of ``store``."""
    slots = store.slots
    k = min(k, len(labels))
    dist = exact_distances(store.all(), store.sqnorms[:slots], queries, metric)
    wanted = np.zeros(slots, np.bool_)
    wanted[labels] = True
    dist[:, ~wanted] = np.inf
    part = np.argpartition(dist, k - 1, axis=1)[:, :k] if k < slots else np.broadcast_to(np.arange(slots), dist.shape)
    part_dist = np.take_along_axis(dist, part, axis=1)
    order = np.argsort(part_dist, axis=1, kind="stable")
    best = np.take_along_axis(part, order, axis=1)
    return best.astype(np.int64), np.take_along_axis(part_dist, order, axis=1).astype(np.float32)


def _padded(labels: np.ndarray, dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if labels.shape[1] < k:
        pad = k - labels.shape[1]
        labels = np.pad(labels, ((0, 0), (0, pad)), constant_values=-1)
        dist = np.pad(dist, ((0, 0), (0, pad)))
    return labels.astype(np.int64, copy=False), dist.astype(np.float32, copy=False)


def merge_topk(parts: list[tuple[int, np.ndarray, np.ndarray]], k: int,
               n: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query, the ``k`` nearest of several holders' results.

    ``parts``: (holder number, labels (n, k_i) padded with -1, distances); ``n``: the
    queries (for when ``parts`` is empty). Returns (holders, labels, distances), each
    (n, k), padded with holder -1 / label -1. A query runs this once, so it is a few
    whole-array steps, not one per part.
    """
    if not parts:
        return np.full((n, k), -1, np.int64), np.full((n, k), -1, np.int64), np.zeros((n, k), np.float32)
    if len(parts[0][1]) == 1:  # one query (the common case): a few dozen hits, sorted in Python
        return _merge_one(parts, k)
    widths = [labels.shape[1] for _, labels, _ in parts]
    labels = np.concatenate([labels for _, labels, _ in parts], axis=1)
    n = len(labels)
    holders = np.broadcast_to(np.repeat(np.asarray([h for h, _, _ in parts], np.int64), widths), labels.shape)
    dist = np.concatenate([d for _, _, d in parts], axis=1).astype(np.float32, copy=False)
    dist[labels < 0] = np.inf
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    rows = np.arange(n)[:, None]
    out_h, out_l, out_d = holders[rows, order], labels[rows, order], dist[rows, order]
    missing = ~np.isfinite(out_d)
    if missing.any():
        out_h[missing], out_l[missing], out_d[missing] = -1, -1, 0.0
    if out_l.shape[1] < k:
        pad = ((0, 0), (0, k - out_l.shape[1]))
        out_h = np.pad(out_h, pad, constant_values=-1)
        out_l = np.pad(out_l, pad, constant_values=-1)
        out_d = np.pad(out_d, pad)
    return out_h, out_l, out_d


def _merge_one(parts: list[tuple[int, np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``merge_topk`` of one query: on 2-5 parts of 10 hits, numpy's per-call cost was most
    of a query's merge (0.1 ms), a Python sort of the hits takes a tenth of it."""
    hits = [(d, holder, label) for holder, labels, dist in parts
            for label, d in zip(labels[0].tolist(), dist[0].tolist()) if label >= 0]
    hits.sort(key=lambda hit: hit[0])  # stable: ties keep the parts' order
    del hits[k:]
    out_h = np.full((1, k), -1, np.int64)
    out_l = np.full((1, k), -1, np.int64)
    out_d = np.zeros((1, k), np.float32)
    if hits:
        d, h, l = zip(*hits)
        out_h[0, :len(hits)], out_l[0, :len(hits)], out_d[0, :len(hits)] = h, l, d
    return out_h, out_l, out_d


def tiered_merge(segments: list["Segment"], factor: int = 4, min_rows: int = 0,
                 max_rows: int = 0) -> list[int] | None:
    """The positions (ascending) of the segments to merge next, or None: a tiered policy.

    A tier is the segments whose live counts are under ``factor`` x the smallest one's;
    once it holds ``factor`` segments they are merged into one (the next tier up), so a
    collection ingesting steadily holds O(factor x log(n)) segments and each record is
    rewritten O(log(n)) times. A segment whose live count fell under ``min_rows`` (by
    deletes) is merged with a neighbour. ``factor`` 2 with nothing else arriving merges
    everything, step by step, into one segment. With ``max_rows``, no merge makes a segment
    of more live records than that (so that a compaction never rebuilds more).
    """
    if len(segments) < 2:
        return None
    sizes = [max(1, s.live) for s in segments]
    order = sorted(range(len(segments)), key=lambda i: sizes[i])
    smallest = sizes[order[0]]
    tier = [i for i in order if sizes[i] < smallest * factor][:factor]
    if len(tier) >= factor and (not max_rows or sum(sizes[i] for i in tier) <= max_rows):
        return sorted(tier)
    small = [i for i in range(len(segments)) if segments[i].live < min_rows]
    if small:
        i = small[0]
        return [i, i + 1] if i + 1 < len(segments) else [i - 1, i]
    return None
