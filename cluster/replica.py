"""A shard replica: one detached, named Ray actor per (collection, shard, replica).

It wraps the existing engine (``storage.Database`` with one collection, on the node's own
disk) and adds what replication needs: the number of the last write it applied
(``applied``, durable in ``applied.json``), and a refusal of any write that is not the next
one. Writes arrive as *physical* operations that are idempotent by value: ``put`` (an
upsert of full or partial records) and ``delete`` of ids. The gateway turns add, update and
delete-by-filter into these (checking existence, resolving the filter) before it numbers
them. So:

- a retried write (Ray calls are at-most-once and may fail after running) whose number is
  not above ``applied`` is answered "duplicate" without touching the engine;
- a crash between the engine's fsync and the write of ``applied.json`` leaves ``applied``
  one behind data that already holds the write: replaying it is harmless (an upsert of the
  same values is "unchanged", a delete of gone ids deletes nothing);
- a write whose number skips one is refused ("gap"): the replica missed a write and is out
  of sync until it catches up (``catch_up`` below, driven by the gateway).

A chunked write (``chunked``: a source document's new chunks replace its old ones) is two
engine writes here (delete the old chunks, put the new), made atomic by the replica: readers
wait while it runs (a read-write lock around the read methods), and its arguments are
written durably (``pending.pkl``) before it starts, so a crash in between finishes it when
the replica starts again, before it serves anything.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from vectord.errors import VectordError
from vectord.storage.chunking import CHUNK_KEY, SOURCE_KEY
from vectord.storage.rwlock import RWLock
from vectord.storage.types import HitColumns

SHARD_COLLECTION = "shard"
#: A shard searches with ``ef_search x scale / shards`` of the collection's ef (at least 1, at
#: most the collection's), where the scale grows with the shards: ``1 + EF_SCALE_PER_SHARD x
#: shards`` (1.2 at 2 shards, 1.3 at 3, 1.6 at 6). The merged top k of S shards each searched
#: at ef e recalls about as one graph of the whole at a lower ef, and the more shards the
#: more each must search: hnswlib, cosine, 20k and 60k x 64 random vectors, ef 100 (one node:
#: 0.832 and 0.667): 3 shards at 1.2 recalled 0.815 (short), at 1.3 0.836 and 0.680, at 1.5
#: 0.864 and 0.713; 6 shards at 1.5 0.829 (short), at 1.6 0.847 and 0.685; 2 shards at 1.2
#: 0.836 (docs/cluster.md, "Search depth per shard"). A constant 1.5 searched 15% deeper than
#: one node's recall needs at 3 shards and fell just short of it at 6.
EF_SCALE_PER_SHARD = 0.1


def ef_scale(shards: int) -> float:
    """The default scale of a shard's search depth at ``shards`` shards (see above)."""
    return 1 + EF_SCALE_PER_SHARD * shards


def shard_ef(ef: int, shards: int, scale: float | None = None) -> int:
    """The ef_search of one shard of a collection searched at ``ef`` over ``shards`` shards
    (``scale`` None: ``ef_scale(shards)``; 0: the collection's own ef, every shard as deep
    as one node)."""
    if scale is None:
        scale = ef_scale(shards)
    if scale <= 0 or shards <= 1:
        return ef
    return max(1, min(ef, math.ceil(ef * scale / shards)))


def normal_priority() -> int:
    """Gives this process's threads the scheduling priority of an ordinary process (nice 0)
    where allowed; returns the niceness it ends with.

    Ray starts its workers, actors included, at nice 15 (its ``worker_niceness``) so that
    tasks never starve the raylet. A replica that serves reads is the node's main work: at
    nice 15 each of its wake-ups waits behind every nice-0 process of a busy machine (the
    gateway's first shard reply came 1.5 ms after the replica's own 1 ms of work at a load
    of 7 on 2 cores, benchmarks/results/cluster-2026-11-30-3.md). Lowering niceness needs
    privilege (CAP_SYS_NICE, or RLIMIT_NICE); without it the replica stays where Ray put
    it, which `vectord cluster up`/`join` avoid by starting Ray with RAY_worker_niceness=0
    (docs/cluster.md, "Scheduling priority"). Linux keeps a niceness per thread: every
    thread of the process is set, and threads started later inherit it."""
    try:
        tasks = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tasks = [0]
    for tid in tasks:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) > 0:
                os.setpriority(os.PRIO_PROCESS, tid, 0)
        except OSError:  # not permitted, or the thread ended meanwhile
            pass
    return os.getpriority(os.PRIO_PROCESS, 0)


