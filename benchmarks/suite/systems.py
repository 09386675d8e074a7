"""The systems under test, opened side by side so that the suite can run their steps in rounds
(rounds.py): each ``open_*`` returns a system with ``call(op, **params)`` (a
``measure.Session`` operation) and ``close()`` (figures taken at the end: memory, restart).

vectord remote and embedded and raw hnswlib run in this process (vectord remote's server in
a subprocess, as are the servers of the bare-gRPC floor and the gRPC + hnswlib ceiling,
floor.py); Chroma (embedded and its server) runs in ``chroma_worker.py`` under Chroma's own
virtualenv (chromadb pins clash with ours), driven by JSON lines: see ``ChromaDriver``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .measure import ChromaShapedAdapter, Session, where_bucket_lt

ROOT = Path(__file__).resolve().parents[2]
M, EF_CONSTRUCTION, EF, K = 16, 100, 100, 10
HNSW = {"m": M, "ef_construction": EF_CONSTRUCTION, "ef_search": EF}


def vm_rss_bytes(pid: int) -> int | None:
    """Resident memory (VmRSS) of a process, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def hnsw_baseline_bytes(n: int, dim: int, m: int = M) -> int:
    """Raw float32 vectors plus hnswlib's graph, as hnswlib lays them out: per element the
    vector, 2M level-0 links + a count, the label; upper levels (about 1/(M-1) of a level per
    element on average) M links + a count each."""
    level0 = dim * 4 + (2 * m * 4 + 4) + 8
    upper = (m * 4 + 4) / (m - 1)
    return int(n * (level0 + upper))


#: Run in a fresh process: the anonymous memory (bytes) raw hnswlib takes to hold the given
#: graph files, each loaded with its slot count as vectord loads it (argv: dim, then path=slots).
_HNSWLIB_RSS = """
import re, sys
from pathlib import Path
import hnswlib
def anon():
    return int(re.search(r"RssAnon:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1)) * 1024
dim, before, held = int(sys.argv[1]), anon(), []
for arg in sys.argv[2:]:
    path, slots = arg.rsplit("=", 1)
    held.append(hnswlib.Index(space="cosine", dim=dim))
    held[-1].load_index(path, max_elements=int(slots))
loaded = anon()
for arg in sys.argv[2:]:  # what a graph costs whatever its size: an index of 16 slots per file
    held.append(hnswlib.Index(space="cosine", dim=dim))
    held[-1].init_index(max_elements=16, M=16, ef_construction=100)
print(loaded - before, anon() - loaded)
"""


def hnswlib_rss_bytes(data_dir: Path, dim: int) -> tuple[int, int] | None:
    """What raw hnswlib itself holds for a data directory's graphs: every graph file its
    collections' MANIFESTs list, loaded in a fresh process. Beyond hnsw_baseline_bytes'
    vectors and links, hnswlib keeps a mutex, a label-map entry and a level per element:
    memory raw hnswlib pays as much as vectord does, reported apart from vectord's own.

    Returns (held, fixed): the anonymous bytes the loaded graphs take, and of them what as
    many empty indexes take (65,536 label-operation mutexes each, 2.5 MiB, whatever the size)."""
    from vectord.storage.layout import read_manifest

    args = []
    for directory in sorted((data_dir / "collections").iterdir()):
        manifest = read_manifest(directory)
        for entry in [manifest] + list(manifest.get("segments", [])):
            name = entry.get("generation") or entry.get("name")
            if entry.get("index") and name:
                args.append(f"{directory / name / entry['index']['file']}={entry['slots']}")
    if not args:
        return None
    done = subprocess.run([sys.executable, "-c", _HNSWLIB_RSS, str(dim), *args], capture_output=True, text=True)
    if done.returncode != 0:
        return None
    held, fixed = map(int, done.stdout.split())
    return held, fixed


