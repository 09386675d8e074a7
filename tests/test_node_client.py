"""The Node.js client in examples/node works against a real server, from the .proto alone.

Skipped only when `node` is not installed. With node present, the npm packages must be
installed (`npm ci --prefix examples/node`, as .ci/run does): a missing node_modules fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import vectord
from vectord.testing import start_server

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "examples" / "node"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = start_server(tmp_path_factory.mktemp("node") / "data")
    yield proc
    assert proc.terminate() == 0, proc.log()


def _server_models(address: str) -> list[dict]:
    with vectord.Client(address) as client:
        try:
            return client.list_models()
        except (vectord.FailedPreconditionError, vectord.NotFoundError):
            return []


def _run_example(address: str) -> dict[str, dict]:
    assert (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir() and \
        (NODE_DIR / "node_modules" / "@grpc" / "proto-loader").is_dir(), (
            "examples/node/node_modules is missing: run `npm ci --prefix examples/node`")
    result = subprocess.run([NODE, str(NODE_DIR / "example.js"), address], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    steps = {}
    for line in result.stdout.splitlines():
        record = json.loads(line)
        steps[record.pop("step")] = record
    return steps


def test_package_lock_is_committed_and_node_modules_ignored():
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    package = json.loads((NODE_DIR / "package.json").read_text())
    assert set(package["dependencies"]) == {"@grpc/grpc-js", "@grpc/proto-loader"}
    assert {"node_modules/@grpc/grpc-js", "node_modules/@grpc/proto-loader"} <= set(lock["packages"])
    assert "node_modules/" in (ROOT / ".gitignore").read_text().split()


def test_node_client_against_a_real_server(server):
    steps = _run_example(server.address)
    assert list(steps)[0] == "server_info" and list(steps)[-1] == "done"
    assert steps["server_info"]["version"] == vectord.__version__
    assert steps["create_collection"] == {"name": "node-example", "dim": 3, "metric": "COSINE"}
    assert steps["upsert"]["inserted"] == 5 and steps["upsert"]["seq"] >= 1

    # The filter year >= 1980 keeps out Dune (1965), the nearest record without it.
    query = steps["query"]
    assert query["ids"] == ["hyperion", "neuromancer", "leviathan"]
    assert all(year >= 1980 for year in query["years"])
    assert query["documents"] == ["Hyperion", "Neuromancer", "Leviathan Wakes"]
    assert query["distances"] == sorted(query["distances"]) and 0 <= query["distances"][0] < 0.05
    assert steps["count"]["count"] == 2  # hyperion, leviathan
    # The packed float32 round trip: what Node wrote is what Node reads back.
    assert steps["get"]["embeddings"] == [[0.9, 0.1, 0.0]]
    assert steps["get"]["metadata"] == {"year": 1965, "genre": "scifi", "rating": 4.5}

    models = _server_models(server.address)
    embed = steps["embed"]
    if not models:  # no built-in encoder in this build: the example says so and goes on
        assert embed["skipped"] is True and embed["reason"]
    else:
        default = next(m for m in models if m["is_default"])
        assert embed["skipped"] is False, embed
        assert embed["model"] == default["name"]
        assert embed["dim"] == default["dim"] and embed["count"] == 3
        assert all(abs(n - 1) < 1e-3 for n in embed["norms"])
        assert steps["query_text"]["ids"][0] == "cat"

    # The example cleans up after itself.
    with vectord.Client(server.address) as client:
        assert [c.name for c in client.list_collections()] == []
