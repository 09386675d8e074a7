"""Snapshots are untrusted input end to end (issue 11).

An uploaded snapshot is a client's bytes: its MANIFEST's frame checksum is no protection
(anyone computes a crc32c), so every test below crafts a MANIFEST with a valid frame. Each
defect found on the old code has one test, through a real `vectord serve` where gRPC
reaches it; durability and crash cases use the storage API with the crash double
(crashfs.py) or a file system that fails (ENOSPC), behind an in-process server.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import struct
import uuid
from pathlib import Path

import grpc
import numpy as np
import pytest

import vectord
from crashfs import PowerLoss, PowerLossFS
from faults_helpers import Stubs, code_of, healthy
from serverproc import start_server
from vectord import limits
from vectord.errors import FailedPreconditionError, InvalidArgumentError
from vectord.storage import Database, Tuning, framing
from vectord.storage import checkpoint as disk
from vectord.storage import snapshots
from vectord.storage.fsio import FileSystem
from vectord.v1 import admin_pb2, collections_pb2 as cpb, records_pb2 as rpb, types_pb2 as pb

DIM = 4
TUNING = Tuning(exact_threshold=8, checkpoint_min_bytes=1 << 40, index_threads=1)
BAD = grpc.StatusCode.INVALID_ARGUMENT


# ---------------------------------------------------------------- helpers
def _vectors(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def download(stubs: Stubs, name: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for chunk in stubs.admin.DownloadSnapshot(admin_pb2.DownloadSnapshotRequest(name=name), timeout=60):
        files[chunk.path] = files.get(chunk.path, b"") + chunk.data
    return files


def upload_messages(files: dict[str, bytes], collection: str = "", replace: bool = False):
    yield admin_pb2.RestoreSnapshotRequest(collection=collection, replace=replace)
    for path, data in files.items():
        for offset in range(0, max(len(data), 1), 1 << 20):
            yield admin_pb2.RestoreSnapshotRequest(chunk=admin_pb2.SnapshotChunk(
                path=path, offset_bytes=offset, data=data[offset:offset + (1 << 20)], file_size_bytes=len(data)))


def upload(stubs: Stubs, files: dict[str, bytes], collection: str = "", replace: bool = False):
    """Uploads ``files`` as a snapshot; returns (status code, details)."""
    return code_of(stubs.admin.RestoreSnapshot, upload_messages(files, collection, replace), timeout=120)


def manifest_of(files: dict[str, bytes]) -> dict:
    return framing.decode_single(files["MANIFEST"], "test MANIFEST")


def with_manifest(files: dict[str, bytes], manifest: dict) -> dict[str, bytes]:
    """The files with a crafted MANIFEST in a valid frame (the crc is no protection)."""
    return {**files, "MANIFEST": framing.encode_frame(manifest)}


def digest(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def directory_of(data: Path, name: str) -> Path:
    """The directory of collection ``name`` in a data directory."""
    for entry in (data / "collections").iterdir():
        if not entry.name.startswith(".") and disk.read_manifest(entry)["config"]["name"] == name:
            return entry
    raise AssertionError(f"no collection {name!r} in {data}")


def embeddings(stubs: Stubs, name: str) -> bytes:
    reply = stubs.records.Get(rpb.GetRequest(collection=name, include=pb.Include(embeddings=True)), timeout=30)
    return reply.embeddings.data_f32le


# ---------------------------------------------------------------- a real server
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = start_server(tmp_path_factory.mktemp("hostile") / "data")
    yield proc
    assert proc.terminate() == 0, proc.log()
    assert "unexpected error" not in proc.log(), proc.log()[-3000:]


@pytest.fixture(scope="module")
def stubs(server):
    stubs = Stubs(server.address)
    yield stubs
    stubs.close()


@pytest.fixture(scope="module")
def base(server, stubs) -> dict[str, bytes]:
    """A good snapshot's files (collection 'src', 20 records), as downloaded."""
    with vectord.Client(server.address, timeout=30) as client:
        client.create_collection("src", dim=DIM, metric="l2").add(
            ids=[f"r{i}" for i in range(20)], embeddings=_vectors(20, 1), metadatas=[{"i": i} for i in range(20)])
    stubs.admin.CreateSnapshot(admin_pb2.CreateSnapshotRequest(collection="src", name="base"), timeout=60)
    files = download(stubs, "base")
    assert upload(stubs, files, collection="src-copy") == (grpc.StatusCode.OK, "")  # the good one restores
    return files


