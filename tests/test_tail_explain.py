"""Explain through a real server reports the exact tail (QueryPlan.tail; storage/indexer.py):
a record is found the moment its write is acknowledged, and the tail empties as the
background indexer adds it to the graph."""

from __future__ import annotations

import time

import numpy as np

import vectord
from serverproc import start_server

DIM = 8


def test_explain_reports_the_tail_until_the_indexer_has_caught_up(tmp_path):
    data = np.random.default_rng(5).standard_normal((7000, DIM)).astype(np.float32)
    # cost per ef 1: the planner picks the graph at this size (tests/test_planner_setting.py)
    server = start_server(tmp_path / "d", "--planner-cost-per-ef", "1")
    try:
        with vectord.Client(server.address) as client:
            col = client.create_collection("t", dim=DIM, metric="l2")
            col.add(ids=[str(i) for i in range(5000)], embeddings=data[:5000])  # the graph is built
            col.add(ids=[str(i) for i in range(5000, 7000)], embeddings=data[5000:])  # the tail
            out = col.query(query_embeddings=data[6999:7000], n_results=3, include=[], explain=True)
            assert out["ids"][0][0] == "6999" and out["plan"]["strategy"] == "hnsw"
            assert 0 <= out["plan"]["tail"] <= 2000
            deadline = time.monotonic() + 120
            while out["plan"]["tail"] and time.monotonic() < deadline:
                time.sleep(0.1)
                out = col.query(query_embeddings=data[6999:7000], n_results=3, include=[], explain=True)
            assert out["plan"]["tail"] == 0, "the indexer did not catch up in 120 s"
            assert out["ids"][0][0] == "6999" and col.count() == 7000
    finally:
        assert server.terminate() == 0
