"""The gateway's view of one collection's shards: replica handles, their health, the write
sequencer of each shard, replication at an acknowledgement level, reads with fail-over, and
catch-up of a replica that fell behind.

Acknowledgement levels (a write is acknowledged to the client only when):

- ``one``: one replica of every shard it touches applied it (fsynced on that replica's
  disk). Survives the loss of any replica but that one; the others may be behind until
  they catch up.
- ``quorum`` (the default): a majority (replicas // 2 + 1) applied it. With 3 replicas a
  write survives the loss of any one node; with 2 replicas the quorum is both.
- ``all``: every replica applied it. Refused at once with UNAVAILABLE when a replica of a
  shard it touches is not in sync (the write would wait on a replica that cannot answer).

Every write of a shard gets the next number of that shard's sequence while the shard's lock
is held and is sent to the in-sync replicas in that order (Ray runs one caller's calls to an
actor in submission order). A replica refuses a number that skips one, answers a number it
already applied as a duplicate (retries are safe), and is marked stale on any failure;
stale replicas get no writes and serve no reads until ``catch_up`` brings them level: the
writes they missed are replayed from the gateway's recent-write tail when it still holds
them, or the replica is emptied and copied from an in-sync peer (records in id order, under
the shard's lock so that no write slips between the copy and the tail).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from vectord.errors import InvalidArgumentError, UnavailableError, VectordError

from . import dataplane

log = logging.getLogger(__name__)

LEVELS = ("one", "quorum", "all")
IN_SYNC, STALE = "in_sync", "stale"
#: Writes kept per shard for replay to a replica that missed them (beyond: a full copy).
TAIL_WRITES = 256
COPY_PAGE = 1000


def needed_acks(level: str, replicas: int) -> int:
    if level not in LEVELS:
        raise InvalidArgumentError(f"write level: must be one of {', '.join(LEVELS)}, got {level!r}")
    return {"one": 1, "quorum": replicas // 2 + 1, "all": replicas}[level]


def unwrap(exc: BaseException) -> BaseException:
    """The engine's own error inside a Ray task error (raised again as is), else ``exc``."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, VectordError) else exc


@dataclass
class Replica:
    shard: int
    index: int
    node: str
    name: str
    actor: Any
    state: str = IN_SYNC
    reason: str = ""
    applied: int = 0
    #: Where the replica serves reads (cluster.dataplane), from its status(); None: reads go
    #: over Ray (a replica that is not listening, or in-process tests).
    reader: dataplane.ReadClient | None = None

    def seen(self, status: dict[str, Any]) -> None:
        """Takes in a status() reply: the applied number and the read endpoint (new after a
        restart: the old connections are dropped)."""
        self.applied = status["applied"]
        endpoint = status.get("endpoint")
        if endpoint is None:
            return
        if self.reader is None or [*self.reader.address, self.reader.token] != list(endpoint):
            old, self.reader = self.reader, dataplane.ReadClient(list(endpoint))
            if old is not None:
                old.close()

    def mark_stale(self, why: str) -> None:
        if self.state != STALE:
            log.warning("replica %s is out of sync: %s", self.name, why)
        self.state, self.reason = STALE, why


@dataclass
class Shard:
    index: int
    replicas: list[Replica]
    seq: int = 0
    #: The highest write number acknowledged to a client: a read over the direct path goes
    #: to a replica that applied it (at level one a write is acknowledged before every
    #: replica has it; the Ray path orders the read after it instead).
    acked: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    tail: deque = field(default_factory=lambda: deque(maxlen=TAIL_WRITES))
    _next_reader: int = 0

    def in_sync(self) -> list[Replica]:
        return [r for r in self.replicas if r.state == IN_SYNC]

    def readers(self) -> list[Replica]:
        """In-sync replicas, rotated so that reads spread over them."""
        replicas = self.in_sync()
        if not replicas:
            return []
        self._next_reader = (self._next_reader + 1) % len(replicas)
        return replicas[self._next_reader:] + replicas[:self._next_reader]


