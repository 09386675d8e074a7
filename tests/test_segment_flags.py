"""`vectord serve --max-segment-rows / --merge-factor` (docs/segments.md): the flags reach the
settings and the engine's Tuning, bad values are refused naming flag, value and limit, and a
real server started with them seals and keeps every merged segment within the bound."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import vectord
from server import cli
from server.settings import Settings

from serverproc import start_server

SEAL = 20


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vectord", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_flags_and_environment_reach_the_settings(tmp_path):
    result = run("serve", "--print-config", "--seal-rows", "100", "--max-segment-rows", "500", "--merge-factor", "3",
                 "--no-graph-in-child", "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert {"seal_rows = 100", "max_segment_rows = 500", "merge_factor = 3", "graph_in_child = false"} <= set(lines)
    result = run("serve", "--print-config", "--data-dir", str(tmp_path / "d"),
                 env={"VECTORD_MAX_SEGMENT_ROWS": "700", "VECTORD_MERGE_FACTOR": "6"})
    assert {"max_segment_rows = 700", "merge_factor = 6"} <= set(result.stdout.splitlines())
    assert not (tmp_path / "d").exists()


def test_the_gil_switch_interval_is_a_setting_of_one_millisecond_by_default(tmp_path):
    """The server's sys.setswitchinterval (server/settings.py says why 1 ms, not Python's 5)."""
    assert Settings().switch_interval_ms == 1.0
    result = run("serve", "--print-config", "--switch-interval-ms", "2.5", "--data-dir", str(tmp_path / "d"))
    assert "switch_interval_ms = 2.5" in result.stdout.splitlines(), result.stderr


def test_settings_become_the_engines_tuning():
    tuning = cli.engine_tuning(Settings(seal_rows=50, max_segment_rows=200, merge_factor=3))
    assert (tuning.seal_rows, tuning.max_segment_rows, tuning.merge_factor) == (50, 200, 3)
    defaults = cli.engine_tuning(Settings())
    assert (defaults.seal_rows, defaults.max_segment_rows, defaults.merge_factor) == (0, 0, 4)
    assert (defaults.seal_bytes, defaults.max_segment_bytes) == (64 << 20, 256 << 20)  # sealing by size
    assert defaults.graph_in_child and not cli.engine_tuning(Settings(graph_in_child=False)).graph_in_child
    never = cli.engine_tuning(Settings(seal_mib=0))
    assert never.seal_rows_for(384) == 0  # --seal-mib 0: never sealed


@pytest.mark.parametrize("argv, env, expected", [
    (["--merge-factor", "1"], {}, "invalid setting merge_factor = 1 (--merge-factor, VECTORD_MERGE_FACTOR): "
                                  "Input should be greater than or equal to 2"),
    (["--max-segment-rows", "-5"], {}, "invalid setting max_segment_rows = -5 (--max-segment-rows, "
                                       "VECTORD_MAX_SEGMENT_ROWS): Input should be greater than or equal to 0"),
    ([], {"VECTORD_MERGE_FACTOR": "0"}, "invalid setting merge_factor = '0' (--merge-factor, VECTORD_MERGE_FACTOR)"),
    (["--switch-interval-ms", "0"], {}, "invalid setting switch_interval_ms = 0.0 (--switch-interval-ms, "
                                        "VECTORD_SWITCH_INTERVAL_MS): Input should be greater than 0"),
    (["--seal-rows", "100", "--max-segment-rows", "50"], {},
     "max_segment_rows (--max-segment-rows) is 50, below seal_rows (--seal-rows) 100: it must be at least "
     "seal_rows, or 0 (no bound)"),
])
def test_bad_values_are_refused_naming_flag_value_and_limit(tmp_path, argv, env, expected):
    result = run("serve", "--print-config", "--data-dir", str(tmp_path / "d"), *argv, env=env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert expected in result.stderr


def _segments(col, probe) -> list[int]:
    """The live records of each sealed segment, as explain reports them (a query with no
    filter counts every live record of a segment as its candidates)."""
    plan = col.query(query_embeddings=[probe], n_results=1, explain=True)["plan"]
    return [part["candidates"] for part in plan.get("segments", []) if part["segment"] != "tail"]


def _wait(predicate, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value is not None:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _ingest_and_settle(tmp_path, *flags: str) -> list[int]:
    """Six batches of SEAL records, each sealed before the next (the server's checkpointer
    seals); then the segments once the server has done merging (the same list for 3 s)."""
    server = start_server(tmp_path / "data", "--seal-rows", str(SEAL), *flags)
    try:
        client = vectord.Client(server.address)
        col = client.create_collection("c", dim=8)
        vectors = np.random.default_rng(0).normal(size=(6 * SEAL, 8)).astype(np.float32)
        probe = vectors[0].tolist()
        for batch in range(6):
            rows = slice(batch * SEAL, (batch + 1) * SEAL)
            col.add(ids=[f"r{i}" for i in range(rows.start, rows.stop)], embeddings=vectors[rows].tolist())
            # sealed: the tail is empty again (merges may have joined segments meanwhile)
            _wait(lambda: True if sum(_segments(col, probe)) == (batch + 1) * SEAL else None, f"seal {batch}")
        seen: list = [None, time.monotonic()]

        def stable():
            now = _segments(col, probe)
            if now != seen[0]:
                seen[:] = [now, time.monotonic()]
            return now if time.monotonic() - seen[1] >= 3.0 else None

        segments = _wait(stable, "merges to end")
        assert col.count() == 6 * SEAL
        client.close()
        return segments
    finally:
        assert server.terminate() == 0, server.log()


def test_a_server_bounds_merged_segments(tmp_path):
    bounded = _ingest_and_settle(tmp_path / "bounded", "--max-segment-rows", str(2 * SEAL), "--merge-factor", "2")
    assert sum(bounded) == 6 * SEAL
    assert max(bounded) <= 2 * SEAL, bounded
    assert len(bounded) >= 3, bounded  # 120 records in segments of at most 40
    assert len(bounded) < 6, bounded  # and merged: the sealed segments of 20 were joined
    # without the bound, a server done ingesting merges everything into one segment
    assert _ingest_and_settle(tmp_path / "unbounded", "--merge-factor", "2") == [6 * SEAL]
