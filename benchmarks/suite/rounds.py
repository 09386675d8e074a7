"""Every system of a data set measured in alternation: short timed rounds, A, B, C, ... then
... C, B, A, so that the compared systems are always measured seconds apart.

On a shared 2-core machine the speed drifts by 1.5-2x within minutes
(benchmarks/results/suite-issue13-2026-11-30-3.md: raw hnswlib ran 1.6-2x faster than an hour
earlier), so a ratio between systems measured one after another, minutes apart, says as much
about the machine as about the systems. Here every system is opened first (ingest included:
the data go in chunk by chunk, each chunk into every system in turn), and each figure is
taken in rounds; a ratio target is then judged on the median of its per-round ratios, with
their spread (min to max), beside the ratio of the totals (report.py ``targets``).

``run_dataset`` returns the data set's entry of the results: ``systems`` (each system's
figures, totals over its rounds), ``floor`` (the bare-gRPC floor's) and ``rounds`` (each
round's figures, by group and label).
"""

from __future__ import annotations

import gc
import os
import statistics
from pathlib import Path
from typing import Any, Callable

from . import systems as sy
from .report import CEILING

#: The bare-gRPC floor (floor.py) is measured in the rounds like a system.
FLOOR = "bare-gRPC floor"
#: Systems that only answer queries (floor.py): no ingest (the ceiling's server builds its
#: index from the data when it starts), no filters, no get or count.
QUERY_ONLY = (FLOOR, CEILING)
#: The order within a round (then reversed): the systems a target compares sit side by side.
ORDER = [CEILING, "vectord remote", "Chroma server", FLOOR, "vectord embedded", "Chroma embedded",
         "hnswlib (in-process)"]
#: Filters with a target against Chroma (report.py): Chroma runs them in the rounds too.
CHROMA_ROUND_FILTERS = ["1%", "0.1%"]
#: Per-round keys kept in the results (the recall of each query is folded into the totals).
KEPT = ("qps", "rps", "p50_ms", "p99_ms", "seconds", "acked_s", "queries", "records", "load")


