"""Simulated power loss at every step of writes, checkpoints, log truncation, collection
creation and deletion (after SQLite's crash-test VFS).

One deterministic workload runs through ``PowerLossFS``; first without a crash, to count
its operations, then once per operation k with the power lost just before op k. The
durable image (fsynced data, fsynced directory entries) is materialised in several
variants of what happened to unsynced bytes, reopened with the real file system, and
must equal the acknowledged state: every write acknowledged before the crash present with
its value, the write in flight fully present or absent, nothing else.
"""

from __future__ import annotations

import copy
import re
import shutil

import numpy as np
import pytest

from faults_helpers import LONG
from crashfs import VARIANTS, PowerLoss, PowerLossFS
from vectord.storage import Database, Tuning

TUNING = Tuning(exact_threshold=8, checkpoint_min_bytes=1 << 40, compact_min_dead=2,
                compact_ratio=0.1, index_threads=1, seal_rows=0)
# The same workload on a collection that seals (docs/segments.md): the first checkpoint
# seals the "a" records; the update and the delete after it hit that segment (its bitmap, a
# record moved to the tail) and the next checkpoint compacts it; the "b" records are sealed
# into a second segment, merged with the first, and the deletes of half of them compact the
# merged one; the later records stay in the tail. Five segment directories in all.
SEALING = Tuning(exact_threshold=8, checkpoint_min_bytes=1 << 40, compact_min_dead=2,
                 compact_ratio=0.1, index_threads=1, maintenance_threads=1, seal_rows=4, merge_factor=2)
DIM = 4
STATS = {"crash_points": 0, "recoveries": 0, "variants": 0, "torn_bytes_max": 0}


def _vec(seed: int) -> list[float]:
    return np.random.default_rng(seed).normal(size=DIM).astype(np.float32).tolist()


def _merge(old, new):
    if new is None:
        return old
    out = dict(old)
    for key, value in new.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


class Model:
    """The acknowledged state: collection -> id -> (vector, document, metadata)."""

    def __init__(self) -> None:
        self.state: dict[str, dict[str, tuple]] = {}
        self.in_flight: dict | None = None  # the state if the op in flight completed

    def put(self, name, kind, ids, vectors=None, documents=None, metadatas=None):
        new = copy.deepcopy(self.state)
        records = new[name]
        for i, id_ in enumerate(ids):
            old = records.get(id_)
            vector = tuple(vectors[i]) if vectors is not None else old[0]
            document = documents[i] if documents is not None else (old[1] if old else None)
            metadata = _merge(old[2] if old else {}, metadatas[i] if metadatas else None)
            records[id_] = (vector, document, metadata)
        return new

    def delete(self, name, ids):
        new = copy.deepcopy(self.state)
        for id_ in ids:
            new[name].pop(id_, None)
        return new


