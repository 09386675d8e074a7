"""Cluster snapshots: a consistent copy of one collection's shards, and its restore.

Taking one (``create``): the gateway holds every shard's write lock (as a write spanning
shards does), asks every in-sync replica of every shard for the engine's own snapshot
(storage/snapshots.py), and releases the locks. Ray runs one caller's calls to an actor in
the order sent, so each replica snapshots after every write numbered before the locks were
taken and before any later one: the copies of a shard are identical, and the shards
together are one point in time (a write touching two shards is in both or in neither).
Each copy is moved to ``<data-dir>/node-<node>/snapshots/<name>/s<shard>-r<replica>`` on
its replica's node, outside the replica's directory, so it outlives the collection. The
controller keeps the **manifest**: the routing table (buckets, layout, config) and, per
shard, the copies (node, path, write number, records, bytes).

Restoring one (``restore``) makes a new collection (a new id, the snapshot's bucket table
and layout): replica r of each shard is placed first on the nodes that hold a copy of that
shard, each such replica restores its node's copy (the engine checks every file's sha256),
and the others are filled from a restored peer (the catch-up copy of cluster/shards.py).
With ``replace``, the existing collection of that name is deleted only once the new one is
complete; the new table is then written and served.

Download and upload of a cluster snapshot as one stream are not done (docs/cluster.md).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from vectord.errors import AlreadyExistsError, NotFoundError, UnavailableError
from vectord.storage import validation

from . import routing
from .health import answers
from .replica import replica_name
from .shards import IN_SYNC, Replica, ShardSet


def copy_dir(data_root: str, node_id: str, name: str, shard: int, replica: int) -> str:
    """Where a replica's copy of snapshot ``name`` lives, on its node."""
    return str(Path(data_root) / f"node-{node_id[:16]}" / "snapshots" / name / f"s{shard}-r{replica}")


def info(manifest: dict[str, Any]) -> dict[str, Any]:
    """A manifest as the Admin service's SnapshotInfo (one server's fields)."""
    return {key: manifest[key] for key in ("name", "collection", "created_at_ms", "record_count", "seq",
                                           "size_bytes", "dim")}


def create(db, collection_name: str, name: str | None = None) -> dict[str, Any]:
    """Snapshots ``collection_name`` on every shard at one point in time; returns its info."""
    import ray

    collection = db.get_collection(collection_name)
    if not name:
        name = f"{collection.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    name = validation.collection_name(name)
    if ray.get(db.controller.snapshot.remote(name), timeout=db.timeout_s) is not None:
        raise AlreadyExistsError(f"snapshot {name!r} already exists")
    table = collection.table
    shards = collection.shards.shards
    refs: dict[tuple[int, int], Any] = {}
    cut: dict[int, int] = {}
    for shard in shards:  # in shard order, as writers take them: no deadlock
        shard.lock.acquire()
    try:
        for shard in shards:
            replicas = shard.in_sync()
            if not replicas:
                raise UnavailableError(f"snapshot of collection {collection.name!r}: shard {shard.index} has no "
                                       "in-sync replica (`vectord cluster status` shows the replicas)")
            cut[shard.index] = shard.seq
            for replica in replicas:
                dest = copy_dir(db.data_root, replica.node, name, shard.index, replica.index)
                refs[(shard.index, replica.index)] = replica.actor.snapshot.remote(name, dest)
    finally:
        for shard in shards:
            shard.lock.release()
    copies: dict[int, list[dict[str, Any]]] = {s.index: [] for s in shards}
    failed = []
    for (s, r), taken in answers(refs, max(db.timeout_s, 60.0)).items():  # waited for together
        if isinstance(taken, Exception):  # that replica's copy is missing; its peers' may do
            failed.append(f"{replica_name(table.config['id'], s, r)}: {taken.__class__.__name__}")
            continue
        if taken["applied"] == cut[s]:  # a replica that missed a write holds an older state
            copies[s].append({"replica": r, "node": shards[s].replicas[r].node, "path": taken["path"],
                              "applied": taken["applied"], "record_count": taken["record_count"],
                              "size_bytes": taken["size_bytes"]})
    empty = [s for s, found in copies.items() if not found]
    if empty:
        _remove_copies(db, [c for found in copies.values() for c in found])
        raise UnavailableError(f"snapshot of collection {collection.name!r}: no replica of shard {empty[0]} "
                               f"could take it ({'; '.join(failed) or 'behind the shard'}); nothing was kept")
    firsts = [copies[s][0] for s in sorted(copies)]
    manifest = {"format": 1, "name": name, "collection": collection.name, "created_at_ms": int(time.time() * 1000),
                "record_count": sum(c["record_count"] for c in firsts), "seq": sum(cut.values()),
                "size_bytes": sum(c["size_bytes"] for found in copies.values() for c in found),
                "dim": table.config["dim"], "table": table.to_dict(),
                "copies": [copies[s] for s in range(table.shards)]}
    ray.get(db.controller.put_snapshot.remote(manifest), timeout=db.timeout_s)
    return info(manifest)


