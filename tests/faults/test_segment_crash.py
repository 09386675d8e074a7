"""Power loss at every step of a seal, a merge and a per-segment compaction, each followed
by the checkpoint that lists its result (storage/segment.py, docs/segments.md).

A seal or merge writes its segment's directory, then the checkpoint writes the bitmaps,
the tail's generation and the MANIFEST that lists the new segment list; the directories
and bitmaps it no longer lists are removed after it. After a crash at any step, recovery
finds the old list (and the log) or the new one: the collection holds exactly what it
held before, every record finds itself, each id lives in one place, and no directory the
MANIFEST does not list is left behind.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys

import numpy as np
import pytest

from crashfs import PowerLoss, PowerLossFS
from segments_sound import assert_segments_sound
from test_power_loss import _abandon, _normalise, read_state
from vectord.storage import Database, Tuning, graph_child
from vectord.storage import checkpoint as disk

TUNING = Tuning(exact_threshold=8, checkpoint_min_bytes=1 << 40, compact_min_dead=6, compact_ratio=0.3,
                graph_cost_per_ef=0, index_threads=1, maintenance_threads=1, seal_rows=10, merge_factor=3)
DIM = 4


def _vec(i: int) -> list[float]:
    return np.random.default_rng(i).normal(size=DIM).astype(np.float32).tolist()


def _add(col, ids) -> None:
    col.add([f"r{i}" for i in ids], [_vec(i) for i in ids], metadatas=[{"i": i} for i in ids])


def _prepare(path, step: str):
    """One sealed segment of r0..r9 with a deleted record (bitmap on disk), a tail, and a
    log; ``step`` says what the next checkpoint will do: "seal" (the tail holds 10 live
    records), "merge" (two segments, nothing written since: merged into one) or
    "compact" (a segment with 6 of 10 deleted)."""
    with Database(path, tuning=TUNING, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=DIM, metric="l2")
        _add(col, range(10))
        col.checkpoint()
        assert len(col.sealed) == 1
        col.delete(ids=["r1"])
        if step == "seal":
            _add(col, range(10, 16))
            col.checkpoint(force=True)  # the bitmap and a tail of 6 on disk
            _add(col, range(16, 20))  # in the log only: the next checkpoint seals 10
            col.upsert(["r2"], [_vec(102)])  # a sealed record moves to the tail (log only)
        elif step == "merge":
            _add(col, range(10, 20))
            col.checkpoint()
            assert len(col.sealed) == 2 and not len(col.state.records)
        else:
            _add(col, [50])  # never idle: no merge of everything
            col.checkpoint(force=True)
            col.delete(ids=[f"r{i}" for i in range(3, 8)])  # 6 of 10 deleted: compaction due
        state = _normalise(read_state(db))
        col._closed = True  # as a crash: the log keeps the rest
        col._wal.close()
        db._collections.clear()
    return state


def _checkpoint(db: Database) -> None:
    db.get_collection("c").checkpoint()


def _sound(db: Database) -> None:
    col = db.get_collection("c")
    got = col.get(include=["embeddings"])
    for id_, vector in zip(got.ids, got.embeddings):
        assert col.query([vector], n_results=1)[0].ids == [id_], id_
    assert_segments_sound(col)


# (a compacted segment here has too few records for a graph: no child variant)
@pytest.mark.parametrize("step, child", [("seal", False), ("merge", False), ("compact", False),
                                         ("seal", True), ("merge", True)],
                         ids=["seal", "merge", "compact", "seal-graph-child", "merge-graph-child"])
def test_power_loss_at_every_step_of_a_segment_swap_keeps_every_record(tmp_path, monkeypatch, step, child):
    """``child``: the new segment's graph written by a child process beside its rows file,
    then moved into the segment (storage/graph_child.py; a crash between leaves a file the
    next start removes)."""
    if child:
        monkeypatch.setattr(graph_child, "MIN_BYTES", 0)
        monkeypatch.setattr(sys.modules[__name__], "TUNING", dataclasses.replace(TUNING, graph_in_child=True))
    pristine = tmp_path / "pristine"
    expected = _prepare(pristine, step)
    counter = PowerLossFS(shutil.copytree(pristine, tmp_path / "count"))
    with Database(counter.root, tuning=TUNING, fs=counter, checkpoint_interval_s=3600) as db:
        before = [s.name for s in db.get_collection("c").sealed]
        start = counter.ops
        _checkpoint(db)
        end = counter.ops
        after = [s.name for s in db.get_collection("c").sealed]
    assert before != after, (step, before, after)
    assert end - start > 5, counter.log
    moved = [op for op in counter.log[start:end] if op.startswith("rename compact-")]
    assert moved == ([f"rename {moved[0].split()[1]} {disk.INDEX}"] if child else []), moved
    for k in range(start, end):
        work = shutil.copytree(pristine, tmp_path / f"run{k}")
        fs = PowerLossFS(work, crash_at=k)
        db = Database(work, tuning=TUNING, fs=fs, checkpoint_interval_s=3600)
        with pytest.raises(PowerLoss):
            _checkpoint(db)
        _abandon(db)
        target = tmp_path / f"img{k}"
        fs.image.materialise(target, "torn")
        with Database(target, tuning=TUNING, checkpoint_interval_s=3600) as db:
            assert not db.damaged_collections(), (k, fs.log[-3:])
            assert _normalise(read_state(db)) == expected, (k, fs.log[-3:])
            _sound(db)
            assert not list(db.get_collection("c").path.glob("compact-*")), k  # leftovers removed
