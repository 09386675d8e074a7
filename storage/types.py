"""Plain data types the engine takes and returns (no gRPC, no numpy views of internals)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np


@dataclass
class CollectionConfig:
    """What defines a collection; fixed at creation and stored in its manifest."""

    id: str
    name: str
    dim: int
    metric: str
    hnsw: dict[str, int]
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at_ms: int = 0
    #: Identity of the built-in encoder that embeds this collection's documents, if any.
    encoder: dict[str, Any] | None = None
    #: Full-text index settings: {"analyzer": "standard" | "cjk" | "none", "stemming": bool,
    #: "stop_words": bool} (storage/analyzers.py); None (MANIFESTs written before the index
    #: existed) means the defaults, analyzers.DEFAULT_FULLTEXT.
    fulltext: dict[str, Any] | None = None


@dataclass
class WriteResult:
    """What a write did; ``seq`` is durable when the write returns."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    seq: int = 0
    #: Documents embedded for this write that were longer than the encoder's window (only
    #: their first ``max_tokens`` tokens made the vector).
    truncated_texts: int = 0


@dataclass
class Records:
    """Records as parallel columns; a column is None when it was not asked for."""

    ids: list[str]
    embeddings: np.ndarray | None = None
    documents: list[str | None] | None = None
    metadatas: list[dict[str, Any]] | None = None
    distances: np.ndarray | None = None
    #: Queries ranked by bm25 or hybrid: each record's score, higher is better (BM25, or the
    #: fused score); None for vector ranking (see storage/ranking.py).
    scores: np.ndarray | None = None
    #: Queries with group_by: each record's group value (parallel to ids).
    groups: list[Any] | None = None
    #: Cursor of the next page (id-ordered pages only); None at the end.
    next_after: str | None = None


def split_rows(everything: Records, counts: list[int], distances: np.ndarray | None) -> list[Records]:
    """``everything`` (the records of several queries' hits, one query after another) cut
    into one Records per query of ``counts[i]`` records, with their ``distances`` when given."""
    results, at = [], 0
    for count in counts:
        end = at + count
        records = Records(ids=everything.ids[at:end])
        if everything.embeddings is not None:
            records.embeddings = everything.embeddings[at:end]
        if everything.documents is not None:
            records.documents = everything.documents[at:end]
        if everything.metadatas is not None:
            records.metadatas = everything.metadatas[at:end]
        if distances is not None:
            records.distances = distances[at:end]
        results.append(records)
        at = end
    return results


@dataclass
class HitColumns:
    """Several queries' bare hits (ids and, when asked for, distances: nothing else) as
    flat columns, the shape of a batch's packed reply (QueryRequest.packed_columns): no
    Records per query and no ``str`` per id on the server.

    ``counts[i]`` hits belong to query i, after those of the queries before it;
    ``ids_joined`` holds every hit's id in UTF-8 with the byte 0xFF between two (a byte
    UTF-8 never uses; empty without hits); ``distances`` is parallel, or None.
    """

    counts: list[int]
    ids_joined: bytes
    distances: np.ndarray | None = None

    @classmethod
    def of(cls, ids: Sequence[str], counts: list[int], distances: np.ndarray | None) -> "HitColumns":
        """The columns of hits given as ids (a query after another, ``counts`` each)."""
        # one join and one encode, in C: U+DCFF encodes to the byte 0xFF under "surrogateescape"
        # (no stored id holds a lone surrogate: storage/validation.py refuses them)
        return cls(counts, "\udcff".join(ids).encode("utf-8", "surrogateescape"), distances)

    def ids(self) -> list[str]:
        """Every hit's id, in order."""
        return split_joined(self.ids_joined)

    def rows(self) -> list[Records]:
        """One Records per query, as a query without columns returns them."""
        return split_rows(Records(ids=self.ids()), self.counts, self.distances)


def split_joined(joined: bytes) -> list[str]:
    """The ids of ``HitColumns.ids_joined``: one decode and one split, both in C (0xFF decodes
    to the lone surrogate U+DCFF under "surrogateescape", which no valid id holds)."""
    return joined.decode("utf-8", "surrogateescape").split("\udcff") if joined else []


@dataclass
class CollectionInfo:
    config: CollectionConfig
    count: int
    seq: int