def replica_name(collection_id: str, shard: int, replica: int) -> str:
    """The actor's name (in the "vectord" namespace): by collection id, so a rename moves nothing."""
    return f"vectord-{collection_id}-s{shard}-r{replica}"


def replica_dir(data_root: str, node_id: str, collection_id: str, shard: int, replica: int) -> str:
    """Node-local directory of a replica; the node id is part of it so that several
    simulated nodes on one machine (tests) never share a directory."""
    return str(Path(data_root) / f"node-{node_id[:16]}" / collection_id / f"s{shard}-r{replica}")


class ShardReplica:
    """The actor's body (``ray.remote`` is applied in ``cluster.shards``)."""

    def __init__(self, data_dir: str, config: dict[str, Any], serve_reads: bool = False,
                 planner_cost_per_ef: int = 0, index_threads: int = 1) -> None:
        from vectord.errors import NotFoundError
        from vectord.storage import Database, Tuning

        self.path = Path(data_dir)
        self.path.mkdir(parents=True, exist_ok=True)
        # a batch's search threads: the node's CPUs shared by the replicas placed on it (the
        # gateway's count, cluster/database.py), never every core each (3 replicas x all
        # cores on a small node would oversubscribe it)
        tuning = Tuning(index_threads=max(1, index_threads))
        if planner_cost_per_ef:  # `vectord cluster up --planner-cost-per-ef`, as `vectord serve`'s
            tuning.graph_cost_per_ef = planner_cost_per_ef
        self.db = Database(self.path / "engine", tuning=tuning)
        try:  # a shard made earlier keeps the ef it was made with (an older gateway's: the full ef)
            self.collection = self.db.get_collection(SHARD_COLLECTION)
        except NotFoundError:  # config["hnsw"] carries this shard's ef (shard_ef, set by the gateway)
            self.collection = self.db.create_collection(
                SHARD_COLLECTION, dim=config["dim"], metric=config["metric"], hnsw=config["hnsw"],
                fulltext=config.get("fulltext"), get_or_create=True)
        self._applied_path = self.path / "applied.json"
        self.applied = json.loads(self._applied_path.read_text())["seq"] if self._applied_path.exists() else 0
        self._swap = RWLock()  # a chunked write's two engine writes look like one to readers
        self._pending_path = self.path / "pending.pkl"
        self._finish_pending()
        # reads also come straight from the gateway (cluster.dataplane): a Ray call per shard
        # and query costs more than the search; writes stay on Ray, numbered and ordered
        self.reads = None
        if serve_reads:
            import ray

            self.niceness = normal_priority()

            from .dataplane import ReadServer, replica_handlers

            self.reads = ReadServer(ray.util.get_node_ip_address(), replica_handlers(self))

    # ------------------------------------------------------------------ writes
    def _set_applied(self, seq: int) -> None:
        tmp = self._applied_path.with_name("applied.json.tmp")
        with open(tmp, "w") as out:
            json.dump({"seq": seq}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self._applied_path)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.applied = seq

    def apply(self, seq: int, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """Applies write ``seq`` once. Returns {"status": "ok"|"duplicate"|"gap"|"error", ...}."""
        if seq <= self.applied:
            return {"status": "duplicate", "applied": self.applied}
        if seq != self.applied + 1:
            return {"status": "gap", "applied": self.applied}
        try:
            if op == "put":
                result = self.collection.upsert(args["ids"], args.get("embeddings"), args.get("documents"),
                                                args.get("metadatas"))
            elif op == "delete":
                result = self.collection.delete(ids=args["ids"])
            elif op == "chunked":
                self._write_pending(seq, args)
                result = self._chunked(args)
            else:
                raise ValueError(f"unknown op {op!r}")
        except VectordError as exc:
            # deterministic (the same on every replica): the write is a no-op everywhere and
            # its number is spent, so the replicas stay in step
            self._set_applied(seq)
            self._clear_pending()
            return {"status": "error", "error": exc, "applied": seq}
        self._set_applied(seq)
        self._clear_pending()
        return {"status": "ok", "applied": seq, "inserted": result.inserted, "updated": result.updated,
                "unchanged": result.unchanged, "deleted": result.deleted}

    # ------------------------------------------------------------------ chunked writes
    def chunk_state(self, sources: list[str], chunk_ids: list[str]) -> dict[str, Any]:
        """What a chunked write of ``sources`` would replace: ``old``, the ids of the sources'
        own records and of their chunks (``f"{source_id}#{chunk}"`` with that metadata, as
        the engine's delete finds them), and ``taken``, the new chunk ids that exist."""
        with self._swap.read():
            return self._chunk_state(sources, chunk_ids)

    def _chunk_state(self, sources: list[str], chunk_ids: list[str]) -> dict[str, Any]:
        from vectord.storage.filters import Field

        col = self.collection
        own = col.get(ids=sources, include=[]).ids
        found = col.get(where=Field(SOURCE_KEY, "in", list(dict.fromkeys(sources))), include=["metadatas"])
        chunks = [record_id for record_id, meta in zip(found.ids, found.metadatas or [])
                  if record_id == f"{meta.get(SOURCE_KEY)}#{meta.get(CHUNK_KEY)}"]
        sources_of = {record_id: meta.get(SOURCE_KEY) for record_id, meta in zip(found.ids, found.metadatas or [])}
        return {"old": list(dict.fromkeys(own + chunks)), "taken": col.get(ids=chunk_ids, include=[]).ids,
                "source_of": {record_id: sources_of.get(record_id, record_id) for record_id in own + chunks}}

    def _chunked(self, args: dict[str, Any]):
        """The sources' old records (own ids and chunks) not among the new chunk ids are
        deleted, and the new chunks are put with exactly their metadata (keys of an
        overwritten record that the new chunk lacks are removed), as one server's
        put_chunked does in one log record."""
        from vectord.storage import WriteResult

        ids, metadatas = args["ids"], args["metadatas"]
        with self._swap.write():
            state = self._chunk_state(args["sources"], ids)
            new = set(ids)
            drop = sorted(set(state["old"]) - new)
            taken = set(state["taken"])
            result = WriteResult(deleted=len(drop))
            if taken:  # an upsert merges metadata by key: None removes the old keys
                old = self.collection.get(ids=sorted(taken), include=["metadatas"])
                old_meta = dict(zip(old.ids, old.metadatas or []))
                metadatas = [{**{key: None for key in (old_meta.get(i) or {}) if key not in meta}, **meta}
                             if i in taken else meta for i, meta in zip(ids, metadatas)]
            if drop:
                self.collection.delete(ids=drop)
            if ids:  # a source with an empty document has no chunks: its old ones just go
                self.collection.upsert(ids, args["embeddings"], args["documents"], metadatas)
            result.updated = sum(1 for i in ids if i in taken)
            result.inserted = len(ids) - result.updated
        return result

    def _write_pending(self, seq: int, args: dict[str, Any]) -> None:
        tmp = self._pending_path.with_name("pending.pkl.tmp")
        with open(tmp, "wb") as out:
            pickle.dump({"seq": seq, "args": args}, out, protocol=5)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self._pending_path)

    def _clear_pending(self) -> None:
        if self._pending_path.exists():
            self._pending_path.unlink()

    def _finish_pending(self) -> None:
        """A chunked write that a crash interrupted (its number not yet recorded) is done
        again now: deleting and putting the same records twice leaves the same state."""
        if not self._pending_path.exists():
            return
        with open(self._pending_path, "rb") as handle:
            pending = pickle.load(handle)  # noqa: S301 (this replica's own file, written above)
        if pending["seq"] == self.applied + 1:
            self._chunked(pending["args"])
            self._set_applied(pending["seq"])
        self._clear_pending()

    # ------------------------------------------------------------------ reads
    def tune(self, planner_cost_per_ef: int) -> None:
        """The planner's cost of graph search (a gateway's setting, also for adopted replicas)."""
        if planner_cost_per_ef:
            self.db.tuning.graph_cost_per_ef = planner_cost_per_ef

    def query(self, vectors, n_results: int, where=None, max_distance=None, columns=None):
        """Per query: (ids, distances), and with ``columns`` (documents, metadatas,
        embeddings) also those of the hits, as Records: the gateway then needs no second
        round for a small k (cluster/engine.py)."""
        with self._swap.read():
            return self._query(vectors, n_results, where, max_distance, columns)

    def _query(self, vectors, n_results: int, where=None, max_distance=None, columns=None):
        results = self.collection.query(vectors, n_results=n_results, where=where,
                                        include=["distances", *(columns or ())], max_distance=max_distance)
        if columns:
            return [(r.ids, r.distances, r) for r in results]
        return [(r.ids, r.distances) for r in results]

    def query_columns(self, vectors, n_results: int, where=None, max_distance=None) -> HitColumns:
        """Bare hits (ids and distances) of every query as one HitColumns (storage/types.py):
        the engine gathers the ids' bytes with numpy, with no Records and no ``str`` per hit,
        and they travel to the gateway as they are (cluster/dataplane.py)."""
        with self._swap.read():
            hits, _ = self.collection.query_with_plan(vectors, n_results=n_results, where=where, include=["distances"],
                                                      max_distance=max_distance, columns=True)
        return hits

    def ranked(self, rank: str, texts, vectors=None, depth: int = 10, where=None, max_distance=None) -> list:
        """Per query text, this shard's candidate lists for the gateway (cluster/ranked.py):
        [BM25 ids, their scores, their vector distances (measured when ``vectors`` is given,
        else NaN), and for hybrid the nearest ids by vector and their distances]."""
        with self._swap.read():
            return self._ranked(rank, texts, vectors, depth, where, max_distance)

    def _ranked(self, rank: str, texts, vectors=None, depth: int = 10, where=None, max_distance=None) -> list:
        col = self.collection
        bm25 = col.query_ranked("bm25", texts, vectors if max_distance is not None else None, n_results=depth,
                                where=where, include=["distances"], max_distance=max_distance)
        near = (col.query(vectors, n_results=depth, where=where, include=["distances"], max_distance=max_distance)
                if rank == "hybrid" else None)
        out = []
        for i, hits in enumerate(bm25):
            distances = hits.distances
            if vectors is not None and max_distance is None:
                distances = self._measure(vectors[i], hits.ids)
            out.append([hits.ids, hits.scores, distances, near[i].ids if near else None,
                        near[i].distances if near else None])
        return out

    def _measure(self, query: np.ndarray, ids: list[str]) -> np.ndarray:
        """Vector distances of records to ``query``, by the engine's exact formulas (NaN for
        a record deleted meanwhile)."""
        from vectord.storage.index import exact_search

        out = np.full(len(ids), np.nan, np.float32)
        found = self.collection.get(ids=ids, include=["embeddings"])
        if found.ids:
            emb = np.asarray(found.embeddings, np.float32)
            labels, distances = exact_search(emb, (emb * emb).sum(axis=1), np.arange(len(emb)), query[None], len(emb),
                                             self.collection.config.metric)
            position = {record_id: i for i, record_id in enumerate(ids)}
            for row, distance in zip(labels[0].tolist(), distances[0].tolist()):
                out[position[found.ids[row]]] = distance
        return out

    def get(self, ids=None, where=None, limit=None, offset=None, include=None, after=None):
        with self._swap.read():
            return self.collection.get(ids=ids, where=where, limit=limit, offset=offset, include=include, after=after)

    def count(self, where=None) -> int:
        with self._swap.read():
            return self.collection.count(where=where)

    def match(self, ids, where) -> list[str]:
        """Ids of live records among ``ids`` (all when None) that pass ``where`` (all when None)."""
        return self.collection.get(ids=ids, where=where, include=[]).ids

    def status(self) -> dict[str, Any]:
        import ray

        return {"applied": self.applied, "count": self.collection.count(),
                "node": ray.get_runtime_context().get_node_id(), "path": str(self.path),
                "endpoint": self.reads.endpoint() if self.reads is not None else None}

    # ------------------------------------------------------------------ maintenance
    def checkpoint(self, compact: bool = False) -> dict[str, Any]:
        """The engine's checkpoint of this replica (Admin.Checkpoint through the gateway);
        runs between two writes, as every actor call does."""
        wrote = self.collection.checkpoint(compact=compact)
        return {"checkpointed": bool(wrote), "compacted_slots_total": self.collection.compacted_slots_total}

    def compacted(self) -> int:
        return self.collection.compacted_slots_total

    # ------------------------------------------------------------------ snapshots (cluster/snapshots.py)
    def snapshot(self, name: str, dest: str) -> dict[str, Any]:
        """The engine's online snapshot of this replica, moved to ``dest`` (outside the
        replica's directory: it outlives the collection). Runs between two writes (an actor
        runs one call at a time), so it holds exactly the writes up to ``applied``."""
        info = self.db.create_snapshot(SHARD_COLLECTION, name)
        target = Path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.path / "engine" / "snapshots" / name, target)  # same disk: a rename
        return {**info, "applied": self.applied, "path": str(target)}

    def restore_from(self, source: str) -> dict[str, Any]:
        """Replaces this (new, empty) replica's records with a snapshot in ``source`` on this
        node: linked into the engine's snapshots and restored by name, which the engine
        trusts (it keeps the graph), after checking every file's sha256."""
        name = f"restore-{os.getpid()}-{Path(source).name}"
        local = self.path / "engine" / "snapshots" / name
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copytree(source, local, copy_function=_link_or_copy)
            self.collection = self.db.restore_snapshot(name, SHARD_COLLECTION, replace=True)
        finally:
            shutil.rmtree(local, ignore_errors=True)
        self._set_applied(0)
        return {"count": self.collection.count(), "applied": self.applied}

    # ------------------------------------------------------------------ catch-up
    def dump(self, after: str, limit: int):
        """A page of full records in id order (a peer's copy source)."""
        return self.collection.get(after=after, limit=limit, include=["embeddings", "documents", "metadatas"])

    def reset(self) -> None:
        """Empties the replica before a full copy from a peer."""
        self.db.delete_collection(SHARD_COLLECTION)
        config = self.collection.config
        self.collection = self.db.create_collection(
            SHARD_COLLECTION, dim=config.dim, metric=config.metric, hnsw=config.hnsw, fulltext=config.fulltext)
        self._set_applied(0)

    def load(self, records, applied: int | None = None) -> None:
        """Upserts a peer's page of records; with ``applied``, records that the copy ends there."""
        if records.ids:
            self.collection.upsert(records.ids, records.embeddings, records.documents, records.metadatas)
        if applied is not None:
            self._set_applied(applied)

    def destroy(self) -> None:
        """Closes the engine and removes this replica's files (the collection was deleted)."""
        if self.reads is not None:
            self.reads.close()
        self.db.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def close(self) -> None:
        if self.reads is not None:
            self.reads.close()
        self.db.close()


def _link_or_copy(src: str, dst: str) -> None:
    """Snapshot files are written once and never changed: a hard link is a stable copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
