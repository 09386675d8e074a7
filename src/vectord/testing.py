"""Throwaway vectord servers for tests: yours and ours.

With vectord installed, pytest picks up two fixtures (this module is a pytest plugin):

- ``vectord_server``: a real `vectord serve` process on a free port with a temporary data
  directory, for the test module; ``.address`` is ``"127.0.0.1:<port>"``.
- ``vectord_client``: a ``vectord.Client`` connected to it.

Example:
    def test_search(vectord_client):
        docs = vectord_client.create_collection("docs", dim=3)
        docs.add(ids=["a"], embeddings=[[1, 0, 0]])
        assert docs.count() == 1

The server runs in a subprocess (never a fork of the test process: gRPC forbids forking
after it starts) and stops with SIGTERM at the end of the module.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class ServerProcess:
    """A running `vectord serve`."""

    proc: subprocess.Popen
    address: str
    data_dir: Path
    stderr_path: Path

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM and wait: the graceful path. Returns the exit code.

        A server still running after ``timeout`` is asked for its threads' stacks, killed,
        and reported (``AssertionError`` with the end of its log, the stacks included).
        """
        return stop_or_explain(self.proc, timeout, self.log)

    def kill(self) -> None:
        """SIGKILL: the crash path."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)

    def log(self) -> str:
        """What the server logged (stderr)."""
        return self.stderr_path.read_text(errors="replace")


def stop_or_explain(proc: subprocess.Popen, timeout: float = 30, log=None) -> int:
    """SIGTERM ``proc`` (a `vectord serve`) and wait for its exit code.

    Should it still run after ``timeout``, SIGUSR1 makes it write every thread's stack to
    its stderr (server/cli.py), then it is killed and an ``AssertionError`` carries the
    end of ``log()`` (its stderr), so a stop that hangs says where.
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(2)
        proc.kill()
        proc.wait(30)
        tail = log()[-20000:] if log is not None else ""
        raise AssertionError(f"vectord serve did not stop within {timeout:g} s of SIGTERM; "
                             f"its log, with every thread's stack at the end:\n{tail}") from None


def start_server(data_dir: str | Path, *extra: str, env: dict[str, str] | None = None,
                 timeout: float = 60) -> ServerProcess:
    """Launches `python -m vectord serve --port 0 ...` and waits for its listening line.

    Args:
        data_dir: the data directory (created if missing).
        extra: more command-line flags, e.g. ``"--api-keys-file", "keys.txt"``.
        env: environment variables to add.
        timeout: seconds to wait for the server to listen.
    """
    data_dir = Path(data_dir)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    stderr_path = data_dir.parent / f"{data_dir.name}-server-{time.monotonic_ns()}.log"
    stderr = open(stderr_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vectord", "serve", "--data-dir", str(data_dir), "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=stderr, env={**os.environ, **(env or {})}, text=True)
    stderr.close()
    assert proc.stdout is not None  # stdout=PIPE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("vectord listening on "):
            return ServerProcess(proc, line.rsplit(" ", 1)[1].strip(), data_dir, stderr_path)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"vectord did not start (exit {proc.poll()}): {stderr_path.read_text()}")


@pytest.fixture(scope="module")
def vectord_server(tmp_path_factory):
    """A throwaway `vectord serve` for the test module."""
    server = start_server(tmp_path_factory.mktemp("vectord") / "data")
    yield server
    server.terminate()


@pytest.fixture
def vectord_client(vectord_server):
    """A ``vectord.Client`` connected to ``vectord_server``; collections it leaves are deleted."""
    import vectord

    client = vectord.Client(vectord_server.address)
    yield client
    for collection in client.list_collections():
        client.delete_collection(collection.name)
    client.close()