# ---------------------------------------------------------------------- raw hnswlib
class HnswlibAdapter:
    """Raw hnswlib in-process: the floor every other system is compared with."""

    def __init__(self, dim: int, capacity: int) -> None:
        import hnswlib

        self.index = hnswlib.Index(space="cosine", dim=dim)
        self.index.init_index(max_elements=capacity, M=M, ef_construction=EF_CONSTRUCTION, random_seed=100)

    def ingest(self, ids, vectors, metadatas) -> None:  # ids as int labels; hnswlib has no metadata
        self.index.add_items(vectors, np.arange(int(ids[0]), int(ids[0]) + len(ids)))

    def after_ingest(self) -> None:
        self.index.set_ef(EF)

    def searcher(self) -> Callable:
        index = self.index

        def search(q, k, t):
            if t is None:
                return index.knn_query(q, k=k, num_threads=1)[0][0].tolist()
            # hnswlib's own filter: a Python call per visited candidate
            try:
                return index.knn_query(q, k=k, num_threads=1, filter=lambda label: label % 1000 < t)[0][0].tolist()
            except RuntimeError:  # fewer than k found ("contiguous 2D array")
                return []
        return search

    def search_batch(self, queries, k):
        return self.index.knn_query(queries, k=k, num_threads=-1)[0]

    @staticmethod
    def batch_labels(labels) -> list[list[int]]:
        return labels.tolist()

    get_where = count_where = explain = None

    def index_file_bytes(self) -> int:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "index.bin")
            self.index.save_index(path)
            return os.path.getsize(path)


# ---------------------------------------------------------------------- vectord
def _plan_text(plan: dict[str, Any]) -> str:
    return (f"{plan['strategy']}, {plan['candidates']:,} cand., ef {plan['ef']}, "
            f"{plan['filter_path']}, {plan['elapsed_ms']:.2f} ms")


class VectordAdapter(ChromaShapedAdapter):
    """A vectord collection through the SDK (remote or embedded: the same calls)."""

    def __init__(self, client, dim: int) -> None:
        self.client = client
        self.col = client.create_collection("bench", dim=dim, metric="cosine", hnsw=HNSW)

    def count_where(self, t: int) -> int:
        return self.col.count(where=where_bucket_lt(t))

    def wait_indexed(self, poll: float = 0.01, limit: float = 600.0) -> None:
        """Returns once the exact tail is empty (every acknowledged record in the graph,
        storage/indexer.py), as a query's plan reports it (``tail``): the background
        indexing an ingest caused is part of its time."""
        probe = np.zeros((1, self.col.dim), np.float32)
        probe[0, 0] = 1.0
        deadline = time.perf_counter() + limit
        while self.col.query(query_embeddings=probe, n_results=1, include=[], explain=True)["plan"].get("tail") \
                and time.perf_counter() < deadline:
            time.sleep(poll)

    def explain(self, q, k, t) -> str:
        return _plan_text(self.col.query(query_embeddings=q, n_results=k, where=where_bucket_lt(t),
                                         include=[], explain=True)["plan"])


def planner_flags(config) -> list[str]:
    """``vectord serve`` flags for the planner constant the suite calibrated (if it did)."""
    cost = config.get("planner_cost_per_ef")
    return ["--planner-cost-per-ef", str(cost)] if cost else []


class LocalSystem:
    """A system measured in this process through a ``Session``; ``on_close`` returns the
    figures taken at the end."""

    def __init__(self, session: Session, on_close: Callable[[], dict[str, Any]] | None = None,
                 info: dict[str, Any] | None = None) -> None:
        self.session, self._on_close, self.info = session, on_close, info or {}

    def call(self, op: str, **params) -> dict[str, Any]:
        return self.session.call(op, params)

    def close(self) -> dict[str, Any]:
        on_close, self._on_close = self._on_close, None
        return on_close() if on_close is not None else {}


