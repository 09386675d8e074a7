"""Bugs found by the fault tests, each frozen as a named regression test."""

from __future__ import annotations

import errno

import grpc
import numpy as np
import pytest

from faults_helpers import close_without_checkpoint
from vectord import limits
from vectord.errors import DataLossError, FailedPreconditionError, InvalidArgumentError, ResourceExhaustedError
from vectord.storage import Database, Tuning, framing
from vectord.storage.fsio import FileSystem
from vectord.v1 import records_pb2 as rpb, types_pb2 as pb


class NoSpace(FileSystem):
    def __init__(self, ops):
        self.ops = set(ops)

    def _no(self, op):
        if op in self.ops:
            raise OSError(errno.ENOSPC, "No space left on device")

    def append(self, fd, data):
        self._no("append")
        super().append(fd, data)

    def fsync(self, fd):
        self._no("fsync")
        super().fsync(fd)

    def create(self, path):
        self._no("create")
        return super().create(path)

    def write_file(self, path, data):
        self._no("create")
        super().write_file(path, data)

    def mkdir(self, path):
        self._no("mkdir")
        super().mkdir(path)


@pytest.fixture
def grpc_server(tmp_path):
    from vectord.server.app import create_server
    from vectord.server.settings import Settings

    db = Database(tmp_path / "srv")
    db.create_collection("h", dim=2, metric="l2").add(["a"], [[1.0, 2.0]], metadatas=[{"k": 1}])
    running = create_server(Settings(port=0, host="127.0.0.1"), db)
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    yield channel
    channel.close()
    running.stop(1)
    db.close()


