"""Power loss at every step of a checkpoint and of a compaction while the collection has an
exact tail (storage/indexer.py): records written but not yet in the graph, some only in
the checkpoint (the MANIFEST says how far its graph covers), some only in the log.

After a crash at any step, the recovered collection holds exactly what it held before, and
every live record is found by a query for its own vector: from the graph, or from the tail
that recovery and the indexer leave.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from crashfs import PowerLoss, PowerLossFS
from test_power_loss import _abandon, _normalise, read_state
from vectord.storage import Database, Tuning
from vectord.storage import checkpoint as disk

TUNING = Tuning(exact_threshold=8, checkpoint_min_bytes=1 << 40, compact_min_dead=10_000, compact_ratio=0.9,
                graph_cost_per_ef=0, index_threads=1, maintenance_threads=1)
DIM = 4
N = 24


def _vec(i: int) -> list[float]:
    return np.random.default_rng(i).normal(size=DIM).astype(np.float32).tolist()


def _prepare(path):
    """A graph over r0..r11; r12..r23 in the tail, checkpointed (the graph covers 12 of 24
    slots); deletes in the graph and in the tail, some in the log only; r24..r27 in the log."""
    with Database(path, tuning=TUNING, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM, metric="l2")
        col.add([f"r{i}" for i in range(12)], [_vec(i) for i in range(12)])
        col._indexer.stop()  # what follows stays in the tail
        col.add([f"r{i}" for i in range(12, N)], [_vec(i) for i in range(12, N)],
                metadatas=[{"i": i} for i in range(12, N)])
        col.delete(ids=["r1", "r13"])
        col.checkpoint()
        assert disk.read_manifest(col.path)["index"]["covered"] == 12
        col.delete(ids=["r2", "r14"])  # in the log only
        col.add([f"r{i}" for i in range(N, N + 4)], [_vec(i) for i in range(N, N + 4)])
        state = _normalise(read_state(db))
        col._closed = True  # as a crash: the log keeps the rest
        col._wal.close()
        db._collections.clear()
    return state


def _checkpoint(db: Database, compact: bool) -> None:
    db.get_collection("c").checkpoint(force=True, compact=compact)


def _every_record_finds_itself(db: Database) -> None:
    col = db.get_collection("c")
    ids = col.get(include=[]).ids
    for id_ in ids:
        hits = col.query([_vec(int(id_[1:]))], n_results=1)[0].ids
        assert hits == [id_], (id_, hits, col.stats())


@pytest.mark.parametrize("compact", [False, True])
def test_power_loss_at_every_step_of_a_checkpoint_with_a_tail_keeps_every_record(tmp_path, compact):
    pristine = tmp_path / "pristine"
    expected = _prepare(pristine)
    counter = PowerLossFS(shutil.copytree(pristine, tmp_path / "count"))
    with Database(counter.root, tuning=TUNING, fs=counter, checkpoint_interval_s=3600) as db:
        start = counter.ops
        _checkpoint(db, compact)
        end = counter.ops
    assert end - start > 5, counter.log
    for k in range(start, end):
        work = shutil.copytree(pristine, tmp_path / f"run{k}")
        fs = PowerLossFS(work, crash_at=k)
        db = Database(work, tuning=TUNING, fs=fs, checkpoint_interval_s=3600)
        with pytest.raises(PowerLoss):
            _checkpoint(db, compact)
        _abandon(db)
        target = tmp_path / f"img{k}"
        fs.image.materialise(target, "torn")
        with Database(target, tuning=TUNING, checkpoint_interval_s=3600) as db:
            assert not db.damaged_collections(), (k, fs.log[-3:])
            assert _normalise(read_state(db)) == expected, (k, fs.log[-3:])
            _every_record_finds_itself(db)
            assert db.get_collection("c")._indexer.drain(timeout=60)
            _every_record_finds_itself(db)
