"""Checkpoints: damaged files are detected, the index is a rebuildable cache, leftovers go."""

from __future__ import annotations

import errno

import numpy as np
import pytest

from vectord.errors import DataDirectoryLockedError, DataLossError
from vectord.storage import Database, Field, Tuning
from vectord.storage import checkpoint as disk
from vectord.storage.fsio import FileSystem

# Small enough that 300 records use the HNSW graph, so an index file is checkpointed.
# seal_rows=0: this file tests the tail's generation files (gen-*); the damage tests also
# run on a sealed segment's files (SEALING).
TUNING = Tuning(exact_threshold=64, checkpoint_min_bytes=1 << 40, seal_rows=0)
SEALING = Tuning(exact_threshold=64, checkpoint_min_bytes=1 << 40, seal_rows=64)
rng = np.random.default_rng(7)
VECTORS = rng.normal(size=(300, 8)).astype(np.float32)


def _fill(path, tuning=TUNING):
    """Two collections of 300 records (2 deleted), checkpointed; returns the directory of
    hurt's data files: its generation, or (``SEALING``) the segment its records were sealed in."""
    with Database(path, tuning=tuning) as db:
        for name in ("hurt", "fine"):
            col = db.create_collection(name, dim=8)
            col.add([f"r{i}" for i in range(300)], VECTORS, metadatas=[{"i": i} for i in range(300)])
            col.delete(ids=["r0", "r1"])
            col.checkpoint()  # SEALING seals here: a close's final checkpoint seals nothing
    collection = next(p for p in (path / "collections").iterdir() if _name(p) == "hurt")
    if tuning.seal_rows:
        from vectord.storage.checkpoint import read_manifest

        segments = read_manifest(collection)["segments"]
        assert len(segments) == 1 and segments[0]["slots"] == 298, segments  # the 2 deletes are not sealed
        return collection / segments[0]["name"]
    return next(collection.glob("gen-*"))


def _name(collection_dir):
    from vectord.storage.checkpoint import read_manifest

    return read_manifest(collection_dir)["config"]["name"]


