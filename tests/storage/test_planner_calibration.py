"""planner.calibrate: the cost constant measured on this machine (issue 13, item 3)."""

from __future__ import annotations

import numpy as np
import pytest

from vectord.errors import InvalidArgumentError
from vectord.storage import planner


def test_calibration_measures_both_costs_and_their_ratio():
    got = planner.calibrate(dim=16, n=10_000, queries=10, rounds=3)
    assert got["n"] == 10_000 and got["dim"] == 16
    assert got["exact_ns_per_candidate"] > 0 and got["graph_ns_per_ef"] > 0
    assert got["cost_per_ef"] == max(1, round(got["graph_ns_per_ef"] / got["exact_ns_per_candidate"]))
    # whatever the machine, a unit of ef visits several nodes of the graph: it costs more
    # than one exact comparison, and far less than a full scan of the data
    assert 1 <= got["cost_per_ef"] < 2000


def test_calibration_on_given_data_uses_its_shape():
    data = np.random.default_rng(3).standard_normal((10_000, 8)).astype(np.float32)
    got = planner.calibrate(data, queries=5, rounds=2)
    assert (got["n"], got["dim"]) == (10_000, 8)


def test_calibration_refuses_too_little_data():
    with pytest.raises(InvalidArgumentError, match="calibrate: n 50 .* at least 10,000"):
        planner.calibrate(dim=8, n=50)
