"""Replication rules without a Ray cluster: the replica's write numbering (duplicates, gaps,
durability across a restart) and the gateway's acknowledgement levels."""

from __future__ import annotations

import numpy as np
import pytest

from vectord.cluster.replica import ShardReplica
from vectord.cluster.shards import STALE, Replica, Shard, ShardSet, needed_acks
from vectord.errors import InvalidArgumentError, UnavailableError

CONFIG = {"dim": 3, "metric": "l2", "hnsw": {"m": 16, "ef_construction": 100, "ef_search": 50}, "fulltext": None}


def put(ids, seed=0):
    return {"ids": ids, "embeddings": np.random.default_rng(seed).standard_normal((len(ids), 3)).astype(np.float32)}


def test_a_retried_write_is_applied_once_and_a_skipped_one_is_refused(tmp_path):
    replica = ShardReplica(str(tmp_path / "r"), CONFIG)
    assert replica.apply(1, "put", put(["a", "b"]))["status"] == "ok"
    # Ray may run a call and still report a failure: the gateway retries with the same number
    again = replica.apply(1, "put", put(["a", "b"], seed=9))
    assert again["status"] == "duplicate"
    assert np.array_equal(replica.get(ids=["a"], include=["embeddings"]).embeddings, put(["a"])["embeddings"])
    assert replica.apply(3, "delete", {"ids": ["a"]}) == {"status": "gap", "applied": 1}
    assert replica.count() == 2  # the out-of-order write changed nothing
    assert replica.apply(2, "delete", {"ids": ["a"]})["deleted"] == 1
    replica.close()


def test_the_applied_number_survives_a_restart(tmp_path):
    replica = ShardReplica(str(tmp_path / "r"), CONFIG)
    replica.apply(1, "put", put(["a"]))
    replica.apply(2, "put", put(["b"], 1))
    replica.close()
    again = ShardReplica(str(tmp_path / "r"), CONFIG)
    assert again.applied == 2 and again.count() == 2
    assert again.apply(2, "put", put(["c"]))["status"] == "duplicate"
    again.close()


def test_a_crash_between_the_engine_and_the_number_replays_harmlessly(tmp_path):
    """The engine fsynced write 2, the process died before applied.json said so: write 2
    comes again and changes nothing (puts and deletes are idempotent by value)."""
    replica = ShardReplica(str(tmp_path / "r"), CONFIG)
    replica.apply(1, "put", put(["a"]))
    replica.collection.upsert(**{"ids": ["b"], "embeddings": put(["b"], 1)["embeddings"]})  # write 2, unnumbered
    replica.close()
    again = ShardReplica(str(tmp_path / "r"), CONFIG)
    assert again.applied == 1
    result = again.apply(2, "put", put(["b"], 1))
    assert result["status"] == "ok" and result["unchanged"] == 1 and again.count() == 2
    again.close()


def chunks(source, n, seed=0, **meta):
    ids = [f"{source}#{j}" for j in range(n)]
    return {"sources": [source], "ids": ids, "embeddings": put(ids, seed)["embeddings"],
            "documents": [f"part {j}" for j in range(n)],
            "metadatas": [{**meta, "source_id": source, "chunk": j} for j in range(n)]}


def test_a_chunked_write_replaces_a_sources_records_exactly(tmp_path):
    replica = ShardReplica(str(tmp_path / "r"), CONFIG)
    replica.apply(1, "put", {**put(["doc", "other"]), "metadatas": [{"plain": 1}, {"keep": 1}]})
    first = replica.apply(2, "chunked", chunks("doc", 4, kind="long", extra=1))
    assert (first["inserted"], first["updated"], first["deleted"]) == (4, 0, 1)  # the plain record "doc" went
    second = replica.apply(3, "chunked", chunks("doc", 2, 1, kind="short"))
    assert (second["inserted"], second["updated"], second["deleted"]) == (0, 2, 2)
    got = replica.get(where=None, include=["metadatas"])
    assert sorted(got.ids) == ["doc#0", "doc#1", "other"]
    # exactly the new metadata: "extra" of the overwritten chunk is gone
    assert replica.get(ids=["doc#0"], include=["metadatas"]).metadatas == [
        {"kind": "short", "source_id": "doc", "chunk": 0}]
    assert replica.chunk_state(["doc"], ["doc#1", "doc#5"])["taken"] == ["doc#1"]
    replica.close()


