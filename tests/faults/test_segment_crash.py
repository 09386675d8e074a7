"""Power loss at every step of a checkpoint that seals the tail into a segment, merges
segments and writes their graphs (storage/maintenance.py, storage/layout.py: each new
segment graph written and fsynced beside the generations, the MANIFEST switched, graphs no
MANIFEST names removed).

Sealing and merging change no record, so after a crash at any step the collection must
hold exactly what it held before (plus the write made after the checkpoint, when that was
acknowledged), answer queries, take a write, and keep no segment graph that its MANIFEST
does not name.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from crashfs import PowerLoss, PowerLossFS
from test_power_loss import _abandon, _normalise, read_state
from vectord.storage import Database, Tuning
from vectord.storage import layout as disk

# a segment every 6 slots of tail, merged 2 at a time; no compaction, no background work
TUNING = Tuning(exact_threshold=6, seal_threshold=6, merge_fanout=2, checkpoint_min_bytes=1 << 40,
                compact_min_dead=10_000, compact_ratio=0.9, index_threads=1, maintenance_threads=1)
DIM = 4


def _vec(i: int) -> list[float]:
    return np.random.default_rng(i).normal(size=DIM).astype(np.float32).tolist()


def _prepare(path):
    """One checkpointed segment, a tail of 8 slots (some deleted) in the log only."""
    with Database(path, tuning=TUNING, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM, metric="l2")
        col.add([f"r{i}" for i in range(8)], [_vec(i) for i in range(8)])
        col.checkpoint()
        col.add([f"r{i}" for i in range(8, 16)], [_vec(i) for i in range(8, 16)])
        col.delete(ids=["r3", "r9"])
        state = _normalise(read_state(db))
        col.close(checkpoint=False)
    return state


def _seal_merge_checkpoint(db: Database) -> None:
    col = db.get_collection("c")
    col.checkpoint()  # seals [8, 16), merges it with [0, 8), writes the merged graph
    assert [(s.start, s.end) for s in col.state.segments] == [(0, 16)]
    col.upsert(["late"], [_vec(99)])


@pytest.mark.parametrize("variants", [("drop", "torn"), ("zeros", "full")])
def test_power_loss_at_every_step_of_a_seal_merge_checkpoint_keeps_every_record(tmp_path, variants):
    pristine = tmp_path / "pristine"
    expected = _prepare(pristine)
    with_late = {name: {**records, "late": (tuple(np.float32(x).item() for x in _vec(99)), None, {})}
                 for name, records in expected.items()}
    counter = PowerLossFS(shutil.copytree(pristine, tmp_path / "count"))
    with Database(counter.root, tuning=TUNING, fs=counter, checkpoint_interval_s=3600) as db:
        start = counter.ops
        _seal_merge_checkpoint(db)
        end = counter.ops
    assert end - start > 5, counter.log
    for k in range(start, end):
        work = shutil.copytree(pristine, tmp_path / f"run{k}")
        fs = PowerLossFS(work, crash_at=k)
        db = Database(work, tuning=TUNING, fs=fs, checkpoint_interval_s=3600)
        with pytest.raises(PowerLoss):
            _seal_merge_checkpoint(db)
        _abandon(db)
        for variant in variants:
            target = tmp_path / f"img{k}-{variant}"
            fs.image.materialise(target, variant)
            with Database(target, tuning=TUNING, checkpoint_interval_s=3600) as db:
                assert not db.damaged_collections(), (k, fs.log[-3:], variant)
                got = _normalise(read_state(db))
                assert got in (expected, with_late), (k, fs.log[-3:], variant)
                col = db.get_collection("c")
                named = {meta["file"] for meta in disk.read_manifest(col.path)["segments"]}
                assert {p.name for p in col.path.glob(f"{disk.SEGMENT_PREFIX}*")} == named, (k, variant)
                assert col.query([_vec(12)], n_results=1)[0].ids == ["r12"]
                col.upsert(["after"], [_vec(777)])
                assert col.query([_vec(777)], n_results=1)[0].ids == ["after"]
            shutil.rmtree(target)
        shutil.rmtree(work)
