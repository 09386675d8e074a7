"""Disk full and I/O errors (after Qdrant's low-disk test and SQLite's I/O
error tests).

ENOSPC is injected through the storage seam on log appends, log fsyncs and checkpoint
files, under a real gRPC server (in this process, so the seam can be reached): writes are
refused with RESOURCE_EXHAUSTED, nothing acknowledged is lost, reads go on, and after the
space is freed and a restart everything is back. An fsync EIO makes the collection refuse
writes (FAILED_PRECONDITION) until the restart. Finally a real 2 MiB tmpfs is filled by a
`vectord serve` process (skipped where mounting is not permitted).
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import grpc
import numpy as np
import pytest

import vectord
from serverproc import start_server
from vectord.server.app import create_server
from vectord.server.settings import Settings
from vectord.storage import Database, Tuning
from vectord.storage.fsio import FileSystem
from crashfs import VARIANTS, PowerLoss, PowerLossFS

DIM = 8
rng = np.random.default_rng(11)
COUNTS = {"cases": 0}


class FaultyFS(FileSystem):
    """Real files; ``fail`` names the operations that raise ``error`` while it is set."""

    def __init__(self) -> None:
        self.fail: set[str] = set()
        self.error = errno.ENOSPC
        self.injected = 0

    def _check(self, op: str) -> None:
        if op in self.fail:
            self.injected += 1
            raise OSError(self.error, os.strerror(self.error))

    def append(self, fd, data):
        self._check("append")
        if "append-partial" in self.fail:  # half the frame reaches the disk, then ENOSPC
            super().append(fd, data[: len(data) // 2])
            self._check("append-partial")
        super().append(fd, data)

    def fsync(self, fd):
        self._check("fsync")
        super().fsync(fd)

    def create(self, path):
        self._check("create")
        return super().create(path)

    def write_file(self, path, data):
        self._check("create")
        super().write_file(path, data)

    def mkdir(self, path):
        self._check("mkdir")
        super().mkdir(path)


class InProcessServer:
    def __init__(self, path: Path, fs: FileSystem) -> None:
        self.db = Database(path, tuning=Tuning(checkpoint_min_bytes=1 << 40, index_threads=1),
                           fs=fs, checkpoint_interval_s=3600)
        self.running = create_server(Settings(port=0, host="127.0.0.1"), self.db)
        self.client = vectord.Client(f"127.0.0.1:{self.running.port}", timeout=30)

    def stop(self) -> None:
        self.client.close()
        self.running.stop(1)
        self.db.close()


def _vectors(n):
    return rng.normal(size=(n, DIM)).astype(np.float32)


@pytest.mark.parametrize("fail, first_error", [
    ({"append"}, vectord.ResourceExhaustedError),
    ({"append-partial"}, vectord.ResourceExhaustedError),
    ({"fsync"}, vectord.ResourceExhaustedError),
])
def test_enospc_on_the_log_refuses_writes_keeps_reads_and_recovers(tmp_path, fail, first_error):
    fs = FaultyFS()
    server = InProcessServer(tmp_path / "d", fs)
    acked = {}
    try:
        col = server.client.create_collection("c", dim=DIM, metric="l2")
        other = server.client.create_collection("other", dim=DIM, metric="l2")
        vecs = _vectors(30)
        col.add(ids=[f"r{i}" for i in range(20)], embeddings=vecs[:20])
        acked.update({f"r{i}": vecs[i] for i in range(20)})
        fs.fail = set(fail)
        with pytest.raises(first_error, match="disk full|No space"):
            col.add(ids=["x1", "x2"], embeddings=vecs[20:22])
        fs.fail = set()  # "space is freed": the collection still refuses until a restart
        with pytest.raises(vectord.ResourceExhaustedError, match="refuses writes until the server restarts"):
            col.upsert(ids=["x3"], embeddings=vecs[22:23])
        with pytest.raises(vectord.ResourceExhaustedError):
            col.delete(ids=["r0"])
        # reads go on, with every acknowledged record
        assert col.count() == len(acked) or col.count() == len(acked) + 2
        got = col.get(ids=list(acked), include=["embeddings"])
        assert got["ids"] == list(acked)
        np.testing.assert_array_equal(got["embeddings"], np.stack(list(acked.values())))
        assert col.query(query_embeddings=vecs[5:6], n_results=1)["ids"] == [["r5"]]
        # other collections keep working
        other.add(ids=["o"], embeddings=vecs[29:30])
        assert other.count() == 1
    finally:
        server.stop()
    COUNTS["cases"] += 1
    server = InProcessServer(tmp_path / "d", FileSystem())
    try:
        col = server.client.get_collection("c")
        got = col.get(include=["embeddings"])
        present = set(got["ids"])
        assert set(acked) <= present
        # the refused batch is gone: its bytes (whole, half or none) were cut off the log
        assert present == set(acked), present - set(acked)
        for id_, vec in zip(got["ids"], got["embeddings"]):
            if id_ in acked:
                np.testing.assert_array_equal(vec, acked[id_])
        col.upsert(ids=["after"], embeddings=_vectors(1))  # writable again after the restart
        assert "after" in col.get(ids=["after"])["ids"]
        assert server.client.get_collection("other").count() == 1
    finally:
        server.stop()


def test_enospc_in_a_checkpoint_and_in_create_collection(tmp_path):
    fs = FaultyFS()
    server = InProcessServer(tmp_path / "d", fs)
    try:
        col = server.client.create_collection("c", dim=DIM, metric="l2")
        vecs = _vectors(12)
        col.add(ids=[f"r{i}" for i in range(10)], embeddings=vecs[:10])
        fs.fail = {"create"}
        stub = grpc.insecure_channel(f"127.0.0.1:{server.running.port}")
        from vectord.v1 import admin_pb2, admin_pb2_grpc

        with pytest.raises(grpc.RpcError) as err:
            admin_pb2_grpc.AdminStub(stub).Checkpoint(admin_pb2.CheckpointRequest(collection="c"), timeout=30)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.value.details()
        assert "disk full" in err.value.details()
        stub.close()
        assert list(col_dir.name for col_dir in Path(server.db.get_collection("c").path).glob("gen-*")) == []
        # the log is fine: writes still go on while checkpoints cannot be written
        col.add(ids=["r10"], embeddings=vecs[10:11])
        with pytest.raises(vectord.ResourceExhaustedError, match="disk full"):
            server.client.create_collection("new", dim=DIM)
        assert [c.name for c in server.client.list_collections()] == ["c"]
        assert not [p for p in (tmp_path / "d" / "collections").iterdir() if p.name.startswith(".tmp-")]
        fs.fail = set()
        assert server.client._call("Admin", "Checkpoint", admin_pb2.CheckpointRequest(collection="c")).checkpointed == 1
        server.client.create_collection("new", dim=DIM)
    finally:
        server.stop()
    COUNTS["cases"] += 2
    with Database(tmp_path / "d") as db:
        assert db.get_collection("c").count() == 11


def test_fsync_eio_refuses_writes_until_restart_through_the_server(tmp_path):
    fs = FaultyFS()
    fs.error = errno.EIO
    server = InProcessServer(tmp_path / "d", fs)
    try:
        col = server.client.create_collection("c", dim=DIM, metric="l2")
        col.add(ids=["ok"], embeddings=_vectors(1))
        fs.fail = {"fsync"}
        with pytest.raises(vectord.FailedPreconditionError, match="fsync failed"):
            col.add(ids=["lost"], embeddings=_vectors(1))
        fs.fail = set()  # never retry and carry on (fsyncgate): refused until restart
        for _ in range(3):
            with pytest.raises(vectord.FailedPreconditionError, match="refuses writes until the server restarts"):
                col.upsert(ids=["later"], embeddings=_vectors(1))
        assert "ok" in col.get()["ids"]  # reads go on
    finally:
        server.stop()
    COUNTS["cases"] += 1
    server = InProcessServer(tmp_path / "d", FileSystem())
    try:
        col = server.client.get_collection("c")
        assert col.get()["ids"] == ["ok"]  # the write reported failed did not come back
        col.add(ids=["after-restart"], embeddings=_vectors(1))
        assert col.get()["ids"] == ["ok", "after-restart"]
    finally:
        server.stop()


@pytest.fixture
def small_tmpfs(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                              capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def test_a_real_full_tmpfs(small_tmpfs):
    data_dir = small_tmpfs / "data"
    ballast = small_tmpfs / "ballast"
    ballast.write_bytes(b"\1" * (256 * 1024))  # what "freeing space" will remove
    server = start_server(data_dir)
    acked: dict[str, np.ndarray] = {}
    refused = 0
    try:
        client = vectord.Client(server.address, timeout=30)
        col = client.create_collection("c", dim=64, metric="l2")
        for batch in range(200):
            vecs = _vectors_dim(100, 64)
            ids = [f"b{batch}-{i}" for i in range(100)]
            try:
                col.add(ids=ids, embeddings=vecs)
            except vectord.ResourceExhaustedError as exc:
                assert "disk full" in str(exc) or "No space" in str(exc)
                refused += 1
                break
            acked.update(zip(ids, vecs))
        assert refused == 1, "the 2 MiB tmpfs never filled"
        with pytest.raises(vectord.ResourceExhaustedError):
            col.add(ids=["more"], embeddings=_vectors_dim(1, 64))
        assert col.count() >= len(acked)  # reads go on
        got = col.get(ids=list(acked)[:50], include=["embeddings"])
        np.testing.assert_array_equal(got["embeddings"], np.stack([acked[i] for i in got["ids"]]))
        client.close()
    finally:
        server.terminate()  # the final checkpoint may fail for lack of space: logged, harmless
    ballast.unlink()  # space is freed
    server = start_server(data_dir)
    try:
        client = vectord.Client(server.address, timeout=30)
        col = client.get_collection("c")
        ids = list(acked)
        got = col.get(ids=ids, include=["embeddings"])
        assert got["ids"] == ids, f"lost {len(ids) - len(got['ids'])} acknowledged records"
        np.testing.assert_array_equal(got["embeddings"], np.stack([acked[i] for i in ids]))
        col.delete(ids=ids[: len(ids) // 2])
        col.add(ids=["after"], embeddings=_vectors_dim(1, 64))
        client.close()
    finally:
        assert server.terminate() == 0, server.log()
    COUNTS["cases"] += 1
    print(f"\ntmpfs: {len(acked)} records acknowledged before ENOSPC, all recovered")


def _vectors_dim(n, dim):
    return rng.normal(size=(n, dim)).astype(np.float32)


class FailingPowerLossFS(PowerLossFS):
    """The power-loss model, plus I/O errors: ``fail_fsyncs`` fsyncs of files raise EIO
    without syncing; ``fail_manifest_dir_sync`` makes the directory fsync after the next
    MANIFEST rename raise EIO after doing its work (the worst case: the caller is told
    the switch failed, yet the disk holds the new MANIFEST)."""

    def __init__(self, root, crash_at=None):
        super().__init__(root, crash_at)
        self.fail_fsyncs = 0
        self.fail_manifest_dir_sync = False
        self._renamed_manifest = False

    def fsync(self, fd):
        if self.fail_fsyncs:
            self._op("fsync (EIO)")
            self.fail_fsyncs -= 1
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        super().fsync(fd)

    def rename(self, src, dst):
        super().rename(src, dst)
        self._renamed_manifest = dst.name == "MANIFEST"

    def fsync_dir(self, path):
        super().fsync_dir(path)
        renamed, self._renamed_manifest = self._renamed_manifest, False
        if self.fail_manifest_dir_sync and renamed:
            self.fail_manifest_dir_sync = False
            raise OSError(errno.EIO, os.strerror(errno.EIO))


def _power_loss_now(fs, db):
    """Loses the power at the next operation; returns the durable image."""
    from test_power_loss import _abandon

    fs.crash_at = fs.ops
    with pytest.raises(PowerLoss):
        fs.fsync_dir(fs.root)
    _abandon(db)
    return fs.image


def test_power_loss_after_a_failed_fsync_never_brings_the_failed_write_back(tmp_path):
    """Even if every byte of the failed write had reached the disk (variant "full"), the log
    was cut back before the write was reported failed: only acknowledged writes recover."""
    from vectord.errors import FailedPreconditionError

    root = tmp_path / "d"
    Database(root).close()
    fs = FailingPowerLossFS(root)
    db = Database(root, tuning=Tuning(checkpoint_min_bytes=1 << 40), fs=fs, checkpoint_interval_s=3600)
    col = db.create_collection("c", dim=DIM, metric="l2")
    col.add(["a", "b"], _vectors(2))
    fs.fail_fsyncs = 1
    with pytest.raises(FailedPreconditionError, match="fsync failed"):
        col.add(["lost"], _vectors(1))
    image = _power_loss_now(fs, db)
    for variant in VARIANTS:
        image.materialise(tmp_path / variant, variant)
        with Database(tmp_path / variant, checkpoint_interval_s=3600) as again:
            assert again.get_collection("c").get().ids == ["a", "b"], variant
    COUNTS["cases"] += 1


def test_power_loss_while_retrying_a_checkpoint_whose_manifest_switch_failed(tmp_path):
    """A directory fsync error after the MANIFEST rename, then a retried checkpoint with the
    power lost at each of its steps: every image recovers every acknowledged write."""
    from vectord.errors import FailedPreconditionError

    def run(crash_at):
        root = tmp_path / f"run{crash_at}"
        Database(root).close()
        fs = FailingPowerLossFS(root)
        db = Database(root, tuning=Tuning(checkpoint_min_bytes=1 << 40), fs=fs,
                      checkpoint_interval_s=3600)
        col = db.create_collection("c", dim=DIM, metric="l2")
        col.add([f"r{i}" for i in range(6)], VECTORS6[:6])
        col.checkpoint()
        col.add(["r6", "r7"], VECTORS6[6:8])
        fs.fail_manifest_dir_sync = True
        with pytest.raises(FailedPreconditionError, match="I/O error"):
            col.checkpoint()
        assert fs.log[-3:-1] == ["rename MANIFEST.tmp MANIFEST", f"fsync_dir {col.path.name}"], fs.log
        start = fs.ops
        fs.crash_at = None if crash_at is None else start + crash_at
        try:
            col.checkpoint()
            db.close()
        except PowerLoss:
            from test_power_loss import _abandon

            _abandon(db)
        return fs, fs.ops - start

    fs, steps = run(None)
    assert steps > 5, fs.log
    for k in range(steps):
        fs, _ = run(k)
        assert fs.image is not None
        for variant in ("drop", "full"):
            target = tmp_path / f"img{k}-{variant}"
            fs.image.materialise(target, variant)
            with Database(target, checkpoint_interval_s=3600) as db:
                assert not db.damaged_collections(), (k, fs.log[-3:], db.damaged_collections())
                got = db.get_collection("c").get(include=["embeddings"])
                assert got.ids == [f"r{i}" for i in range(8)], (k, variant)
                np.testing.assert_array_equal(got.embeddings, VECTORS6)
    COUNTS["cases"] += 1


VECTORS6 = np.random.default_rng(5).normal(size=(8, DIM)).astype(np.float32)