def test_a_generation_outside_the_data_directory_is_refused(server, stubs, base):
    """Was: generation '../../../X' created X beside the data directory."""
    manifest = manifest_of(base)
    manifest["generation"] = "../../../escaped"
    code, details = upload(stubs, with_manifest(base, manifest), collection="t-gen")
    assert code == BAD and "generation" in details and "../../../escaped" in details, (code, details)
    assert not (server.data_dir.parent / "escaped").exists()
    assert not list(server.data_dir.parent.rglob("escaped"))


def test_a_files_key_cannot_overwrite_another_collections_vectors(server, stubs, base):
    """Was: a files key '../../<victim id>/gen-N/vectors.npy' made the restore copy a
    snapshot's file over another collection's live, mapped vectors.npy."""
    with vectord.Client(server.address, timeout=30) as client:
        client.create_collection("victim", dim=DIM, metric="l2").add(ids=["v0", "v1", "v2"], embeddings=_vectors(3, 7))
        client.create_collection("attacker", dim=DIM, metric="l2").add(ids=["a0", "a1", "a2"],
                                                                       embeddings=_vectors(3, 8))
    stubs.admin.Checkpoint(admin_pb2.CheckpointRequest(collection="victim"), timeout=60)
    victim = directory_of(server.data_dir, "victim")
    generation = disk.read_manifest(victim)["generation"]
    # a snapshot named after the victim's directory, with the same generation name
    stubs.admin.CreateSnapshot(admin_pb2.CreateSnapshotRequest(collection="attacker", name=victim.name), timeout=60)
    planted = server.data_dir / "snapshots" / victim.name / generation / disk.VECTORS
    assert planted.exists(), "the attack needs equal generation names"
    before_file = (victim / generation / disk.VECTORS).read_bytes()
    before = embeddings(stubs, "victim")

    manifest = manifest_of(base)
    seq = int(generation[4:])
    evil = f"../../{victim.name}/{generation}/{disk.VECTORS}"
    manifest.update(generation=generation, applied_seq=seq, slots=3, index=None,
                    files={evil: digest(planted.read_bytes()), **manifest["files"]})
    # a file in the generation directory, so that the '..' steps resolve through it
    crafted = {"MANIFEST": framing.encode_frame(manifest), f"{generation}/{disk.RECORDS}": b"x"}
    code, details = upload(stubs, crafted, collection="t-evil")
    assert (victim / generation / disk.VECTORS).read_bytes() == before_file, "the victim's file was overwritten"
    assert embeddings(stubs, "victim") == before
    assert code == BAD and "files key" in details and evil in details, (code, details)