def workload(db: Database, model: Model, size: int) -> None:
    def step(new_state, action):
        model.in_flight = new_state
        action()
        model.state, model.in_flight = new_state, None

    new = copy.deepcopy(model.state)
    new["c"] = {}
    step(new, lambda: db.create_collection("c", dim=DIM, metric="l2"))
    col = db.get_collection("c")
    ids = [f"a{i}" for i in range(6)]
    vecs = [_vec(i) for i in range(6)]
    docs = [f"doc {i}" for i in range(6)]
    metas = [{"i": i} for i in range(6)]
    step(model.put("c", "add", ids, vecs, docs, metas), lambda: col.add(ids, vecs, docs, metas))
    step(model.put("c", "upsert", ["a1"], [_vec(100)], None, [{"i": None, "u": 1}]),
         lambda: col.upsert(["a1"], [_vec(100)], metadatas=[{"i": None, "u": 1}]))
    col.checkpoint()
    step(model.put("c", "update", ["a2"], None, ["changed"], None),
         lambda: col.update(["a2"], documents=["changed"]))
    step(model.delete("c", ["a3"]), lambda: col.delete(ids=["a3"]))
    col.checkpoint()  # a generation with a deleted slot
    more = [f"b{i}" for i in range(size)]
    more_vecs = [_vec(1000 + i) for i in range(size)]
    step(model.put("c", "add", more, more_vecs), lambda: col.add(more, more_vecs))  # HNSW built
    col.checkpoint()  # a generation with index.hnsw
    gone = more[: size // 2]
    step(model.delete("c", gone), lambda: col.delete(ids=gone))
    col.checkpoint()  # compaction: relabelled, graph rebuilt
    step(model.put("c", "upsert", ["b9x", "a0"], [_vec(7), _vec(8)], None, [{"z": 1}, {"z": 2}]),
         lambda: col.upsert(["b9x", "a0"], [_vec(7), _vec(8)], metadatas=[{"z": 1}, {"z": 2}]))
    new = copy.deepcopy(model.state)
    new["d"] = {}
    step(new, lambda: db.create_collection("d", dim=2, metric="l2"))
    d = db.get_collection("d")
    step(model.put("d", "add", ["x"], [[1.0, 2.0]]), lambda: d.add(["x"], [[1.0, 2.0]]))
    new = copy.deepcopy(model.state)
    del new["d"]
    step(new, lambda: db.delete_collection("d"))
    step(model.put("c", "add", ["tail"], [_vec(9)]), lambda: col.add(["tail"], [_vec(9)]))
    db.close()  # the final checkpoint, and the log truncated once more


def read_state(db: Database) -> dict:
    out = {}
    for col in db.list_collections():
        got = col.get(include=["embeddings", "documents", "metadatas"])
        out[col.name] = {id_: (tuple(np.asarray(vec, np.float32).tolist()), doc, meta)
                         for id_, vec, doc, meta in zip(got.ids, got.embeddings, got.documents,
                                                        got.metadatas)}
        assert col.count() == len(got.ids)
    return out


def _normalise(state):
    return {name: {id_: (tuple(np.float32(x).item() for x in rec[0]), rec[1], rec[2])
                   for id_, rec in records.items()} for name, records in state.items()}


def _abandon(db: Database | None) -> None:
    """Drops a crashed database without touching its files (the process 'died')."""
    if db is None:
        return
    db._stop.set()
    db._checkpointer.join()
    for col in db._collections.values():
        col._closed = True
        try:
            col._wal.close()
        except OSError:
            pass
    db._lock_file.release()


def run(pristine, work, crash_at, size, tuning=TUNING):
    shutil.copytree(pristine, work)
    fs = PowerLossFS(work, crash_at=crash_at)
    model = Model()
    db = None
    try:
        db = Database(work, tuning=tuning, fs=fs, checkpoint_interval_s=3600)
        workload(db, model, size)
    except PowerLoss:
        _abandon(db)
        return fs, model, True
    return fs, model, False


def check_recovery(image, target, variant, model, crash_at, fs, write_after: bool, tuning=TUNING):
    image.materialise(target, variant)
    allowed = [_normalise(model.state)]
    if model.in_flight is not None:
        allowed.append(_normalise(model.in_flight))
    with Database(target, tuning=tuning, checkpoint_interval_s=3600) as db:
        assert not db.damaged_collections(), (crash_at, variant, db.damaged_collections())
        got = _normalise(read_state(db))
        assert got in allowed, (
            f"power loss before op {crash_at} ({fs.log[-3:]}), variant {variant}: state "
            f"{got} is neither the acknowledged state {allowed[0]} nor the in-flight one")
        if write_after:
            for col in db.list_collections():
                col.upsert(["after-crash"], [[0.5] * col.config.dim])
    if write_after:
        with Database(target, tuning=tuning, checkpoint_interval_s=3600) as db:
            for col in db.list_collections():
                assert col.get(ids=["after-crash"]).ids == ["after-crash"]


def crash_everywhere(tmp_path, size, variants_for, tuning=TUNING):
    pristine = tmp_path / "pristine"
    Database(pristine, tuning=tuning).close()  # LOCK and collections/ exist, durable
    fs, model, crashed = run(pristine, tmp_path / "count", None, size, tuning)
    assert not crashed
    total = fs.ops
    assert total > 100, fs.log
    STATS["segments_written"] = len(set(re.findall(r"seg-\d+-[0-9a-f]+", " ".join(fs.log))))
    recovered = 0
    for k in range(total):
        fs, model, crashed = run(pristine, tmp_path / f"run{k}", k, size, tuning)
        assert crashed and fs.image is not None
        STATS["torn_bytes_max"] = max(STATS["torn_bytes_max"], fs.image.unsynced_bytes())
        for j, variant in enumerate(variants_for(k)):
            check_recovery(fs.image, tmp_path / f"img{k}-{variant}", variant, model, k, fs,
                           write_after=j == 1, tuning=tuning)
            STATS["variants"] += 1
        recovered += 1
        shutil.rmtree(tmp_path / f"run{k}")
        for variant in variants_for(k):
            shutil.rmtree(tmp_path / f"img{k}-{variant}")
    STATS["crash_points"] += total
    STATS["recoveries"] += recovered
    print(f"\npower loss: {total} crash points, {recovered} recovered, "
          f"{STATS['variants']} images checked, up to {STATS['torn_bytes_max']} unsynced bytes "
          "dropped/torn/zeroed at a crash point")
    return total, recovered


def test_power_loss_at_every_step_recovers_the_acknowledged_state(tmp_path):
    # CI: every crash point, with unsynced data dropped and one other variant in rotation
    total, recovered = crash_everywhere(
        tmp_path, 12, lambda k: ("drop", VARIANTS[1 + k % 3]))
    assert recovered == total


def test_power_loss_at_every_step_with_sealed_segments_recovers_the_acknowledged_state(tmp_path):
    """The same workload with ``SEALING``: every step of its seals, of the compaction and
    merge of sealed segments, of their bitmaps and of the MANIFEST naming them is a crash point."""
    # every crash point with unsynced data dropped; every other one also with another variant
    # in rotation (and a write after the recovery): CI time
    total, recovered = crash_everywhere(
        tmp_path, 12, lambda k: ("drop", VARIANTS[1 + k // 2 % 3]) if k % 2 else ("drop",), SEALING)
    assert recovered == total
    assert STATS["segments_written"] >= 5, "the workload must seal, compact and merge segments"
    with Database(tmp_path / "count", tuning=SEALING, checkpoint_interval_s=3600) as db:
        assert db.get_collection("c").sealed


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_power_loss_every_step_every_variant_long(tmp_path):
    total, recovered = crash_everywhere(tmp_path, 200, lambda k: VARIANTS)
    assert recovered == total


def test_the_crash_fs_really_forgets_unsynced_state(tmp_path):
    """The double itself: an unsynced directory entry and unsynced appends are undone."""
    root = tmp_path / "r"
    root.mkdir()
    fs = PowerLossFS(root, crash_at=5)
    fs.mkdir(root / "a")  # op 0: not durable until fsync_dir(root)
    fd = fs.open_log(root / "log")  # op 1
    fs.fsync_dir(root)  # ops 2-3 (its nested fsync): a/ and log durable, log empty
    fs.append(fd, b"hello")  # op 4: not fsynced
    with pytest.raises(PowerLoss):
        fs.fsync(fd)  # op 5: the crash
    fs.close(fd)
    assert sorted(fs.image.dirs) == ["a"]
    assert fs.image.files["log"].content("drop") == b""
    assert fs.image.files["log"].content("torn") == b"he"
    assert fs.image.files["log"].content("zeros") == b"\0" * 5
    assert fs.image.files["log"].content("full") == b"hello"
    fs2 = PowerLossFS(tmp_path / "r", crash_at=2)
    fs2.rename(root / "a", root / "b")  # op 0
    fs2.mkdir(root / "c")  # op 1
    with pytest.raises(PowerLoss):
        fs2.fsync_dir(root)
    assert sorted(fs2.image.dirs) == ["a"]  # the rename and the mkdir are undone
