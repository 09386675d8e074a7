"""Serves the suite's protocol steps for Chroma, inside Chroma's own virtualenv.

    <venv-chroma>/bin/python benchmarks/suite/chroma_worker.py JOB.json

JOB.json (written by ``systems.ChromaDriver``): ``mode`` ("embedded": ``PersistentClient``;
"server": ``chroma run --path ... --port ...`` as a subprocess and ``HttpClient``, one per
client thread), ``dir`` (holding data.npy, queries.npy, truth.npy, ftruth-*.npy), ``config``
(measure.Session's) and ``hnsw`` (Chroma's configuration).

Then one JSON command per line on stdin, ``{"op": ..., "params": {...}}``: a
``measure.Session`` operation, ``close`` (server: memory, clean stop, restart to the first
answered query) or ``exit``. Each answer is one line on stdout starting with ``@@`` (other
lines are progress). Everything is timed here, so the exchange of data is never measured.
Only numpy, chromadb and benchmarks/suite/measure.py are imported.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.suite.measure import ChromaShapedAdapter, Session, where_bucket_lt  # noqa: E402

import chromadb  # noqa: E402
from chromadb.config import Settings  # noqa: E402



def settings() -> Settings:
    """A fresh Settings each time: chromadb writes the server's port into the object it is
    given, and then refuses an HttpClient on another port with the same object."""
    return Settings(anonymized_telemetry=False)


def log(line: str) -> None:
    print(line, flush=True)


def rss(pid: int) -> int | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChromaServer:
    def __init__(self, path: Path) -> None:
        self.path, self.port = path, free_port()
        chroma = Path(sys.executable).with_name("chroma")
        self.log_file = open(path.parent / "chroma-server.log", "ab")
        self.proc = subprocess.Popen([str(chroma), "run", "--path", str(path), "--port", str(self.port)],
                                     stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        url = f"http://127.0.0.1:{self.port}/api/v2/heartbeat"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:  # not up yet
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("chroma run did not start; see chroma-server.log")
            time.sleep(0.05)

    def client(self):
        return chromadb.HttpClient(host="127.0.0.1", port=self.port, settings=settings())

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class ChromaAdapter(ChromaShapedAdapter):
    def __init__(self, mode: str, workdir: Path, hnsw: dict) -> None:
        self.mode = mode
        self.server = None
        self.rss_idle = None
        if mode == "server":
            self.server = ChromaServer(workdir / "db")
            time.sleep(0.5)
            self.rss_idle = rss(self.server.proc.pid)
            client = self.server.client()
        else:
            client = chromadb.PersistentClient(path=str(workdir / "db"), settings=settings())
        self.client = client
        self.col = client.create_collection("bench", configuration={"hnsw": hnsw}, embedding_function=None)
        self.configuration = self.col.configuration_json.get("hnsw") if hasattr(self.col, "configuration_json") \
            else None

    def searcher(self):
        # Chroma's HttpClient: one per client thread; embedded: the shared collection
        col = self.server.client().get_collection("bench", embedding_function=None) if self.server else self.col
        return self.search_on(col)

    def count_where(self, t: int) -> int:  # Chroma's count() takes no filter
        return len(self.col.get(where=where_bucket_lt(t), include=[])["ids"])

    explain = None


def reply(out: dict) -> None:
    print("@@" + json.dumps(out), flush=True)


def close(adapter: ChromaAdapter, queries: np.ndarray, k: int) -> dict:
    """The server's memory after the run, then a clean stop and the restart to the first
    answered query."""
    if adapter.server is None:
        return {}
    out = {"rss_loaded": rss(adapter.server.proc.pid), "rss_idle": adapter.rss_idle}
    adapter.server.stop()
    started = time.perf_counter()
    adapter.server = ChromaServer(adapter.server.path)
    col = adapter.server.client().get_collection("bench", embedding_function=None)
    col.query(query_embeddings=queries[:1], n_results=k, include=[])
    out["restart_s"] = time.perf_counter() - started
    out["rss_restarted"] = rss(adapter.server.proc.pid)
    log(f"  restart {out['restart_s']:.2f} s; server RSS {out['rss_loaded'] / 2**20:,.0f} MiB after the run, "
        f"{out['rss_restarted'] / 2**20:,.0f} MiB after restart")
    return out


def main() -> int:
    job = json.loads(Path(sys.argv[1]).read_text())
    workdir = Path(job["dir"])
    data = np.load(workdir / "data.npy")
    queries = np.load(workdir / "queries.npy")
    truth = np.load(workdir / "truth.npy")
    config = job["config"]
    filtered = {name: np.load(workdir / f"ftruth-{name.replace('%', 'pct')}.npy") for name in config["filters"]}
    adapter = ChromaAdapter(job["mode"], workdir, job["hnsw"])
    try:
        # the server's work is in its process; embedded Chroma's in this one (its threads)
        pids = [adapter.server.proc.pid] if adapter.server is not None else [os.getpid()]
        session = Session(adapter, data, queries, truth, filtered, config, pids, log)
        reply({"chromadb": chromadb.__version__, "hnsw_configuration": adapter.configuration,
               "rss_idle": adapter.rss_idle})
        for line in sys.stdin:
            command = json.loads(line)
            if command["op"] == "exit":
                break
            try:
                if command["op"] == "close":
                    reply(close(adapter, queries, config["k"]))
                else:
                    reply(session.call(command["op"], command.get("params")))
            except Exception as exc:  # noqa: BLE001 - the suite records it and drops this system
                reply({"error": f"{type(exc).__name__}: {str(exc)[:300]}"})
    finally:
        if adapter.server is not None:
            adapter.server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
