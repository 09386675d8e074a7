"""The cluster's catalog of collections at the gateway: ``storage.Database``'s methods (the
ones the servicers call) over routing tables and shard actors.

Collections are created with ``shards=N, replicas=R``: each replica is a detached, named
Ray actor pinned to its node (``NodeAffinitySchedulingStrategy``, hard), so its data
directory is always the same node-local one; the routing table is persisted by the
controller before the collection is announced.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

from vectord.errors import AlreadyExistsError, InvalidArgumentError, UnavailableError
from vectord.storage import Collection, CollectionConfig, Database, Tuning

from . import health, routing
from .controller import NAMESPACE, controller_actor
from .engine import REPLICAS_KEY, SHARDS_KEY, ClusterCollection, unimplemented
from .replica import ShardReplica, replica_dir, replica_name, shard_ef
from .shards import IN_SYNC, LEVELS, Replica, Shard, ShardSet

log = logging.getLogger(__name__)


def alive_nodes() -> list[str]:
    import ray

    return sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))


def _layout_value(metadata: dict[str, Any] | None, key: str) -> int | None:
    """The layout an older client put in ``metadata[key]`` (taken out), or None."""
    if not metadata or key not in metadata:
        return None
    value = metadata.pop(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"metadata[{key!r}]: expected an integer, got {value!r}")
    return value


def _layout(field: str, given: int | None, metadata: dict[str, Any] | None, key: str, default: int) -> int:
    """``field`` of a new collection: the request's field, else the metadata key of older
    clients, else the gateway's default; the two given differently is refused."""
    old = _layout_value(metadata, key)
    if given is not None and old is not None and given != old:
        raise InvalidArgumentError(f"{field}: {given} conflicts with metadata[{key!r}] = {old}; give only the "
                                   f"{field} field (the metadata key is the older clients' way)")
    return given if given is not None else old if old is not None else default