def open_vectord_embedded(ds, config, workdir: Path, log) -> LocalSystem:
    import vectord

    client = vectord.Client(path=str(workdir / "vectord-embedded"), timeout=600)
    if config.get("planner_cost_per_ef"):  # as `vectord serve --planner-cost-per-ef` sets it
        client._transport._server.database.tuning.graph_cost_per_ef = config["planner_cost_per_ef"]
    # its indexer runs in this process: an ingest chunk waits for this process to go idle
    session = Session(VectordAdapter(client, ds.dim), ds.data, ds.queries, ds.truth, ds.filtered_truth, config,
                      [os.getpid()], log)
    return LocalSystem(session, lambda: (client.close(), {})[1])


def _first_query_after_start(data_dir: Path, query: np.ndarray, *flags: str) -> tuple[float, Any]:
    """Starts a server on an existing data directory; seconds from process start to the
    first query answered, and the server."""
    import vectord
    from vectord.testing import start_server

    started = time.perf_counter()
    proc = start_server(data_dir, *flags, timeout=900)
    with vectord.Client(proc.address, timeout=900) as client:
        client.get_collection("bench").query(query_embeddings=query[None, :], n_results=K, include=[])
    return time.perf_counter() - started, proc


#: Records in the small collection whose restarted server is the per-record baseline: past
#: Tuning.exact_threshold (4,096), so that it holds a graph as the full one does.
SMALL_N = 5000
#: Restarts whose median RSS a restarted server's memory figure is (one restart's RSS moves
#: by 1-2 MiB with the threads and allocator arenas the start happened to use).
RSS_RESTARTS = 3


def _restarted_rss(data_dir: Path, query: np.ndarray, *flags: str, found: tuple[int, ...] = ()) -> int:
    """Median VmRSS of RSS_RESTARTS servers started on data_dir, each read 0.5 s after its
    first query; ``found``: RSS already read so from restarts the caller made."""
    found = list(found)
    while len(found) < RSS_RESTARTS:
        _, proc = _first_query_after_start(data_dir, query, *flags)
        try:
            time.sleep(0.5)
            found.append(vm_rss_bytes(proc.proc.pid))
        finally:
            proc.terminate(timeout=900)
    return int(np.median(found))


