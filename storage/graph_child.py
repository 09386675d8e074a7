"""A new segment's graph file, written by a child process so that no query waits (issue 12).

hnswlib's Python binding holds the GIL through ``save_index`` (136 ms for a graph of
50,000 x 384, 313 ms in an earlier run: benchmarks/results/hnswlib-gil-*.json), and every
query thread waited while a seal, merge or compaction saved its new segment's graph. Its
pickle state (``__getstate__``, written with the GIL released) was tried first: the copy it
makes under the GIL took as long (161-176 ms: the page faults of 84 MB of fresh memory,
benchmarks/results/hnswlib-gil-pickle-2026-11-30.json) and restarts were slower.

So the file is written by a child process (``subprocess``; never a bare fork: a server runs
gRPC threads) that builds the graph again from the segment's vectors file, already written
and fsynced, and saves it with ``save_index``: the format of every graph before, read by
``load_index`` at open. This process waits for it with the GIL released. The price: the
graph is built twice (CPU, at ``Tuning.maintenance_nice``), and the child holds a graph
of its own while it runs (memory outside this process). With one build thread on both
sides (``Tuning.maintenance_threads`` = 1) the child's graph is this process's (hnswlib
inserts in label order with the same seed); with more, an equally good graph of the same
vectors.

Graphs of less than ``MIN_BYTES`` of vectors (a GIL hold of a few ms) are saved in this
process, as is any whose child fails (logged).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

#: Vectors' bytes from which a segment's graph is written by a child: ~16 ms of GIL hold
#: saved in this process (save_index runs at ~1-3 ms per MB here), against ~0.5 s of a
#: child's start.
MIN_BYTES = 16 << 20



def wanted(index, slots: int) -> bool:
    return index is not None and slots * index.dim * 4 >= MIN_BYTES


def save(path: Path, vectors: Path, index, threads: int, nice: int) -> dict[str, Any]:
    """Builds ``index``'s graph (every row of ``vectors`` live, labels 0..n-1, as a segment
    holds them) in a child process, which saves it to ``path`` and returns what
    the MANIFEST lists of it (size, sha256, crc32c); the caller fsyncs it.

    Raises:
        RuntimeError: the child failed (its error output in the message).
    """
    args = {"vectors": str(vectors), "out": str(path), "space": index.metric, "dim": index.dim,
            "m": index.m, "ef_construction": index.ef_construction, "count": index.count,
            "threads": threads, "nice": nice}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run([sys.executable, "-m", __spec__.name, json.dumps(args)],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"graph child exited with {proc.returncode}: {proc.stderr[-2000:]}")
    try:
        return json.loads(proc.stdout.splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise RuntimeError(f"graph child printed no checksums ({proc.stdout[-500:]!r})") from exc


def _main(argv: list[str]) -> int:
    import hnswlib
    import numpy as np

    from .index import SEED
    from .layout import _HashingWriter, _feed

    args = json.loads(argv[1])
    if args["nice"]:
        os.nice(args["nice"])
    vectors = np.load(args["vectors"], mmap_mode="r", allow_pickle=False)
    if vectors.shape != (args["count"], args["dim"]):
        raise SystemExit(f"{args['vectors']}: {vectors.shape}, expected ({args['count']}, {args['dim']})")
    index = hnswlib.Index(space=args["space"], dim=args["dim"])
    index.init_index(max_elements=max(args["count"], 16), M=args["m"],
                     ef_construction=args["ef_construction"], random_seed=SEED)
    for start in range(0, args["count"], 65536):
        stop = min(args["count"], start + 65536)
        index.add_items(np.asarray(vectors[start:stop]), np.arange(start, stop), num_threads=args["threads"])
    index.save_index(args["out"])  # fsynced by the parent (layout.write_generation), as its own saves
    checksums = _HashingWriter()
    _feed(Path(args["out"]), checksums)
    print(json.dumps(checksums.entry()))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv))