def test_an_uploaded_index_is_never_loaded(tmp_path):
    """Was: an index.hnsw with corrupted links (sha256 matching its MANIFEST) was loaded by
    hnswlib, and the first query killed the server (exit 139), at every start."""
    server = start_server(tmp_path / "data")
    n = 5000  # above the exact-search threshold: queries use the graph
    vectors = _vectors(n, 3)
    query = _vectors(1, 4)
    try:
        stubs = Stubs(server.address)
        # a small ef_search: the planner sends queries of 5000 records to the graph
        stubs.collections.CreateCollection(cpb.CreateCollectionRequest(
            name="big", dim=DIM, metric=cpb.L2, hnsw=cpb.HnswParams(ef_search=8)), timeout=30)
        with vectord.Client(server.address, timeout=60) as client:
            client.get_collection("big").add(ids=[str(i) for i in range(n)], embeddings=vectors)
            plan = client.get_collection("big").query(query_embeddings=query, n_results=5, explain=True)["plan"]
            assert plan["strategy"] == "hnsw", plan
        nearest = {str(i) for i in np.argsort(((vectors - query) ** 2).sum(axis=1))[:5]}
        stubs.admin.CreateSnapshot(admin_pb2.CreateSnapshotRequest(collection="big", name="big"), timeout=120)
        files = download(stubs, "big")
        manifest = manifest_of(files)
        path = f"{manifest['generation']}/{disk.INDEX}"
        graph = bytearray(files[path])
        count, size_per_element = struct.unpack_from("<Q", graph, 16)[0], struct.unpack_from("<Q", graph, 24)[0]
        for element in range(count):  # every level-0 link points far outside the graph
            at = 96 + element * size_per_element
            for j in range(struct.unpack_from("<H", graph, at)[0]):
                struct.pack_into("<I", graph, at + 4 + 4 * j, 0x3FFFFFFF)
        files[path] = bytes(graph)
        manifest["files"][disk.INDEX] = digest(files[path])
        assert upload(stubs, with_manifest(files, manifest), collection="big2") == (grpc.StatusCode.OK, "")
        stubs.close()
        with vectord.Client(server.address, timeout=60) as client:
            got = client.get_collection("big2").query(query_embeddings=query, n_results=5)["ids"][0]
        assert len(set(got) & nearest) >= 3, (got, nearest)
        restored = directory_of(server.data_dir, "big2")
        on_disk = disk.read_manifest(restored)
        assert on_disk["files"][disk.INDEX]["sha256"] != manifest["files"][disk.INDEX]["sha256"]  # the server's own
        assert server.terminate() == 0, server.log()
        server = start_server(tmp_path / "data")  # and again after a restart
        with vectord.Client(server.address, timeout=60) as client:
            assert client.get_collection("big2").query(query_embeddings=query, n_results=5)["ids"][0] == got
        assert healthy(server.address)
    finally:
        code = server.terminate()
    assert code == 0, server.log()[-3000:]


def test_a_manifest_without_config_is_invalid_argument(stubs, base):
    """Was: INTERNAL (a KeyError)."""
    manifest = manifest_of(base)
    del manifest["config"]
    code, details = upload(stubs, with_manifest(base, manifest), collection="t-noconfig")
    assert code == BAD and "config" in details and "missing" in details, (code, details)
    manifest = manifest_of(base)
    manifest["config"]["dim"] = "four"
    code, details = upload(stubs, with_manifest(base, manifest), collection="t-dim")
    assert code == BAD and "dim" in details and "'four'" in details, (code, details)


def test_an_absolute_file_path_never_reaches_the_file_system(server, stubs, base):
    """Was: a files key '/etc/passwd' made the server link or copy that path."""
    sentinel = server.data_dir.parent / "sentinel.txt"
    sentinel.write_bytes(b"precious")
    manifest = manifest_of(base)
    manifest["files"] = {str(sentinel): digest(b"precious"), **manifest["files"]}
    code, details = upload(stubs, with_manifest(base, manifest), collection="t-abs")
    assert code == BAD and "files key" in details and str(sentinel) in details, (code, details)
    assert sentinel.read_bytes() == b"precious" and os.stat(sentinel).st_nlink == 1


def test_uploaded_vectors_must_be_finite(stubs, base):
    manifest = manifest_of(base)
    path = f"{manifest['generation']}/{disk.VECTORS}"
    data = bytearray(base[path])
    data[-4:] = np.float32("nan").tobytes()
    manifest["files"][disk.VECTORS] = digest(bytes(data))
    code, details = upload(stubs, with_manifest({**base, path: bytes(data)}, manifest), collection="t-nan")
    assert code == BAD and "row 19" in details, (code, details)