def test_regression_undecodable_request_bytes_are_invalid_argument_not_internal(grpc_server):
    """grpc answered INTERNAL ("Exception deserializing request!") to bytes that are not a
    protobuf message: a client's mistake reported as a server bug."""
    call = grpc_server.unary_unary("/vectord.v1.Records/Count")
    with pytest.raises(grpc.RpcError) as err:
        call(b"\xff\xff\xff", timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid protobuf message" in err.value.details()


@pytest.mark.parametrize("where", [
    pb.Filter(field=pb.FieldCondition(path="k", op=99, value=pb.Value(int_value=1))),
    pb.Filter(document=pb.DocumentCondition(op=5, text="x")),
])
def test_regression_unknown_filter_operator_number_is_invalid_argument(grpc_server, where):
    """An enum number the server does not know raised ValueError in Op.Name -> INTERNAL."""
    call = grpc_server.unary_unary("/vectord.v1.Records/Count",
                                   request_serializer=rpb.CountRequest.SerializeToString)
    with pytest.raises(grpc.RpcError) as err:
        call(rpb.CountRequest(collection="h", where=where), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown operator" in err.value.details()


def test_regression_max_queries_per_call_is_enforced(tmp_path):
    """limits.MAX_QUERIES was documented but never checked."""
    with Database(tmp_path / "d") as db:
        col = db.create_collection("q", dim=2, metric="l2")
        col.add(["a"], [[1.0, 1.0]])
        with pytest.raises(InvalidArgumentError, match=f"the limit is {limits.MAX_QUERIES}"):
            col.query(np.ones((limits.MAX_QUERIES + 1, 2), np.float32), n_results=1)
        assert len(col.query(np.ones((3, 2), np.float32), n_results=1)) == 3


def test_regression_checksummed_but_malformed_log_record_is_data_loss_not_a_crash(tmp_path):
    """A log record (or MANIFEST) with a valid CRC but the wrong shape raised TypeError or
    KeyError out of recovery, so Database() failed for every collection, not just this one."""
    with Database(tmp_path / "d") as db:
        db.create_collection("bad", dim=2, metric="l2").add(["a"], [[1.0, 1.0]])
        db.create_collection("good", dim=2, metric="l2").add(["b"], [[2.0, 2.0]])
        bad_dir = db.get_collection("bad").path
    with open(bad_dir / "wal.log", "ab") as handle:
        handle.write(framing.encode_frame(None))  # whole, checksummed, nonsense
        handle.write(framing.encode_frame({"op": "put", "seq": 9, "ids": ["x"]}))
    with Database(tmp_path / "d") as db:
        assert db.get_collection("good").count() == 1
        with pytest.raises(DataLossError, match="malformed"):
            db.get_collection("bad")


def test_regression_enospc_on_append_stays_resource_exhausted(tmp_path):
    """After a disk-full append the log refused later writes with FAILED_PRECONDITION: the
    caller could not tell "disk full, free space" from "broken"."""
    fs = NoSpace(set())
    db = Database(tmp_path / "d", fs=fs, tuning=Tuning(checkpoint_min_bytes=1 << 40))
    col = db.create_collection("c", dim=2, metric="l2")
    col.add(["a"], [[1.0, 1.0]])
    fs.ops = {"append"}
    with pytest.raises(ResourceExhaustedError, match="disk full"):
        col.add(["b"], [[2.0, 2.0]])
    fs.ops = set()
    with pytest.raises(ResourceExhaustedError, match="refuses writes until the server restarts"):
        col.add(["c"], [[3.0, 3.0]])
    close_without_checkpoint(db)


def test_regression_enospc_on_log_fsync_is_resource_exhausted(tmp_path):
    fs = NoSpace(set())
    db = Database(tmp_path / "d", fs=fs, tuning=Tuning(checkpoint_min_bytes=1 << 40))
    col = db.create_collection("c", dim=2, metric="l2")
    fs.ops = {"fsync"}
    with pytest.raises(ResourceExhaustedError, match="fsync failed"):
        col.add(["b"], [[2.0, 2.0]])
    fs.ops = set()
    with pytest.raises(ResourceExhaustedError, match="refuses writes"):
        col.add(["c"], [[3.0, 3.0]])
    close_without_checkpoint(db)


def test_regression_enospc_in_a_checkpoint_is_resource_exhausted_and_frees_the_generation(tmp_path):
    """A checkpoint on a full disk raised a bare OSError (INTERNAL through the server) and
    left its half-written generation behind, holding space."""
    fs = NoSpace(set())
    db = Database(tmp_path / "d", fs=fs, tuning=Tuning(checkpoint_min_bytes=1 << 40))
    col = db.create_collection("c", dim=2, metric="l2")
    col.add(["a"], [[1.0, 1.0]])
    fs.ops = {"create"}
    with pytest.raises(ResourceExhaustedError, match="checkpoint: disk full"):
        col.checkpoint()
    assert list(col.path.glob("gen-*")) == []
    col.add(["b"], [[2.0, 2.0]])  # the log is unaffected: writes go on
    fs.ops = set()
    assert col.checkpoint()
    db.close()
    with Database(tmp_path / "d") as db:
        assert db.get_collection("c").count() == 2


def test_regression_enospc_in_create_collection_is_resource_exhausted(tmp_path):
    """create_collection on a full disk raised a bare OSError and left a .tmp- directory."""
    fs = NoSpace({"create"})
    with Database(tmp_path / "d", fs=fs) as db:
        with pytest.raises(ResourceExhaustedError, match="disk full"):
            db.create_collection("c", dim=2)
        assert list((tmp_path / "d" / "collections").iterdir()) == []
        fs.ops = set()
        db.create_collection("c", dim=2)


def test_regression_fsync_eio_is_still_failed_precondition(tmp_path):
    """The ENOSPC mapping must not turn other I/O errors into 'retry later'."""
    fs = NoSpace(set())
    db = Database(tmp_path / "d", fs=fs, tuning=Tuning(checkpoint_min_bytes=1 << 40))
    col = db.create_collection("c", dim=2, metric="l2")

    def eio(fd):
        raise OSError(errno.EIO, "Input/output error")

    fs.fsync = eio
    with pytest.raises(FailedPreconditionError, match="fsync failed"):
        col.add(["b"], [[2.0, 2.0]])
    del fs.fsync
    with pytest.raises(FailedPreconditionError, match="refuses writes"):
        col.add(["c"], [[3.0, 3.0]])
    close_without_checkpoint(db)


def test_regression_a_checksummed_manifest_with_a_huge_dim_is_data_loss_not_an_allocation(tmp_path):
    """Found by the CI run of tests/faults/test_fuzz.py: a well-framed MANIFEST whose config
    said dim = 2**40 made recovery allocate (16, dim) floats and the process was OOM-killed."""
    from vectord.errors import DataLossError
    from vectord.storage import Tuning
    from vectord.storage.checkpoint import write_manifest
    from vectord.storage.collection import Collection
    from vectord.storage.fsio import REAL

    manifest = {"format": 1, "config": {"id": "x", "name": "n", "dim": 2**40, "metric": "l2",
                                        "hnsw": {"m": 16, "ef_construction": 100, "ef_search": 100},
                                        "metadata": {}, "created_at_ms": 0, "encoder": None},
                "generation": None, "applied_seq": 0, "slots": 0, "files": {}, "index": None}
    write_manifest(REAL, tmp_path, manifest)
    with pytest.raises(DataLossError, match="dim"):
        Collection.open(REAL, tmp_path, Tuning(index_threads=1))
    manifest["config"]["dim"] = 2
    manifest["slots"] = 10**12
    write_manifest(REAL, tmp_path, manifest)
    with pytest.raises(DataLossError, match="do not agree"):
        Collection.open(REAL, tmp_path, Tuning(index_threads=1))
