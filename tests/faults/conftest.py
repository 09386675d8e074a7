"""Fault tests: power loss, damaged files, disk full, load, hostile input, fuzzing.

CI runs a fast subset. The long mode runs when ``VECTORD_LONG=1`` is set or when the slow
marker is selected (``-m slow``); tests marked ``slow`` are skipped otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))

from faults_helpers import LONG  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if LONG or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="long mode: set VECTORD_LONG=1 or select -m slow")
    for item in items:
        if "slow" in item.keywords and str(Path(__file__).parent) in str(item.fspath):
            item.add_marker(skip)
