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
        records = list(WriteAheadLog.read(wal, REAL))
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
        assert col.get().ids == ["ok"]  # "lost" was reported failed: it is gone
        col.add(["after-restart"], np.array([[4, 4]], np.float32))
        assert col.get().ids == ["ok", "after-restart"]


def _no_tracebacks(caplog) -> None:
    tracebacks = [r.getMessage() for r in caplog.records if r.exc_info]
    assert not tracebacks, tracebacks


def test_a_write_whose_fsync_failed_is_gone_after_the_restart(tmp_path, monkeypatch, caplog):
    """Regression: the failed write was reported failed, then came back after a reopen (its
    bytes were still in the page cache), and close() logged a traceback."""
    from vectord.errors import FailedPreconditionError

    with Database(tmp_path / "d", tuning=NO_CHECKPOINTS) as db:
        col = db.create_collection("f", dim=2, metric="l2")
        col.add(["ok"], np.array([[1, 1]], np.float32))
        wal = col.path / "wal.log"
        acknowledged_size = wal.stat().st_size

        def failing_fsync(fd):
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(REAL, "fsync", failing_fsync)
        with pytest.raises(FailedPreconditionError, match="fsync failed"):
            col.add(["lost"], np.array([[2, 2]], np.float32))
        monkeypatch.undo()
        # cut back before the writer was told: a crash right now could not replay it either
        assert wal.stat().st_size == acknowledged_size
        assert "could not be made durable" in caplog.text  # the cut's own fsync failed too
        with pytest.raises(FailedPreconditionError, match="refuses writes"):
            col.add(["later"], np.array([[3, 3]], np.float32))
        caplog.clear()
    # a normal close: no final checkpoint (memory still holds the failed write), one line
    _no_tracebacks(caplog)
    lines = [r.getMessage() for r in caplog.records if "'f'" in r.getMessage()]
    assert len(lines) == 1 and "no final checkpoint" in lines[0], lines
    with Database(tmp_path / "d", tuning=NO_CHECKPOINTS) as db:
        col = db.get_collection("f")
        assert col.get().ids == ["ok"]
        col.add(["after-restart"], np.array([[4, 4]], np.float32))
    with Database(tmp_path / "d", tuning=NO_CHECKPOINTS) as db:
        assert db.get_collection("f").get().ids == ["ok", "after-restart"]


def test_concurrent_writers_after_an_fsync_failure_exactly_the_acknowledged_survive(tmp_path, monkeypatch):
    """Group commit: writes pending behind the failed fsync are reported failed and cut off;
    the writes acknowledged before it all survive the restart, nothing else."""
    real_fsync = REAL.fsync
    calls = {"n": 0}
    lock = threading.Lock()

    def fsync_failing_once(fd):
        with lock:
            calls["n"] += 1
            fail = calls["n"] == 40
        if fail:
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    acked, failed = set(), set()
    with Database(tmp_path / "d", tuning=NO_CHECKPOINTS) as db:
        col = db.create_collection("g", dim=2, metric="l2")
        monkeypatch.setattr(REAL, "fsync", fsync_failing_once)

        def writer(t):
            for i in range(40):
                id_ = f"{t}-{i}"
                try:
                    col.add([id_], np.array([[t, i]], np.float32))
                except Exception:
                    failed.add(id_)
                else:
                    acked.add(id_)

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        monkeypatch.undo()
    assert acked and failed and len(acked) + len(failed) == 240
    with Database(tmp_path / "d", tuning=NO_CHECKPOINTS) as db:
        assert set(db.get_collection("g").get().ids) == acked


def test_replay_streams_the_log_one_record_at_a_time(tmp_path):
    """Regression: recovery read the whole log into memory (it can be half the collection).
    A ~50 MB log is replayed with a peak of a few records' bytes, and a torn tail is still
    cut off once the records are read."""
    import tracemalloc

    path = tmp_path / "wal.log"
    vectors = (np.arange(64 * 1024, dtype=np.uint32) % 251).astype(np.float32).tobytes()  # 256 KiB
    with open(path, "wb") as handle:
        for seq in range(1, 201):
            handle.write(framing.encode_frame({"op": "put", "ids": [f"r{seq}"], "vectors": vectors,
                                               "documents": [None], "metadatas": [{}], "seq": seq}))
        whole = handle.tell()
        handle.write(framing.encode_frame({"op": "delete", "ids": ["x"], "seq": 201})[:20])
    assert whole > 50_000_000
    tracemalloc.start()
    try:
        seqs = [record["seq"] for record in WriteAheadLog.read(path, REAL)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seqs == list(range(1, 201))
    assert peak < 8 * len(vectors), f"replay peaked at {peak} bytes for a {whole}-byte log"
    assert path.stat().st_size == whole  # the torn tail was cut


def test_streamed_replay_still_finds_damage_in_the_middle_of_a_large_log(tmp_path):
    path = tmp_path / "wal.log"
    vectors = np.zeros(300_000, np.float32).tobytes()  # frames larger than the search window
    frames = [framing.encode_frame({"op": "put", "ids": [f"r{s}"], "vectors": vectors, "seq": s})
              for s in range(1, 6)]
    data = bytearray(b"".join(frames))
    data[len(frames[0]) + 100] ^= 0xFF  # inside the second frame's payload
    path.write_bytes(bytes(data))
    with pytest.raises(DataLossError, match=f"damaged frame at byte {len(frames[0])} .* valid frame at byte "
                                            f"{2 * len(frames[0])}"):
        list(WriteAheadLog.read(path, REAL))
    assert path.stat().st_size == len(data)  # nothing cut