class ClusterDatabase:
    """What the gateway's servicers take for a ``storage.Database``."""

    def __init__(self, data_root: str, *, encoders=None, write_level: str = "quorum", shards: int = 3,
                 replicas: int = 2, timeout_s: float = 10.0, read_timeout_s: float = 2.0,
                 health_interval_s: float = 1.0, planner_cost_per_ef: int = 0, ef_scale: float | None = None) -> None:
        if write_level not in LEVELS:
            raise InvalidArgumentError(f"write level: must be one of {', '.join(LEVELS)}, got {write_level!r}")
        routing.check_layout(shards, replicas)
        self.data_root = str(data_root)
        self.encoders = encoders
        self.write_level = write_level
        self.default_shards, self.default_replicas = shards, replicas
        self.timeout_s, self.read_timeout_s = timeout_s, read_timeout_s
        self.planner_cost_per_ef = planner_cost_per_ef  # the replicas' planner (0: the engine's default)
        self.ef_scale = ef_scale  # a new collection's shards search at shard_ef (cluster/replica.py)
        self.catalog = Database(None, encoders=encoders)  # configs only: the single-node rules
        self._collections: dict[str, ClusterCollection] = {}
        self._mutex = threading.RLock()
        import ray

        self.controller = controller_actor(root=f"{self.data_root}/controller")
        for table in ray.get(self.controller.tables.remote()):
            self._adopt(routing.RoutingTable.from_dict(table))
        self._stop = threading.Event()
        self._health = threading.Thread(target=self._health_loop, args=(health_interval_s,), daemon=True,
                                        name="vectord-cluster-health")
        self._health.start()

    # ------------------------------------------------------------------ actors
    def _actor(self, table: routing.RoutingTable, shard: int, index: int, create: bool):
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        name = replica_name(table.config["id"], shard, index)
        try:
            return ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            if not create:
                return None
        node = table.placement[shard][index]
        config = {**table.config, "hnsw": {**table.config["hnsw"], "ef_search": shard_ef(
            table.config["hnsw"]["ef_search"], table.shards, self.ef_scale)}}
        return ray.remote(ShardReplica).options(
            name=name, namespace=NAMESPACE, lifetime="detached", get_if_exists=True, num_cpus=0,
            max_restarts=-1, max_task_retries=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
        ).remote(replica_dir(self.data_root, node, table.config["id"], shard, index), config, serve_reads=True,
                 planner_cost_per_ef=self.planner_cost_per_ef, index_threads=_threads(table, node))

    def _shard_set(self, table: routing.RoutingTable, create: bool) -> ShardSet:
        """Handles of every replica (new actors with ``create``), with their applied writes
        read now: each shard's sequence resumes at the highest, and replicas behind it (or
        not answering) start stale and are caught up by the health loop."""
        alive = set(alive_nodes())
        shards = []
        for s in range(table.shards):
            replicas = []
            for r in range(table.replicas):
                node = table.placement[s][r]
                actor = self._actor(table, s, r, create and node in alive) if node in alive else None
                replicas.append(Replica(shard=s, index=r, node=node, name=replica_name(table.config["id"], s, r),
                                        actor=actor))
            shards.append(Shard(index=s, replicas=replicas))
        if self.planner_cost_per_ef:  # replicas adopted from an earlier gateway get this one's setting
            for replica in (r for s in shards for r in s.replicas if r.actor):
                replica.actor.tune.remote(self.planner_cost_per_ef)
        # asked at once and waited for together: replicas on a node that is gone but not yet
        # declared dead cost one timeout in all, not one each (cluster/health.py)
        status = health.answers({(s.index, r.index): r.actor.status.remote() for s in shards for r in s.replicas
                                 if r.actor}, timeout_s=60 if create else self.timeout_s)
        for shard in shards:
            for replica in shard.replicas:
                found = status.get((shard.index, replica.index), RuntimeError("its node is gone"))
                if isinstance(found, Exception):
                    replica.mark_stale(f"not answering at start: {found.__class__.__name__}: {found}"[:200])
                else:
                    replica.seen(found)
            shard.seq = max([r.applied for r in shard.replicas if r.state == IN_SYNC] or [0])
            for replica in shard.replicas:
                if replica.state == IN_SYNC and replica.applied < shard.seq:
                    replica.mark_stale(f"behind (applied {replica.applied} of {shard.seq})")
        return ShardSet(table.name, shards, timeout_s=self.timeout_s, read_timeout_s=self.read_timeout_s)

    def _adopt(self, table: routing.RoutingTable, shard_set: ShardSet | None = None) -> ClusterCollection:
        config = CollectionConfig(**table.config)
        with self.catalog._mutex:  # the catalog holds configs of collections that exist already
            proto = Collection.in_memory(config, Tuning(index_threads=1))
            proto.encoders = self.encoders
            self.catalog._collections[config.name] = proto
        collection = ClusterCollection(self, table, shard_set or self._shard_set(table, create=True))
        self._collections[config.name] = collection
        return collection

    def embed(self, config: CollectionConfig, texts, field: str, truncated: list[int] | None = None):
        """Texts embedded by the collection's own model (the engine's checks and messages);
        ``truncated`` gets the positions of texts longer than the model's window."""
        return self.catalog.get_collection(config.name)._embed(texts, field, truncated)

    # ------------------------------------------------------------------ the Database methods
    def create_collection(self, name: str, *, dim=None, metric=None, hnsw=None, metadata=None,
                          get_or_create: bool = False, encoder=None, fulltext=None, shards: int | None = None,
                          replicas: int | None = None) -> ClusterCollection:
        """As ``storage.Database.create_collection``, with the layout of a new collection:
        ``shards`` and ``replicas`` (CreateCollectionRequest's fields), else the "vectord:shards"
        and "vectord:replicas" metadata keys of older clients (taken out, not stored), else the
        gateway's defaults. With get_or_create, ``shards``/``replicas`` given must be the
        existing collection's (the metadata keys, as metadata, are not compared)."""
        import ray

        metadata = dict(metadata) if metadata is not None else None
        asked = {"shards": shards, "replicas": replicas}
        shards = _layout("shards", shards, metadata, SHARDS_KEY, self.default_shards)
        replicas = _layout("replicas", replicas, metadata, REPLICAS_KEY, self.default_replicas)
        routing.check_layout(shards, replicas)  # before the catalog holds anything
        with self._mutex:
            existed = isinstance(name, str) and name in self._collections
            catalogued = self.catalog.create_collection(
                name, dim=dim, metric=metric, hnsw=hnsw, metadata=metadata, get_or_create=get_or_create,
                encoder=encoder, fulltext=fulltext)
            if existed:
                collection = self._collections[catalogued.name]
                table = collection.table
                differ = [f"{field} {getattr(table, field)} (asked for {value})" for field, value in asked.items()
                          if value is not None and value != getattr(table, field)]
                if differ:  # as the engine words a get_or_create conflict (storage/database.py)
                    raise AlreadyExistsError(
                        f"collection {table.name!r} exists with {'; '.join(differ)}. get_or_create returns an "
                        "existing collection only when the settings given match it: omit a setting to accept "
                        "the collection's, or choose another name")
                return collection
            try:
                table = routing.RoutingTable.new(catalogued.name, dataclasses.asdict(catalogued.config),
                                                 shards, replicas, alive_nodes())
                shard_set = self._shard_set(table, create=True)
                down = [r.name for s in shard_set.shards for r in s.replicas if r.state != IN_SYNC]
                if down:
                    self._destroy(shard_set)
                    raise UnavailableError(f"create collection {name!r}: replicas did not start: {', '.join(down)}")
                ray.get(self.controller.put_table.remote(table.to_dict()), timeout=self.timeout_s)
            except BaseException:
                self.catalog.delete_collection(catalogued.name)
                raise
            return self._adopt(table, shard_set)

    def get_collection(self, name: str) -> ClusterCollection:
        self.catalog.get_collection(name)  # the engine's checks and NotFound message
        return self._collections[name]

    def list_collections(self) -> list[ClusterCollection]:
        return [self._collections[name] for name in sorted(self._collections)]

    def damaged_collections(self) -> dict[str, str]:
        return {}

    def _destroy(self, shard_set: ShardSet) -> None:
        import ray

        live = [replica for shard in shard_set.shards for replica in shard.replicas if replica.actor is not None]
        # waited for together; one that fails is on a node that is gone, and its files with it
        health.answers({n: replica.actor.destroy.remote() for n, replica in enumerate(live)}, self.timeout_s)
        for replica in live:
            ray.kill(replica.actor, no_restart=True)

    def delete_collection(self, name: str) -> None:
        import ray

        with self._mutex:
            collection = self.get_collection(name)
            ray.get(self.controller.delete_table.remote(collection.table.config["id"]), timeout=self.timeout_s)
            self._collections.pop(name)
            self.catalog.delete_collection(name)
            self._destroy(collection.shards)

    def modify_collection(self, name: str, *, new_name=None, metadata=None) -> ClusterCollection:
        import ray

        with self._mutex:
            collection = self.get_collection(name)
            catalogued = self.catalog.modify_collection(name, new_name=new_name, metadata=metadata)
            table = collection.table
            table.name, table.config = catalogued.name, dataclasses.asdict(catalogued.config)
            collection.shards.collection = catalogued.name
            ray.get(self.controller.put_table.remote(table.to_dict()), timeout=self.timeout_s)
            self._collections[catalogued.name] = self._collections.pop(name)
            return collection

    def reset(self) -> int:
        names = list(self._collections)
        for name in names:
            self.delete_collection(name)
        return len(names)

    def checkpoint(self, name=None, compact: bool = False) -> int:
        """The engine's checkpoint on every in-sync replica of one collection, or of all;
        returns how many collections wrote a new generation on some replica."""
        import ray

        targets = [self.get_collection(name)] if name else self.list_collections()
        refs = {collection.name: [r.actor.checkpoint.remote(compact) for s in collection.shards.shards
                                  for r in s.in_sync()] for collection in targets}
        wrote = 0
        for refs_of in refs.values():
            outcomes = ray.get(refs_of, timeout=max(self.timeout_s, 300.0))
            wrote += any(o["checkpointed"] for o in outcomes)
        return wrote

    # ------------------------------------------------------------------ snapshots (cluster/snapshots.py)
    def create_snapshot(self, collection: str, name: str | None = None) -> dict[str, Any]:
        """Every shard of ``collection`` at one point in time; its info (SnapshotInfo's fields)."""
        from . import snapshots

        return snapshots.create(self, collection, name)

    def list_snapshots(self) -> list[dict[str, Any]]:
        from . import snapshots

        return snapshots.list_all(self)

    def restore_snapshot(self, source: str, collection: str | None = None, replace: bool = False):
        """Snapshot ``source`` (a name) as a new collection; uploads are not supported."""
        from . import snapshots

        if not isinstance(source, str):
            raise unimplemented("uploading a snapshot (Admin.RestoreSnapshot with files)")
        return snapshots.restore(self, source, collection, replace)

    def delete_snapshot(self, name: str) -> None:
        from . import snapshots

        snapshots.delete(self, name)

    def close(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------------ health
    def _health_loop(self, interval: float) -> None:
        """Finds replicas that stopped answering (reads also mark them) and catches up the
        stale ones that answer again (cluster/health.py)."""
        while not self._stop.wait(interval):
            try:
                health.sweep(list(self._collections.values()), self.timeout_s)
            except Exception:  # the loop outlives a pass that failed; the next one retries
                log.exception("health check failed")


def _threads(table: routing.RoutingTable, node: str) -> int:
    """A replica's search threads for a batch: the node's CPUs (as Ray counts them) over the
    replicas of this collection placed on it, at least 1."""
    import ray

    cpus = next((n.get("Resources", {}).get("CPU", 1) for n in ray.nodes() if n.get("NodeID") == node), 1)
    on_node = sum(1 for placement in table.placement for n in placement if n == node)
    return max(1, int(cpus) // max(1, on_node))
