"""kill -9 of a real `vectord serve` during concurrent writes: every acknowledged write survives.

Each round: 8 client threads write (add / upsert / update / delete, seeded RNG) while one
may run Admin checkpoints in a loop; after a random delay the server gets SIGKILL; a new
server recovers the same data directory and the state is checked against the client-side
history of acknowledged operations:

- each thread owns a disjoint id range, so the last acknowledged op decides each id's value;
  the one op a thread had in flight when the server died may or may not have happened, but
  all-or-nothing for its whole batch;
- a shared range written by every thread: a present record holds one of the values written;
- preloaded base records (enough for the hnswlib path) are untouched;
- acknowledged deletes stay deleted, no duplicate ids, count agrees with get;
- the recovered log position is at least every acknowledged ``seq``;
- queries still work: recall@10 against brute force over the recovered vectors >= 0.95.

CI runs 4 rounds; ``-m slow`` (or ``VECTORD_SLOW=1``) runs 16 more, and
``VECTORD_KILL9_ROUNDS`` sets the CI test's count.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import vectord  # noqa: E402
from serverproc import start_server  # noqa: E402
from vectord.storage import Tuning  # noqa: E402
from vectord.v1 import collections_pb2 as cpb  # noqa: E402

NAME = "crash"
DIM = 16
THREADS = 8
OWN_IDS = 40  # per thread
SHARED_IDS = 24
BASE = 4500  # above the default exact_threshold (4096): the hnswlib path runs

ABSENT = None
# When the default seals BASE records (storage/types.py Tuning.seal_rows_for: by size, 64 MiB,
# so not at 16-d), the base is checkpointed (sealed) before the rounds: else the first
# checkpoint of a load seals all BASE records, a graph build longer than a round, and no
# checkpoint would finish during a load.
SEALS_BY_DEFAULT = 0 < Tuning().seal_rows_for(DIM) <= BASE


def vec(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    v[np.abs(v).sum(axis=1) == 0, 0] = 1.0
    return v


def same_record(a, b) -> bool:
    if a is ABSENT or b is ABSENT:
        return a is b
    return np.array_equal(a[0], b[0]) and a[1] == b[1] and a[2] == b[2]


@dataclass
class Worker:
    """One client thread and its history of acknowledged writes."""

    index: int
    seed: int
    state: dict[str, Any] = field(default_factory=dict)  # id -> (vector, doc, meta) | ABSENT
    pending: tuple[dict[str, Any], dict[str, Any]] | None = None  # (before, after) of the op in flight
    seqs: list[int] = field(default_factory=list)
    acked: int = 0
    errors: list[str] = field(default_factory=list)

    def ids(self) -> list[str]:
        return [f"t{self.index}-{j}" for j in range(OWN_IDS)]


class Shared:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.written: dict[str, dict[str, np.ndarray]] = {}  # id -> doc -> vector

    def ids(self) -> list[str]:
        return [f"s-{j}" for j in range(SHARED_IDS)]


def run_worker(w: Worker, col: vectord.Collection, shared: Shared, killed: threading.Event,
               stop: threading.Event, round_no: int) -> None:
    rng = random.Random(w.seed * 1000 + round_no)
    nrng = np.random.default_rng(w.seed * 1000 + round_no)
    counter = 0
    while not stop.is_set():
        counter += 1
        tag = f"t{w.index}r{round_no}c{counter}"
        choice = rng.random()
        try:
            if choice < 0.15:  # shared range: only "one of the values written" is checkable
                ids = rng.sample(shared.ids(), rng.randint(1, 3))
                vectors = vec(nrng, len(ids))
                docs = [f"{tag}:{i}" for i in ids]
                with shared.lock:
                    for i, d, v in zip(ids, docs, vectors):
                        shared.written.setdefault(i, {})[d] = v
                if rng.random() < 0.8:
                    col.upsert(ids, vectors, docs, [{"w": w.index} for _ in ids])
                else:
                    col.delete(ids)
                continue
            ids = rng.sample(w.ids(), rng.randint(1, 3))
            before = {i: w.state.get(i, ABSENT) for i in ids}
            present = [i for i in ids if before[i] is not ABSENT]
            if not present:
                kind = "add"
            else:
                kind = rng.choice(["upsert", "upsert", "update", "delete"])
                if kind == "update" and len(present) != len(ids):
                    kind = "upsert"
            after: dict[str, Any] = {}
            if kind == "delete":
                after = {i: ABSENT for i in ids}
                w.pending = (before, after)
                result = col.delete(ids)
                assert result == len(present), (kind, ids, result, len(present))
                seq = None
            elif kind == "update":
                new_vectors = vec(nrng, len(ids)) if rng.random() < 0.5 else None
                metas = [{"v": counter, "u": round_no} for _ in ids]
                docs = [f"{tag}:{i}:u" for i in ids]
                for j, i in enumerate(ids):
                    old = before[i]
                    after[i] = (new_vectors[j] if new_vectors is not None else old[0], docs[j],
                                {**old[2], **metas[j]})
                w.pending = (before, after)
                seq = col.update(ids, new_vectors, docs, metas)["seq"]
            else:  # add or upsert: a full record; upsert merges metadata into the old one
                vectors = vec(nrng, len(ids))
                docs = [f"{tag}:{i}" for i in ids]
                metas = [{"v": counter, "t": w.index, "k": kind} for _ in ids]
                for j, i in enumerate(ids):
                    old_meta = before[i][2] if before[i] is not ABSENT else {}
                    after[i] = (vectors[j], docs[j], {**old_meta, **metas[j]})
                w.pending = (before, after)
                seq = getattr(col, kind)(ids, vectors, docs, metas)["seq"]
            # acknowledged
            w.state.update(after)
            w.pending = None
            w.acked += 1
            if seq is not None:
                w.seqs.append(seq)
            if rng.random() < 0.2:  # read-your-writes
                got = col.get(ids, include=["embeddings", "documents", "metadatas"])
                expected = [i for i in ids if w.state[i] is not ABSENT]
                assert got["ids"] == expected, (got["ids"], expected)
                for j, i in enumerate(expected):
                    assert np.array_equal(got["embeddings"][j], w.state[i][0])
                    assert got["documents"][j] == w.state[i][1]
                    assert got["metadatas"][j] == w.state[i][2]
        except AssertionError as exc:
            w.errors.append(f"{tag}: {exc!r}")
            return
        except Exception as exc:  # the server went away: the op in flight is unacknowledged
            if not killed.is_set():
                w.errors.append(f"{tag}: {type(exc).__name__}: {exc}")
            return


def run_checkpoints(client: vectord.Client, killed: threading.Event, stop: threading.Event,
                    errors: list[str], done: list[int]) -> None:
    while not stop.is_set():
        try:
            done[0] += client.checkpoint(NAME)
        except Exception as exc:
            if not killed.is_set():
                errors.append(f"checkpoint: {type(exc).__name__}: {exc}")
            return


def recovered_seq(client: vectord.Client) -> int:
    return client._call("Collections", "GetCollection", cpb.GetCollectionRequest(name=NAME)).seq


def verify(client: vectord.Client, workers: list[Worker], shared: Shared,
           base: tuple[list[str], np.ndarray]) -> None:
    col = client.get_collection(NAME)
    got = col.get(include=["embeddings", "documents", "metadatas"])
    ids = got["ids"]
    assert len(ids) == len(set(ids)), "duplicate ids after recovery"
    assert col.count() == len(ids)
    records = {i: (got["embeddings"][j], got["documents"][j], got["metadatas"][j])
               for j, i in enumerate(ids)}

    base_ids, base_vectors = base
    for j, i in enumerate(base_ids):
        assert i in records, f"base record {i} lost"
        assert np.array_equal(records[i][0], base_vectors[j]) and records[i][1] == f"base {i}"

    max_seq = 0
    for w in workers:
        assert not w.errors, w.errors
        pending_before, pending_after = w.pending or ({}, {})
        batch_applied = set()
        for i in w.ids():
            actual = records.get(i, ABSENT)
            acked = w.state.get(i, ABSENT)
            if i in pending_before and not same_record(pending_before[i], pending_after[i]):
                if same_record(actual, pending_after[i]):
                    batch_applied.add(True)
                else:
                    assert same_record(actual, acked), f"{i}: neither the acknowledged nor the in-flight value"
                    batch_applied.add(False)
            else:
                assert same_record(actual, acked), (
                    f"{i}: acknowledged {'delete' if acked is ABSENT else 'value'} not recovered: "
                    f"expected {acked if acked is ABSENT else acked[1:]}, got "
                    f"{actual if actual is ABSENT else actual[1:]}")
        assert len(batch_applied) <= 1, f"thread {w.index}: the in-flight batch was half applied"
        # settle the history: whatever recovery kept is now the truth for the next round
        for i in w.ids():
            w.state[i] = records.get(i, ABSENT)
        w.pending = None
        if w.seqs:
            assert w.seqs == sorted(w.seqs), f"thread {w.index}: seqs went backwards"
            max_seq = max(max_seq, w.seqs[-1])
    for i in shared.ids():
        if i in records:
            vector, doc, _ = records[i]
            assert doc in shared.written.get(i, {}), f"{i}: document {doc!r} was never written"
            assert np.array_equal(vector, shared.written[i][doc]), f"{i}: vector of another write"
    assert recovered_seq(client) >= max_seq, "the log lost acknowledged sequence numbers"

    # queries over the recovered state: recall@10 against brute force
    matrix = np.stack([records[i][0] for i in ids]).astype(np.float64)
    norms = np.linalg.norm(matrix, axis=1)
    qrng = np.random.default_rng(len(ids))
    queries = vec(qrng, 20)
    result = col.query(queries, n_results=10, include=["distances"])
    found = 0
    for q, got_ids in zip(queries, result["ids"]):
        assert len(got_ids) == 10
        dist = 1.0 - (matrix @ q.astype(np.float64)) / (norms * np.linalg.norm(q))
        kth = np.sort(dist)[9]
        found += sum(dist[ids.index(i)] <= kth + 1e-5 for i in got_ids)
    recall = found / (10 * len(queries))
    assert recall >= 0.95, f"recall@10 {recall:.3f} after recovery"


def crash_rounds(tmp_path: Path, rounds: int, seed: int, server_args: tuple[str, ...] = (),
                 checkpoint_base: bool = False) -> None:
    data = tmp_path / "data"
    server = start_server(data, *server_args)
    rng = random.Random(seed)
    try:
        client = vectord.Client(server.address, timeout=20)
        col = client.create_collection(NAME, dim=DIM, metric="cosine")
        base_ids = [f"b-{j}" for j in range(BASE)]
        base_vectors = vec(np.random.default_rng(seed), BASE)
        col.add(base_ids, base_vectors, [f"base {i}" for i in base_ids])
        if checkpoint_base:  # (with sealing: the base becomes a segment before the rounds)
            client.checkpoint(NAME)
        workers = [Worker(t, seed * 10 + t) for t in range(THREADS)]
        shared = Shared()
        checkpoint_rounds = 0
        for round_no in range(rounds):
            killed, stop = threading.Event(), threading.Event()
            with_checkpoints = round_no % 2 == 1
            threads = [threading.Thread(target=run_worker, args=(w, col, shared, killed, stop, round_no))
                       for w in workers]
            errors: list[str] = []
            checkpoints = [0]
            if with_checkpoints:
                threads.append(threading.Thread(target=run_checkpoints,
                                                args=(client, killed, stop, errors, checkpoints)))
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.4, 1.5))
            killed.set()
            server.kill()  # SIGKILL
            stop.set()
            for t in threads:
                t.join(60)
                assert not t.is_alive(), "a client thread hung after the server died"
            assert not errors, errors
            acked = sum(w.acked for w in workers)
            assert acked > 0, "no write was acknowledged before the kill"
            checkpoint_rounds += checkpoints[0] > 0
            in_flight = sum(w.pending is not None for w in workers)
            print(f"round {round_no}: {acked} writes acknowledged so far, {in_flight} in flight "
                  f"at the kill, {checkpoints[0]} checkpoints during the load")
            client.close()
            server = start_server(data, *server_args)
            client = vectord.Client(server.address, timeout=20)
            col = client.get_collection(NAME)
            verify(client, workers, shared, (base_ids, base_vectors))
        assert rounds < 2 or checkpoint_rounds >= 1, "no checkpoint ran during a load"
        # the graceful path after all the crashes: SIGTERM, exit 0, and the state survives
        client.close()
        assert server.terminate() == 0, server.log()
        server = start_server(data, *server_args)
        client = vectord.Client(server.address, timeout=20)
        verify(client, workers, shared, (base_ids, base_vectors))
        client.close()
        if "--seal-rows" in server_args:
            assert list(data.rglob("seg-*")), "no segment was sealed"
    finally:
        server.kill()


def test_kill9_during_concurrent_writes(tmp_path):
    crash_rounds(tmp_path, int(os.environ.get("VECTORD_KILL9_ROUNDS", "4")), seed=1,
                 checkpoint_base=SEALS_BY_DEFAULT)


def test_kill9_with_sealed_segments(tmp_path):
    """The same rounds on a server that seals every 200 live records (docs/segments.md): the
    base records are a segment before the rounds, the checkpoints of the load seal the
    threads' records, whose upserts and deletes then hit sealed records (bitmaps) as well
    as the tail, and merge segments."""
    crash_rounds(tmp_path, int(os.environ.get("VECTORD_KILL9_ROUNDS", "4")), seed=3,
                 server_args=("--seal-rows", "200"), checkpoint_base=True)


@pytest.mark.slow
def test_kill9_many_rounds(tmp_path, request):
    if "slow" not in (request.config.option.markexpr or "") and not os.environ.get("VECTORD_SLOW"):
        pytest.skip("slow: run with `python -m pytest -m slow` (or VECTORD_SLOW=1)")
    crash_rounds(tmp_path, 16, seed=2, checkpoint_base=SEALS_BY_DEFAULT)