def _damage(path, how):
    data = bytearray(path.read_bytes())
    if how == "bitflip":
        data[len(data) // 2] ^= 0x10
    elif how == "truncate":
        data = data[: len(data) // 2]
    elif how == "zeros":
        data[len(data) // 3: len(data) // 3 + 64] = b"\0" * 64
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("tuning", [TUNING, SEALING], ids=["tail", "sealed"])
@pytest.mark.parametrize("how", ["bitflip", "truncate", "zeros"])
@pytest.mark.parametrize("victim", ["vectors.npy", "records.msgpack", "MANIFEST"])
def test_damaged_checkpoint_file_is_data_loss_for_that_collection_only(tmp_path, victim, how, tuning):
    gen = _fill(tmp_path / "d", tuning)
    target = gen.parent / victim if victim == "MANIFEST" else gen / victim
    _damage(target, how)
    with Database(tmp_path / "d", tuning=tuning) as db:
        with pytest.raises(DataLossError):
            db.get_collection("hurt" if victim != "MANIFEST" else gen.parent.name)
        fine = db.get_collection("fine")
        assert fine.count() == 298
        result = fine.query(VECTORS[5:6], n_results=1)
        assert result[0].ids == ["r5"]


@pytest.mark.parametrize("tuning", [TUNING, SEALING], ids=["tail", "sealed"])
@pytest.mark.parametrize("how", ["bitflip", "truncate", "zeros"])
def test_damaged_index_is_rebuilt_from_the_stored_vectors(tmp_path, how, caplog, tuning):
    gen = _fill(tmp_path / "d", tuning)
    _damage(gen / "index.hnsw", how)
    with Database(tmp_path / "d", tuning=tuning) as db:
        col = db.get_collection("hurt")
        assert "will be rebuilt" in caplog.text
        assert col.count() == 298
        result = col.query(VECTORS[10:20], n_results=1)
        assert [r.ids[0] for r in result] == [f"r{i}" for i in range(10, 20)]


def test_restart_loads_the_saved_graph_and_serves_the_same_results(tmp_path):
    _fill(tmp_path / "d")
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.get_collection("hurt")
        assert col._index is not None and col._index.count == 300  # loaded, deletions kept
        assert col.query(VECTORS[0:1], n_results=1)[0].ids != ["r0"]


def test_crash_between_manifest_switch_and_log_truncation_replays_nothing_twice(tmp_path):
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.create_collection("c", dim=8)
        col.add([f"r{i}" for i in range(10)], VECTORS[:10])
        col.update(["r3"], metadatas=[{"v": 2}])
        wal = col.path / "wal.log"
        log_before = wal.read_bytes()
        col.checkpoint()
        assert wal.read_bytes() == b""
        wal.write_bytes(log_before)  # as if the truncation never happened
        db._collections.clear()
        col._wal.close()
        col._closed = True
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.get_collection("c")
        assert col.count() == 10
        assert col.get(ids=["r3"]).metadatas == [{"v": 2}]


def test_leftovers_of_interrupted_operations_are_removed(tmp_path):
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.create_collection("c", dim=8)
        col.add(["a"], VECTORS[:1])
        col.checkpoint()
        stray_gen = col.path / "gen-99999999999999999999"
    stray_gen.mkdir()
    (tmp_path / "d" / "collections" / ".tmp-abc").mkdir()
    (tmp_path / "d" / "collections" / ".trash-def").mkdir()
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.get_collection("c")
        assert col.count() == 1
        col.add(["b"], VECTORS[1:2])
        col.checkpoint()
        assert sorted(p.name for p in (tmp_path / "d" / "collections").iterdir()) == [col.path.name]
        assert len(list(col.path.glob("gen-*"))) == 1


def test_deleted_records_are_compacted_away(tmp_path):
    tuning = Tuning(exact_threshold=64, checkpoint_min_bytes=1 << 40, compact_min_dead=10, compact_ratio=0.3,
                    seal_rows=0)
    with Database(tmp_path / "d", tuning=tuning) as db:
        col = db.create_collection("c", dim=8)
        col.add([f"r{i}" for i in range(300)], VECTORS)
        col.delete(ids=[f"r{i}" for i in range(200)])
        col.checkpoint()
        assert col.stats()["slots"] == 100 and col._index.count == 100
        vectors_file = next(col.path.glob("gen-*")) / "vectors.npy"
        assert np.load(vectors_file).shape == (100, 8)
        assert col.query(VECTORS[250:251], n_results=1)[0].ids == ["r250"]


def test_deleting_a_collection_frees_its_files_at_once(tmp_path):
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.create_collection("c", dim=8)
        col.add(["a"], VECTORS[:1])
        path = col.path
        db.delete_collection("c")
        assert not path.exists()
        assert list((tmp_path / "d" / "collections").iterdir()) == []


def test_a_second_owner_fails_fast(tmp_path):
    with Database(tmp_path / "d", tuning=TUNING):
        with pytest.raises(DataDirectoryLockedError, match="in use by another vectord process"):
            Database(tmp_path / "d", tuning=TUNING)
    Database(tmp_path / "d", tuning=TUNING).close()  # released on close


def test_a_database_closed_by_another_thread_releases_its_lock(tmp_path):
    """Regression: filelock's locks are thread-local by default, so a close from a thread
    other than the opener's left the directory locked for the rest of the process."""
    import threading

    db = Database(tmp_path / "d", tuning=TUNING)
    closer = threading.Thread(target=db.close)
    closer.start()
    closer.join()
    Database(tmp_path / "d", tuning=TUNING).close()


def test_a_forced_checkpoint_never_rewrites_the_generation_the_manifest_names(tmp_path, monkeypatch):
    """Regression: checkpoint(force=True) with an empty log rewrote gen-<seq> in place, so
    a crash in that window left the MANIFEST naming a half-written generation."""
    from vectord.storage import checkpoint as disk

    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.create_collection("c", dim=8)
        col.add(["a"], VECTORS[:1])
        col.checkpoint()
        named = col._manifest["generation"]
        written = []
        real = disk.write_generation
        monkeypatch.setattr(disk, "write_generation",
                            lambda fs, path, seq, *a: written.append(f"gen-{seq:020d}") or real(fs, path, seq, *a))
        assert col.checkpoint(force=True)
        assert written and written[0] != named
    with Database(tmp_path / "d", tuning=TUNING) as db:
        assert db.get_collection("c").count() == 1


def test_queries_go_on_while_a_checkpoint_writes_its_files_and_writes_wait(tmp_path):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from vectord.storage.fsio import FileSystem

    entered, release = threading.Event(), threading.Event()

    class SlowRecordsFile(FileSystem):
        def write_file(self, path, data):
            if path.name == "records.msgpack":  # mid-checkpoint, after vectors.npy
                entered.set()
                assert release.wait(30)
            super().write_file(path, data)

    with Database(tmp_path / "d", tuning=TUNING, fs=SlowRecordsFile(), checkpoint_interval_s=3600) as db, \
            ThreadPoolExecutor(4) as pool:
        col = db.create_collection("c", dim=8)
        col.add([f"r{i}" for i in range(300)], VECTORS)
        checkpoint = pool.submit(col.checkpoint)
        try:
            assert entered.wait(30)
            # the checkpoint is now writing its files: reads are answered meanwhile
            assert pool.submit(lambda: col.query(VECTORS[:1], n_results=1)[0].ids).result(5) == ["r0"]
            assert pool.submit(lambda: (col.count(), col.get(["r5"]).ids)).result(5) == (300, ["r5"])
            write = pool.submit(col.add, ["new"], VECTORS[:1])
            with pytest.raises(TimeoutError):
                write.result(0.5)  # a write waits for the checkpoint ...
            assert pool.submit(col.count).result(5) == 300  # ... and a waiting write stalls no read
        finally:
            release.set()
        assert checkpoint.result(30) is True
        assert write.result(30).inserted == 1 and col.count() == 301
    with Database(tmp_path / "d", tuning=TUNING) as db:  # and both are durable
        assert db.get_collection("c").count() == 301


def _rewrite_records(collection_dir, transform):
    """Replaces the current generation's records file with ``transform(columns)`` (packed)
    and re-signs it in the MANIFEST, as an older or a buggy writer would have left it."""
    import hashlib

    from vectord.storage import checkpoint as disk
    from vectord.storage import framing
    from vectord.storage.fsio import REAL

    manifest = disk.read_manifest(collection_dir)
    path = collection_dir / manifest["generation"] / disk.RECORDS
    data = framing.pack(transform(framing.unpack(path.read_bytes())))
    path.write_bytes(data)
    manifest["files"][disk.RECORDS] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    disk.write_manifest(REAL, collection_dir, manifest)


def _as_rows(columns):
    """The records layout before columns: [label, id, document, metadata] rows."""
    from vectord.storage.records import decode_metadata

    labels = np.frombuffer(columns["labels"], "<i8").tolist()
    return [[label, id_, document, decode_metadata(metadata)] for label, id_, document, metadata
            in zip(labels, columns["ids"], columns["documents"], columns["metadatas"])]


def test_generations_written_with_record_rows_still_open(tmp_path):
    include = ["documents", "metadatas", "embeddings"]
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.create_collection("c", dim=8)
        col.add([f"r{i}" for i in range(300)], VECTORS, documents=[f"doc {i}" for i in range(300)],
                metadatas=[{"i": i, "even": i % 2 == 0} for i in range(300)])
        col.delete(ids=["r0", "r7"])
        col.checkpoint()
        expected = col.get(include=include)
    _rewrite_records(next((tmp_path / "d" / "collections").iterdir()), _as_rows)
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.get_collection("c")
        got = col.get(include=include)
        assert got.ids == expected.ids and got.documents == expected.documents
        assert got.metadatas == expected.metadatas and np.array_equal(got.embeddings, expected.embeddings)
        assert col.count(Field("even", "eq", True)) == 149  # the metadata index is rebuilt from the rows


def test_record_columns_that_repeat_a_label_are_data_loss(tmp_path):
    with Database(tmp_path / "d", tuning=TUNING) as db:
        db.create_collection("c", dim=8).add(["a", "b"], VECTORS[:2])
        db.checkpoint("c")

    def repeat_label(columns):
        columns["labels"] = np.zeros(2, "<i8").tobytes()  # both records claim label 0
        return columns

    _rewrite_records(next((tmp_path / "d" / "collections").iterdir()), repeat_label)
    with Database(tmp_path / "d", tuning=TUNING) as db:
        with pytest.raises(DataLossError, match="repeat a label"):
            db.get_collection("c")


def test_after_a_checkpoint_the_original_vectors_are_mapped_not_held_in_memory(tmp_path):
    """Memory: the graph holds the search copy of each vector; the originals must live in the
    mapped checkpoint file, not in a second in-memory array (benchmarks/ measures the RSS)."""
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.create_collection("c", dim=8)
        col.add([f"r{i}" for i in range(300)], VECTORS)
        assert col.checkpoint()
        store = col._vectors
        assert isinstance(store._base, np.memmap) and store.base_slots == 300 and store.slots == 300
        col.add(["new"], VECTORS[:1])  # written since: in memory until the next checkpoint
        assert store.slots == 301 and store.base_slots == 300
        got = col.get(["r3", "new"], include=["embeddings"]).embeddings
        assert np.array_equal(got, np.stack([VECTORS[3], VECTORS[0]]))


class _ProcessDied(BaseException):
    """Raised at a chosen step, as kill -9 there would stop the process (the page cache,
    hence every file as the process left it, survives)."""


def _abandon(db, col):
    db._collections.clear()
    col._wal.close()
    col._closed = True


class _ManifestDirSyncFault(FileSystem):
    """Fails the directory fsync after the MANIFEST rename once ``fail_manifest_dir_sync`` is
    set: the rename is done, yet reported failed (the worst case)."""

    fail_manifest_dir_sync = False
    renamed_manifest = False

    def rename(self, src, dst):
        super().rename(src, dst)
        self.renamed_manifest = dst.name == disk.MANIFEST

    def fsync_dir(self, path):
        super().fsync_dir(path)
        renamed, self.renamed_manifest = self.renamed_manifest, False
        if self.fail_manifest_dir_sync and renamed:
            self.fail_manifest_dir_sync = False
            raise OSError(errno.EIO, "Input/output error")


def test_a_checkpoint_retried_after_a_directory_fsync_error_keeps_the_generation_the_manifest_names(tmp_path):
    """Regression: the MANIFEST switch renamed the MANIFEST (naming gen-<seq>), then the
    directory fsync failed; the retry, at the same seq, removed gen-<seq> and rewrote it, so
    dying in that window (or a retry failing on ENOSPC, which discards the half-written
    generation) left the MANIFEST naming a generation that was gone: DATA_LOSS at the open."""

    from vectord.errors import FailedPreconditionError

    class Faults(_ManifestDirSyncFault):
        die_at_create = False

        def create(self, path):
            if self.die_at_create:
                raise _ProcessDied(path)
            return super().create(path)

    fs = Faults()
    with Database(tmp_path / "d", tuning=TUNING, fs=fs, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=8)
        col.add([f"r{i}" for i in range(10)], VECTORS[:10])
        col.checkpoint()
        col.add([f"r{i}" for i in range(10, 15)], VECTORS[10:15])
        fs.fail_manifest_dir_sync = True
        with pytest.raises(FailedPreconditionError, match="I/O error"):
            col.checkpoint()
        named = disk.read_manifest(col.path)["generation"]
        assert named != col._manifest["generation"]  # the disk holds the new MANIFEST
        fs.die_at_create = True  # the retry dies as it writes its first file
        with pytest.raises(_ProcessDied):
            col.checkpoint()
        assert (col.path / named / disk.VECTORS).exists()  # untouched
        _abandon(db, col)
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.get_collection("c")
        got = col.get(include=["embeddings"])
        assert got.ids == [f"r{i}" for i in range(15)]
        assert np.array_equal(got.embeddings, VECTORS[:15])
        assert col.checkpoint(force=True)
        assert [p.name for p in col.path.glob("gen-*")] == [col._manifest["generation"]]


def test_a_checkpoint_retry_that_fails_on_disk_full_discards_only_its_own_generation(tmp_path):

    from vectord.errors import ResourceExhaustedError

    class Faults(_ManifestDirSyncFault):
        full = False

        def write_file(self, path, data):
            if self.full:
                raise OSError(errno.ENOSPC, "No space left on device")
            super().write_file(path, data)

    fs = Faults()
    with Database(tmp_path / "d", tuning=TUNING, fs=fs, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=8)
        col.add([f"r{i}" for i in range(10)], VECTORS[:10])
        col.checkpoint()
        col.add(["r10"], VECTORS[10:11])
        fs.fail_manifest_dir_sync = True
        with pytest.raises(Exception, match="I/O error"):
            col.checkpoint()
        named = disk.read_manifest(col.path)["generation"]
        fs.full = True
        with pytest.raises(ResourceExhaustedError, match="disk full"):
            col.checkpoint()
        assert (col.path / named / disk.VECTORS).exists()
        _abandon(db, col)
    with Database(tmp_path / "d", tuning=TUNING) as db:
        assert db.get_collection("c").count() == 11


def _index_file_set(tmp_path):
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.create_collection("c", dim=8)
        col.add([f"r{i}" for i in range(300)], VECTORS)
        col.delete(ids=["r0"])
        col.checkpoint()
        assert col._index is not None
        return col.path


def test_an_index_file_hnswlib_cannot_load_is_rebuilt_even_when_its_checksum_matches(tmp_path, caplog):
    """Regression: hnswlib's RuntimeError at load_index escaped recovery (INTERNAL). The
    file is a cache: it is rebuilt from the verified vectors, as after a checksum failure."""
    import hashlib

    from vectord.storage import checkpoint as disk
    from vectord.storage.fsio import REAL

    path = _index_file_set(tmp_path)
    manifest = disk.read_manifest(path)
    index_file = path / manifest["generation"] / disk.INDEX
    data = index_file.read_bytes()[: index_file.stat().st_size // 2]  # hnswlib: "corrupted"
    index_file.write_bytes(data)
    manifest["files"][disk.INDEX] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    disk.write_manifest(REAL, path, manifest)
    with Database(tmp_path / "d", tuning=TUNING) as db:
        col = db.get_collection("c")
        assert "hnswlib cannot load it" in caplog.text and "rebuilt" in caplog.text
        assert col._index is not None and col.count() == 299
        assert [r.ids[0] for r in col.query(VECTORS[10:20], n_results=1)] == [f"r{i}" for i in range(10, 20)]
    # `vectord verify` reports it, and --repair writes a graph the next start loads
    from vectord.storage.verify import INDEX_DAMAGED, INDEX_REBUILT, verify

    (report,) = verify(tmp_path / "d", tuning=TUNING)
    assert report.status == INDEX_DAMAGED and "hnswlib cannot load it" in report.detail
    (report,) = verify(tmp_path / "d", repair=True, tuning=TUNING)
    assert report.status == INDEX_REBUILT, report.line()
    caplog.clear()
    with Database(tmp_path / "d", tuning=TUNING) as db:
        assert db.get_collection("c")._index.count == 299 and "rebuilt" not in caplog.text


def test_an_index_that_cannot_be_rebuilt_either_is_data_loss_not_internal(tmp_path, monkeypatch):
    from vectord.storage.index import HnswIndex

    _index_file_set(tmp_path)

    def refuse(*args, **kwargs):
        raise RuntimeError("Index seems to be corrupted or unsupported")

    monkeypatch.setattr(HnswIndex, "load", classmethod(refuse))
    monkeypatch.setattr(HnswIndex, "add", refuse)
    with Database(tmp_path / "d", tuning=TUNING) as db:
        with pytest.raises(DataLossError, match="cannot rebuild the HNSW index"):
            db.get_collection("c")
        assert "c" in db.damaged_collections()


def test_an_open_checks_crc32c_and_still_reads_a_manifest_with_sha256_only(tmp_path):
    # generations written since the crc32c (storage/layout.py _checksum_of) carry both; a
    # MANIFEST of before has only sha256, which an open then checks, damage included
    gen = _fill(tmp_path / "d")
    manifest = disk.read_manifest(gen.parent)
    assert all(len(entry["crc32c"]) == 8 and len(entry["sha256"]) == 64 for entry in manifest["files"].values())
    for entry in manifest["files"].values():
        del entry["crc32c"]
    disk.write_manifest(FileSystem(), gen.parent, manifest)
    with Database(tmp_path / "d", tuning=TUNING) as db:
        assert db.get_collection("hurt").count() == 298
    _damage(gen / "vectors.npy", "bitflip")
    with Database(tmp_path / "d", tuning=TUNING) as db:
        with pytest.raises(DataLossError, match="checksum mismatch"):
            db.get_collection("hurt")


@pytest.mark.parametrize("tuning", [TUNING, SEALING], ids=["tail", "sealed"])
def test_a_damaged_npy_header_is_data_loss_for_that_collection_not_a_failed_open(tmp_path, tuning):
    """Regression (found with sealing on, where a sealed collection's tail is empty): the
    vectors file's .npy header is parsed while its checksum is computed, and a damaged header
    made numpy raise (SyntaxError, tokenize's TokenError, ValueError) out of the Database's
    open, so no collection was served. It is that collection's data loss."""
    data_dir = _fill(tmp_path / "d", tuning)
    with Database(tmp_path / "d", tuning=tuning) as db:
        col = db.create_collection("empty", dim=8)
        col.add(["a"], VECTORS[:1])
        col.checkpoint()
        col.delete(ids=["a"])
        col.checkpoint(compact=True)  # its generation's vectors.npy is now a header only
    empty = next(p for p in (tmp_path / "d" / "collections").iterdir() if _name(p) == "empty")
    (generation,) = empty.glob("gen-*")
    assert np.load(generation / "vectors.npy").shape == (0, 8)
    for victim in (generation / "vectors.npy", data_dir / "vectors.npy"):
        data = bytearray(victim.read_bytes())
        data[20:23] = b"(((" # inside the header's dict literal
        victim.write_bytes(bytes(data))
    with Database(tmp_path / "d", tuning=tuning) as db:
        for name in ("empty", "hurt"):
            with pytest.raises(DataLossError, match="vectors.npy"):
                db.get_collection(name)
        assert db.get_collection("fine").count() == 298
