"""The `vectord` client commands against a real server (and one on a data directory):
collections, import/export round trips, resumable import, snapshots, compact, query."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pytest

import vectord
from serverproc import start_server
from vectord.server.cli import main


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = start_server(tmp_path_factory.mktemp("cli") / "data")
    yield proc
    assert proc.terminate() == 0


@pytest.fixture
def vd(server, capsys):
    """Runs `vectord ARGS --address <server>` in-process; returns (exit code, stdout, stderr)."""

    def run(*args, address=True):
        extra = ["--address", server.address] if address else []
        code = main([*args, *extra])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def _typed(value):
    """A value with its types spelled out, so 1 and 1.0 and True compare different."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, value)


def _records(n=23, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors[0] = [1e-38, -1.5e19, 0.1, 1 / 3, -0.0]  # awkward float32 values
    out = []
    for i in range(n):
        metadata = {"int": i, "float": float(i), "half": i / 2, "flag": i % 2 == 0, "name": f"n{i}",
                    "nested": {"list": [1, 1.0, None, "x", {"deep": [i]}], "empty": {}}, "big": 2**62 + i}
        out.append({"id": f"id-{i:03d}", "document": None if i % 4 == 0 else f"doc {i} é ✓",
                    "metadata": metadata, "embedding": vectors[i].tolist()})
    return out, vectors


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def _read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_collections_list_create_info_delete(vd):
    code, out, _ = vd("collections", "create", "c1", "--dim", "4", "--metric", "l2",
                      "--metadata", '{"team": "search"}', "--hnsw", '{"m": 8}')
    assert code == 0 and "dim 4" in out
    code, out, _ = vd("collections", "list")
    assert code == 0
    header, _, *rows = out.splitlines()
    assert header.split() == ["name", "dim", "metric", "records", "encoder"]
    assert ["c1", "4", "l2", "0", "-"] in [row.split() for row in rows]
    code, out, _ = vd("collections", "info", "c1")
    info = json.loads(out)
    assert code == 0 and info["metric"] == "l2" and info["metadata"] == {"team": "search"} and info["hnsw"]["m"] == 8
    code, _, err = vd("collections", "create", "c1", "--dim", "4")
    assert code == 1 and "AlreadyExistsError" in err
    assert vd("collections", "delete", "c1")[0] == 0
    code, _, err = vd("collections", "info", "c1")
    assert code == 1 and "NotFoundError" in err and "c1" in err


def test_jsonl_round_trip_is_lossless(vd, tmp_path):
    records, _ = _records()
    source = tmp_path / "in.jsonl"
    _write_jsonl(source, records)
    code, out, err = vd("import", str(source), "-c", "rt", "--batch-size", "7")
    assert code == 0, err
    assert "imported 23 records" in out and "rec/s" in err  # the progress bar shows a rate
    assert not (tmp_path / "in.jsonl.progress").exists()  # removed when complete
    assert vd("export", str(tmp_path / "out.jsonl"), "-c", "rt")[0] == 0
    exported = _read_jsonl(tmp_path / "out.jsonl")
    assert [_typed(r) for r in exported] == [_typed(r) for r in sorted(records, key=lambda r: r["id"])]
    # and again through a second collection: byte-identical files
    assert vd("import", str(tmp_path / "out.jsonl"), "-c", "rt2")[0] == 0
    assert vd("export", str(tmp_path / "out2.jsonl"), "-c", "rt2")[0] == 0
    assert (tmp_path / "out.jsonl").read_bytes() == (tmp_path / "out2.jsonl").read_bytes()


def test_npy_with_sidecar_round_trip_is_lossless(vd, tmp_path, server):
    records, vectors = _records(n=40, dim=5, seed=1)
    order = sorted(range(len(records)), key=lambda i: records[i]["id"])
    np.save(tmp_path / "vec.npy", vectors)
    _write_jsonl(tmp_path / "vec.jsonl", [{k: v for k, v in r.items() if k != "embedding"} for r in records])
    code, _, err = vd("import", str(tmp_path / "vec.npy"), "-c", "np", "--metric", "ip", "--no-progress")
    assert code == 0, err
    with vectord.Client(server.address) as client:
        assert client.get_collection("np").metric == "ip"
    assert vd("export", str(tmp_path / "back.npy"), "-c", "np")[0] == 0
    back = np.load(tmp_path / "back.npy")
    assert back.dtype == np.float32 and np.array_equal(back, vectors[order])  # bit-exact
    sidecar = _read_jsonl(tmp_path / "back.jsonl")
    assert [_typed(r) for r in sidecar] == [_typed({k: v for k, v in records[i].items() if k != "embedding"})
                                            for i in order]


def test_import_resumes_after_a_failure(vd, tmp_path, server):
    records, _ = _records(n=20, seed=2)
    lines = [json.dumps(r) for r in records]
    lines[12] = "{not json"
    source = tmp_path / "resume.jsonl"
    source.write_text("\n".join(lines) + "\n")
    code, _, err = vd("import", str(source), "-c", "rs", "--batch-size", "5", "--no-progress")
    assert code == 1 and "resume.jsonl:13" in err
    progress = json.loads((tmp_path / "resume.jsonl.progress").read_text())
    assert progress["done"] == 10  # two batches were durably written before the bad line
    lines[12] = json.dumps(records[12])
    source.write_text("\n".join(lines) + "\n")  # fixed (size changes: the progress key must match it)
    progress.update(size_bytes=source.stat().st_size, mtime_ns=source.stat().st_mtime_ns)
    (tmp_path / "resume.jsonl.progress").write_text(json.dumps(progress))
    code, out, err = vd("import", str(source), "-c", "rs", "--batch-size", "5", "--no-progress")
    assert code == 0 and "resuming after 10 records" in err and "imported 20 records" in out
    assert not (tmp_path / "resume.jsonl.progress").exists()
    with vectord.Client(server.address) as client:
        assert client.get_collection("rs").count() == 20


def test_snapshots_are_point_in_time_and_restore_locally_or_by_upload(vd, tmp_path, server):
    dim = 8
    rng = np.random.default_rng(3)
    with vectord.Client(server.address) as client:
        col = client.create_collection("snap", dim=dim)
        col.add(ids=[f"a{i}" for i in range(300)], embeddings=rng.random((300, dim)),
                metadatas=[{"i": i} for i in range(300)])
        col.delete(ids=[f"a{i}" for i in range(0, 300, 3)])
        expected = col.get(include=["embeddings", "metadatas", "documents"], limit=1000)
        # writers keep going while the snapshot is taken (online)
        stop = threading.Event()

        def writer():
            n = 0
            while not stop.is_set():
                col.upsert(ids=[f"w{n}"], embeddings=rng.random((1, dim)))
                n += 1

        thread = threading.Thread(target=writer)
        code, out, err = vd("snapshot", "create", "-c", "snap", "--name", "before")
        thread.start()
        code2, _, err2 = vd("snapshot", "create", "-c", "snap", "--name", "during")
        stop.set()
        thread.join()
        assert code == 0 and code2 == 0, (err, err2)
        assert "before" in out and " 200 " in out  # 300 added, 100 deleted
        col.delete(ids=[f"a{i}" for i in range(1, 300, 3)])  # after the snapshot: not in it
        code, out, _ = vd("snapshot", "list")
        names = [row.split()[0] for row in out.splitlines()[2:]]
        assert code == 0 and names == ["before", "during"]

        assert vd("snapshot", "restore", "before", "-c", "snap-restored")[0] == 0
        restored = client.get_collection("snap-restored")
        got = restored.get(include=["embeddings", "metadatas", "documents"], limit=1000)
        assert got["ids"] == expected["ids"] and got["metadatas"] == expected["metadatas"]
        assert np.array_equal(got["embeddings"], expected["embeddings"])
        # the "during" snapshot is consistent: all 200 "a" records, and some prefix of the writes
        during = vd("snapshot", "restore", "during", "-c", "snap-during")
        assert during[0] == 0
        ids = client.get_collection("snap-during").get(limit=100_000)["ids"]
        assert sum(i.startswith("a") for i in ids) == 200
        writes = sorted(int(i[1:]) for i in ids if i.startswith("w"))
        assert writes == list(range(len(writes)))

        # download over the stream, then upload it back over the original (replace)
        code, out, err = vd("snapshot", "download", "before", "--out", str(tmp_path / "dl"))
        assert code == 0, err
        assert (tmp_path / "dl" / "MANIFEST").exists() and (tmp_path / "dl" / "SNAPSHOT").exists()
        code, _, err = vd("snapshot", "restore", "--from", str(tmp_path / "dl"))
        assert code == 1 and "AlreadyExistsError" in err  # 'snap' exists; no --replace
        code, out, err = vd("snapshot", "restore", "--from", str(tmp_path / "dl"), "--replace")
        assert code == 0 and "'snap' (200 records)" in out, err
        again = client.get_collection("snap").get(include=["embeddings", "metadatas"], limit=1000)
        assert again["ids"] == expected["ids"] and np.array_equal(again["embeddings"], expected["embeddings"])
        code, _, err = vd("snapshot", "restore", "nope")
        assert code == 1 and "NotFoundError" in err


def _by_id(got: dict) -> dict:
    return {id_: (np.asarray(vector, np.float32).tobytes(), document, metadata) for id_, vector, document, metadata
            in zip(got["ids"], got["embeddings"], got["documents"], got["metadatas"])}


def test_snapshots_of_a_sealing_server_hold_its_segments(tmp_path, capsys):
    """A server that seals (--seal-rows, docs/segments.md): a snapshot holds the sealed
    segments and their delete bitmaps; restoring it by name, by upload, and after a
    restart brings back the records as they were, deletes and upserts of sealed records
    included, and none of the writes made after it."""
    # segments of 5000 have a graph (exact_threshold 4096), so 300 deletes stay in their
    # bitmaps (under compact_min_dead) instead of being compacted away at once
    server = start_server(tmp_path / "data", "--seal-rows", "5000")

    def vd(*args):
        code = main([*args, "--address", server.address])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        return captured.out

    rng = np.random.default_rng(8)
    include = ["embeddings", "metadatas", "documents"]
    try:
        with vectord.Client(server.address) as client:
            col = client.create_collection("sealing", dim=6)
            for start in range(0, 10_000, 5000):
                ids = [f"a{i}" for i in range(start, start + 5000)]
                col.add(ids=ids, embeddings=rng.random((5000, 6)), documents=[f"doc {i}" for i in ids],
                        metadatas=[{"i": i} for i in range(start, start + 5000)])
                client.checkpoint("sealing")  # seals the 5000
            col.add(ids=["t0", "t1"], embeddings=rng.random((2, 6)))
            col.delete(ids=[f"a{i}" for i in range(0, 9000, 30)])
            col.upsert(ids=["a1", "a5001"], embeddings=rng.random((2, 6)), documents=["moved", "moved too"],
                       metadatas=[{"moved": True}] * 2)
            expected = _by_id(col.get(include=include, limit=20_000))
            assert len(expected) == 10_000 - 300 + 2
            vd("snapshot", "create", "-c", "sealing", "--name", "sealed")
            snapshot = server.data_dir / "snapshots" / "sealed"
            assert list(snapshot.glob("seg-*/vectors.npy")) and list(snapshot.glob("seg-*.deletes-*"))
            col.delete(ids=["a2", "a3", "t0"])  # after the snapshot: not in it
            col.upsert(ids=["a4"], embeddings=rng.random((1, 6)))
            vd("snapshot", "restore", "sealed", "-c", "back")
            assert _by_id(client.get_collection("back").get(include=include, limit=20_000)) == expected
            vd("snapshot", "download", "sealed", "--out", str(tmp_path / "dl"))
            out = vd("snapshot", "restore", "--from", str(tmp_path / "dl"), "-c", "up")
            assert f"'up' ({len(expected)} records)" in out, out
            assert _by_id(client.get_collection("up").get(include=include, limit=20_000)) == expected
        assert server.terminate() == 0
        server = start_server(tmp_path / "data", "--seal-rows", "5000")
        with vectord.Client(server.address) as client:
            for name in ("back", "up"):
                assert _by_id(client.get_collection(name).get(include=include, limit=20_000)) == expected, name
    finally:
        assert server.terminate() == 0, server.log()[-3000:]


def test_compact_removes_deleted_slots(vd, server):
    with vectord.Client(server.address) as client:
        col = client.create_collection("cmp", dim=4)
        col.add(ids=[str(i) for i in range(100)], embeddings=np.random.default_rng(4).random((100, 4)))
        col.delete(ids=[str(i) for i in range(0, 100, 2)])
        code, out, _ = vd("compact", "-c", "cmp")
        assert code == 0 and "compacted 50 deleted slot(s)" in out
        assert vd("compact", "-c", "cmp")[1].strip().endswith("compacted 0 deleted slot(s)")
        assert col.count() == 50


def test_query_prints_a_table(vd, server):
    with vectord.Client(server.address) as client:
        col = client.create_collection("q", dim=3)
        col.add(ids=["x", "y", "z"], embeddings=[[1, 0, 0], [0, 1, 0], [0.9, 0.1, 0]],
                documents=["the x document", None, "zed"], metadatas=[{"k": 1}, {"k": 2}, {"k": 3}])
    code, out, err = vd("query", "-c", "q", "--vector", "[1, 0, 0]", "-n", "2")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["#", "id", "distance", "document", "metadata"]
    assert lines[2].split()[:3] == ["1", "x", "0.0000"] and "the x document" in lines[2]
    assert lines[3].split()[1] == "z" and len(lines) == 4
    code, out, _ = vd("query", "-c", "q", "--vector", "[1, 0, 0]", "--where", '{"k": {"$gte": 2}}', "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)][:1] == ["z"]
    code, _, err = vd("query", "some text", "-c", "q")  # no encoder on this collection
    assert code == 1 and "encoder" in err


def test_query_text_uses_the_built_in_encoder(vd, server):
    with vectord.Client(server.address) as client:
        notes = client.create_collection("notes")  # the default encoder
        notes.add(ids=["cat", "rocket"], documents=["The cat sat on the mat.",
                                                    "The rocket carried a satellite into orbit."])
    code, out, err = vd("query", "a kitten on a rug", "-c", "notes", "-n", "1", "--json")
    assert code == 0, err
    assert [r["id"] for r in json.loads(out)] == ["cat"]


def test_commands_on_a_data_directory(tmp_path, capsys):
    data = str(tmp_path / "offline")
    records, _ = _records(n=9, seed=5)
    _write_jsonl(tmp_path / "in.jsonl", records)
    assert main(["import", str(tmp_path / "in.jsonl"), "-c", "off", "--data-dir", data, "--no-progress"]) == 0
    assert main(["snapshot", "create", "-c", "off", "--name", "s", "--data-dir", data]) == 0
    assert main(["collections", "list", "--data-dir", data]) == 0
    assert "off   5    cosine  9" in capsys.readouterr().out
    assert main(["verify", "--data-dir", data]) == 0
    assert (tmp_path / "offline" / "snapshots" / "s" / "MANIFEST").exists()


def test_entry_point_with_an_api_key_from_the_environment(tmp_path):
    proc = start_server(tmp_path / "keyed", env={"VECTORD_API_KEY": "cli-secret-key"})
    try:
        base = [sys.executable, "-m", "vectord", "collections"]
        denied = subprocess.run([*base, "list", "--address", proc.address], capture_output=True, text=True,
                                env={"PATH": "/usr/bin:/bin"}, timeout=60)
        assert denied.returncode == 1 and "UnauthenticatedError" in denied.stderr
        ok = subprocess.run([*base, "create", "k", "--dim", "2", "--address", proc.address], capture_output=True,
                            text=True, env={"PATH": "/usr/bin:/bin", "VECTORD_API_KEY": "cli-secret-key"}, timeout=60)
        assert ok.returncode == 0, ok.stderr
    finally:
        assert proc.terminate() == 0
