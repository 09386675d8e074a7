"""One pass of the gateway's health check over the replicas of every collection it serves
(cluster/database.py runs it every second), and ``answers``: the wait for many replicas'
calls together, used by the pass and wherever the gateway asks many replicas at once
(its start, `vectord cluster status`, deleting a collection, taking a snapshot).

Every replica's ``status()`` is asked at once and waited for together, for at most one
timeout. Replicas that hang rather than fail (a lost node's, until Ray's health checks
declare the node dead) then cost the pass one timeout, however many there are. Asked one
at a time, a lost node with 50 replicas would hold the pass up for 50 timeouts (10 s each),
and with it the catch-up of every replica elsewhere.

In-sync replicas that fail or do not answer are marked out of sync; in-sync replicas that
answer are refreshed (their applied number, and their read endpoint after a restart); out
of sync replicas that answer are caught up (``ShardSet.catch_up``, one at a time: it holds
the shard's lock while it replays or copies).
"""

from __future__ import annotations

from typing import Any, Hashable, Iterable

from .shards import IN_SYNC


def answers(refs: dict[Hashable, Any], timeout_s: float) -> dict[Hashable, Any]:
    """The results of Ray calls made at once (``refs``: key -> ObjectRef), waited for
    together for at most ``timeout_s``: key -> the result, or the exception it raised
    (TimeoutError for one not back in time)."""
    import ray

    if not refs:
        return {}
    ready = set(ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout_s)[0])
    out: dict[Hashable, Any] = {}
    for key, ref in refs.items():
        try:
            if ref not in ready:
                raise TimeoutError(f"no answer within {timeout_s} s")
            out[key] = ray.get(ref)
        except Exception as exc:
            out[key] = exc
    return out


def sweep(collections: Iterable[Any], timeout_s: float) -> None:
    """Checks every replica of ``collections`` (ClusterCollections: ``.shards`` is a ShardSet)."""
    asked, refs = [], {}  # (shard set, replica) by number; their status() calls
    for collection in collections:
        shard_set = collection.shards
        for shard in shard_set.shards:
            for replica in shard.replicas:
                if replica.actor is None:
                    continue
                try:
                    refs[len(asked)] = replica.actor.status.remote()
                except Exception as exc:  # a handle Ray refuses outright
                    replica.mark_stale(f"not answering: {exc.__class__.__name__}")
                    continue
                asked.append((shard_set, replica))
    for n, status in answers(refs, timeout_s).items():
        shard_set, replica = asked[n]
        if isinstance(status, Exception):
            if replica.state == IN_SYNC:  # a stale one keeps the reason it was marked for
                replica.mark_stale(f"not answering: {status.__class__.__name__}")
            continue
        if replica.state == IN_SYNC:
            replica.seen(status)  # a restarted replica listens elsewhere
            continue
        try:
            shard_set.catch_up(replica, timeout_s=timeout_s)
        except Exception as exc:
            replica.mark_stale(f"catch-up failed: {exc.__class__.__name__}")
