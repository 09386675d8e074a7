"""hnswlib's ``load_index`` against storage/graph_file.py's ``load_graph`` on the same files.

    python benchmarks/graph_load_ab.py DATA_DIR [--rounds 5]

Loads every graph (``index.hnsw``) of every collection in a vectord data directory, all of
them with one reader and then all with the other, the order reversed every round (the files
are in the page cache after the first round, as after a clean shutdown), and prints each
reader's total per round, the median ratio, and that every loaded index answers the same
queries alike. This is the graph part of a restart (storage/collection.py and
storage/segment.py load through ``HnswIndex.load``).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import hnswlib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vectord.storage.graph_file import load_graph  # noqa: E402
from vectord.storage.index import SEED  # noqa: E402
from vectord.storage.layout import read_manifest  # noqa: E402


def graphs(data_dir: Path) -> list[tuple[Path, str, int]]:
    """(graph file, space, dim) of every graph in the data directory."""
    found = []
    for manifest in sorted(data_dir.glob("collections/*/MANIFEST")):
        config = read_manifest(manifest.parent)["config"]
        for path in sorted(manifest.parent.glob("*/index.hnsw")):
            found.append((path, config["metric"], config["dim"]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    files = graphs(args.data_dir)
    total_mb = sum(path.stat().st_size for path, _, _ in files) / 2**20
    print(f"{len(files)} graphs, {total_mb:,.0f} MiB, in {args.data_dir}")

    def old(path, space, dim):
        index = hnswlib.Index(space=space, dim=dim)
        index.load_index(str(path))
        return index

    def new(path, space, dim):
        return load_graph(path, space, dim, 16, SEED)

    readers = {"load_index": old, "load_graph": new}
    seconds: dict[str, list[float]] = {name: [] for name in readers}
    for round_ in range(args.rounds):
        for name in (list(readers) if round_ % 2 == 0 else list(readers)[::-1]):
            started = time.perf_counter()
            for path, space, dim in files:
                index = readers[name](path, space, dim)
                del index
            seconds[name].append(time.perf_counter() - started)
            gc.collect()
    for name, values in seconds.items():
        print(f"  {name:10s} median {np.median(values):.3f} s   rounds: {' '.join(f'{v:.3f}' for v in values)}")
    ratios = np.array(seconds["load_graph"]) / np.array(seconds["load_index"])
    print(f"load_graph / load_index: median {np.median(ratios):.3f} (rounds {ratios.min():.3f}-{ratios.max():.3f})")

    rng = np.random.default_rng(0)
    for path, space, dim in files:  # the same answers from either reader
        queries = rng.standard_normal((20, dim)).astype(np.float32)
        a, b = old(path, space, dim), new(path, space, dim)
        for index in (a, b):
            index.set_ef(50)
        k = min(10, a.get_current_count())
        if k and not np.array_equal(a.knn_query(queries, k=k)[0], b.knn_query(queries, k=k)[0]):
            raise SystemExit(f"{path}: the two readers' indexes answer differently")
    print("every graph answers the same 20 queries alike from either reader")


if __name__ == "__main__":
    main()
