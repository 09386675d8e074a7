"""Damaged files through a real server, and `vectord verify`.

Every file kind (MANIFEST, wal.log, vectors.npy, records.msgpack, index.hnsw) is truncated,
zeroed and bit-flipped, each in its own collection of one data directory, beside a healthy
collection. One server starts on it: each damaged collection answers DATA_LOSS (a damaged
index is rebuilt from the stored vectors instead: it is a derived cache), the healthy one
serves, the server never dies. Then `vectord verify` reports the same verdicts offline and
`--repair` rewrites the damaged indexes.
"""

from __future__ import annotations

import subprocess
import sys

import grpc
import numpy as np
import pytest

from faults_helpers import Stubs, close_without_checkpoint, code_of, healthy
from serverproc import start_server
from vectord.server import cli
from vectord.storage import Database, Tuning, framing
from vectord.storage.checkpoint import read_manifest
from vectord.v1 import collections_pb2, records_pb2, types_pb2

KINDS = ("MANIFEST", "wal.log", "vectors.npy", "records.msgpack", "index.hnsw")
HOWS = ("truncate", "zeros", "bitflip")
N, LOGGED, DIM = 100, 5, 8
# seal_rows=0: the files damaged are the tail generation's (gen-*); SEALING puts the N
# checkpointed records in a sealed segment (seg-*) instead (docs/segments.md).
TUNING = Tuning(exact_threshold=32, checkpoint_min_bytes=1 << 40, index_threads=1, seal_rows=0)
SEALING = Tuning(exact_threshold=32, checkpoint_min_bytes=1 << 40, index_threads=1, seal_rows=N)
VECTORS = np.random.default_rng(3).normal(size=(N + LOGGED, DIM)).astype(np.float32)


def _build(data_dir, names, tuning=TUNING):
    """Collections of N checkpointed records plus LOGGED records only in the log."""
    db = Database(data_dir, tuning=tuning)
    for name in names:
        col = db.create_collection(name, dim=DIM, metric="l2")
        col.add([f"r{i}" for i in range(N)], VECTORS[:N], metadatas=[{"i": i} for i in range(N)])
        col.checkpoint()
        for i in range(N, N + LOGGED):
            col.add([f"r{i}"], VECTORS[i:i + 1], documents=[f"logged {i}"])
    paths = {col.name: col.path for col in db.list_collections()}
    close_without_checkpoint(db)
    return paths


