"""The server process: health, reflection, graceful stop, single owner, settings, DATA_LOSS."""

from __future__ import annotations

import subprocess
import sys
import threading

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import vectord
from serverproc import start_server


def test_health_and_reflection_list_the_services(server):
    channel = grpc.insecure_channel(server.address)
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "vectord.v1.Records", "vectord.v1.Collections", "vectord.v1.Admin"):
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"vectord.v1.Records", "vectord.v1.Collections", "vectord.v1.Admin",
            "grpc.health.v1.Health"} <= services
    channel.close()


def test_server_info_reports_equal_limits(server):
    from vectord import limits

    with vectord.Client(server.address) as client:
        info = client.server_info()
    assert info["max_message_bytes"] == limits.MAX_MESSAGE_BYTES
    assert info["version"] == vectord.__version__


def test_sigterm_drains_checkpoints_and_exits_zero(tmp_path):
    proc = start_server(tmp_path / "d", "--grace-period-s", "20")
    client = vectord.Client(proc.address)
    col = client.create_collection("s", dim=16)
    col.add(ids=["first"], embeddings=np.ones((1, 16)))
    channel = grpc.insecure_channel(proc.address)
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=30)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    n = 15_000
    vectors = np.random.default_rng(0).random((n, 16), dtype=np.float32)
    outcome = {}

    def big_write():
        try:
            outcome["result"] = col.add(ids=[f"r{i}" for i in range(n)], embeddings=vectors)
        except vectord.VectordError as exc:
            outcome["error"] = exc

    writer = threading.Thread(target=big_write)
    writer.start()
    import time

    time.sleep(0.3)
    proc.proc.send_signal(15)
    assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
    writer.join(60)
    assert proc.proc.wait(60) == 0, proc.log()
    assert "stopped cleanly" in proc.log()
    channel.close()
    client.close()
    for wal in (tmp_path / "d" / "collections").glob("*/wal.log"):
        assert wal.stat().st_size == 0, "the final checkpoint truncates the log"
    proc2 = start_server(tmp_path / "d")
    try:
        assert "replayed 0 log records" in proc2.log()
        with vectord.Client(proc2.address) as c:
            expected = 1 + (n if "result" in outcome else 0)
            assert c.get_collection("s").count() == expected, outcome
    finally:
        assert proc2.terminate() == 0


def test_acknowledged_writes_survive_kill_9(tmp_path):
    proc = start_server(tmp_path / "d")
    with vectord.Client(proc.address) as client:
        col = client.create_collection("k", dim=4)
        for i in range(50):
            col.upsert(ids=[f"r{i % 10}"], embeddings=[[1, i, 0, 1]], metadatas=[{"i": i}])
    proc.kill()
    proc = start_server(tmp_path / "d")
    try:
        with vectord.Client(proc.address) as client:
            got = client.get_collection("k").get(include=["embeddings", "metadatas"])
            assert got["ids"] == [f"r{i}" for i in range(10)] or sorted(got["ids"]) == [f"r{i}" for i in range(10)]
            by_id = dict(zip(got["ids"], got["metadatas"]))
            assert all(by_id[f"r{i}"] == {"i": 40 + i} for i in range(10))
    finally:
        proc.terminate()


def test_a_second_server_on_the_same_directory_fails_fast(tmp_path):
    proc = start_server(tmp_path / "d")
    try:
        second = subprocess.run([sys.executable, "-m", "vectord", "serve", "--data-dir", str(tmp_path / "d"),
                                 "--port", "0"], capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert "in use by another vectord process" in second.stderr
        with pytest.raises(vectord.DataDirectoryLockedError):
            vectord.Client(path=str(tmp_path / "d"))
    finally:
        proc.terminate()


def test_damaged_collection_is_data_loss_while_others_serve(tmp_path):
    proc = start_server(tmp_path / "d")
    with vectord.Client(proc.address) as client:
        for name in ("hurt", "fine"):
            client.create_collection(name, dim=4).add(ids=["a", "b"], embeddings=[[1, 0, 0, 0], [0, 1, 0, 0]])
    assert proc.terminate() == 0
    from vectord.storage.checkpoint import read_manifest

    for directory in (tmp_path / "d" / "collections").iterdir():
        if read_manifest(directory)["config"]["name"] == "hurt":
            vectors = next(directory.glob("gen-*")) / "vectors.npy"
            data = bytearray(vectors.read_bytes())
            data[-3] ^= 0xFF
            vectors.write_bytes(bytes(data))
    proc = start_server(tmp_path / "d")
    try:
        with vectord.Client(proc.address) as client:
            with pytest.raises(vectord.DataLossError, match="hurt"):
                client.get_collection("hurt")
            assert client.get_collection("fine").query([[1, 0, 0, 0]], n_results=1)["ids"] == [["a"]]
    finally:
        proc.terminate()


def test_settings_defaults_environment_flags(monkeypatch):
    from vectord.server.settings import Settings

    assert Settings.load().port == 50051
    monkeypatch.setenv("VECTORD_PORT", "6000")
    monkeypatch.setenv("VECTORD_HOST", "0.0.0.0")
    assert Settings.load().port == 6000
    settings = Settings.load(port=7000, host=None)
    assert (settings.port, settings.host) == (7000, "0.0.0.0")
    monkeypatch.setenv("VECTORD_PORT", "not-a-port")
    with pytest.raises(Exception, match="port"):
        Settings.load()
