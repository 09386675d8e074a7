"""Where a record lives: ids -> virtual buckets by a stable hash, buckets -> shards by a table.

The hash is blake2b of the id's UTF-8 bytes (8-byte digest, big-endian), never Python's
``hash()``: that one is salted per process (PYTHONHASHSEED), so two gateways, or one gateway
after a restart, would route the same id to different shards. blake2b is in the standard
library, keyed by nothing, and the same on every machine and version.

Ids map to ``buckets`` virtual buckets (many more than shards), and a persisted table maps
buckets to shards. Moving a shard's share of the data (resharding, not done yet) is then a
change of that table plus a copy of whole buckets, never a re-hash of every id.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from vectord.errors import InvalidArgumentError

#: Virtual buckets per collection: enough to split shards evenly up to a few dozen shards,
#: small enough that the table is a few KiB.
DEFAULT_BUCKETS = 1024
MAX_SHARDS = 256
MAX_REPLICAS = 8
#: ``extra["route"]`` of a table that routes a chunk id by its source (see ``route_key``).
ROUTE_BY_SOURCE = "source"
_CHUNK_SUFFIX = re.compile(r"(?:#[0-9]+)+\Z")


def route_key(record_id: str) -> str:
    """What a collection with chunk routing hashes: the id without its trailing ``#<n>``
    parts. Chunk ``j`` of source ``s`` is the record ``f"{s}#{j}"`` (docs/long-documents.md),
    so a source and all its chunks (and the chunks of a source whose own id ends in
    ``#<n>``) land on one shard, where replacing them is one shard's write."""
    return _CHUNK_SUFFIX.sub("", record_id)


def bucket_of(record_id: str, buckets: int = DEFAULT_BUCKETS) -> int:
    """The virtual bucket of an id; identical in every process, on every machine."""
    digest = hashlib.blake2b(record_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


def check_layout(shards: Any, replicas: Any, nodes: int | None = None) -> tuple[int, int]:
    """Validates ``shards`` and ``replicas`` (and that ``nodes`` alive nodes can hold the replicas
    of one shard on distinct nodes)."""
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise InvalidArgumentError(f"shards: must be an integer in 1..{MAX_SHARDS}, got {shards!r}")
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= MAX_REPLICAS:
        raise InvalidArgumentError(f"replicas: must be an integer in 1..{MAX_REPLICAS}, got {replicas!r}")
    if nodes is not None and replicas > nodes:
        raise InvalidArgumentError(
            f"replicas: {replicas} replicas of a shard need {replicas} distinct nodes, the cluster has "
            f"{nodes} alive")
    return shards, replicas


@dataclass
class RoutingTable:
    """One collection's layout, as the controller persists it (JSON)."""

    #: The collection's name (as clients see it) and its engine config (CollectionConfig fields).
    name: str
    config: dict[str, Any]
    shards: int
    replicas: int
    #: bucket -> shard
    bucket_shard: list[int]
    #: placement[shard][replica] = the Ray node id that replica is pinned to
    placement: list[list[str]]
    version: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, name: str, config: dict[str, Any], shards: int, replicas: int, nodes: list[str],
            buckets: int = DEFAULT_BUCKETS) -> "RoutingTable":
        """A table with buckets dealt round-robin to shards and replica r of shard s on node
        (s + r) mod len(nodes): the replicas of one shard are on distinct nodes, and the
        shards' first replicas are spread over the nodes."""
        check_layout(shards, replicas, len(nodes))
        nodes = sorted(nodes)
        placement = [[nodes[(s + r) % len(nodes)] for r in range(replicas)] for s in range(shards)]
        # chunking needs an encoder: only such collections route chunk ids by their source
        # (elsewhere ids like "user#12" keep spreading over the shards by the whole id)
        extra = {"route": ROUTE_BY_SOURCE} if config.get("encoder") else {}
        return cls(name=name, config=config, shards=shards, replicas=replicas,
                   bucket_shard=[b % shards for b in range(buckets)], placement=placement, extra=extra)

    @property
    def buckets(self) -> int:
        return len(self.bucket_shard)

    @property
    def by_source(self) -> bool:
        """Whether chunk ids route by their source id (tables of collections with an encoder
        made since chunked writes; older tables route every id whole, as they were filled)."""
        return self.extra.get("route") == ROUTE_BY_SOURCE

    def shard_of(self, record_id: str) -> int:
        key = route_key(record_id) if self.by_source else record_id
        return self.bucket_shard[bucket_of(key, self.buckets)]

    def group(self, ids: Iterable[str]) -> dict[int, list[int]]:
        """Positions of ``ids`` by shard, in the order given within each shard."""
        out: dict[int, list[int]] = {}
        for i, record_id in enumerate(ids):
            out.setdefault(self.shard_of(record_id), []).append(i)
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RoutingTable":
        return cls(**data)