def _damage(path, how, kind):
    data = bytearray(path.read_bytes())
    if kind == "wal.log" and how != "truncate":
        # inside the first of several frames: a damaged frame followed by valid ones
        first = framing.HEADER_SIZE + 20
        if how == "zeros":
            data[4:first] = b"\0" * (first - 4)
        else:
            data[first] ^= 0x10
    elif how == "bitflip":
        data[len(data) // 2] ^= 0x10
    elif how == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 3: len(data) // 3 + 64] = b"\0" * 64
    path.write_bytes(bytes(data))


def _target(col_dir, kind):
    """The file of that kind: of the tail's generation, or of the one sealed segment."""
    if kind in ("MANIFEST", "wal.log"):
        return col_dir / kind
    manifest = read_manifest(col_dir)
    if manifest.get("segments"):
        (segment,) = manifest["segments"]
        return col_dir / segment["name"] / kind
    return col_dir / manifest["generation"] / kind


def test_damaged_files_are_data_loss_for_their_collection_only(tmp_path):
    data_dir = tmp_path / "data"
    cases = [(kind, how) for kind in KINDS for how in HOWS]
    names = {case: f"{case[0].split('.')[0].lower()}-{case[1]}" for case in cases}
    paths = _build(data_dir, ["fine", *names.values()])
    for (kind, how), name in names.items():
        _damage(_target(paths[name], kind), how, kind)

    server = start_server(data_dir)
    stubs = Stubs(server.address)
    detected, outcomes = 0, {}
    try:
        query = records_pb2.QueryRequest(
            collection="fine", n_results=1,
            queries=types_pb2.Vectors(dim=DIM, count=1, data_f32le=VECTORS[7].tobytes()))
        for (kind, how), name in names.items():
            # a MANIFEST that fails its checksum no longer tells the name: the collection is
            # known by its directory id
            key = paths[name].name if kind == "MANIFEST" else name
            code, details = code_of(stubs.collections.GetCollection,
                                    collections_pb2.GetCollectionRequest(name=key), timeout=30)
            count_code, _ = code_of(stubs.records.Count, records_pb2.CountRequest(collection=key), timeout=30)
            write_code, _ = code_of(stubs.records.Upsert, records_pb2.WriteRequest(
                collection=key, ids=["new"],
                embeddings=types_pb2.Vectors(dim=DIM, count=1, data_f32le=VECTORS[0].tobytes())), timeout=30)
            outcomes[name] = code.name
            if kind == "index.hnsw" or (kind == "wal.log" and how == "truncate"):
                continue  # checked below: served
            assert code == grpc.StatusCode.DATA_LOSS, (name, code, details)
            assert count_code == write_code == grpc.StatusCode.DATA_LOSS, name
            assert "damaged" in details and "vectord verify" in details, details
            if kind == "MANIFEST":
                missing, _ = code_of(stubs.collections.GetCollection,
                                     collections_pb2.GetCollectionRequest(name=name), timeout=30)
                assert missing == grpc.StatusCode.NOT_FOUND
            detected += 1
            # the healthy collection serves between every damaged call
            reply = stubs.records.Query(query, timeout=30)
            assert list(reply.results[0].ids) == ["r7"]
        for how in HOWS:  # a damaged graph is rebuilt from the verified vectors: served, exact
            name = names[("index.hnsw", how)]
            request = records_pb2.QueryRequest(
                collection=name, n_results=1,
                queries=types_pb2.Vectors(dim=DIM, count=1, data_f32le=VECTORS[42].tobytes()))
            assert list(stubs.records.Query(request, timeout=30).results[0].ids) == ["r42"]
            count = stubs.records.Count(records_pb2.CountRequest(collection=name), timeout=30).count
            assert count == N + LOGGED + 1  # the upsert above was accepted
            detected += 1
        # A truncated log is indistinguishable from a crash's torn tail: the whole frames
        # before the cut are served, the cut is logged (and reported by `vectord verify`).
        name = names[("wal.log", "truncate")]
        count = stubs.records.Count(records_pb2.CountRequest(collection=name), timeout=30).count
        assert N <= count < N + LOGGED + 1
        assert "torn tail" in server.log()
        listed = {c.name for c in stubs.collections.ListCollections(
            collections_pb2.ListCollectionsRequest(), timeout=30).collections}
        assert listed == {"fine", names[("wal.log", "truncate")],
                          *(names[("index.hnsw", h)] for h in HOWS)}
        assert server.proc.poll() is None and healthy(server.address)
        assert "Segmentation" not in server.log() and "Traceback" not in server.log()
    finally:
        stubs.close()
        assert server.terminate() == 0, server.log()
    print(f"\ndamaged files: {detected} of {len(cases) - 1} detectable cases detected "
          f"(+1 log truncation served as a torn tail): {outcomes}")
    assert detected == len(cases) - 1

    # offline: the same verdicts from `vectord verify` (a real subprocess, the console path)
    out = subprocess.run([sys.executable, "-m", "vectord", "verify", "--data-dir", str(data_dir)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = {line.split()[1]: line for line in out.stdout.splitlines() if "[" in line}
    assert lines["fine"].startswith("OK")
    for (kind, how), name in names.items():
        key = paths[name].name if kind == "MANIFEST" else name
        # the index and truncated-log collections took a write above, so the server's final
        # checkpoint replaced their generation: they are whole again
        expected = "OK" if kind == "index.hnsw" or (kind, how) == ("wal.log", "truncate") else "DAMAGED"
        assert lines[key].startswith(expected), (name, lines[key])
    assert "checksum mismatch" in lines[names[("vectors.npy", "bitflip")]]
    # --repair cannot invent lost vectors or records: still exit 1, nothing served changed
    assert cli.main(["verify", "--data-dir", str(data_dir), "--repair"]) == 1
    with Database(data_dir, tuning=TUNING) as db:
        assert db.get_collection("fine").count() == N + LOGGED
        assert len(db.damaged_collections()) == len(cases) - 4


@pytest.mark.parametrize("tuning", [TUNING, SEALING], ids=["tail", "sealed"])
def test_verify_repair_rebuilds_a_damaged_index(tmp_path, capsys, caplog, tuning):
    """Also a regression (found with sealing on): verify checked only the tail generation's
    graph, so a sealed segment's damaged index.hnsw (rebuilt in memory at every start) was
    reported OK and --repair left it damaged."""
    data_dir = tmp_path / "data"
    paths = _build(data_dir, ["a", "b"], tuning)
    if tuning.seal_rows:
        assert "seg-" in _target(paths["a"], "index.hnsw").parent.name
    assert cli.main(["verify", "--data-dir", str(data_dir)]) == 0
    _damage(_target(paths["a"], "index.hnsw"), "bitflip", "index.hnsw")
    assert cli.main(["verify", "--data-dir", str(data_dir)]) == 1
    assert "INDEX_DAMAGED" in capsys.readouterr().out
    assert cli.main(["verify", "--data-dir", str(data_dir), "--repair"]) == 0
    assert "INDEX_REBUILT" in capsys.readouterr().out
    assert cli.main(["verify", "--data-dir", str(data_dir)]) == 0
    caplog.clear()
    with Database(data_dir, tuning=TUNING) as db:
        col = db.get_collection("a")
        assert "will be rebuilt" not in caplog.text
        assert col.count() == N + LOGGED
        assert col.query(VECTORS[N + 2:N + 3], n_results=1)[0].ids == [f"r{N + 2}"]
        assert col.query(VECTORS[42:43], n_results=1)[0].ids == ["r42"]
        if tuning.seal_rows:
            assert len(col.sealed) == 1  # the repaired segment
        # verify refuses to run beside the owner of the directory
        assert cli.main(["verify", "--data-dir", str(data_dir)]) == 2