def test_a_stored_snapshot_with_a_symlink_is_refused(tmp_path):
    """Confinement: a snapshot file that is a symlink (here to another collection's live
    file) is never linked or copied."""
    with Database(tmp_path / "data", tuning=TUNING, checkpoint_interval_s=3600) as db:
        db.create_collection("a", dim=DIM, metric="l2").add(["x"], _vectors(1, 1))
        db.create_snapshot("a", "s")
        manifest = disk.read_manifest(tmp_path / "data" / "snapshots" / "s")
        target = tmp_path / "data" / "snapshots" / "s" / manifest["generation"] / disk.VECTORS
        live = directory_of(tmp_path / "data", "a") / manifest["generation"] / disk.VECTORS
        target.unlink()
        target.symlink_to(live)
        with pytest.raises(FailedPreconditionError, match="symlink"):
            db.restore_snapshot("s", "b")
        assert [c.name for c in db.list_collections()] == ["a"]


# ---------------------------------------------------------------- durability (storage API)
#: Seals every 5 records with a graph, never compacts a segment: snapshots with segments and bitmaps.
SEALING = Tuning(exact_threshold=4, checkpoint_min_bytes=1 << 40, index_threads=1, seal_rows=5, merge_factor=8,
                 compact_min_dead=1 << 30)


def _snapshot_dir(tmp_path: Path, n: int = 12, sealing: bool = False) -> Path:
    """A snapshot of a collection 'y' (n records, with an HNSW graph), made with real files;
    ``sealing``: n records in sealed segments (docs/segments.md) of 5, y1 deleted from its
    bitmap, and 2 more (y<n>, y<n+1>) in the tail."""
    with Database(tmp_path / "maker", tuning=SEALING if sealing else TUNING, checkpoint_interval_s=3600) as db:
        col = db.create_collection("y", dim=DIM, metric="l2")
        if not sealing:
            col.add([f"y{i}" for i in range(n)], _vectors(n, 5))
        else:
            vectors = _vectors(n + 2, 5)
            for start in range(0, n, 5):
                col.add([f"y{i}" for i in range(start, min(n, start + 5))], vectors[start:min(n, start + 5)])
                col.checkpoint()
            col.delete(ids=["y1"])
            col.add([f"y{n}", f"y{n + 1}"], vectors[n:])
        db.create_snapshot("y", "s")
    directory = tmp_path / "maker" / "snapshots" / "s"
    if sealing:
        entries = disk.read_manifest(directory)["segments"]
        assert len(entries) >= 2 and entries[0]["deletes"], entries
    return directory


def _snapshot_ids(n: int, sealing: bool) -> list[str]:
    return sorted(f"y{i}" for i in range(n + 2 if sealing else n) if not (sealing and i == 1))


def _feed(upload: snapshots.Upload, directory: Path) -> None:
    for relative, offset, data, _ in snapshots.read_chunks(directory):
        upload.add(relative, offset, data)


def _ids(db: Database, name: str) -> list[str]:
    return sorted(db.get_collection(name).get().ids)


@pytest.mark.parametrize("sealing", [False, True], ids=["one-state", "sealed-segments"])
def test_uploaded_files_are_durable(tmp_path, sealing):
    """Was: uploaded files were never fsynced: power loss after a restore returned left the
    restored collection's files empty. With sealed segments: their files, bitmaps and the
    graphs the restore built for them too."""
    source = _snapshot_dir(tmp_path, sealing=sealing)
    data = tmp_path / "data"
    Database(data, tuning=TUNING).close()
    fs = PowerLossFS(data)
    db = Database(data, tuning=TUNING, fs=fs, checkpoint_interval_s=3600)
    up = snapshots.Upload(db)
    _feed(up, source)
    db.restore_snapshot(up, "restored")
    up.discard()
    fs.crash_at = fs.ops  # the power goes right after the restore returned
    with pytest.raises(PowerLoss):
        fs.fsync_dir(data)
    _abandon(db)
    for variant in ("drop", "zeros"):
        fs.image.materialise(tmp_path / f"img-{variant}", variant)
        with Database(tmp_path / f"img-{variant}", tuning=TUNING, checkpoint_interval_s=3600) as again:
            assert not again.damaged_collections(), again.damaged_collections()
            assert _ids(again, "restored") == _snapshot_ids(12, sealing)
            assert bool(again.get_collection("restored").sealed) == sealing


