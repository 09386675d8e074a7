"""Shared fixtures: a real server process on a free port, and a client in either mode.

Every SDK test that takes ``client`` runs twice: against a real `vectord serve` process
over gRPC ("remote") and in-process on a data directory ("embedded").
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import vectord  # noqa: E402
from serverproc import start_server  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One real server per test module; tests use distinct collection names."""
    proc = start_server(tmp_path_factory.mktemp("server") / "data")
    yield proc
    code = proc.terminate()
    assert code == 0, proc.log()


@pytest.fixture(params=["remote", "embedded"])
def client(request, tmp_path):
    if request.param == "remote":
        server = request.getfixturevalue("server")
        c = vectord.Client(server.address, timeout=30)
    else:
        c = vectord.Client(path=str(tmp_path / "embedded"))
    yield c
    if request.param == "remote":
        for collection in c.list_collections():
            c.delete_collection(collection.name)
    c.close()