def list_all(db) -> list[dict[str, Any]]:
    import ray

    return [info(m) for m in ray.get(db.controller.snapshots.remote(), timeout=db.timeout_s)]


def _manifest(db, name: str) -> dict[str, Any]:
    import ray

    if not isinstance(name, str) or not name:
        from vectord.errors import InvalidArgumentError

        raise InvalidArgumentError("snapshot name must be a non-empty string")
    validation.collection_name(name)
    manifest = ray.get(db.controller.snapshot.remote(name), timeout=db.timeout_s)
    if manifest is None:
        raise NotFoundError(f"snapshot {name!r} does not exist")
    return manifest


def restore(db, name: str, target: str | None = None, replace: bool = False):
    """Restores snapshot ``name`` as collection ``target`` (default: its own collection's
    name); returns the new ClusterCollection."""
    import ray

    from .database import alive_nodes

    manifest = _manifest(db, name)
    old = routing.RoutingTable.from_dict(manifest["table"])
    target = validation.collection_name(target or manifest["collection"])
    if not replace and target in db._collections:
        raise AlreadyExistsError(f"collection {target!r} already exists (restore with replace to overwrite it)")
    alive = alive_nodes()
    routing.check_layout(old.shards, old.replicas, len(alive))
    placement, sources = [], []
    for s, found in enumerate(manifest["copies"]):
        held = [c for c in found if c["node"] in alive]
        if not held:
            raise UnavailableError(f"restore of snapshot {name!r}: the nodes holding shard {s}'s copies are not "
                                   f"alive ({', '.join(c['node'][:12] for c in found)})")
        holders = [c["node"] for c in held]
        placement.append([*holders, *[n for n in alive if n not in holders]][:old.replicas])
        sources.append({c["node"]: c["path"] for c in held})
    config = {**old.config, "id": uuid.uuid4().hex, "name": target}
    table = routing.RoutingTable(name=target, config=config, shards=old.shards, replicas=old.replicas,
                                 bucket_shard=list(old.bucket_shard), placement=placement, extra=dict(old.extra))
    shard_set = db._shard_set(table, create=True)
    try:
        _fill(db, shard_set, sources)
    except BaseException:
        db._destroy(shard_set)
        raise
    shard_set = db._shard_set(table, create=False)  # every replica's state after the restore
    down = [r.name for sh in shard_set.shards for r in sh.replicas if r.state != IN_SYNC]
    if down:
        db._destroy(shard_set)
        raise UnavailableError(f"restore of snapshot {name!r}: replicas did not start: {', '.join(down)}")
    with db._mutex:
        if target in db._collections:
            if not replace:
                db._destroy(shard_set)
                raise AlreadyExistsError(f"collection {target!r} already exists (restore with replace to overwrite it)")
            db.delete_collection(target)
        ray.get(db.controller.put_table.remote(table.to_dict()), timeout=db.timeout_s)
        return db._adopt(table, shard_set)


def _fill(db, shard_set: ShardSet, sources: list[dict[str, str]]) -> None:
    """Each shard's replicas on a node with a copy restore it; the others copy a restored peer."""
    import ray

    timeout = max(db.timeout_s, 300.0)
    refs = {}
    for shard in shard_set.shards:
        for replica in shard.replicas:
            path = sources[shard.index].get(replica.node)
            if path is not None:
                refs[replica.actor.restore_from.remote(path)] = replica
    restored: dict[int, Replica] = {}
    for ref, replica in refs.items():
        ray.get(ref, timeout=timeout)
        restored.setdefault(replica.shard, replica)
    for shard in shard_set.shards:
        for replica in shard.replicas:
            if replica.node not in sources[shard.index]:
                shard_set._copy(restored[shard.index], replica, timeout)


def remove_copy(path: str) -> None:
    """Removes one copy, and the snapshot's folder on that node once it is empty."""
    shutil.rmtree(path, ignore_errors=True)
    try:
        os.rmdir(Path(path).parent)
    except OSError:  # another replica's copy is still there
        pass


def _remove_copies(db, copies: list[dict[str, Any]]) -> None:
    """Removes snapshot copies, each by a task on its own node (a dead node's go with it)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    refs = [ray.remote(remove_copy).options(
        num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(c["node"], soft=False)).remote(c["path"])
        for c in copies]
    answers(dict(enumerate(refs)), db.timeout_s)  # waited for together; a failure is left as it is


def delete(db, name: str) -> None:
    """Deletes snapshot ``name``: its manifest, then its copies on their nodes."""
    import ray

    manifest = _manifest(db, name)
    ray.get(db.controller.delete_snapshot.remote(name), timeout=db.timeout_s)
    _remove_copies(db, [c for found in manifest["copies"] for c in found])