@dataclass
class Tuning:
    """Engine knobs. Defaults suit production; tests shrink them to reach every path."""

    #: Below this many live records search is exact and no HNSW graph is built; exact
    #: numpy search beats HNSW up to a few thousand vectors (one 384-d query on 2 cores:
    #: exact ~6,200/s at 5k vectors, HNSW at ef=100 ~5,100/s).
    exact_threshold: int = 4096
    #: Filtered queries matching at most this many records are always answered exactly;
    #: above it the planner compares costs (see storage/planner.py).
    exact_filter_limit: int = 0
    #: The planner's cost of one unit of graph-search ef, in exact vector comparisons;
    #: tests set it to 0 to force the graph path whenever a graph exists.
    graph_cost_per_ef: int = 150
    #: Checkpoint when the log exceeds max(min_bytes, ratio * stored data): the O(N)
    #: rewrite is then amortised to O(1) per written byte.
    checkpoint_min_bytes: int = 32 * 1024 * 1024
    checkpoint_ratio: float = 0.5
    #: Compact deleted slots away when they exceed max(min, ratio * slots).
    compact_min_dead: int = 1024
    compact_ratio: float = 0.3
    #: Slots the exact tail (written, not yet in the graph; storage/indexer.py) may hold
    #: before a write waits for the background indexer: bounds what a query reads exactly.
    tail_max: int = 4096
    #: About how long one indexer step keeps searches out of the graph (a query waits at
    #: most that) while queries come; writes go on beside a step (storage/indexer.py).
    index_step_ms: float = 10.0
    #: The same when no search ran since the last step (a bulk load): longer steps cost
    #: hnswlib less (100k GloVe rows added 220 at a time took ~10% longer than 1,000 at a
    #: time); the first query after a quiet spell may wait that long.
    index_step_quiet_ms: float = 40.0
    #: Threads hnswlib may use for building and batched queries.
    index_threads: int = max(1, os.cpu_count() or 1)
    #: Threads a compaction may use to build its new graph while queries go on: one core
    #: fewer than the machine has, so that queries keep one (storage/compaction.py).
    maintenance_threads: int = max(1, (os.cpu_count() or 1) - 1)
    #: How much lower a compaction's build runs in CPU priority (nice steps; 0: as queries).
    maintenance_nice: int = 10
    #: Save a large segment's graph from a child process that builds it first
    #: (storage/graph_child.py), so that no query waits behind hnswlib's save_index, which
    #: holds the GIL (284 ms for 50k x 384). The price: each large graph is built twice,
    #: and a seal, merge or compaction takes about twice as long
    #: (benchmarks/results/segments-compaction-quiet-2026-11-30.md). False: saved in-process.
    graph_in_child: bool = True
    #: Seal the mutable tail into an immutable segment once its live records' vectors hold
    #: ``seal_bytes`` (``seal_rows_for``: 43,690 records of 384 floats; storage/segment.py,
    #: docs/segments.md), or once it holds ``seal_rows`` records when that is set. Both 0:
    #: never (one mutable state). By bytes so that a small collection (GloVe 100k x 50 is
    #: 20 MB) stays one graph, as fast as before segments, while a large one is held as
    #: segments whose upkeep (a compaction, a graph's save) is bounded by their size.
    seal_bytes: int = 64 << 20
    seal_rows: int = 0
    #: Merge ``merge_factor`` sealed segments of one size tier into one (``tiered_merge``).
    merge_factor: int = 4
    #: No merge makes a segment of more live records' vectors than ``max_segment_bytes``
    #: (or records than ``max_segment_rows`` when that is set): the compaction of one
    #: segment, the peak of memory upkeep, adds at most about that much. 0 and 0: no bound.
    max_segment_bytes: int = 256 << 20
    max_segment_rows: int = 0

    def seal_rows_for(self, dim: int) -> int:
        """The tail's live records at which it is sealed (0: never), for vectors of ``dim``."""
        return self.seal_rows or self.seal_bytes // (4 * dim)

    def max_segment_rows_for(self, dim: int) -> int:
        """The most live records a merge may make into one segment (0: no bound); never
        under a seal's size, which would stop every merge."""
        bound = self.max_segment_rows or self.max_segment_bytes // (4 * dim)
        return max(bound, self.seal_rows_for(dim)) if bound else 0


class Embedder(Protocol):
    """What the engine needs of a text encoder (the server passes vectord.encoder's)."""

    name: str
    dim: int
    sha256: str

    def identity(self) -> dict[str, Any]: ...

    def embed(self, texts: Sequence[str], *, truncated: list[int] | None = None) -> np.ndarray:
        """float32 (len(texts), dim); ``truncated``, when given, is extended with the positions
        of the texts longer than the model's window (``max_tokens``), which were cut to it."""
        ...

    #: Word pieces the model reads of one text ([CLS] and [SEP] included).
    max_tokens: int

    def chunk(self, text: str, tokens: int, overlap: int) -> list[str]:
        """``text`` cut into pieces of at most ``tokens`` word pieces, consecutive pieces
        sharing ``overlap`` of them; each piece is a slice of the original text."""
        ...


class EncoderRegistry(Protocol):
    """Finds encoders by name; ``default`` names the one used when none is given."""

    default: str

    def names(self) -> list[str]: ...

    def get(self, name: str) -> Embedder: ...
