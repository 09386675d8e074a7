"""A segment's graph file written by a child process (storage/graph_child.py): it reopens to
the same answers, damage to it is caught at open, and a failed child falls back to saving
in this process. Graphs here are far below ``graph_child.MIN_BYTES``: the tests lower it."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import sys

import numpy as np
import pytest

from vectord.storage import Database, Tuning, graph_child
from vectord.storage import checkpoint as disk
from vectord.storage.segment import Segment
from vectord.storage.verify import INDEX_DAMAGED, verify_collection

DIM = 16
VECTORS = np.random.default_rng(7).normal(size=(900, DIM)).astype(np.float32)
# one build thread on both sides: the child's graph is the parent's (graph_child's doc)
TUNING = Tuning(exact_threshold=16, seal_rows=300, max_segment_rows=300, checkpoint_min_bytes=1 << 40,
                compact_min_dead=1 << 30, graph_cost_per_ef=0, maintenance_threads=1, index_threads=1,
                graph_in_child=True)
HNSW = {"m": 8, "ef_construction": 40, "ef_search": 20}


@pytest.fixture
def children(monkeypatch):
    """Every segment graph goes to a child; the list records each call."""
    calls = []
    save = graph_child.save
    monkeypatch.setattr(graph_child, "MIN_BYTES", 0)
    monkeypatch.setattr(graph_child, "save", lambda *args: calls.append(args[0]) or save(*args))
    return calls


def _sealed(path):
    db = Database(path, tuning=TUNING, checkpoint_interval_s=3600)
    col = db.create_collection("c", dim=DIM, hnsw=HNSW)
    for start in range(0, len(VECTORS), 150):
        col.add([f"r{i}" for i in range(start, start + 150)], VECTORS[start:start + 150])
        col.checkpoint()
    col.checkpoint(force=True)
    return db, col


def _answers(col):
    found = col.query(VECTORS[::45], n_results=10, include=["distances"])
    return [(r.ids, r.distances.tolist()) for r in found]


def test_a_graph_written_by_a_child_reopens_to_the_same_answers(tmp_path, children):
    db, col = _sealed(tmp_path / "d")
    assert len(col.sealed) == 3 and len(children) == 3
    before = _answers(col)
    # the child's file is the graph this process built and serves, byte for byte
    segment = col.sealed[0]
    mine = tmp_path / "mine.hnsw"
    segment.state.index.save(mine)
    directory = col.path
    child_file = directory / segment.name / disk.INDEX
    assert child_file.read_bytes() == mine.read_bytes()
    assert segment.files[disk.INDEX]["sha256"] == hashlib.sha256(child_file.read_bytes()).hexdigest()
    db.close()
    with Database(tmp_path / "d", tuning=TUNING, checkpoint_interval_s=3600) as db:
        col = db.get_collection("c")
        assert all(s.state.index is not None for s in col.sealed)
        assert _answers(col) == before
    assert verify_collection(directory, TUNING).status == "OK"


def test_a_damaged_graph_from_a_child_is_caught_at_open_and_rebuilt(tmp_path, children, caplog):
    db, col = _sealed(tmp_path / "d")
    before = _answers(col)
    directory, name = col.path, col.sealed[1].name
    db.close()
    path = directory / name / disk.INDEX
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x55
    path.write_bytes(bytes(data))
    assert verify_collection(directory, TUNING).status == INDEX_DAMAGED
    entry = next(e for e in disk.read_manifest(directory)["segments"] if e["name"] == name)
    with caplog.at_level(logging.WARNING):
        segment = Segment.load(directory, entry, col.config, TUNING)
    assert f"{path}: checksum mismatch" in caplog.text
    assert segment.state.index is not None  # rebuilt from the verified vectors
    with Database(tmp_path / "d", tuning=TUNING, checkpoint_interval_s=3600) as db:
        assert [ids for ids, _ in _answers(db.get_collection("c"))] == [ids for ids, _ in before]


def test_a_failed_child_leaves_the_graph_to_this_process(tmp_path, monkeypatch, caplog):
    def fail(*args):
        raise RuntimeError("graph child exited with 1: MemoryError")

    monkeypatch.setattr(graph_child, "MIN_BYTES", 0)
    monkeypatch.setattr(graph_child, "save", fail)
    with caplog.at_level(logging.WARNING):
        db, col = _sealed(tmp_path / "d")
    assert "the graph is saved by this process instead" in caplog.text
    before, directory = _answers(col), col.path
    db.close()
    assert verify_collection(directory, TUNING).status == "OK"
    with Database(tmp_path / "d", tuning=TUNING, checkpoint_interval_s=3600) as db:
        assert _answers(db.get_collection("c")) == before


def test_a_small_graph_is_saved_in_this_process(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(graph_child, "save", lambda *args: calls.append(args))
    db, col = _sealed(tmp_path / "d")
    db.close()
    assert calls == []  # 300 x 16 floats, far below MIN_BYTES


def test_with_graph_in_child_off_no_child_is_started(tmp_path, children, monkeypatch):
    """graph_in_child is on by default; off, the graph is built once and saved by this process."""
    assert Tuning().graph_in_child
    monkeypatch.setattr(sys.modules[__name__], "TUNING", dataclasses.replace(TUNING, graph_in_child=False))
    db, col = _sealed(tmp_path / "d")
    assert col.sealed
    db.close()
    assert children == []


def test_a_graph_file_a_crash_left_beside_its_rows_is_removed_at_the_next_start(tmp_path, children):
    db, col = _sealed(tmp_path / "d")
    directory = col.path
    db.close()
    # as a crash between the child's save and the segment's write leaves them
    (directory / "compact-000007-1.npy").write_bytes(b"\x93NUMPY partial")
    (directory / f"compact-000007-1{graph_child.SUFFIX}").write_bytes(b"partial graph")
    with Database(tmp_path / "d", tuning=TUNING, checkpoint_interval_s=3600) as db:
        assert len(db.get_collection("c").sealed) == 3
    assert not list(directory.glob("compact-*"))


def test_the_child_runs_without_the_package(tmp_path):
    """The child imports numpy and hnswlib only (its memory is beside the server's), and the
    storage folder's own modules (its types.py) never shadow the standard library's."""
    import json
    import subprocess

    rows = tmp_path / "rows.npy"
    np.save(rows, VECTORS[:100])
    args = {"space": "l2", "dim": DIM, "m": 8, "ef_construction": 40, "count": 100, "vectors": str(rows),
            "out": str(tmp_path / "g.hnsw"), "seed": 100, "threads": 1, "nice": 0}
    # graph_child.save's command line, run through runpy to list the modules it imported
    script = (f"import runpy, sys\nsys.argv = [{graph_child.__file__!r}, {json.dumps(args)!r}]\n"
              "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
              "except SystemExit as exc:\n    assert not exc.code, exc\n"
              "print(sorted(m for m in sys.modules if m.startswith('vectord')))")
    done = subprocess.run([sys.executable, "-P", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "g.hnsw").stat().st_size > 0
