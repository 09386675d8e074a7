"""A new segment's graph file, written by a child process so that no query waits (issue 12).

hnswlib's Python binding holds the GIL through ``save_index`` (136 ms for a graph of
50,000 x 384, 313 ms in an earlier run: benchmarks/results/hnswlib-gil-*.json), and every
query thread waited while a seal, merge or compaction saved its new segment's graph. Its
pickle state (``__getstate__``, written with the GIL released) was tried first: the copy it
makes under the GIL took as long (161-176 ms: the page faults of 84 MB of fresh memory,
benchmarks/results/hnswlib-gil-pickle-2026-11-30.json) and restarts were slower.

So the file is written by a child process (``subprocess``; never a bare fork: a server runs
gRPC threads) that builds the graph from the new segment's rows file (``compact-*.npy``,
written and fsynced by storage/compaction.py) and saves it with ``save_index`` beside it
(``compact-*.hnsw``): the format of every graph before, read at open by storage/graph_file.py.
``Segment.write`` then moves it into the segment's directory. This process waits for the
child with the GIL released, and only then builds its own copy of the graph (to serve
queries): the two graphs are never in memory at the same time, so a compaction's peak
memory grows by the child's less this process's graph (a few tens of MB), not by a
second graph. The child imports numpy and hnswlib only (run as a file, not as part of
the package): ~30 MB of its own besides the graph.

The price: the graph is built twice (CPU, at ``Tuning.maintenance_nice``). With one build
thread on both sides (``Tuning.maintenance_threads`` = 1) the child's graph is this
process's (hnswlib inserts in label order with the same seed); with more, an equally good
graph of the same vectors.

Graphs of less than ``MIN_BYTES`` of vectors (a GIL hold of a few ms) are saved in this
process, as is any whose child fails (logged).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Vectors' bytes from which a segment's graph is written by a child: ~16 ms of GIL hold
#: saved in this process (save_index runs at ~1-3 ms per MB here), against ~0.5 s of a
#: child's start.
MIN_BYTES = 16 << 20

#: The child's file, beside the rows file it is built from (``compact-*.npy``).
SUFFIX = ".hnsw"


def prepare(rows: Path, index, count: int, threads: int, nice: int) -> tuple[Path, dict[str, Any]] | None:
    """The graph of the ``count`` rows of ``rows`` (labels 0..count-1), with ``index``'s
    parameters (still empty: this runs before this process builds its own), written by a
    child to ``rows`` with the suffix ``.hnsw``. Returns (that path, what the MANIFEST lists
    of it: size, sha256, crc32c; not yet fsynced), or None: a small graph (this process
    saves it), or the child failed (logged; its partial file removed)."""
    if count * index.dim * 4 < MIN_BYTES:
        return None
    from .layout import file_entry  # the package's; the child runs without it

    path = rows.with_suffix(SUFFIX)
    try:
        save(path, rows, {"space": index.metric, "dim": index.dim, "m": index.m,
                          "ef_construction": index.ef_construction, "count": count}, threads, nice)
        return path, file_entry(path)
    except (OSError, RuntimeError) as exc:
        log.warning("%s: %s; the graph is saved by this process instead", path, exc)
        path.unlink(missing_ok=True)
        return None


def save(path: Path, rows: Path, graph: dict[str, Any], threads: int, nice: int) -> None:
    """Runs the child: it builds ``graph`` (space, dim, m, ef_construction, count) from the
    rows file and saves it to ``path``.

    Raises:
        RuntimeError: the child failed (its error output in the message).
    """
    from .index import SEED

    args = {**graph, "vectors": str(rows), "out": str(path), "seed": SEED, "threads": threads, "nice": nice}
    # -P: the script's folder (storage/, with its types.py) is not put first on sys.path
    proc = subprocess.run([sys.executable, "-P", __file__, json.dumps(args)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"graph child exited with {proc.returncode}: {proc.stderr[-2000:]}")


def _main(argv: list[str]) -> int:
    import hnswlib
    import numpy as np

    args = json.loads(argv[1])
    if args["nice"]:
        os.nice(args["nice"])
    vectors = np.load(args["vectors"], mmap_mode="r", allow_pickle=False)
    if vectors.shape != (args["count"], args["dim"]):
        raise SystemExit(f"{args['vectors']}: {vectors.shape}, expected ({args['count']}, {args['dim']})")
    index = hnswlib.Index(space=args["space"], dim=args["dim"])
    index.init_index(max_elements=max(args["count"], 16), M=args["m"],
                     ef_construction=args["ef_construction"], random_seed=args["seed"])
    for start in range(0, args["count"], 65536):
        stop = min(args["count"], start + 65536)
        index.add_items(np.asarray(vectors[start:stop]), np.arange(start, stop), num_threads=args["threads"])
    index.save_index(args["out"])  # fsynced by the parent once moved (layout.write_generation)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv))
