"""The gateway's engine: the same methods as ``storage.Database`` and ``storage.Collection``
(the ones the server's servicers call), answered by shard actors.

So the servicers of ``vectord.server`` serve a cluster unchanged: one code path for request
validation, conversion and reply budgets. Collection settings are validated by an in-memory
``storage.Database`` that holds every collection's config and no records (the catalog): the
single-node rules and messages, for free. Texts (documents and query texts) are embedded
once, here, with the built-in encoder; the shards store plain vectors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from typing import Any, Iterable, Sequence

import numpy as np

from vectord.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnimplementedError,
    VectordError,
)
from vectord.storage import Collection, CollectionConfig, CollectionInfo, Records, WriteResult
from vectord.storage import chunking, validation
from vectord.storage.collection import GET_INCLUDE_DEFAULT
from vectord.storage.search import QUERY_INCLUDE_DEFAULT
from vectord.storage.types import HitColumns
from vectord.storage.planner import Plan
from vectord.storage.ranking import check_query_texts, check_rank
from vectord.storage.search import check_group, check_max_distance

from . import ranked, routing
from .replica import shard_ef
from .shards import Replica, ShardSet

log = logging.getLogger(__name__)

#: Queries up to this n_results get their hits' documents, metadata and embeddings with the
#: search, in one round (cluster/engine.py, query_with_plan); deeper ones read them in a
#: second round, for the final k only.
INLINE_COLUMNS_MAX = int(os.environ.get("VECTORD_CLUSTER_INLINE_COLUMNS", "32"))  # 0: always two rounds

#: Collection metadata keys that chose the layout of a new collection before CreateCollection
#: had shards/replicas fields; still read (and removed before storing) for older clients.
SHARDS_KEY, REPLICAS_KEY = "vectord:shards", "vectord:replicas"


@dataclasses.dataclass
class ShardedCollectionInfo(CollectionInfo):
    """A collection's info with its layout, which CollectionInfo.shards/replicas report
    (server/convert.py reads them; one server's info has none and reports 1 x 1)."""

    shards: int = 1
    replicas: int = 1


#: The model sha256 that the current gRPC call says embedded its vectors (set by the
#: gateway from the call metadata of `vectord cluster import`'s writes; cluster/ingest.py).
_imported = threading.local()


@contextlib.contextmanager
def vectors_embedded_by(sha256: str | None):
    """Within: writes accept vectors for a collection whose model has this sha256."""
    _imported.sha256 = sha256
    try:
        yield
    finally:
        _imported.sha256 = None


def unimplemented(what: str) -> UnimplementedError:
    return UnimplementedError(f"{what} is not supported by the vectord cluster gateway yet "
                              "(see docs/cluster.md, 'Not handled yet')")


class ClusterCollection:
    """A collection spread over shard actors, with the methods the servicers call."""

    def __init__(self, cluster: "ClusterDatabase", table: routing.RoutingTable, shards: ShardSet) -> None:
        self.cluster = cluster
        self.table = table
        self.shards = shards
        self.encoders = cluster.encoders
        # info()'s record count, reused until the next write through this gateway (the only
        # writer: it numbers every shard's writes): budgets read it on every get and query
        self._generation = 0
        self._count_cache: tuple[int, int] | None = None

    @property
    def config(self) -> CollectionConfig:
        return self.cluster.catalog.get_collection(self.table.name).config

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def compacted_slots_total(self) -> int:
        """Deleted slots compacted away so far, summed over the shards (one in-sync replica
        each: Admin.Checkpoint reports the difference a checkpoint made)."""
        import ray

        refs = [s.in_sync()[0].actor.compacted.remote() for s in self.shards.shards if s.in_sync()]
        return sum(ray.get(refs, timeout=self.shards.timeout_s))

    # ------------------------------------------------------------------ writes
    def add(self, ids, embeddings=None, documents=None, metadatas=None) -> WriteResult:
        return self._put("add", ids, embeddings, documents, metadatas)

    def upsert(self, ids, embeddings=None, documents=None, metadatas=None) -> WriteResult:
        return self._put("upsert", ids, embeddings, documents, metadatas)

    def update(self, ids, embeddings=None, documents=None, metadatas=None) -> WriteResult:
        return self._put("update", ids, embeddings, documents, metadatas)

    def put_chunked(self, kind: str, ids, documents, metadatas=None, tokens: int = 0,
                    overlap: int = 0) -> WriteResult:
        """As one server's put_chunked (docs/long-documents.md): each document becomes the
        chunk records ``f"{id}#{j}"``, embedded once here. A source and its chunks route to
        one shard (routing.route_key), so replacing a source's chunks is one numbered write
        of that shard, which its replicas apply atomically (cluster/replica.py)."""
        config = self.config
        ids, documents, metadatas = chunking.check_request(kind, config, ids, documents, metadatas)
        if not self.table.by_source:
            raise FailedPreconditionError(
                f"chunking: collection {config.name!r} was created before the cluster routed chunks by their "
                "source id, so a source's chunks could be spread over shards; copy it into a new collection "
                "(vectord export, then import) to write chunks")
        encoder = self.cluster.catalog.get_collection(config.name)._encoder("documents")
        chunks = chunking.cut(encoder, ids, documents, metadatas, tokens, overlap)
        chunk_ids, chunk_docs, chunk_metas, owner = chunks.ids, chunks.documents, chunks.metadatas, chunks.owner
        vectors = validation.vectors(encoder.embed(chunk_docs) if chunk_docs else np.empty((0, config.dim)),
                                     len(chunk_ids), config.dim, config.metric, chunk_ids)
        groups = self.table.group(ids)
        shard_of_source = {i: s for s, positions in groups.items() for i in positions}
        rows: dict[int, list[int]] = {s: [] for s in groups}
        for row, i in enumerate(owner):
            rows[shard_of_source[i]].append(row)
        parts = {s: ("chunked", {"sources": [ids[i] for i in positions],
                                 "ids": [chunk_ids[r] for r in rows[s]], "embeddings": vectors[rows[s]],
                                 "documents": [chunk_docs[r] for r in rows[s]],
                                 "metadatas": [chunk_metas[r] for r in rows[s]]})
                 for s, positions in groups.items()}

        def check(primaries: dict[int, Replica]) -> None:
            """add refuses a source with records (its own id or chunks) or a new chunk id
            that exists, on the shards' in-sync replicas under their locks."""
            if kind != "add":
                return
            found = self._fetch(primaries, "chunk_state",
                                {s: (parts[s][1]["sources"], parts[s][1]["ids"]) for s in primaries})
            for s in sorted(found):
                state = found[s]
                if state["old"] or state["taken"]:
                    record = state["old"][0] if state["old"] else state["taken"][0]
                    what = (f"source {state['source_of'][record]!r} has" if state["old"]
                            else "the id of a new chunk has")
                    raise AlreadyExistsError(
                        f"add: {what} a record ({record!r}) in collection {config.name!r}; "
                        "nothing was written (use upsert to replace a source's chunks)")

        return self._sum(self._write(parts, check))

    def _put(self, kind: str, ids, embeddings, documents, metadatas) -> WriteResult:
        config = self.config
        ids = validation.ids(ids)
        n = len(ids)
        if embeddings is not None and config.encoder is not None and \
                getattr(_imported, "sha256", None) != config.encoder["sha256"]:  # else: the import's, same model
            raise InvalidArgumentError(
                f"embeddings: collection {config.name!r} embeds its documents with the built-in model "
                f"{config.encoder['name']!r} and takes no embeddings, so that vectors of two models are "
                f"never mixed; pass documents instead, or create a collection with dim={config.dim} "
                "(and no encoder) for your own vectors")
        if documents is not None:
            documents = validation.documents(documents, n)
        truncated: list[int] = []  # documents longer than the encoder's window (never silent)
        if embeddings is None and documents is not None and config.encoder is not None:
            embeddings = self.cluster.embed(config, documents, "documents", truncated)  # once, here
        if embeddings is not None:
            embeddings = validation.vectors(embeddings, n, config.dim, config.metric, ids)
        elif kind == "add":
            raise InvalidArgumentError("embeddings: required by add" + (
                " (or documents, which this collection's encoder embeds)" if config.encoder
                else " (this collection has no encoder)"))
        if metadatas is not None:
            metadatas = validation.metadatas(metadatas, n)
        groups = self.table.group(ids)
        parts = {}
        for shard, positions in groups.items():
            args: dict[str, Any] = {"ids": [ids[i] for i in positions]}
            if embeddings is not None:
                args["embeddings"] = embeddings[positions]
            if documents is not None:
                args["documents"] = [documents[i] for i in positions]
            if metadatas is not None:
                args["metadatas"] = [metadatas[i] for i in positions]
            parts[shard] = ("put", args)

        def check(primaries: dict[int, Replica]) -> None:
            """Existence rules of add and update (and of upsert without vectors), on the
            shards' in-sync replicas, under the shards' locks: no write slips in between."""
            if kind == "upsert" and embeddings is not None:
                return
            found = self._fetch({s: primaries[s] for s in groups}, "match",
                                {s: ([ids[i] for i in groups[s]], None) for s in groups})
            exists = set().union(*found.values()) if found else set()
            for i, record_id in enumerate(ids):
                if kind == "add" and record_id in exists:
                    raise AlreadyExistsError(
                        f"add: record {record_id!r} (ids[{i}]) already exists in collection {config.name!r}; "
                        "nothing was written (use upsert to replace)")
                if kind == "update" and record_id not in exists:
                    raise NotFoundError(
                        f"update: record {record_id!r} (ids[{i}]) does not exist in collection "
                        f"{config.name!r}; nothing was written")
                if kind == "upsert" and record_id not in exists:
                    raise InvalidArgumentError(f"embeddings: record {record_id!r} (ids[{i}]) is new and needs a vector")

        result = self._sum(self._write(parts, check))
        result.truncated_texts = len(truncated)
        return result

    def _write(self, parts, check=None) -> list[dict[str, Any]]:
        if not parts:
            return []
        try:
            return self.shards.write(parts, self.cluster.write_level, check)
        finally:
            self._generation += 1

    def _fetch(self, replicas: dict[int, Replica], method: str, args: dict[int, tuple]) -> dict[int, Any]:
        """Calls on given replicas (the write path's checks); a failure is UNAVAILABLE."""
        import ray

        from .shards import unwrap

        refs = {s: getattr(r.actor, method).remote(*args[s]) for s, r in replicas.items()}
        out = {}
        for s, ref in refs.items():
            try:
                out[s] = ray.get(ref, timeout=self.shards.timeout_s)
            except Exception as exc:
                inner = unwrap(exc)
                if isinstance(inner, VectordError):
                    raise inner from None
                replicas[s].mark_stale(f"{method} failed: {exc.__class__.__name__}")
                from vectord.errors import UnavailableError

                raise UnavailableError(f"collection {self.name!r} shard {s}: replica {replicas[s].name} did "
                                       "not answer; nothing was written, retry") from None
        return out

    def _sum(self, results: list[dict[str, Any]]) -> WriteResult:
        out = WriteResult()
        for r in results:
            out.inserted += r.get("inserted", 0)
            out.updated += r.get("updated", 0)
            out.unchanged += r.get("unchanged", 0)
            out.deleted += r.get("deleted", 0)
        out.seq = sum(s.seq for s in self.shards.shards)
        return out

    def delete(self, ids: Sequence[str] | None = None, where=None) -> WriteResult:
        if ids is not None:
            ids = validation.ids(ids, allow_empty_batch=True)
        if ids is None and where is None:
            raise InvalidArgumentError("delete: give ids, where or where_document (refusing to delete everything)")
        if ids is not None and where is None:  # by id: no lookup needed, deleting is idempotent
            groups = self.table.group(ids)
            parts = {s: ("delete", {"ids": [ids[i] for i in pos]}) for s, pos in groups.items()}
            return self._sum(self._write(parts))
        # by filter: resolved to ids on each shard under its lock, then deleted by id there
        touched = list(self.table.group(ids)) if ids is not None else range(self.table.shards)
        selected: dict[int, list[str]] = {}

        def resolve(primaries: dict[int, Replica]) -> None:
            asked = {s: ([ids[i] for i in self.table.group(ids)[s]] if ids is not None else None, where)
                     for s in primaries}
            selected.update(self._fetch(primaries, "match", asked))
            for s, found in selected.items():
                parts[s][1]["ids"] = found

        parts = {s: ("delete", {"ids": []}) for s in touched}
        return self._sum(self._write(parts, resolve))

    # ------------------------------------------------------------------ reads
    def count(self, where=None) -> int:
        calls = {s: ("count", (), {"where": where}) for s in range(self.table.shards)}
        return sum(self.shards.fanout(calls).values())

    def info(self) -> ShardedCollectionInfo:
        cached = self._count_cache
        if cached is not None and cached[0] == self._generation:
            count = cached[1]
        else:
            generation = self._generation
            count = self.count()
            if generation == self._generation:  # no write ended meanwhile
                self._count_cache = (generation, count)
        return ShardedCollectionInfo(config=self.config, count=count, seq=sum(s.seq for s in self.shards.shards),
                                     shards=self.table.shards, replicas=self.table.replicas)

    @staticmethod
    def _include(include: Iterable[str] | None, default: frozenset[str]) -> frozenset[str]:
        return Collection._include(include, default)

    def get(self, ids: Sequence[str] | None = None, where=None, limit: int | None = None,
            offset: int | None = None, include: Iterable[str] | None = None, after: str | None = None) -> Records:
        """By ids: in the order asked. Otherwise in id order (a single server returns
        insertion order; across shards id order is the one order that pages cheaply)."""
        include = self._include(include, GET_INCLUDE_DEFAULT)
        offset = offset or 0
        if offset < 0 or (limit is not None and limit < 0):
            raise InvalidArgumentError(f"limit and offset must not be negative, got {limit}, {offset}")
        if ids is not None:
            ids = validation.ids(ids, allow_empty_batch=True)
            groups = self.table.group(ids)
            found = self.shards.fanout({s: ("get", (), {"ids": [ids[i] for i in pos], "where": where,
                                                       "include": list(include)})
                                        for s, pos in groups.items()})
            merged = _merge_rows(list(found.values()), include)
            position = {record_id: i for i, record_id in enumerate(merged.ids)}
            order = [position[i] for i in ids if i in position]
            end = None if not limit else offset + limit
            return _take(merged, order[offset:end], include)
        # id order on every shard, merged; each shard gives at most offset + limit (+1: "more?")
        page = limit or (1000 if after is not None else 0)
        wanted = offset + page if page else 0
        kwargs = {"where": where, "include": list(include), "after": after if after is not None else "",
                  "limit": wanted + 1 if wanted else 10 ** 9}
        if not wanted:  # everything: the engine's id-ordered pages need a limit
            kwargs["limit"] = 10 ** 9
        found = self.shards.fanout({s: ("get", (), kwargs) for s in range(self.table.shards)})
        merged = _merge_rows(list(found.values()), include)
        order = sorted(range(len(merged.ids)), key=lambda i: merged.ids[i])
        more = bool(wanted) and len(order) > wanted
        window = order[offset:wanted] if wanted else order[offset:]
        out = _take(merged, window, include)
        if after is not None and more and window:
            out.next_after = merged.ids[window[-1]]
        return out

    def query(self, queries=None, n_results: int = 10, where=None, include=None, texts=None, **kwargs):
        return self.query_with_plan(queries, n_results, where, include, texts, **kwargs)[0]

    def query_with_plan(self, queries=None, n_results: int = 10, where=None, include=None, texts=None,
                        max_distance=None, group_by=None, group_size: int = 1, rank: str = "vector",
                        fusion: str = "rrf", hybrid_alpha: float = 0.5,
                        columns: bool = False) -> tuple[list[Records] | HitColumns, Plan]:
        """As one server's query, over the shards: every shard is asked for the full depth
        (the global top k may all live on one shard), the lists are merged, ranked and
        grouped here (cluster/ranked.py), and the final hits' columns read last.

        ``columns``: as the engine's (storage/search.py): bare hits of a vector ranking come
        back as one HitColumns for all the queries, the packed reply's shape."""
        started = time.perf_counter()
        include = self._include(include, QUERY_INCLUDE_DEFAULT)
        n_results = validation.n_results(n_results)
        max_distance = check_max_distance(max_distance)
        parts = check_group(group_by, group_size, n_results)
        group_size = group_size or 1
        rank, fusion, alpha = check_rank(rank, fusion, hybrid_alpha)
        if rank == "vector":
            queries = self._query_vectors(queries, texts)
            count = len(queries)
        else:
            queries = self._ranked_inputs(rank, queries, texts, max_distance)
            count = len(texts)

        wanted = sorted(include - {"distances"})  # the hits' columns beyond their distances
        # a small k: the shards send their hits' columns with them, so one round answers (a
        # second round, for the final k's columns only, costs a loopback round trip and the
        # slowest shard's wake-up, more than (shards - 1) x k extra rows)
        inline = rank == "vector" and parts is None and bool(wanted) and n_results <= INLINE_COLUMNS_MAX
        replies: dict[int, Any] = {}

        def gather(depth: int) -> tuple[list[list[ranked.Hit]], list[bool]]:
            """Each query's merged ranking ``depth`` deep, and whether the shards ran out."""
            if rank == "vector":
                asked = {"vectors": queries, "n_results": depth, "where": where, "max_distance": max_distance,
                         **({"columns": wanted} if inline else {})}  # one object: its frame is built once
                found = self.shards.fanout({s: ("query", (), asked) for s in range(self.table.shards)})
                replies.update(found)
                merged = ranked.merge_vector_many([found[s] for s in sorted(found)], count, depth)
                return merged, [len(m) < depth for m in merged]  # short: every shard ran out
            found = self.shards.fanout({s: ("ranked", (), {"rank": rank, "texts": texts, "vectors": queries,
                                                           "depth": depth, "where": where,
                                                           "max_distance": max_distance})
                                        for s in range(self.table.shards)})
            rankings, exhausted = [], []
            for q in range(count):
                per_shard = [found[s][q] for s in found]
                bm25 = ranked.merge_bm25([(p[0], p[1], p[2]) for p in per_shard], depth)
                if rank == "hybrid":
                    near = ranked.merge_vector([(p[3], p[4]) for p in per_shard], depth)
                    rankings.append(ranked.fuse(near, bm25, fusion, alpha))
                    exhausted.append(len(bm25) < depth and len(near) < depth)
                else:
                    rankings.append(bm25)
                    exhausted.append(len(bm25) < depth)
            return rankings, exhausted

        if parts is None:
            rankings, _ = gather(ranked.window(rank, fusion, n_results))
            tops, values = [r[:n_results] for r in rankings], [None] * count
        else:  # grouped: deepened x4 until the groups are full or the shards run out (as storage)
            limit = ranked.group_limit()
            depth = min(ranked.group_depth(rank, fusion, n_results, group_size), limit)
            tops, values, pending = [[] for _ in range(count)], [None] * count, list(range(count))
            while pending:
                rankings, exhausted = gather(depth)
                metadata = self._metadatas({hit[0] for q in pending for hit in rankings[q]})
                still = []
                for q in pending:
                    hits, groups, full = ranked.group(rankings[q], metadata, parts, n_results, group_size)
                    if full or exhausted[q] or depth >= limit:
                        tops[q], values[q] = hits, groups
                    else:
                        still.append(q)
                pending, depth = still, min(depth * 4, limit)
        if columns and rank == "vector" and parts is None and not wanted:
            return self._hit_columns(tops, "distances" in include), self._plan(started, tops, n_results, rank, fusion)
        if inline:
            results = [_inline(top, [replies[s][q][2] for s in replies], include, self.config.dim)
                       for q, top in enumerate(tops)]
        else:
            results = self._fill([[(hit[0], hit[1]) for hit in top] for top in tops], include)
        for records, top, groups in zip(results, tops, values):
            if rank == "vector" and groups is None:
                continue  # the Records are complete: no scores, no groups
            by_id = {hit[0]: n for n, hit in enumerate(top)}
            rows = [by_id[record_id] for record_id in records.ids]  # a hit deleted meanwhile is left out
            if rank != "vector":
                records.scores = np.asarray([top[n][2] for n in rows], np.float32)
            if groups is not None:
                records.groups = [groups[n] for n in rows]
        return results, self._plan(started, tops, n_results, rank, fusion)

    def _plan(self, started: float, tops: list[list[ranked.Hit]], n_results: int, rank: str, fusion: str) -> Plan:
        # explain's ef: the depth each shard searched at (shard_ef of the gateway that made the
        # collection; a shard made by an older gateway searches at the collection's ef)
        return Plan(strategy="cluster", candidates=sum(len(t) for t in tops),
                    ef=max(n_results, shard_ef(self.config.hnsw["ef_search"], self.table.shards,
                                               self.cluster.ef_scale)) if rank == "vector" else 0,
                    elapsed_ms=(time.perf_counter() - started) * 1000, rank=rank,
                    fusion=fusion if rank == "hybrid" else "")

    @staticmethod
    def _hit_columns(tops: list[list[ranked.Hit]], with_distances: bool) -> HitColumns:
        """The merged hits as one HitColumns: no Records per query (a batch's packed reply)."""
        hits = [hit for top in tops for hit in top]
        distances = np.fromiter((hit[1] for hit in hits), np.float32, len(hits)) if with_distances else None
        return HitColumns.of([hit[0] for hit in hits], [len(top) for top in tops], distances)

    def _query_vectors(self, queries, texts) -> np.ndarray:
        """The query vectors of a vector query: given, or the texts embedded once, here."""
        if (queries is None) == (texts is None):
            raise InvalidArgumentError("query: give either query_embeddings or query_texts")
        config = self.config
        if texts is not None:
            if not texts:
                raise InvalidArgumentError("query_texts: at least one text is required")
            validation.query_count(len(texts), "query_texts")
            queries = self.cluster.embed(config, texts, "query_texts")  # once, at the gateway
        queries = np.asarray(queries)
        if queries.ndim != 2 or len(queries) == 0:
            raise InvalidArgumentError(f"query_embeddings: expected a non-empty 2-d array, got shape {queries.shape}")
        validation.query_count(len(queries), "query_embeddings")
        return validation.vectors(queries, len(queries), config.dim, config.metric,
                                  [f"query {i}" for i in range(len(queries))], field="query_embeddings")

    def _ranked_inputs(self, rank: str, queries, texts, max_distance) -> np.ndarray | None:
        """The checks of storage/ranking.py's query at the gateway; the query vectors a bm25
        or hybrid query needs (hybrid, or max_distance), embedded here once."""
        check_query_texts(rank, texts)
        config = self.config  # a collection without a full-text index: its shards refuse (FAILED_PRECONDITION)
        if rank == "bm25" and max_distance is None:
            if queries is not None:
                raise InvalidArgumentError("query_embeddings: rank='bm25' ranks by query_texts alone; "
                                           "give no query_embeddings (or use rank='hybrid', or max_distance)")
            return None
        if queries is None:
            if rank == "bm25" and config.encoder is None:
                raise InvalidArgumentError(
                    f"max_distance: rank='bm25' cuts at the vector distance of each hit to the query, and "
                    f"collection {config.name!r} has no encoder to embed query_texts: give query_embeddings "
                    "(one per query text)")
            queries = self.cluster.embed(config, texts, "query_texts")
        queries = np.asarray(queries)
        if queries.ndim != 2 or len(queries) != len(texts):
            raise InvalidArgumentError(
                f"query_embeddings: rank={rank!r}{' with max_distance' if rank == 'bm25' else ''} needs "
                f"one vector per query text ({len(texts)}), got shape {queries.shape}")
        return validation.vectors(queries, len(queries), config.dim, config.metric,
                                  [f"query {i}" for i in range(len(queries))], field="query_embeddings")

    def _metadatas(self, ids: set[str]) -> dict[str, Any]:
        """Metadata of candidate records (grouping reads them for the whole ranking)."""
        wanted = sorted(ids)
        if not wanted:
            return {}
        found = self.shards.fanout({s: ("get", (), {"ids": [wanted[i] for i in pos], "include": ["metadatas"]})
                                    for s, pos in self.table.group(wanted).items()})
        return {record_id: meta for part in found.values() for record_id, meta in zip(part.ids, part.metadatas or [])}

    def _fill(self, tops: list[list[tuple[str, float]]], include: frozenset[str]) -> list[Records]:
        """Records of the final top k only: their columns are read from their shards now."""
        columns = include - {"distances"}
        rows: dict[str, int] = {}
        merged = Records(ids=[])
        if columns:
            wanted = sorted({record_id for top in tops for record_id, _ in top})
            groups = self.table.group(wanted)
            found = self.shards.fanout({s: ("get", (), {"ids": [wanted[i] for i in pos], "include": list(columns)})
                                        for s, pos in groups.items()})
            merged = _merge_rows(list(found.values()), columns)
            rows = {record_id: i for i, record_id in enumerate(merged.ids)}
        if not columns:  # distances or ids only: nothing to read, nothing missing
            with_distances = "distances" in include
            return [Records(ids=[hit[0] for hit in top],
                            distances=np.fromiter((hit[1] for hit in top), np.float32, len(top))
                            if with_distances else None) for top in tops]
        out = []
        for top in tops:
            present = [(record_id, d) for record_id, d in top if not columns or record_id in rows]
            records = _take(merged, [rows[r] for r, _ in present], columns) if columns else Records(ids=[])
            records.ids = [r for r, _ in present]
            if "distances" in include:
                records.distances = np.asarray([d for _, d in present], np.float32)
            out.append(records)
        return out


def _inline(top: list[ranked.Hit], parts: list[Records], include: frozenset[str], dim: int) -> Records:
    """The final hits' Records from the columns the shards sent with their own hits."""
    where = {record_id: (part, row) for part in parts for row, record_id in enumerate(part.ids)}
    hits = [where[hit[0]] for hit in top]
    out = Records(ids=[hit[0] for hit in top])
    if "distances" in include:
        out.distances = np.asarray([hit[1] for hit in top], np.float32)
    if "documents" in include:
        out.documents = [part.documents[row] for part, row in hits]
    if "metadatas" in include:
        out.metadatas = [part.metadatas[row] for part, row in hits]
    if "embeddings" in include:
        out.embeddings = (np.stack([part.embeddings[row] for part, row in hits]).astype(np.float32, copy=False)
                          if hits else np.empty((0, dim), np.float32))
    return out


def _merge_rows(parts: list[Records], include: Iterable[str]) -> Records:
    include = frozenset(include)
    out = Records(ids=[i for p in parts for i in p.ids])
    if "embeddings" in include:
        arrays = [p.embeddings for p in parts if p.embeddings is not None]
        out.embeddings = np.concatenate(arrays) if arrays else np.empty((0, 0), np.float32)
    if "documents" in include:
        out.documents = [d for p in parts for d in (p.documents or [])]
    if "metadatas" in include:
        out.metadatas = [m for p in parts for m in (p.metadatas or [])]
    return out


def _take(records: Records, rows: list[int], include: Iterable[str]) -> Records:
    include = frozenset(include)
    out = Records(ids=[records.ids[i] for i in rows])
    if "embeddings" in include:
        emb = records.embeddings
        out.embeddings = emb[rows] if emb is not None else np.empty((0, 0), np.float32)
    if "documents" in include:
        out.documents = [records.documents[i] for i in rows]
    if "metadatas" in include:
        out.metadatas = [records.metadatas[i] for i in rows]
    return out