def small_collection_rss(ds, config, workdir: Path, log) -> tuple[int, int]:
    """(RSS, records) of a restarted server whose collection holds the data set's first
    SMALL_N records, ingested as the suite ingests them (``Session.op_ingest``), with its graph.

    The per-record memory figure is the difference to the full collection's restarted server
    over the records between them (report.py): every cost of a collection with a graph that
    does not grow with its records (hnswlib's 65,536 label-operation mutexes, 2.5 MiB per
    graph; code and tables its first search pages in) cancels, as in memory_steady.py."""
    import vectord
    from vectord.testing import start_server

    data_dir, n = workdir / "vectord-small", min(SMALL_N, len(ds.data) // 2)
    proc = start_server(data_dir, *planner_flags(config), timeout=120)
    try:
        with vectord.Client(proc.address, timeout=600) as client:
            Session(VectordAdapter(client, ds.dim), ds.data, ds.queries, ds.truth, ds.filtered_truth, config,
                    [proc.proc.pid], log).op_ingest(0, n)
    finally:
        proc.terminate(timeout=600)
    return _restarted_rss(data_dir, ds.queries[0], *planner_flags(config)), n


def open_vectord_remote(ds, config, workdir: Path, log) -> LocalSystem:
    import vectord
    from vectord.testing import start_server

    small = small_collection_rss(ds, config, workdir, log)
    log(f"  vectord remote: restarted server with {small[1]:,} records: {small[0] / 2**20:,.1f} MiB")
    data_dir = workdir / "vectord-remote"
    proc = start_server(data_dir, *planner_flags(config), timeout=120)
    client = vectord.Client(proc.address, timeout=600)
    adapter = VectordAdapter(client, ds.dim)
    # the empty server in the state the restarted one is measured in (a client served, one
    # query answered), with the data set's collection made and still empty: what differs
    # after the restart is then the records alone (the per-record overhead, report.py)
    adapter.col.query(query_embeddings=ds.queries[:1], n_results=K, include=[])
    time.sleep(0.5)
    idle_rss = vm_rss_bytes(proc.proc.pid)
    session = Session(adapter, ds.data, ds.queries, ds.truth, ds.filtered_truth, config, [proc.proc.pid], log)
    state = {"proc": proc}

    def close() -> dict[str, Any]:
        try:
            client.close()
            out = {"rss_loaded": vm_rss_bytes(proc.proc.pid), "rss_idle": idle_rss}
            code = proc.terminate(timeout=600)
            if code != 0:
                raise RuntimeError(f"vectord exited {code}: {proc.log()[-2000:]}")
            out["restart_s"], state["proc"] = _first_query_after_start(data_dir, ds.queries[0], *planner_flags(config))
            time.sleep(0.5)
            out["rss_restarted_first"] = vm_rss_bytes(state["proc"].proc.pid)
            state["proc"].terminate(timeout=600)
            out["rss_restarted"] = _restarted_rss(data_dir, ds.queries[0], *planner_flags(config),
                                                  found=(out["rss_restarted_first"],))
            out["hnswlib_rss"], out["hnswlib_rss_fixed"] = hnswlib_rss_bytes(data_dir, ds.dim) or (None, None)
            out["rss_small"], out["small_n"] = small
            log(f"  vectord remote: restart {out['restart_s']:.2f} s; server RSS {out['rss_loaded'] / 2**20:,.0f} MiB "
                f"after the run, {out['rss_restarted'] / 2**20:,.0f} MiB after restart, {idle_rss / 2**20:,.0f} MiB empty")
            return out
        finally:
            state["proc"].terminate(timeout=600)
            proc.terminate(timeout=600)

    return LocalSystem(session, close)


def open_hnswlib(ds, config, workdir: Path, log) -> LocalSystem:
    adapter = HnswlibAdapter(ds.dim, len(ds.data))
    session = Session(adapter, ds.data, ds.queries, ds.truth, ds.filtered_truth, config, [os.getpid()], log)
    return LocalSystem(session, lambda: {"index_file_bytes": adapter.index_file_bytes()})


def _served(adapter, ds, config, log) -> LocalSystem:
    """A floor.py server and its adapter as a system: single and batched steps only."""
    session = Session(adapter, ds.data, ds.queries, ds.truth, ds.filtered_truth, config, [], log)
    return LocalSystem(session, lambda: (adapter.close(), {})[1], adapter.figures())


def open_floor(ds, config, workdir: Path, log) -> LocalSystem:
    """The bare-gRPC floor (floor.py)."""
    from .floor import FloorAdapter

    return _served(FloorAdapter(ds.dim, config["k"], config["query_batches"]), ds, config, log)


def open_ceiling(ds, config, workdir: Path, log) -> LocalSystem:
    """The gRPC + hnswlib ceiling (floor.py): the data reach its server as a .npy file, which
    builds its index before it answers (not timed: the ceiling has no ingest)."""
    from .floor import CeilingAdapter

    data_file = workdir / "ceiling-data.npy"
    np.save(data_file, ds.data)
    return _served(CeilingAdapter(data_file, ds.dim, config["k"], config["query_batches"]), ds, config, log)


def rebuild_recalls(ds, config, log) -> list[float]:
    """Recall@10 of raw hnswlib rebuilt with other seeds (same settings, same batches, same
    queries): how far recall moves from one build of the same index to the next, the yardstick
    for the recall comparisons between systems."""
    import hnswlib

    from .measure import recall

    found = []
    for seed in range(1, config["rebuilds"] + 1):
        index = hnswlib.Index(space="cosine", dim=ds.dim)
        index.init_index(max_elements=len(ds.data), M=M, ef_construction=EF_CONSTRUCTION, random_seed=seed)
        for start in range(0, len(ds.data), config["batch"]):
            part = ds.data[start:start + config["batch"]]
            index.add_items(part, np.arange(start, start + len(part)))
        index.set_ef(EF)
        found.append(recall(index.knn_query(ds.queries, k=config["k"])[0].tolist(), ds.truth))
        log(f"  rebuild with seed {seed}: recall@10 {found[-1]:.4f}")
    return found


def seed_recalls(ds, config, chroma_venv: Path | None, log) -> dict[str, list[float]]:
    """Recall@10 of vectord and Chroma built again ``config["recall_seeds"]`` times, build ``s``
    inserting the records in the order of permutation ``s`` (neither takes a graph seed), as
    benchmarks/recall_seeds.py builds them: vectord in memory (the same engine and graph as
    the server), Chroma in its virtualenv when ``chroma_venv`` has chromadb. With the suite's
    own builds these are the draws the report's recall comparison judges (report.py
    ``recall_comparison``)."""
    from benchmarks.recall_seeds import build_chroma, build_vectord

    from .measure import recall

    python = chroma_python(chroma_venv) if chroma_venv is not None else None
    out: dict[str, list[float]] = {"vectord": []}
    if python is not None:
        out["Chroma"] = []
    with tempfile.TemporaryDirectory(prefix="vectord-seeds-") as tmp:
        for seed in range(1, config["recall_seeds"] + 1):
            order = np.random.default_rng(seed).permutation(len(ds.data))
            out["vectord"].append(recall(build_vectord(ds.data, ds.queries, order), ds.truth))
            if python is not None:
                out["Chroma"].append(recall(build_chroma(python, ds.data, ds.queries, order, Path(tmp))[0],
                                            ds.truth))
            log(f"  insertion order {seed}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in out.items()))
    return out


def run_large_restart(n: int, dim: int, workdir: Path, log, batch: int = 5000,
                      base: Path | None = None, mixed_seconds: float = 20.0) -> dict[str, Any]:
    """--large: ingest n x dim clustered vectors (with metadata) into a server, shut it down
    cleanly, and time the restart to the first answered query; memory after restart, then
    after benchmarks/memory_steady.py's mixed workload (queries, filtered queries, upserts,
    deletes and every original vector read back once), the issue's steady state.

    With ``base`` (a data directory holding collection ``bench`` as benchmarks/restart.py
    builds it: the same vectors, ids and metadata), a copy of it replaces the ingest."""
    import shutil

    import vectord
    from vectord.testing import start_server

    from benchmarks.core import clustered
    from benchmarks.memory_steady import mixed, rss_parts
    from benchmarks.restart import batches  # the same vectors as the ingest below and the prebuilt base

    data_dir = workdir / "vectord-large"
    ingest_rps = settle_s = None
    if base is not None:
        log(f"  large: copying {base}")
        shutil.copytree(base, data_dir)
    else:
        proc = start_server(data_dir, timeout=120)
        client = vectord.Client(proc.address, timeout=900)
        col = client.create_collection("bench", dim=dim, metric="cosine", hnsw=HNSW)
        started = time.perf_counter()
        for done, (ids, part, metadatas) in enumerate(batches(0, n, dim, batch)):
            col.add(ids=ids, embeddings=part, metadatas=metadatas)
            if done % 20 == 0:
                log(f"  large: {int(ids[-1]) + 1:,} / {n:,} ({(int(ids[-1]) + 1) / (time.perf_counter() - started):,.0f} rec/s)")
        ingest_rps = n / (time.perf_counter() - started)
        client.close()
        # settled as the background maintenance leaves a collection once its ingest stops:
        # sealed and merged (a stop seals and merges nothing, so without this the restart
        # would open ~17 segments and merge them while the workload below runs)
        started = time.perf_counter()
        with vectord.Client(proc.address, timeout=3600) as client:
            client.checkpoint("bench")
        settle_s = time.perf_counter() - started
        log(f"  large: sealed and merged in {settle_s:.0f} s")
        code = proc.terminate(timeout=900)
        if code != 0:
            raise RuntimeError(f"vectord exited {code}: {proc.log()[-2000:]}")
    restart_s, proc = _first_query_after_start(data_dir, clustered(1, dim, seed=1)[0])
    try:
        rss = vm_rss_bytes(proc.proc.pid)
        # the server's own figure for opening the data directory (storage/database.py logs
        # it): the rest of the restart is the process's start and the first query
        opened = re.search(r"collections? recovered \(\d+ damaged\) in ([0-9.]+) s", proc.log())
        open_s = float(opened.group(1)) if opened else None
        log(f"  large: restart {restart_s:.2f} s (data directory opened in {open_s} s), RSS {rss / 2**20:,.0f} MiB")
        with vectord.Client(proc.address, timeout=900) as client:
            col = client.get_collection("bench")
            n, dim = col.count(), col.dim
            data = np.concatenate([vectors for _, vectors, _ in batches(0, n, dim, batch)])
            counts = mixed(col, data, mixed_seconds, np.random.default_rng(1))
        rss_mixed, parts = vm_rss_bytes(proc.proc.pid), rss_parts(proc.proc.pid)
        held = hnswlib_rss_bytes(data_dir, dim) or (None, None)  # the graphs as raw hnswlib holds them
        log(f"  large: after the mixed workload {rss_mixed / 2**20:,.0f} MiB {parts} ({counts})")
    finally:
        proc.terminate(timeout=900)
    return {"n": n, "dim": dim, "ingest_rps": ingest_rps, "settle_s": settle_s, "restart_s": restart_s, "open_s": open_s, "rss_restarted": rss,
            "rss_mixed": rss_mixed, "rss_mixed_parts": parts, "mixed_counts": counts, "hnswlib_rss": held[0],
            "hnswlib_rss_fixed": held[1],
            "from_base": str(base) if base is not None else None}


# ---------------------------------------------------------------------- Chroma
def chroma_python(venv: Path) -> Path | None:
    """The Chroma virtualenv's python, if chromadb is installed there."""
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    ok = subprocess.run([str(python), "-c", "import chromadb"], capture_output=True).returncode == 0
    return python if ok else None


class ChromaDriver:
    """``chroma_worker.py`` (``mode`` "embedded" or "server") under Chroma's python, kept
    running: it reads the data from .npy files once, then serves one ``measure.Session``
    operation per JSON line, timed in its own process."""

    def __init__(self, mode: str, ds, config, workdir: Path, log, venv: Path) -> None:
        python = chroma_python(venv)
        if python is None:
            raise RuntimeError(f"chromadb is not installed in {venv}")
        self.mode, self.log, self.tail = mode, log, []
        job_dir = workdir / f"chroma-{mode}"
        job_dir.mkdir(parents=True, exist_ok=True)
        np.save(job_dir / "data.npy", ds.data)
        np.save(job_dir / "queries.npy", ds.queries)
        np.save(job_dir / "truth.npy", ds.truth)
        for name, truth in ds.filtered_truth.items():
            np.save(job_dir / f"ftruth-{name.replace('%', 'pct')}.npy", truth)
        job = {"mode": mode, "dir": str(job_dir), "config": config,
               "hnsw": {"space": "cosine", "max_neighbors": M, "ef_construction": EF_CONSTRUCTION, "ef_search": EF}}
        (job_dir / "job.json").write_text(json.dumps(job))
        worker = Path(__file__).with_name("chroma_worker.py")
        self.proc = subprocess.Popen([str(python), str(worker), str(job_dir / "job.json")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(ROOT),
                                     env={**os.environ, "ANONYMIZED_TELEMETRY": "False", "PYTHONPATH": str(ROOT)})
        self.info = self._answer()

    def _answer(self) -> dict[str, Any]:
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("@@"):
                out = json.loads(line[2:])
                if "error" in out:
                    raise RuntimeError(f"Chroma {self.mode}: {out['error']}")
                return out
            self.tail = (self.tail + [line])[-40:]
            if line.startswith("  "):
                self.log(line)
        self.proc.wait()
        raise RuntimeError(f"Chroma {self.mode} worker exited {self.proc.returncode}:\n" + "\n".join(self.tail))

    def call(self, op: str, **params) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps({"op": op, "params": params}) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> dict[str, Any]:
        if self.proc.poll() is not None:
            return {}
        try:
            return self.call("close")
        finally:
            try:
                self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(300)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
