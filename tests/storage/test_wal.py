"""The write-ahead log: torn tails, damage in the middle, group commit."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from vectord.errors import DataLossError
from vectord.storage import Database, Tuning
from vectord.storage import framing
from vectord.storage.fsio import REAL
from vectord.storage.wal import WriteAheadLog

NO_CHECKPOINTS = Tuning(checkpoint_min_bytes=1 << 40)


def _write_records(tmp_path, n=5):
    with Database(tmp_path / "d", tuning=NO_CHECKPOINTS) as db:
        col = db.create_collection("w", dim=2, metric="l2")
        for i in range(n):
            col.add([f"id{i}"], np.array([[i, i + 1]], np.float32), [f"doc {i}"], [{"i": i}])
        wal = col.path / "wal.log"
        # close without the final checkpoint, as a crash would leave it
        db._collections.clear()
        col._wal.close()
        col._closed = True
    return wal


def test_torn_tail_cut_at_every_byte_offset_of_the_last_record(tmp_path):
    wal = _write_records(tmp_path)
    data = wal.read_bytes()
    scan = framing.scan_frames(data, "wal")
    assert len(scan.records) == 5 and not scan.torn
    last_start = len(data) - len(framing.encode_frame({**scan.records[-1]}))
    assert framing.scan_frames(data[:last_start], "wal").records == scan.records[:-1]
    for cut in range(last_start, len(data)):
        wal.write_bytes(data[:cut])
        with Database(wal.parent.parent.parent, tuning=NO_CHECKPOINTS) as db:
            col = db.get_collection("w")
            assert col.count() == 4, f"cut at byte {cut}"
            assert col.get(ids=["id4"]).ids == []
            # the torn tail was cut off, so new writes land after the last whole record
            col.add(["after"], np.array([[9, 9]], np.float32))
            db._collections.clear()
            col._wal.close()
            col._closed = True
        records = WriteAheadLog.read(wal, REAL)
        assert [r["ids"] for r in records][-1] == ["after"] and len(records) == 5


def test_zero_filled_tail_is_a_torn_tail(tmp_path):
    wal = _write_records(tmp_path)
    with open(wal, "ab") as handle:
        handle.write(b"\0" * 100)
    with Database(wal.parent.parent.parent, tuning=NO_CHECKPOINTS) as db:
        assert db.get_collection("w").count() == 5


@pytest.mark.parametrize("where", ["header", "payload"])
def test_damage_in_the_middle_is_data_loss_not_skipped(tmp_path, where):
    wal = _write_records(tmp_path)
    data = bytearray(wal.read_bytes())
    first = framing.scan_frames(bytes(data), "wal").records[0]
    first_len = len(framing.encode_frame(first))
    offset = first_len + (2 if where == "header" else first_len // 2 + 8)
    data[offset] ^= 0x40
    wal.write_bytes(bytes(data))
    with Database(wal.parent.parent.parent, tuning=NO_CHECKPOINTS) as db:
        with pytest.raises(DataLossError, match="damaged|checksum"):
            db.get_collection("w")
        assert "w" in db.damaged_collections()


def test_replay_is_idempotent(tmp_path):
    """Replaying a log twice (a crash after the checkpoint, before truncation) changes nothing."""
    wal = _write_records(tmp_path)
    data = wal.read_bytes()
    wal.write_bytes(data + data)  # every record twice, seqs repeating
    with Database(wal.parent.parent.parent, tuning=NO_CHECKPOINTS) as db:
        col = db.get_collection("w")
        assert col.count() == 5
        got = col.get(include=["embeddings", "metadatas"])
        assert got.ids == [f"id{i}" for i in range(5)]
        assert got.metadatas == [{"i": i} for i in range(5)]


def test_concurrent_writers_share_fsyncs(tmp_path, monkeypatch):
    """Group commit: many concurrent writes, fewer fsyncs than writes, all acknowledged."""
    calls = {"fsync": 0}
    real_fsync = REAL.fsync

    def counting_fsync(fd):
        calls["fsync"] += 1
        real_fsync(fd)

    with Database(tmp_path / "d", tuning=NO_CHECKPOINTS) as db:
        col = db.create_collection("g", dim=2, metric="l2")
        monkeypatch.setattr(REAL, "fsync", counting_fsync)
        errors = []

        def writer(t):
            try:
                for i in range(50):
                    col.add([f"{t}-{i}"], np.array([[t, i]], np.float32))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        monkeypatch.undo()
        assert not errors
        assert col.count() == 400
        assert calls["fsync"] < 400, calls


def test_fsync_error_makes_the_collection_refuse_writes(tmp_path, monkeypatch):
    from vectord.errors import FailedPreconditionError

    with Database(tmp_path / "d", tuning=NO_CHECKPOINTS) as db:
        col = db.create_collection("f", dim=2, metric="l2")
        col.add(["ok"], np.array([[1, 1]], np.float32))

        def failing_fsync(fd):
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(REAL, "fsync", failing_fsync)
        with pytest.raises(FailedPreconditionError, match="fsync failed"):
            col.add(["lost"], np.array([[2, 2]], np.float32))
        monkeypatch.undo()
        with pytest.raises(FailedPreconditionError, match="refuses writes"):
            col.add(["later"], np.array([[3, 3]], np.float32))
        assert col.get(ids=["ok"]).ids == ["ok"]  # reads go on
        db._collections.clear()
        col._wal.close()
        col._closed = True
    with Database(tmp_path / "d", tuning=NO_CHECKPOINTS) as db:
        col = db.get_collection("f")
        col.add(["after-restart"], np.array([[4, 4]], np.float32))
        assert "ok" in col.get().ids