def _restore_upload(db: Database, files: dict[str, bytes], name: str):
    up = snapshots.Upload(db)
    try:
        for path, data in files.items():
            up.add(path, 0, data)
        return db.restore_snapshot(up, name)
    finally:
        up.discard()


def test_crafted_segment_entries_are_refused_before_anything_is_served(tmp_path):
    """Sealed segments in an upload (docs/segments.md) are untrusted as the generation is:
    names confined to the pattern a seal writes, bitmaps of the right name and size, every
    file verified, and an id live in one place only."""
    files = _files(_snapshot_dir(tmp_path, n=10, sealing=True))
    with Database(tmp_path / "data", tuning=TUNING, checkpoint_interval_s=3600) as db:
        assert sorted(_restore_upload(db, files, "good").get().ids) == _snapshot_ids(10, True)
        first = manifest_of(files)["segments"][0]

        def crafted(change, name):
            manifest = manifest_of(files)
            change(manifest["segments"], manifest)
            with pytest.raises(InvalidArgumentError) as caught:
                _restore_upload(db, with_manifest(files, manifest), name)
            return caught.value.message

        message = crafted(lambda segments, m: segments[0].update(name="../../escaped"), "t1")
        assert "segments[0].name '../../escaped'" in message, message
        message = crafted(lambda segments, m: segments[0]["deletes"].update(size=99), "t2")
        assert "segments[0].deletes.size 99" in message and "1 bytes" in message, message
        message = crafted(lambda segments, m: segments[1].update(deletes=dict(first["deletes"])), "t3")
        assert "segments[1].deletes.file" in message, message
        message = crafted(lambda segments, m: segments.append(dict(segments[0])), "t4")
        assert "listed twice" in message, message
        message = crafted(lambda segments, m: m.update(segments={"a": 1}), "t5")
        assert "segments" in message and "must be a list" in message, message
        # a copy of a segment under another name: each of its ids would be live twice
        twin = first["name"][:-8] + "00000000"
        copied = {path.replace(first["name"], twin): data for path, data in files.items()
                  if path.startswith(first["name"])}
        manifest = manifest_of(files)
        manifest["segments"].append({**first, "name": twin, "deletes": None})
        with pytest.raises(InvalidArgumentError, match="live in two places"):
            _restore_upload(db, with_manifest({**files, **copied}, manifest), "t6")
        # a bitmap that does not match its digest: the restore's open reports it
        bitmap = first["deletes"]["file"]
        with pytest.raises(InvalidArgumentError, match="checksum"):
            _restore_upload(db, {**files, bitmap: bytes([0xFF])}, "t7")
        with pytest.raises(InvalidArgumentError, match="not a snapshot file"):
            _restore_upload(db, {**files, f"{first['name']}/../MANIFEST": b"x"}, "t8")
        assert [c.name for c in db.list_collections()] == ["good"]
        assert not [p for p in (tmp_path / "data" / "collections").iterdir() if p.name.startswith(".")]


def _abandon(db: Database) -> None:
    """Drops a crashed database without touching its files (the process 'died')."""
    db._stop.set()
    db._checkpointer.join()
    for col in db._collections.values():
        col._closed = True
        try:
            col._wal.close()
        except OSError:
            pass
    db._lock_file.release()


