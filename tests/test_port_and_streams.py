"""Issue 11, server side: one port per server, no stall from open health streams, and
start-up errors that name the port that failed. Real `vectord serve` processes throughout."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

import vectord
from serverproc import start_server

KEY = "port-and-streams-test-key-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(data_dir, *flags: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs `vectord serve` to its end (for starts that must fail)."""
    return subprocess.run([sys.executable, "-m", "vectord", "serve", "--data-dir", str(data_dir),
                           "--log-level", "ERROR", *flags],
                          capture_output=True, text=True, timeout=timeout)


def test_a_second_server_refuses_a_port_that_one_already_holds(tmp_path):
    """gRPC sets SO_REUSEPORT by default: the second server used to start, print
    "listening", and clients reached either data directory at random."""
    first = start_server(tmp_path / "a")
    port = first.address.rsplit(":", 1)[1]
    try:
        started = time.monotonic()
        second = _serve(tmp_path / "b", "--port", port)
        took = time.monotonic() - started
        assert second.returncode == 1, second
        assert "listening" not in second.stdout
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr  # one line, no traceback, no gRPC C-core noise
        assert f"cannot listen on 127.0.0.1:{port}" in lines[0] and "in use" in lines[0]
        assert took < 30
        # and every client still reaches the first server's data directory
        with vectord.Client(first.address) as client:
            client.create_collection("only-here", dim=2)
            for _ in range(20):
                with vectord.Client(first.address) as other:
                    assert [c.name for c in other.list_collections()] == ["only-here"]
    finally:
        assert first.terminate() == 0, first.log()


def test_a_metrics_port_in_use_is_named(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve(tmp_path / "data", "--port", "0", "--metrics-port", str(port))
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"--metrics-port {port}" in lines[0] and f"127.0.0.1:{port}" in lines[0] and "in use" in lines[0]


def test_open_health_watches_do_not_stall_a_server_with_keys_and_metrics(tmp_path):
    """The metrics interceptor wrapped Health.Watch (non-blocking in gRPC) in a generator,
    so each open Watch held one of the 16 default worker threads; health needs no key."""
    metrics_port = _free_port()
    proc = start_server(tmp_path / "data", "--metrics-port", str(metrics_port), env={"VECTORD_API_KEY": KEY})
    channel = grpc.insecure_channel(proc.address)
    watches = []
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        watches = [stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=120)
                   for _ in range(24)]  # more than the 16 default workers, all open at once
        assert next(watches[0]).status == health_pb2.HealthCheckResponse.SERVING
        time.sleep(1)  # the others reach the server (before the fix: 16 of them took every worker)
        with vectord.Client(proc.address, api_key=KEY, timeout=10) as client:
            started = time.monotonic()
            client.create_collection("still-served", dim=2)
            assert [c.name for c in client.list_collections()] == ["still-served"]
            assert time.monotonic() - started < 5
        for watch in watches[1:]:  # and every stream got its answer, none queued behind another
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        for watch in watches:
            watch.cancel()
        # the streams are still counted, each with the way it ended
        deadline, watched = time.monotonic() + 10, 0.0
        while watched < len(watches) and time.monotonic() < deadline:
            text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
            watched = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                          if line.startswith('vectord_requests_total{') and "Health/Watch" in line
                          and 'code="CANCELLED"' in line)
            time.sleep(0.2)
        assert watched == len(watches)
    finally:
        for watch in watches:
            watch.cancel()
        channel.close()
        assert proc.terminate() == 0, proc.log()
