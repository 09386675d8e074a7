"""Power loss at every step of a re-embed's switch on a collection with sealed segments
(storage/reembed.py, docs/segments.md).

The switch writes every live record of the segments and the tail into one new generation,
then the MANIFEST that names it with the new model and no segment (the one durable step),
then removes the old generation, the old segments' directories and bitmaps, and the
progress files. After a crash at any step, recovery serves the old model (segments, tail
and log as they were) or the new one (one generation), never a mix: the same records with
every vector of one model, each id in one place, no directory the MANIFEST does not list;
and the re-embed then completes.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from crashfs import PowerLoss, PowerLossFS
from fake_encoder import FakeEncoder, FakeRegistry
from segments_sound import assert_segments_sound
from test_power_loss import _abandon
from vectord.storage import Database, Tuning, reembed

TUNING = Tuning(exact_threshold=8, checkpoint_min_bytes=1 << 40, compact_min_dead=1 << 30, graph_cost_per_ef=0,
                index_threads=1, maintenance_threads=1, seal_rows=10, merge_factor=8)
OLD, NEW = FakeEncoder("old", 8), FakeEncoder("new", 6)
WORDS = ["apple", "banana", "cherry", "durian", "elder", "fig", "grape", "kiwi", "lemon", "mango"]


def _registry() -> FakeRegistry:
    return FakeRegistry(OLD, NEW)


def _text(i: int) -> str:
    return " ".join(WORDS[(i * k + k) % len(WORDS)] for k in range(1, 4)) + f" w{i}"


def _records(db: Database) -> dict:
    col = db.get_collection("c")
    got = col.get(include=["documents", "metadatas"])
    assert col.count() == len(got.ids)
    return {id_: (doc, meta) for id_, doc, meta in zip(got.ids, got.documents, got.metadatas)}


def _prepare(path) -> dict:
    """Three sealed segments (a deleted record and a moved one: bitmaps on disk), a tail on
    disk and in the log, and re-embed progress for every record but the last few."""
    with Database(path, tuning=TUNING, checkpoint_interval_s=3600, encoders=_registry()) as db:
        col = db.create_collection("c", encoder="old", metric="l2")
        for start in (0, 10, 20):
            col.add([f"d{i}" for i in range(start, start + 10)], documents=[_text(i) for i in range(start, start + 10)],
                    metadatas=[{"i": i} for i in range(start, start + 10)])
            col.checkpoint()
        assert len(col.sealed) == 3
        col.delete(ids=["d1"])
        col.upsert(["d12"], documents=["moved to the tail"])
        col.add(["t0", "t1"], documents=["tail zero", "tail one"])
        col.checkpoint(force=True)  # the bitmaps and a tail on disk
        assert any(segment.deletes_file for segment in col.sealed)
        assert not reembed.step(col, db.encoders, "new", batch=20).switched  # progress files
        col.upsert(["d3"], documents=["changed after its new vector"])  # log only
        col.add(["t2"], documents=["tail two"])
        expected = _records(db)
        col._closed = True  # as a crash: the log keeps the rest
        col._wal.close()
        db._collections.clear()
    return expected


def _switch(db: Database) -> None:
    col = db.get_collection("c")
    assert reembed.step(col, db.encoders, "new", batch=100).switched


def _sound(db: Database, expected: dict) -> str:
    """The records are the expected ones, every vector of one model; returns its name."""
    col = db.get_collection("c")
    assert _records(db) == expected
    model = OLD if col.config.encoder["name"] == "old" else NEW
    got = col.get(include=["embeddings", "documents"])
    assert got.embeddings.shape[1] == model.dim
    assert np.allclose(got.embeddings, model.embed(got.documents), atol=1e-6)
    for id_, vector in zip(got.ids, got.embeddings):
        assert col.query(vector[None], n_results=1)[0].distances[0] < 1e-5, id_
    assert_segments_sound(col)
    return model.name


def test_power_loss_at_every_step_of_a_reembed_switch_with_sealed_segments(tmp_path):
    pristine = tmp_path / "pristine"
    expected = _prepare(pristine)
    counter = PowerLossFS(shutil.copytree(pristine, tmp_path / "count"))
    with Database(counter.root, tuning=TUNING, fs=counter, checkpoint_interval_s=3600, encoders=_registry()) as db:
        assert db.get_collection("c").sealed
        start = counter.ops
        _switch(db)
        end = counter.ops
        assert not db.get_collection("c").sealed
    assert end - start > 10, counter.log
    outcomes = {"old": 0, "new": 0}
    for k in range(start, end):
        work = shutil.copytree(pristine, tmp_path / f"run{k}")
        fs = PowerLossFS(work, crash_at=k)
        db = Database(work, tuning=TUNING, fs=fs, checkpoint_interval_s=3600, encoders=_registry())
        with pytest.raises(PowerLoss):
            _switch(db)
        _abandon(db)
        target = tmp_path / f"img{k}"
        fs.image.materialise(target, "torn")
        with Database(target, tuning=TUNING, checkpoint_interval_s=3600, encoders=_registry()) as db:
            assert not db.damaged_collections(), (k, fs.log[-3:])
            outcomes[_sound(db, expected)] += 1
            _switch(db)  # the re-embed completes from either side
            assert _sound(db, expected) == "new"
        shutil.rmtree(work)
        shutil.rmtree(target)
    assert outcomes["old"] and outcomes["new"], outcomes
