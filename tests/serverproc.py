"""Start and stop real `vectord serve` processes for tests (subprocess, never fork)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    address: str
    data_dir: Path
    stderr_path: Path

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM and wait: the graceful path."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: the crash path."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def start_server(data_dir: Path, *extra: str, env: dict[str, str] | None = None,
                 timeout: float = 60) -> ServerProcess:
    """Launches `python -m vectord serve --port 0` and waits for its listening line."""
    data_dir = Path(data_dir)
    stderr_path = data_dir.parent / f"{data_dir.name}-server-{time.monotonic_ns()}.log"
    full_env = {**os.environ, **(env or {})}
    stderr = open(stderr_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vectord", "serve", "--data-dir", str(data_dir), "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=stderr, env=full_env, text=True)
    stderr.close()
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("vectord listening on "):
            address = line.rsplit(" ", 1)[1].strip()
            return ServerProcess(proc, address, data_dir, stderr_path)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"server did not start (exit {proc.poll()}): {stderr_path.read_text()}")
