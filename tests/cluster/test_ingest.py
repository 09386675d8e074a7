"""`vectord cluster import`'s reading side on a local Ray (no gateway): JSONL, Parquet and
.npy sources come out of Ray Data as the same rows, metadata exactly as written, in order."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no telemetry (docs/cluster.md)
ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

from vectord.cluster.ingest import dataset, source_format, _rows  # noqa: E402

pytestmark = pytest.mark.timeout(300)
ROWS = [{"id": f"r{i}", "document": None if i == 3 else f"text {i}",
         "metadata": None if i == 4 else ({"n": i, "f": 1.0} if i % 2 else {"tags": ["a", i], "deep": {"x": None}}),
         "embedding": [float(i), 0.5, -1.0]} for i in range(25)]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=1, logging_level="ERROR", log_to_driver=False, object_store_memory=80 * 1024 * 1024)
    yield
    ray.shutdown()


def read(path, fmt):
    ds = dataset(str(path), fmt, encoder=None, workers=1, batch_size=7)
    out = {"ids": [], "embeddings": [], "documents": [], "metadatas": []}
    for ids, embeddings, documents, metadatas in _rows(ds, fmt, "v", batch_size=7):
        out["ids"] += ids
        out["embeddings"] += list(embeddings)
        out["documents"] += documents or [None] * len(ids)
        out["metadatas"] += metadatas or [None] * len(ids)
    return out


def check(out, with_columns=True):
    assert out["ids"] == [r["id"] for r in ROWS]
    np.testing.assert_array_equal(np.asarray(out["embeddings"]), np.asarray([r["embedding"] for r in ROWS], np.float32))
    if with_columns:
        assert out["documents"] == [r["document"] for r in ROWS]
        assert out["metadatas"] == [r["metadata"] for r in ROWS]  # 1.0 stays a float, no keys added


def test_jsonl_parquet_and_npy_give_the_same_rows(local_ray, tmp_path):
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS) + "\n")
    check(read(tmp_path / "in.jsonl", "jsonl"))
    table = pa.table({"id": [r["id"] for r in ROWS], "document": [r["document"] for r in ROWS],
                      "metadata": [None if r["metadata"] is None else json.dumps(r["metadata"]) for r in ROWS],
                      "embedding": [r["embedding"] for r in ROWS]})
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=6)
    check(read(tmp_path / "in.parquet", "parquet"))
    np.save(tmp_path / "in.npy", np.asarray([r["embedding"] for r in ROWS], np.float32))
    out = read(tmp_path / "in.npy", "npy")
    assert out["ids"] == [f"v{i}" for i in range(len(ROWS))]  # row numbers, in order
    out["ids"] = [r["id"] for r in ROWS]
    check(out, with_columns=False)


def test_bad_sources_are_named(local_ray, tmp_path):
    with pytest.raises(ValueError, match="--format"):
        source_format(str(tmp_path / "data.csv"), None)
    assert source_format("x.ndjson", None) == "jsonl" and source_format("x.bin", "npy") == "npy"
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "embedding": [1, 2]}\n{"id": "b", "embedding": [1]}\n')
    with pytest.raises(Exception, match="embeddings of different lengths"):
        read(tmp_path / "bad.jsonl", "jsonl")
    (tmp_path / "noid.jsonl").write_text('{"document": "x"}\n')
    with pytest.raises(Exception, match='a record needs a string "id"'):
        read(tmp_path / "noid.jsonl", "jsonl")
