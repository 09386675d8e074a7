"""Power loss at every step of a compaction and of the checkpoint that makes it durable
(storage/compaction.py: new vector file and graph built beside the old ones, swapped in,
copied into a new generation, MANIFEST switched, work file removed).

Compaction changes no record, so after a crash at any step the collection must hold
exactly what it held before: the old generation plus its log, or the new one. Each
recovered image must also take a write and leave no compaction work file behind.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from crashfs import VARIANTS, PowerLoss, PowerLossFS
from test_power_loss import _abandon, _normalise, read_state
from vectord.storage import Database, Tuning
from vectord.storage import compaction

# compact_min_dead high: only the explicit compaction compacts
TUNING = Tuning(exact_threshold=8, checkpoint_min_bytes=1 << 40, compact_min_dead=10_000,
                compact_ratio=0.9, index_threads=1, maintenance_threads=1)
DIM = 4
N = 24


def _vec(i: int) -> list[float]:
    return np.random.default_rng(i).normal(size=DIM).astype(np.float32).tolist()


def _prepare(path):
    """A collection with a graph, half its records deleted, some of them only in the log."""
    with Database(path, tuning=TUNING, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM, metric="l2")
        col.add([f"r{i}" for i in range(N)], [_vec(i) for i in range(N)],
                documents=[f"doc {i}" for i in range(N)], metadatas=[{"i": i} for i in range(N)])
        col.delete(ids=[f"r{i}" for i in range(0, N, 4)])
        col.checkpoint()  # a generation with deleted slots (not compacted: below the threshold)
        col.delete(ids=[f"r{i}" for i in range(1, N, 4)])  # more, in the log only
        state = _normalise(read_state(db))
    return state


def _compact(db: Database) -> None:
    col = db.get_collection("c")
    col.checkpoint(compact=True)
    assert col.stats()["deleted_slots"] == 0
    col.upsert(["late"], [_vec(99)])  # after the swap, into the compacted state


@pytest.mark.parametrize("variants", [("drop", "torn"), ("zeros", "full")])
def test_power_loss_at_every_step_of_a_compaction_keeps_every_record(tmp_path, variants):
    pristine = tmp_path / "pristine"
    expected = _prepare(pristine)
    with_late = {name: {**records, "late": (tuple(np.float32(x).item() for x in _vec(99)), None, {})}
                 for name, records in expected.items()}
    counter = PowerLossFS(shutil.copytree(pristine, tmp_path / "count"))
    with Database(counter.root, tuning=TUNING, fs=counter, checkpoint_interval_s=3600) as db:
        start = counter.ops
        _compact(db)
        end = counter.ops
    assert end - start > 10, counter.log  # the compaction and its checkpoint write files
    for k in range(start, end):
        work = shutil.copytree(pristine, tmp_path / f"run{k}")
        fs = PowerLossFS(work, crash_at=k)
        db = Database(work, tuning=TUNING, fs=fs, checkpoint_interval_s=3600)
        with pytest.raises(PowerLoss):
            _compact(db)
        _abandon(db)
        for variant in variants:
            target = tmp_path / f"img{k}-{variant}"
            fs.image.materialise(target, variant)
            with Database(target, tuning=TUNING, checkpoint_interval_s=3600) as db:
                assert not db.damaged_collections(), (k, fs.log[-3:], variant)
                got = _normalise(read_state(db))
                assert got in (expected, with_late), (k, fs.log[-3:], variant)
                col = db.get_collection("c")
                assert not list(col.path.glob(f"{compaction.PREFIX}*")), (k, fs.log[-3:])
                col.upsert(["after"], [_vec(777)])
                assert col.query([_vec(777)], n_results=1)[0].ids == ["after"]
            shutil.rmtree(target)
        shutil.rmtree(work)