def test_a_chunked_write_cut_by_a_crash_is_finished_before_serving(tmp_path):
    """The replica records the write's arguments before its two engine writes: a crash
    between them (old chunks deleted, new ones not yet put) is finished at the next start."""
    replica = ShardReplica(str(tmp_path / "r"), CONFIG)
    replica.apply(1, "chunked", chunks("doc", 5))
    args = chunks("doc", 2, 1, kind="new")
    replica._write_pending(2, args)
    replica.collection.delete(ids=["doc#2", "doc#3", "doc#4"])  # the first half, then the crash
    replica.close()
    again = ShardReplica(str(tmp_path / "r"), CONFIG)
    assert again.applied == 2 and sorted(again.get(include=[]).ids) == ["doc#0", "doc#1"]
    assert again.get(ids=["doc#1"], include=["metadatas"]).metadatas[0]["kind"] == "new"
    assert again.apply(2, "chunked", args)["status"] == "duplicate"
    again.close()


def test_an_engine_refusal_spends_the_number_on_every_replica(tmp_path):
    replica = ShardReplica(str(tmp_path / "r"), CONFIG)
    result = replica.apply(1, "put", {"ids": ["a"], "embeddings": np.zeros((1, 4), np.float32)})
    assert result["status"] == "error" and isinstance(result["error"], InvalidArgumentError)
    assert replica.apply(2, "put", put(["a"]))["status"] == "ok"  # the replicas stay in step
    replica.close()


@pytest.mark.parametrize("level, replicas, needed", [("one", 3, 1), ("quorum", 2, 2), ("quorum", 3, 2),
                                                     ("quorum", 5, 3), ("all", 3, 3)])
def test_acknowledgements_needed(level, replicas, needed):
    assert needed_acks(level, replicas) == needed


def test_unknown_level_is_refused():
    with pytest.raises(InvalidArgumentError, match="'most'"):
        needed_acks("most", 2)


class NeverCalled:
    def __getattr__(self, name):
        raise AssertionError(f"{name} was called: the write should have been refused before")


def test_level_all_fails_fast_with_a_replica_out_of_sync():
    replicas = [Replica(0, 0, "n1", "r0", NeverCalled()), Replica(0, 1, "n2", "r1", NeverCalled())]
    replicas[1].mark_stale("node gone")
    shards = ShardSet("docs", [Shard(0, replicas)])
    with pytest.raises(UnavailableError, match=r"shard 0: 1 of 2 replicas in sync, write level 'all' needs 2"):
        shards.write({0: ("put", put(["a"]))}, "all")
    assert shards.shards[0].seq == 0 and not shards.shards[0].tail  # no number spent
    assert replicas[1].state == STALE


class Local:
    """A ShardReplica called in-process, with Ray's `.remote()` shape (ray.get is patched)."""

    def __init__(self, replica):
        self.replica = replica

    def __getattr__(self, name):
        method = getattr(self.replica, name)
        return type("M", (), {"remote": staticmethod(lambda *a, **k: method(*a, **k))})


@pytest.fixture
def local_ray(monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setattr(ray, "get", lambda value, timeout=None: value)
    monkeypatch.setattr("vectord.cluster.replica.ShardReplica.status",
                        lambda self: {"applied": self.applied, "count": self.count(), "node": "local", "path": ""})


@pytest.mark.parametrize("writes_missed", [3, 300])  # within the gateway's tail / beyond it: a full copy
def test_a_stale_replica_catches_up_from_the_tail_or_by_a_copy(tmp_path, local_ray, writes_missed):
    from vectord.cluster import shards as shards_module

    peer, behind = (ShardReplica(str(tmp_path / name), CONFIG) for name in ("peer", "behind"))
    replicas = [Replica(0, 0, "n1", "peer", Local(peer)), Replica(0, 1, "n2", "behind", Local(behind))]
    shard = Shard(0, replicas)
    shard_set = ShardSet("docs", [shard])
    for seq in range(1, 3):  # both replicas apply the first writes
        for r in (peer, behind):
            r.apply(seq, "put", put([f"a{seq}"], seq))
        shard.seq = seq
        shard.tail.append((seq, "put", put([f"a{seq}"], seq)))
    replicas[1].mark_stale("killed")
    for seq in range(3, 3 + writes_missed):  # the peer alone goes on
        args = put([f"b{seq}"], seq) if seq % 5 else {"ids": ["a1"]}
        op = "put" if seq % 5 else "delete"
        peer.apply(seq, op, args)
        shard.seq = seq
        shard.tail.append((seq, op, args))
    assert (len(shard.tail) < writes_missed + 2) == (writes_missed > shards_module.TAIL_WRITES)
    assert shard_set.catch_up(replicas[1])
    assert replicas[1].state == "in_sync" and behind.applied == peer.applied == shard.seq
    mine, theirs = (r.get(after="", limit=10_000, include=["embeddings"]) for r in (behind, peer))
    assert mine.ids == theirs.ids and np.array_equal(mine.embeddings, theirs.embeddings)
    peer.close()
    behind.close()