@pytest.mark.parametrize("sealing", [False, True], ids=["one-state", "sealed-segments"])
def test_replace_leaves_the_old_or_the_new_collection_at_every_crash_point(tmp_path, sealing):
    """Was: replace removed the old collection before the new one was in place; a crash
    between lost both. Power is lost before every operation of a replace in turn (also of
    a snapshot with sealed segments and a bitmap)."""
    source = _snapshot_dir(tmp_path, n=10 if sealing else 3, sealing=sealing)
    pristine = tmp_path / "pristine"
    with Database(pristine, tuning=TUNING, checkpoint_interval_s=3600) as db:
        db.create_collection("x", dim=DIM, metric="l2").add(["old"], _vectors(1, 9))
        shutil.copytree(source, pristine / "snapshots" / "s")
    old, new = ["old"], _snapshot_ids(10 if sealing else 3, sealing)

    def run(work: Path, crash_at: int | None) -> tuple[PowerLossFS, int]:
        shutil.copytree(pristine, work)
        fs = PowerLossFS(work)
        db = Database(work, tuning=TUNING, fs=fs, checkpoint_interval_s=3600)
        start = fs.ops
        fs.crash_at = None if crash_at is None else start + crash_at
        try:
            db.restore_snapshot("s", "x", replace=True)
        except PowerLoss:
            _abandon(db)
            return fs, 0
        count = fs.ops - start
        db.close()
        return fs, count

    total = run(tmp_path / "count", None)[1]
    assert total > 10
    outcomes = {"old": 0, "new": 0}
    for k in range(total):
        fs = run(tmp_path / f"run{k}", k)[0]
        assert fs.image is not None, k
        for variant in ("drop", "full"):
            image = tmp_path / f"img{k}-{variant}"
            fs.image.materialise(image, variant)
            with Database(image, tuning=TUNING, checkpoint_interval_s=3600) as db:
                assert not db.damaged_collections(), (k, fs.log[-3:], db.damaged_collections())
                got = _ids(db, "x")  # never neither
                assert got in (old, new), (k, variant, fs.log[-3:], got)
                outcomes["old" if got == old else "new"] += 1
                assert len(db.list_collections()) == 1
            leftovers = [p.name for p in (image / "collections").iterdir()]
            assert len(leftovers) == 1 and not (image / "collections" / leftovers[0] / snapshots.REPLACES).exists()
            shutil.rmtree(image)
        shutil.rmtree(tmp_path / f"run{k}")
    assert outcomes["old"] and outcomes["new"], outcomes


def test_leftovers_are_swept_at_start(tmp_path):
    """Was: snapshots/.upload-* and .tmp-* stayed forever. Also: a half-restored collection
    directory goes, and a replace that crashed after its switch is finished (the new
    collection stays, the replaced directory goes)."""
    data = tmp_path / "data"
    with Database(data, tuning=TUNING, checkpoint_interval_s=3600) as db:
        db.create_collection("x", dim=DIM, metric="l2").add(["old"], _vectors(1, 1))
        db.create_collection("y", dim=DIM, metric="l2").add(["new"], _vectors(1, 2))
    old_dir, new_dir = directory_of(data, "x"), directory_of(data, "y")
    manifest = disk.read_manifest(new_dir)
    manifest["config"]["name"] = "x"  # as a restore into 'x' writes it
    (new_dir / disk.MANIFEST).unlink()
    disk.write_manifest(FileSystem(), new_dir, manifest)
    (new_dir / snapshots.REPLACES).write_text(json.dumps([old_dir.name]))  # switched, old not yet removed
    leftovers = [data / "snapshots" / ".upload-0123abcd" / "gen-00000000000000000001",
                 data / "snapshots" / ".tmp-s-0123abcd", data / "collections" / f".tmp-{uuid.uuid4().hex}"]
    for path in leftovers:
        path.mkdir(parents=True)
        (path / "vectors.npy").write_bytes(b"half")
    server = start_server(data)
    try:
        with vectord.Client(server.address, timeout=30) as client:
            assert [c.name for c in client.list_collections()] == ["x"]
            assert client.get_collection("x").get()["ids"] == ["new"]
    finally:
        assert server.terminate() == 0, server.log()
    assert not any(path.exists() for path in leftovers)
    assert not (data / "snapshots" / ".upload-0123abcd").exists()
    assert not old_dir.exists() and not (new_dir / snapshots.REPLACES).exists()
    assert "finishing the replace" in server.log()


