"""vectord cluster: collections sharded and replicated over Ray nodes, behind a gateway that
speaks vectord's gRPC API (``pip install "vectord[cluster]"``; docs/cluster.md).

Layers: ``cluster -> server, storage``; nothing below imports it. Ray is imported lazily,
so ``routing`` and the table store work (and are tested) without it.

- ``routing``: ids -> virtual buckets (blake2b) -> shards (a persisted table)
- ``controller``: the detached actor that keeps routing tables on disk (fsync)
- ``replica``: the shard actor, wrapping ``storage.Database``
- ``shards``: replication at an acknowledgement level, fail-over reads, catch-up
- ``engine`` / ``database``: ``storage``'s Collection / Database methods over shards
- ``gateway``: the gRPC server; ``cli``: `vectord cluster ...`
"""