class ShardSet:
    """One collection's shards, as the gateway drives them."""

    def __init__(self, collection: str, shards: list[Shard], *, timeout_s: float = 10.0,
                 read_timeout_s: float = 2.0) -> None:
        self.collection = collection
        self.shards = shards
        self.timeout_s = timeout_s
        self.read_timeout_s = read_timeout_s

    # ------------------------------------------------------------------ writes
    def write(self, parts: dict[int, tuple[str, dict[str, Any]]], level: str,
              check: Callable[[dict[int, Replica]], None] | None = None) -> list[dict[str, Any]]:
        """Applies ``parts`` (shard -> (op, args)) at ``level``; returns each touched shard's
        result (from a replica that applied it). ``check`` runs first, under the shards'
        locks, with one in-sync replica per shard (existence checks of add and update)."""
        import ray

        order = sorted(parts)
        shards = [self.shards[s] for s in order]
        for shard in shards:  # always in shard order: no deadlock between two writers
            shard.lock.acquire()
        try:
            targets = {}
            for shard in shards:
                replicas = shard.in_sync()
                need = needed_acks(level, len(shard.replicas))
                if len(replicas) < need:
                    raise UnavailableError(
                        f"collection {self.collection!r} shard {shard.index}: {len(replicas)} of "
                        f"{len(shard.replicas)} replicas in sync, write level {level!r} needs {need}; "
                        "nothing was written (`vectord cluster status` shows the replicas)")
                targets[shard.index] = (replicas, need)
            if check is not None:
                check({s: targets[s][0][0] for s in order})
            pending = {}
            for shard in shards:
                op, args = parts[shard.index]
                shard.seq += 1
                shard.tail.append((shard.seq, op, args))
                for replica in targets[shard.index][0]:
                    pending[replica.actor.apply.remote(shard.seq, op, args)] = replica
        finally:
            for shard in shards:
                shard.lock.release()
        return self._collect(pending, {s: targets[s][1] for s in order}, level)

    def _collect(self, pending: dict, need: dict[int, int], level: str) -> list[dict[str, Any]]:
        import ray

        acks: dict[int, int] = {s: 0 for s in need}
        results: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + self.timeout_s
        refs = list(pending)
        while refs and any(acks[s] < need[s] for s in need):
            ready, refs = ray.wait(refs, num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            self._account(ready[0], pending[ready[0]], acks, results)
        if refs:  # acknowledged already (or timed out): the rest are checked in the background
            threading.Thread(target=self._follow, args=(refs, pending), daemon=True).start()
        for s, result in results.items():
            if result.get("status") == "error":
                raise result["error"]
        short = [s for s in need if acks[s] < need[s]]
        for s in need:
            if acks[s] >= need[s] and s in results:
                self.shards[s].acked = max(self.shards[s].acked, results[s]["applied"])
        if short:
            raise UnavailableError(
                f"collection {self.collection!r} shard {short[0]}: {acks[short[0]]} of {need[short[0]]} "
                f"replicas acknowledged the write in {self.timeout_s:.0f} s (write level {level!r}); "
                "it may or may not have been applied")
        return [results[s] for s in sorted(results)]

    def _account(self, ref, replica: Replica, acks: dict[int, int], results: dict[int, dict]) -> None:
        import ray

        try:
            outcome = ray.get(ref)
        except Exception as exc:  # the actor died or was restarted: it may or may not have applied
            replica.mark_stale(f"write failed: {exc.__class__.__name__}")
            return
        if outcome["status"] == "gap":
            replica.mark_stale(f"missed writes (applied {outcome['applied']})")
            return
        replica.applied = outcome["applied"]
        if replica.shard in acks:
            acks[replica.shard] += 1
            if outcome["status"] != "duplicate" or replica.shard not in results:
                results[replica.shard] = outcome

    def _follow(self, refs: list, pending: dict) -> None:
        for ref in refs:
            self._account(ref, pending[ref], {}, {})

    # ------------------------------------------------------------------ reads
    def call(self, shard: int, method: str, *args, **kwargs):
        """One read on one in-sync replica of ``shard``, failing over to the others."""
        return self.fanout({shard: (method, args, kwargs)})[shard]

    def fanout(self, calls: dict[int, tuple[str, tuple, dict]]) -> dict[int, Any]:
        """Reads on many shards at once: one in-sync replica each, the next one on failure.

        Every shard's request is sent before any reply is awaited (one deadline for the
        round), over the direct path (cluster.dataplane) to a replica that applied every
        acknowledged write, else over Ray."""
        import ray
        from ray.exceptions import GetTimeoutError

        tried: dict[int, list[Replica]] = {s: [] for s in calls}
        out: dict[int, Any] = {}
        todo = dict(calls)
        frames: dict[tuple, tuple[dict, bytes]] = {}  # (method, id(kwargs)) -> its frame, built once
        while todo:
            sent: dict[int, tuple[Replica, str, Any]] = {}
            retry = {}
            for s, (method, args, kwargs) in todo.items():
                shard = self.shards[s]
                candidates = [r for r in shard.readers() if r not in tried[s]]
                if not candidates:
                    raise UnavailableError(
                        f"collection {self.collection!r} shard {s}: no in-sync replica answers "
                        f"({', '.join(r.reason or r.state for r in shard.replicas)})")
                direct = [r for r in candidates if r.reader is not None and r.applied >= shard.acked]
                replica = direct[0] if direct and method in dataplane.READS and not args else candidates[0]
                tried[s].append(replica)
                if replica in direct and method in dataplane.READS and not args:
                    try:
                        built = frames.get((method, id(kwargs)))
                        if built is None or built[0] is not kwargs:
                            built = frames[method, id(kwargs)] = (kwargs, dataplane.request(method, kwargs))
                        sent[s] = (replica, "direct", replica.reader.send_frame(built[1]))
                    except dataplane.ReplicaDown as exc:
                        replica.mark_stale(f"read failed: {exc}")
                        retry[s] = todo[s]
                else:
                    sent[s] = (replica, "ray", getattr(replica.actor, method).remote(*args, **kwargs))
            deadline = time.monotonic() + self.read_timeout_s
            for s, (replica, path, handle) in sent.items():
                method = todo[s][0]
                try:
                    if path == "direct":
                        out[s] = dataplane.decode(method, replica.reader.receive(handle, deadline))
                    else:
                        out[s] = ray.get(handle, timeout=max(0.0, deadline - time.monotonic()))
                except dataplane.ReplicaDown as exc:
                    replica.mark_stale(f"read failed: {exc}")
                    retry[s] = todo[s]
                except GetTimeoutError:
                    replica.mark_stale(f"no answer to a read in {self.read_timeout_s} s")
                    retry[s] = todo[s]
                except VectordError:
                    raise
                except Exception as exc:
                    inner = unwrap(exc)
                    if isinstance(inner, VectordError):
                        raise inner from None
                    replica.mark_stale(f"read failed: {exc.__class__.__name__}")
                    retry[s] = todo[s]
            todo = retry
        return out

    # ------------------------------------------------------------------ health
    def catch_up(self, replica: Replica, timeout_s: float = 10.0) -> bool:
        """Brings a stale replica level with its shard, if it answers; True when in sync."""
        import ray

        shard = self.shards[replica.shard]
        try:
            status = ray.get(replica.actor.status.remote(), timeout=timeout_s)
        except Exception:
            return False
        applied = status["applied"]
        replica.seen(status)
        with shard.lock:
            peers = shard.in_sync()
            if not peers and applied >= shard.seq:  # nobody is ahead: it is as good as any
                replica.state, replica.reason, replica.applied = IN_SYNC, "", applied
                shard.seq = max(shard.seq, applied)
                return True
            try:
                missing = [w for w in shard.tail if w[0] > applied]
                if missing and missing[0][0] == applied + 1 and applied <= shard.seq:
                    for seq, op, args in missing:  # the log tail: replayed in order
                        outcome = ray.get(replica.actor.apply.remote(seq, op, args), timeout=timeout_s)
                        if outcome["status"] == "gap":
                            return False
                elif applied != shard.seq:
                    if not peers:
                        return False
                    self._copy(peers[0], replica, timeout_s)
            except Exception as exc:
                replica.reason = f"catch-up failed: {exc.__class__.__name__}"
                return False
            replica.state, replica.reason, replica.applied = IN_SYNC, "", shard.seq
            log.info("replica %s is in sync again (seq %d)", replica.name, shard.seq)
            return True

    def _copy(self, source: Replica, target: Replica, timeout_s: float) -> None:
        """Empties ``target`` and copies every record of ``source`` (the shard's lock is held)."""
        import ray

        ray.get(target.actor.reset.remote(), timeout=timeout_s)
        after = ""
        while True:
            page = ray.get(source.actor.dump.remote(after, COPY_PAGE), timeout=timeout_s)
            ray.get(target.actor.load.remote(page), timeout=timeout_s)
            if page.next_after is None:
                break
            after = page.next_after
        seq = ray.get(source.actor.status.remote(), timeout=timeout_s)["applied"]
        ray.get(target.actor.load.remote(page.__class__(ids=[]), applied=seq), timeout=timeout_s)
