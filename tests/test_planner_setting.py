"""`vectord serve --planner-cost-per-ef` (VECTORD_PLANNER_COST_PER_EF): the planner's cost
constant as measured on the machine (storage/planner.py ``calibrate``) reaches the queries
of a real server (issue 13)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import vectord
from serverproc import start_server

N, DIM = 5000, 8  # above the exact threshold (4,096): a graph exists and the planner chooses


def strategy(address: str, data: np.ndarray) -> str:
    with vectord.Client(address) as client:
        col = client.get_or_create_collection("p", dim=DIM, metric="l2")
        if col.count() == 0:
            for s in range(0, N, 1000):
                col.add(ids=[str(i) for i in range(s, s + 1000)], embeddings=data[s:s + 1000])
        return col.query(query_embeddings=data[:1], n_results=5, include=[], explain=True)["plan"]["strategy"]


def test_the_constant_given_decides_between_exact_and_graph(tmp_path):
    data = np.random.default_rng(0).standard_normal((N, DIM)).astype(np.float32)
    # default 150: 150 x ef 100 = 15,000 comparisons > 5,000 records: an exact scan is cheaper
    server = start_server(tmp_path / "d")
    try:
        assert strategy(server.address, data) == "exact"
    finally:
        assert server.terminate() == 0
    # measured at 1: 100 comparisons' worth of graph search < 5,000: the graph
    server = start_server(tmp_path / "d", "--planner-cost-per-ef", "1")
    try:
        assert strategy(server.address, data) == "hnsw"
    finally:
        assert server.terminate() == 0


@pytest.mark.parametrize("value", ["-1", "many"])
def test_a_bad_constant_is_refused_naming_the_setting(tmp_path, value):
    proc = subprocess.run([sys.executable, "-m", "vectord", "serve", "--data-dir", str(tmp_path / "d"),
                           "--planner-cost-per-ef", value, "--print-config"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "planner" in proc.stderr and ("planner_cost_per_ef" in proc.stderr or "--planner-cost-per-ef" in proc.stderr)


def test_the_setting_shows_in_the_effective_config(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "vectord", "serve", "--data-dir", str(tmp_path / "d"),
                           "--planner-cost-per-ef", "12", "--print-config"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "planner_cost_per_ef = 12" in proc.stdout.splitlines()