def run_rounds(entries: list[tuple[str, str, str, Callable[[int], dict]]], rounds: int, systems: dict,
               errors: dict[str, str], log: Callable[[str], None], title: str) -> dict[str, list[dict]]:
    """``rounds`` rounds of ``entries`` (label, system name, operation, params of round r),
    forwards in even rounds and backwards in odd ones. A system that fails is recorded in
    ``errors`` and left out of what follows."""
    out: dict[str, list[dict]] = {label: [] for label, *_ in entries}
    for r in range(rounds):
        shown = []
        for label, name, op, params in (entries if r % 2 == 0 else entries[::-1]):
            if name in errors:
                continue
            load = os.getloadavg()[0]
            try:
                result = systems[name].call(op, **params(r))
            except Exception as exc:  # noqa: BLE001 - record it, keep the other systems going
                errors[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
                log(f"  {name} FAILED: {errors[name]}")
                continue
            result["load"] = load
            out[label].append(result)
            rate = result.get("qps", result.get("rps"))
            shown.append(f"{label} {rate:,.0f}")
        log(f"  {title}, round {r + 1}/{rounds}: " + "; ".join(sorted(shown)))
    return out


def _total(results: list[dict], count: str) -> float | None:
    seconds = sum(r["seconds"] for r in results)
    return sum(r[count] for r in results) / seconds if results and seconds > 0 else None


def _median(results: list[dict], key: str) -> float | None:
    values = [r[key] for r in results if r.get(key) is not None]
    return statistics.median(values) if values else None


def _recall(results: list[dict]) -> float | None:
    """Mean recall over every query answered in any round (each query once)."""
    by_query: dict[Any, float] = {}
    for r in results:
        by_query.update(r.get("recall_by_query") or {})
    return sum(by_query.values()) / len(by_query) if by_query else None


def _edges(n: int, chunks: int, batch: int) -> list[int]:
    edges = sorted({min(n, round(n * i / chunks / batch) * batch) for i in range(chunks)} | {n})
    return edges if edges[0] == 0 else [0, *edges]


def run_dataset(ds, config: dict[str, Any], wanted: list[str], workdir: Path, chroma_venv: Path,
                log: Callable[[str], None]) -> dict[str, Any]:
    openers = {
        "vectord remote": sy.open_vectord_remote, "vectord embedded": sy.open_vectord_embedded,
        "hnswlib (in-process)": sy.open_hnswlib,
        "Chroma embedded": lambda *a: sy.ChromaDriver("embedded", *a, chroma_venv),
        "Chroma server": lambda *a: sy.ChromaDriver("server", *a, chroma_venv),
        FLOOR: sy.open_floor, CEILING: sy.open_ceiling,
    }
    # the floor is the yardstick of every system answering over gRPC
    names = [s for s in ORDER if s in wanted or (s == FLOOR and {"vectord remote", CEILING} & set(wanted))]
    systems: dict[str, Any] = {}
    errors: dict[str, str] = {}
    figures: dict[str, dict[str, Any]] = {name: {} for name in names}
    rounds: dict[str, dict[str, list[dict]]] = {}
    R, seconds, nq = config["rounds"], config["round_seconds"], len(ds.queries)
    try:
        for name in names:
            log(f"-- opening {name}")
            try:
                systems[name] = openers[name](ds, config, workdir, log)
                figures[name].update(getattr(systems[name], "info", {}) or {})
            except Exception as exc:  # noqa: BLE001 - the others go on without it
                errors[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
                log(f"  FAILED: {errors[name]}")
        engines = [s for s in names if s not in QUERY_ONLY]

        # ingest: chunk i goes into every system in turn (the index is as large in each)
        edges = _edges(len(ds.data), config["ingest_rounds"], config["batch"])
        log(f"-- ingest in {len(edges) - 1} chunks, each into every system in turn")
        rounds["ingest"] = run_rounds(
            [(s, s, "ingest", lambda r: {"start": edges[r], "end": edges[r + 1]}) for s in engines],
            len(edges) - 1, systems, errors, log, "ingest rec/s")
        for s in engines:
            if s not in errors:
                systems[s].call("after_ingest")
            done = rounds["ingest"][s]
            figures[s]["ingest_rps"] = _total(done, "records")
            figures[s]["ingest_acked_rps"] = (sum(r["records"] for r in done) / sum(r["acked_s"] for r in done)
                                              if done else None)

        every = [s for s in names]
        for t in config["threads"]:
            log(f"-- single queries, {t} client thread(s): {R} rounds of {seconds:g} s per system")
            group = rounds[f"t{t}"] = run_rounds(
                [(s, s, "single", lambda r, t=t: {"threads": t, "seconds": seconds, "offset": r * nq // R})
                 for s in every], R, systems, errors, log, f"{t} thread(s) QPS")
            for s in every:
                figures[s][f"qps_t{t}"] = _total(group[s], "queries")
                figures[s][f"p50_t{t}"], figures[s][f"p99_t{t}"] = _median(group[s], "p50_ms"), _median(group[s], "p99_ms")
                if t == 1 and s != FLOOR:
                    figures[s]["recall"] = _recall(group[s])

        for per_call in config["query_batches"]:
            members = [s for s in every if per_call == config["query_batch"] or not s.startswith("Chroma")]
            calls = max(3, 2000 // per_call)
            log(f"-- batched queries, {per_call} per call: {R} rounds of {calls} calls per system")
            group = rounds[f"batch{per_call}"] = run_rounds(
                [(s, s, "batch", lambda r: {"per_call": per_call, "calls": calls, "seconds": 2 * seconds,
                                            "offset": r * nq // R}) for s in members],
                R, systems, errors, log, f"{per_call}/call q/s")
            key = "batch_qps" if per_call == config["query_batch"] else f"batch{per_call}_qps"
            for s in members:
                figures[s][key] = _total(group[s], "queries")
                if group[s] and group[s][-1].get("recall") is not None:
                    figures[s][key.replace("qps", "recall")] = group[s][-1]["recall"]

        # the filtered curve: vectord in rounds (every filter beside the unfiltered query);
        # Chroma in the rounds at the filters that have a target against it, once at the others
        fq, fR, fs = config["filter_queries"], config["filter_rounds"], config["filter_seconds"]
        entries = []
        for s in [s for s in engines if s.startswith("vectord")]:
            entries += [(f"{s}|{f or 'none'}", s, "single",
                         lambda r, f=f: {"threads": 1, "seconds": fs, "offset": r * fq // fR, "filter": f, "count": fq})
                        for f in [None, *config["filters"]]]
        for s in [s for s in engines if s.startswith("Chroma")]:
            entries += [(f"{s}|{f}", s, "single",
                         lambda r, f=f: {"threads": 1, "seconds": seconds, "offset": r * fq // fR, "filter": f,
                                         "count": fq})
                        for f in CHROMA_ROUND_FILTERS if f in config["filters"]]
        if entries and config["filters"]:
            log(f"-- filtered single queries: {fR} rounds")
            rounds["filters"] = run_rounds(entries, fR, systems, errors, log, "filtered QPS")
        for label, results in rounds.get("filters", {}).items():
            s, f = label.split("|")
            if f != "none":
                figures[s][f"f{f}_qps"], figures[s][f"f{f}_p50"] = _total(results, "queries"), _median(results, "p50_ms")
                figures[s][f"f{f}_recall"] = _recall(results)
        for s in engines:
            once = [f for f in config["filters"] if f"f{f}_qps" not in figures[s]]
            for f in once if s not in errors else []:
                log(f"-- {s}, filter {f} (once, up to {config['max_seconds']:g} s)")
                try:
                    r = systems[s].call("single", threads=1, seconds=config["max_seconds"], filter=f, count=fq)
                except Exception as exc:  # noqa: BLE001
                    errors[s] = f"{type(exc).__name__}: {str(exc)[:300]}"
                    break
                figures[s][f"f{f}_qps"], figures[s][f"f{f}_p50"] = r["qps"], r["p50_ms"]
                figures[s][f"f{f}_recall"] = _recall([r])
            if s.startswith("vectord") and s not in errors:
                for f in config["filters"]:
                    figures[s][f"f{f}_plan"] = systems[s].call("explain", filter=f)["plan"]

        if config.get("get_count"):
            for s in [s for s in engines if s not in errors]:
                log(f"-- get / count by filter: {s}")
                try:
                    figures[s].update(systems[s].call("get_count", names=config.get("get_count_filters",
                                                                                    config["filters"])))
                except Exception as exc:  # noqa: BLE001
                    errors[s] = f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        for name, system in systems.items():
            try:
                figures[name].update(system.close())
            except Exception as exc:  # noqa: BLE001 - a failed restart is a result too
                errors.setdefault(name, f"{type(exc).__name__}: {str(exc)[:300]}")
                log(f"  {name}: closing FAILED: {errors[name]}")
        gc.collect()
    for name, error in errors.items():
        figures[name] = {"error": error}
    loads = [r["load"] for group in rounds.values() for results in group.values() for r in results]
    kept = {g: {label: [{k: r[k] for k in KEPT if r.get(k) is not None} for r in results]
                for label, results in group.items()} for g, group in rounds.items()}
    floor = figures.pop(FLOOR, None)
    return {"systems": figures, "floor": floor, "rounds": kept,
            "load_during_rounds": [min(loads), max(loads)] if loads else None}
