"""Operations: config file < environment < flags, --print-config, JSON logs, Prometheus metrics."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

import vectord
from serverproc import start_server

KEY = "metrics-test-key-123"


def _serve(*args, env=None):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VECTORD_")}
    return subprocess.run([sys.executable, "-m", "vectord", "serve", *args], capture_output=True, text=True,
                          env={**clean, **(env or {})}, timeout=60)


def _config(text: str) -> dict[str, str]:
    return dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line and not line.startswith("#"))


def test_config_file_environment_and_flags_in_that_order(tmp_path):
    config = tmp_path / "vectord.toml"
    config.write_text(f'data_dir = "{tmp_path / "from-file"}"\nport = 6001\nlog_level = "DEBUG"\n'
                      'metrics_port = 9999\nlog_format = "json"\nmax_workers = 3\n')
    result = _serve("--config", str(config), "--log-level", "WARNING", "--print-config",
                    env={"VECTORD_PORT": "6002", "VECTORD_LOG_LEVEL": "ERROR", "VECTORD_API_KEY": "super-secret"})
    assert result.returncode == 0, result.stderr
    values = _config(result.stdout)
    assert values["port"] == "6002"  # environment over file
    assert values["log_level"] == '"WARNING"'  # flag over environment and file
    assert values["metrics_port"] == "9999" and values["max_workers"] == "3" and values["log_format"] == '"json"'
    assert values["data_dir"] == json.dumps(str(tmp_path / "from-file"))
    assert values["host"] == '"127.0.0.1"' and values["grace_period_s"] == "10.0"  # defaults
    assert values["api_key"] == '"**********"' and "super-secret" not in result.stdout  # masked
    assert not (tmp_path / "from-file").exists()  # --print-config starts nothing
    # VECTORD_CONFIG names the file too; a [vectord] table works as well
    config.write_text('[vectord]\nport = 6003\n')
    result = _serve("--print-config", env={"VECTORD_CONFIG": str(config)})
    assert result.returncode == 0 and _config(result.stdout)["port"] == "6003"


@pytest.mark.parametrize("content, message", [
    ("prot = 1\n", "prot"),  # a typo is named, not ignored
    ("port = 'x'\n", "port"),
    ("port = [\n", "not valid TOML"),
])
def test_bad_config_files_are_refused_with_the_key_named(tmp_path, content, message):
    config = tmp_path / "bad.toml"
    config.write_text(content)
    result = _serve("--config", str(config), "--print-config")
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert _serve("--config", str(tmp_path / "missing.toml")).returncode == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def _value(text: str, name: str, **labels) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not in metrics")


def test_json_logs_and_prometheus_metrics(tmp_path):
    port = _free_port()
    proc = start_server(tmp_path / "data", "--metrics-port", str(port), "--log-format", "json",
                        env={"VECTORD_API_KEY": KEY})
    try:
        with vectord.Client(proc.address, api_key=KEY) as client:
            col = client.create_collection("m", dim=4)
            col.add(ids=[str(i) for i in range(50)], embeddings=np.random.default_rng(0).random((50, 4)))
            col.delete(ids=["1", "2"])
            col.query(query_embeddings=[[1, 0, 0, 0]], n_results=3)
            with pytest.raises(vectord.NotFoundError):
                client.get_collection("nope")
            before = _scrape(port)
            client.checkpoint("m")
        with vectord.Client(proc.address) as anonymous, pytest.raises(vectord.UnauthenticatedError):
            anonymous.list_collections()
        after = _scrape(port)
    finally:
        assert proc.terminate() == 0
    create = "/vectord.v1.Collections/CreateCollection"
    # requests and latency by method and final status, auth refusals included
    assert _value(after, "vectord_requests_total", method=create, code="OK") == 1
    assert _value(after, "vectord_requests_total", method="/vectord.v1.Collections/GetCollection",
                  code="NOT_FOUND") == 1
    assert _value(after, "vectord_requests_total", method="/vectord.v1.Collections/ListCollections",
                  code="UNAUTHENTICATED") == 1
    # the SDK queries over Records.QueryStream: each answer counts as a call of its own
    assert _value(after, "vectord_request_duration_seconds_count", method="/vectord.v1.Records/QueryStream",
                  code="OK") == 1
    assert _value(after, "vectord_request_duration_seconds_bucket", method=create, code="OK", le="+Inf") == 1
    # engine state read at scrape time
    assert _value(after, "vectord_collection_records", collection="m") == 48
    assert _value(before, "vectord_collection_deleted_slots", collection="m") == 2
    assert _value(before, "vectord_collection_wal_bytes", collection="m") > 0
    assert _value(after, "vectord_collection_wal_bytes", collection="m") == 0  # truncated by the checkpoint
    assert _value(after, "vectord_collection_bytes", collection="m") > 50 * 4 * 4
    assert _value(after, "vectord_checkpoint_duration_seconds_count", collection="m") >= 1
    assert _value(after, "vectord_checkpoint_duration_seconds_sum", collection="m") > 0
    assert _value(after, "vectord_collection_recovery_seconds", collection="m") >= 0
    assert _value(after, "vectord_recovery_seconds") >= 0
    assert _value(after, "vectord_collections") == 1
    # every log line is one JSON object with time, level, logger and message; no key leaks
    log = proc.log()
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any("listening" in line["message"] for line in lines)
    assert KEY not in log


def test_metrics_are_off_by_default_and_encoder_batches_are_measured(tmp_path):
    from vectord.server.metrics import MeteredEncoders, Metrics

    class Model:
        name, dim, sha256 = "fake", 2, "0" * 64

        def embed(self, texts):
            return np.zeros((len(texts), 2), np.float32)

    class Registry:
        default = "fake"

        def names(self):
            return ["fake"]

        def get(self, name):
            return Model()

    metrics = Metrics()
    encoders = MeteredEncoders(Registry(), metrics)
    model = encoders.get("default")
    assert model.embed(["a", "b", "c"]).shape == (3, 2) and model.dim == 2 and encoders.default == "fake"
    model.embed(["d"])
    assert metrics.registry.get_sample_value("vectord_encoder_batch_size_sum", {"model": "fake"}) == 4
    assert metrics.registry.get_sample_value("vectord_encoder_batch_size_count", {"model": "fake"}) == 2
    # the default: no metrics listener at all
    values = _config(_serve("--print-config").stdout)
    assert "metrics_port" not in values


def test_forced_compaction_writes_a_new_generation(tmp_path):
    """`vectord compact` with nothing new in the log: the compacted checkpoint gets a new
    generation (never rewrites the one the MANIFEST names), and reopening finds the records."""
    from vectord.storage import Database, Tuning
    from vectord.storage.checkpoint import read_manifest

    # a graph: no automatic compaction; seal_rows=0: the tail's generation (a sealed segment's
    # compaction: the test below)
    tuning = Tuning(exact_threshold=16, index_threads=1, seal_rows=0)
    with Database(tmp_path / "d", tuning=tuning) as db:
        col = db.create_collection("c", dim=4)
        col.add([str(i) for i in range(100)], np.random.default_rng(1).random((100, 4), dtype=np.float32))
        col.delete([str(i) for i in range(10)])
        assert db.checkpoint("c") == 1
        assert col.stats()["deleted_slots"] == 10  # below the threshold: kept
        generation = read_manifest(col.path)["generation"]
        assert db.checkpoint("c") == 0  # nothing new
        assert db.checkpoint("c", compact=True) == 1
        stats = col.stats()
        assert stats["deleted_slots"] == 0 and stats["slots"] == 90 and stats["compacted_slots_total"] == 10
        assert read_manifest(col.path)["generation"] != generation
        assert db.checkpoint("c", compact=True) == 0  # nothing left to compact
    with Database(tmp_path / "d", tuning=tuning) as db:
        assert db.get_collection("c").count() == 90


def test_forced_compaction_of_a_sealed_segment_writes_a_new_segment_and_counts_its_slots(tmp_path):
    """The same on a collection that seals: `vectord compact` rewrites the segment holding the
    deleted records. Regression (found with sealing on): the slots a segment's compaction or
    merge (or a seal) dropped were not counted, so `vectord compact` printed "compacted 0
    deleted slot(s)" and the vectord_compacted_slots metric missed them."""
    from vectord.storage import Database, Tuning

    tuning = Tuning(exact_threshold=16, index_threads=1, seal_rows=64)
    with Database(tmp_path / "d", tuning=tuning) as db:
        col = db.create_collection("c", dim=4)
        col.add([str(i) for i in range(100)], np.random.default_rng(1).random((100, 4), dtype=np.float32))
        col.delete(["99"])  # in the tail: not sealed, compacted away by the seal
        assert db.checkpoint("c") == 1
        (segment,) = col.sealed
        assert col.stats()["compacted_slots_total"] == 1 and segment.slots == 99
        col.delete([str(i) for i in range(10)])  # in the segment: its delete bitmap
        assert db.checkpoint("c") == 1
        assert col.stats()["deleted_slots"] == 10 and col.sealed == (segment,)  # below the threshold: kept
        assert db.checkpoint("c") == 0  # nothing new
        assert db.checkpoint("c", compact=True) == 1
        stats = col.stats()
        assert stats["deleted_slots"] == 0 and stats["slots"] == 89 and stats["compacted_slots_total"] == 11
        assert [s.name for s in col.sealed] != [segment.name]
        assert db.checkpoint("c", compact=True) == 0  # nothing left to compact
    with Database(tmp_path / "d", tuning=tuning) as db:
        assert db.get_collection("c").count() == 89
