"""What docs/running-as-a-service.md promises: the systemd unit, the signals, the files."""

from __future__ import annotations

import configparser
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import vectord
from vectord.testing import start_server, stop_or_explain
from vectord.v1 import admin_pb2, admin_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "examples" / "systemd" / "vectord.service"
DOC = ROOT / "docs" / "running-as-a-service.md"


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in systemd
    parser.read_string(UNIT.read_text())
    return parser


def test_systemd_unit_runs_vectord_serve_with_flags_it_accepts():
    service = _unit()["Service"]
    command = service["ExecStart"].split()
    assert command[0].endswith("/vectord") and command[1] == "serve"
    help_text = subprocess.run([sys.executable, "-m", "vectord", "serve", "--help"],
                               capture_output=True, text=True, check=True).stdout
    for flag in (arg for arg in command if arg.startswith("--")):
        assert flag in help_text, f"{flag} in the unit is not a `vectord serve` flag"
    data_dir = command[command.index("--data-dir") + 1]
    assert data_dir == f"/var/lib/{service['StateDirectory']}"
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > 10  # more than the default grace period (10 s)
    assert service["User"] != "root"


def test_systemd_unit_verifies():
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    result = subprocess.run(["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "vectord.service" in line and "is not executable" not in line]  # /opt/vectord absent here
    assert not problems, "\n".join(problems)


def test_the_documented_settings_exist():
    from vectord.server.settings import Settings

    names = set(re.findall(r"VECTORD_([A-Z_]+)", DOC.read_text() + UNIT.read_text()))
    unknown = {n for n in names if n.lower() not in Settings.model_fields and n != "CONFIG"}
    assert not unknown, f"documented but not settings: {sorted(unknown)}"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_gracefully_with_a_final_checkpoint(tmp_path, signum):
    server = start_server(tmp_path / "data")
    with vectord.Client(server.address) as client:
        docs = client.create_collection("docs", dim=2)
        docs.add(ids=["a", "b"], embeddings=[[1, 0], [0, 1]])
    server.proc.send_signal(signum)
    assert server.proc.wait(60) == 0, server.log()
    log = server.log()
    assert "shutting down: health NOT_SERVING" in log and "stopped cleanly" in log
    assert "checkpoint gen-" in log
    # The layout the doc describes; after the final checkpoint the log holds nothing to replay.
    data = tmp_path / "data"
    assert (data / "LOCK").exists()
    (collection,) = (data / "collections").iterdir()
    assert (collection / "MANIFEST").is_file()
    (generation,) = collection.glob("gen-*")
    assert {"vectors.npy", "records.msgpack"} <= {p.name for p in generation.iterdir()}
    again = start_server(data)
    try:
        assert "replayed 0 log records" in _wait_for_log(again, "recovered")
        with vectord.Client(again.address) as client:
            assert client.get_collection("docs").count() == 2
    finally:
        assert again.terminate() == 0


def test_sigusr1_writes_every_threads_stack_and_the_server_serves_on(tmp_path):
    server = start_server(tmp_path / "data")
    try:
        server.proc.send_signal(signal.SIGUSR1)
        # faulthandler writes a thread at a time: wait for the main thread's frames, not the
        # first header (a read in between saw one thread of several: it failed CI once)
        log = _wait_for_log(server, "cli.py")
        assert "Thread 0x" in log and "most recent call first" in log
        assert 'File "' in log and "cli.py" in log  # the main thread, waiting in serve()
        with vectord.Client(server.address) as client:
            assert client.list_collections() == []
    finally:
        assert server.terminate() == 0


def test_a_server_that_does_not_stop_is_killed_and_its_stacks_reported(tmp_path):
    stuck = ("import faulthandler, signal, time\n"
             "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
             "faulthandler.register(signal.SIGUSR1, all_threads=True)\n"
             "print('ready', flush=True)\n"
             "def waiting_forever():\n    time.sleep(600)\n"
             "waiting_forever()\n")
    stderr = tmp_path / "stderr.log"
    proc = subprocess.Popen([sys.executable, "-c", stuck], stdout=subprocess.PIPE, stderr=stderr.open("w"), text=True)
    assert proc.stdout.readline() == "ready\n"
    with pytest.raises(AssertionError, match="did not stop within 1 s of SIGTERM") as caught:
        stop_or_explain(proc, 1, stderr.read_text)
    assert "waiting_forever" in str(caught.value)
    assert proc.poll() is not None


def _wait_for_log(server, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in server.log():
            break
        time.sleep(0.1)
    return server.log()


def test_a_second_signal_forces_the_stop(tmp_path):
    """During the grace period health is NOT_SERVING; a second SIGTERM ends the wait."""
    server = start_server(tmp_path / "data", "--grace-period-s", "120")
    channel = grpc.insecure_channel(server.address)
    release = threading.Event()

    def never_finishing_upload():  # keeps a call in flight until released
        release.wait(60)
        return
        yield

    try:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=60)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        in_flight = admin_pb2_grpc.AdminStub(channel).RestoreSnapshot.future(never_finishing_upload(), timeout=60)
        time.sleep(1)
        if in_flight.done():
            pytest.skip(f"no long-running call to hold the server: {in_flight.exception()}")
        server.proc.send_signal(signal.SIGTERM)
        statuses = []
        try:
            for update in watch:
                statuses.append(update.status)
                if update.status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    break
        except grpc.RpcError:
            pass
        assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses
        time.sleep(1)
        assert server.proc.poll() is None, "the first signal should wait for the call in flight"
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0, server.log()
        assert time.monotonic() - started < 30  # far less than the 120 s grace period
        assert "second signal" in server.log() and "stopped cleanly" in server.log()
    finally:
        release.set()
        channel.close()
        if server.proc.poll() is None:
            server.kill()
