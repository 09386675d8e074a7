"""Clean restart of one large collection, its graph in hnswlib's file vs the engine's graph
file (storage/graph_file.py), through a real server, in alternating rounds (issue 12).

    PYTHONPATH=src:. python benchmarks/restart_graph_ab.py --base WORK/base --work /tmp/rg \
        [--rounds 2] [--out RESULT.json]

``--base`` is a base data directory benchmarks/restart.py built (one collection, no
segments, its graph written by hnswlib's ``save_index``). Two copies are made under
``--work`` with hard links (nothing large is copied; a checkpoint never rewrites a file in
place): **a** as it is (opened by ``load_index``), **b** with its graph rewritten as a graph
file and its MANIFEST entry updated (read by ``layout.verified_graph`` and
``__setstate__``). Each round starts a server on a, then on b (``restart.first_query``:
seconds from the process's start to the first answered query, and its RSS), with a clean
shutdown after each; the page cache holds both (the first round may read from disk).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.core import clustered  # noqa: E402
from benchmarks.restart import NAME, first_query, rss_bytes  # noqa: E402


def linked_copy(src: Path, dst: Path, skip: str | None = None) -> None:
    """``dst`` as ``src`` with every file hard-linked but the MANIFEST (copied: rewritten
    in place by a checkpoint's rename) and ``skip``."""
    dst.mkdir(parents=True)
    for path in src.rglob("*"):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.name == "MANIFEST" or path.name == "LOCK":
            shutil.copy2(path, target)
        elif path.name != skip:
            os.link(path, target)


def convert(directory: Path) -> float:
    """Rewrites the collection's graph in ``directory`` as a graph file; returns seconds."""
    from vectord.storage import layout
    from vectord.storage.fsio import REAL
    from vectord.storage.index import HnswIndex

    started = time.perf_counter()
    (collection,) = (directory / "collections").iterdir()
    manifest = layout.read_manifest(collection)
    gen, meta, config = collection / manifest["generation"], manifest["index"], manifest["config"]
    old = layout.verified_graph(gen, manifest["files"], meta)  # the path of hnswlib's file
    hnsw = config["hnsw"]
    index = HnswIndex.load(old, config["metric"], config["dim"], hnsw["m"], hnsw["ef_construction"],
                           hnsw["ef_search"], capacity=manifest["slots"], deleted=meta["deleted"])
    old.unlink()  # a hard link of the base's: the base keeps its file
    files = {**manifest["files"], layout.INDEX: layout.write_graph(REAL, gen / layout.INDEX, index)}
    layout.write_manifest(REAL, collection, {**manifest, "files": files,
                                             "index": {**meta, "format": "vectord-graph-1"}})
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", type=Path, required=True, help="a base data directory of benchmarks/restart.py")
    p.add_argument("--work", type=Path, required=True, help="scratch directory (its a/ and b/ are replaced)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path, help="write the results as JSON")
    args = p.parse_args()
    dirs = {"a: hnswlib save_index file": args.work / "a", "b: graph file": args.work / "b"}
    for path in dirs.values():
        if path.exists():
            shutil.rmtree(path)
    linked_copy(args.base, dirs["a: hnswlib save_index file"])
    linked_copy(args.base, dirs["b: graph file"])
    convert_s = convert(dirs["b: graph file"])
    print(f"graph converted in {convert_s:.1f} s", flush=True)
    from vectord.storage import layout
    (collection,) = (args.base / "collections").iterdir()
    dim = layout.read_manifest(collection)["config"]["dim"]
    query = clustered(1, dim, seed=1)[0]
    result = {"base": str(args.base), "load_at_start": os.getloadavg(), "convert_s": convert_s, "rounds": []}
    for round_no in range(args.rounds):
        row = {}
        for name, path in dirs.items():
            seconds, proc, count = first_query(path, query)
            row[name] = {"seconds": seconds, "rss_mib": rss_bytes(proc.proc.pid) / 2**20, "count": count}
            proc.terminate(timeout=1800)
            print(f"round {round_no + 1}: {name}: {seconds:.2f} s to the first answer, "
                  f"RSS {row[name]['rss_mib']:,.0f} MiB, count {count:,}", flush=True)
        result["rounds"].append(row)
    result["load_at_end"] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"load average at start {result['load_at_start']}, at end {result['load_at_end']}")


if __name__ == "__main__":
    main()