# ---------------------------------------------------------------- disk full and the limit (in-process server)
class DiskFull(FileSystem):
    """Real files; the operations named in ``fail`` raise ENOSPC (``mkdir:<name>`` only
    for that directory name)."""

    def __init__(self) -> None:
        self.fail: set[str] = set()

    def _check(self, op: str) -> None:
        if op in self.fail:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def append(self, fd, data):
        self._check("append")
        super().append(fd, data)

    def mkdir(self, path):
        self._check(f"mkdir:{Path(path).name.split('-')[0]}")
        super().mkdir(path)


class InProcess:
    def __init__(self, path: Path, fs: FileSystem) -> None:
        from vectord.server.app import create_server
        from vectord.server.settings import Settings

        self.path = path
        self.db = Database(path, tuning=TUNING, fs=fs, checkpoint_interval_s=3600)
        self.running = create_server(Settings(port=0, host="127.0.0.1"), self.db)
        self.stubs = Stubs(f"127.0.0.1:{self.running.port}")

    def close(self) -> None:
        self.stubs.close()
        self.running.stop(1)
        self.db.close()


@pytest.fixture
def in_process(tmp_path):
    fs = DiskFull()
    server = InProcess(tmp_path / "data", fs)
    server.db.create_collection("src", dim=DIM, metric="l2").add([f"r{i}" for i in range(5)], _vectors(5, 1))
    yield server, fs
    server.close()


def _files(directory: Path) -> dict[str, bytes]:
    return {relative: (directory / relative).read_bytes() for relative in snapshots.snapshot_files(directory)}


def test_disk_full_during_an_upload_or_the_snapshots_mkdir_is_resource_exhausted(in_process, tmp_path):
    """Was: INTERNAL (the upload wrote outside the storage seam, the mkdir unguarded)."""
    server, fs = in_process
    files = _files(_snapshot_dir(tmp_path))
    full = grpc.StatusCode.RESOURCE_EXHAUSTED
    fs.fail = {"mkdir:snapshots"}  # the first upload creates snapshots/
    code, details = upload(server.stubs, files, collection="r1")
    assert code == full and "disk full" in details, (code, details)
    code, details = code_of(server.stubs.admin.CreateSnapshot,
                            admin_pb2.CreateSnapshotRequest(collection="src", name="s1"), timeout=30)
    assert code == full and "disk full" in details, (code, details)
    fs.fail = {"mkdir:.upload"}
    code, details = upload(server.stubs, files, collection="r1")
    assert code == full and "disk full" in details, (code, details)
    fs.fail = {"append"}
    code, details = upload(server.stubs, files, collection="r1")
    assert code == full and "disk full" in details, (code, details)
    assert [c.name for c in server.db.list_collections()] == ["src"]
    assert not [p.name for p in (server.path / "snapshots").iterdir()]  # nothing half-uploaded is left
    fs.fail = set()
    assert upload(server.stubs, files, collection="r1") == (grpc.StatusCode.OK, "")


def test_an_upload_over_the_size_limit_is_refused(in_process, tmp_path, monkeypatch):
    server, _ = in_process
    files = _files(_snapshot_dir(tmp_path))
    monkeypatch.setattr(limits, "MAX_SNAPSHOT_UPLOAD_BYTES", 600)
    code, details = upload(server.stubs, files, collection="r2")
    assert code == BAD and "MAX_SNAPSHOT_UPLOAD_BYTES" in details and "600" in details, (code, details)
    assert not list((server.path / "snapshots").iterdir())
    # a MANIFEST that claims more than the limit is refused before any file is touched
    monkeypatch.setattr(limits, "MAX_SNAPSHOT_UPLOAD_BYTES", 100_000)
    manifest = manifest_of(files)
    manifest["files"][disk.VECTORS]["size"] = 200_000
    code, details = upload(server.stubs, with_manifest(files, manifest), collection="r2")
    assert code == BAD and "files['vectors.npy'].size 200000" in details and "100000" in details, (code, details)
    assert [c.name for c in server.db.list_collections()] == ["src"]
