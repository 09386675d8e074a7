"""How long hnswlib's calls hold the GIL: the floor of a query's wait during upkeep (issue 12).

    python benchmarks/hnswlib_gil.py [--n 50000] [--dim 384] [--out PATH.json]

Why: a query waits for a segment's seal, merge or compaction only in its short swap under
the write lock, but every Python thread, the query's included, waits while a C call holds
the GIL. hnswlib's Python binding releases it while it builds (``add_items``) and searches,
not while it saves or loads an index (``save_index``, ``load_index``), so the graph of a
segment being written or opened stalls every query for that long. A ticker thread that
sleeps 1 ms in a loop measures it: its longest gap between two ticks while each call runs
(one run each, on ``--n`` random vectors of ``--dim``, M=16).

Beside hnswlib's own save and load, in the same run: its pickle state (``__getstate__``,
``__setstate__``: the graph copied under the GIL; tried as the engine's graph file first),
and the engine's path now (storage/graph_child.py): a child process builds the graph from
the vectors' file and saves it while this process waits (its longest tick gap is what a
query waits). Run with ``PYTHONPATH=src:.`` so that ``vectord`` imports.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import hnswlib
import numpy as np


class Ticker:
    """A thread that wakes every millisecond and keeps the longest gap it saw."""

    def __init__(self) -> None:
        self.longest, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            self.longest, last = max(self.longest, now - last), now

    def measure(self, call) -> tuple[float, float]:
        """(seconds the call took, longest tick gap during it, seconds)."""
        time.sleep(0.05)
        self.longest = 0.0
        t0 = time.perf_counter()
        call()
        took = time.perf_counter() - t0
        time.sleep(0.01)  # the tick that was waiting records its gap
        return took, self.longest

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _engine_paths(ticker: Ticker, index, loaded, data, tmp: str, args, out: dict) -> None:
    """hnswlib's pickle state (tried as the graph file first, a560c37) and the child process
    that writes a segment's graph now (storage/graph_child.py), timed as the calls above."""
    from vectord.storage import graph_child

    took, gap = ticker.measure(lambda: index.__getstate__())
    out["calls"]["pickle state: Index.__getstate__"] = {"seconds": took, "longest_gap_ms": gap * 1000}
    state = index.__getstate__()
    fresh = hnswlib.Index.__new__(hnswlib.Index)
    took, gap = ticker.measure(lambda: fresh.__setstate__(state))
    out["calls"]["pickle state: Index.__setstate__"] = {"seconds": took, "longest_gap_ms": gap * 1000}
    del state, fresh
    vectors = os.path.join(tmp, "vectors.npy")
    np.save(vectors, data)
    described = {"space": "l2", "dim": args.dim, "m": 16, "ef_construction": 40, "count": args.n}
    child = os.path.join(tmp, "child.hnsw")
    took, gap = ticker.measure(lambda: graph_child.save(Path(child), Path(vectors), described, 1, 0))
    out["calls"]["engine: graph_child.save (a child builds and saves; 1 thread)"] = {
        "seconds": took, "longest_gap_ms": gap * 1000}
    again = hnswlib.Index("l2", args.dim)
    again.load_index(child, max_elements=args.n)
    queries = data[:10]
    loaded.set_ef(50)
    again.set_ef(50)
    hits = [len(set(a) & set(b)) for a, b in zip(loaded.knn_query(queries, 10)[0], again.knn_query(queries, 10)[0])]
    out["child_graph_overlap_at_10"] = sum(hits) / (10 * len(hits))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=50_000, help="vectors in the graph (default 50,000)")
    p.add_argument("--dim", type=int, default=384, help="dimensions (default 384)")
    p.add_argument("--out", type=Path, help="write the results to this JSON file")
    args = p.parse_args()
    data = np.random.default_rng(0).random((args.n, args.dim), dtype=np.float32)
    ticker = Ticker()
    out = {"n": args.n, "dim": args.dim, "load_before": os.getloadavg(), "calls": {}}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "index.hnsw")
        index = hnswlib.Index("l2", args.dim)
        index.init_index(args.n, M=16, ef_construction=40)
        head = args.n // 10
        index.add_items(data[:head], num_threads=1)
        calls = {
            "add_items (10% of n, 1 thread)": lambda: index.add_items(data[head:2 * head], num_threads=1),
            "knn_query x 100": lambda: [index.knn_query(data[i:i + 1], 10) for i in range(100)],
        }
        for name, call in calls.items():
            took, gap = ticker.measure(call)
            out["calls"][name] = {"seconds": took, "longest_gap_ms": gap * 1000}
        index.add_items(data[2 * head:], num_threads=os.cpu_count() or 1)
        took, gap = ticker.measure(lambda: index.save_index(path))
        out["index_bytes"] = os.path.getsize(path)
        out["calls"]["save_index"] = {"seconds": took, "longest_gap_ms": gap * 1000}
        loaded = hnswlib.Index("l2", args.dim)
        took, gap = ticker.measure(lambda: loaded.load_index(path, max_elements=args.n))
        out["calls"]["load_index"] = {"seconds": took, "longest_gap_ms": gap * 1000}
        _engine_paths(ticker, index, loaded, data, tmp, args, out)
    ticker.stop()
    out["load_after"] = os.getloadavg()
    mb = out["index_bytes"] / 1e6
    print(f"{args.n} x {args.dim}: index file {mb:.0f} MB")
    print(f"the child's graph answers 10 queries with {out['child_graph_overlap_at_10']:.2f} of the same top 10")
    for name, row in out["calls"].items():
        print(f"{name:62s} {row['seconds'] * 1000:8.0f} ms, longest tick gap {row['longest_gap_ms']:7.1f} ms")
    print(f"load average before {out['load_before']}, after {out['load_after']}")
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
