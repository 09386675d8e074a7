"""gRPC's I/O engine: `vectord serve` imports grpc on the polling I/O manager
(server/grpc_engine.py), only where nobody chose otherwise, and leaves no trace in the
environment; the SDK keeps gRPC's default, which forked children can use. Each case runs in a
fresh interpreter: the choice is made once, at grpc's import.

How much it saves is measured in benchmarks/grpc_engine_ab.py, not here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from vectord.server import grpc_engine
from vectord.testing import stop_or_explain

#: Reports the GRPC_EXPERIMENTS that grpc's import sees (gRPC reads it then, once).
RECORDER = """
import os, sys
class _Recorder:
    def find_spec(self, name, path=None, target=None):
        if name == "grpc":
            print("GRPC_EXPERIMENTS at grpc's import:", repr(os.environ.get("GRPC_EXPERIMENTS")), flush=True)
        return None
sys.meta_path.insert(0, _Recorder())
"""


def unset_environ() -> dict[str, str]:
    """This process's environment without GRPC_EXPERIMENTS: as a user who never set it."""
    return {k: v for k, v in os.environ.items() if k != "GRPC_EXPERIMENTS"}


def run(code: str, **env: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", RECORDER + code], capture_output=True, text=True,
                         env={**unset_environ(), **env}, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


GRPCIO_TESTED = grpc_engine.tested(grpc_engine.grpcio_version())


AFTER = ("from vectord.server.grpc_engine import import_grpc\nimport_grpc()\n"
         "print('after:', repr(os.environ.get('GRPC_EXPERIMENTS')))\n")


@pytest.mark.skipif(not GRPCIO_TESTED, reason="an untested grpcio keeps its default engine")
def test_import_grpc_chooses_the_polling_io_manager_and_restores_the_environment():
    assert run(AFTER) == [f"GRPC_EXPERIMENTS at grpc's import: {grpc_engine.POLLING_IO!r}", "after: None"]


def test_the_sdk_keeps_grpcs_default_engine():
    assert run("import vectord\nvectord.Client('127.0.0.1:1')\n") == ["GRPC_EXPERIMENTS at grpc's import: None"]


def test_a_users_own_setting_is_left_as_it_is():
    # an empty value too: that is how a user keeps gRPC's default engine
    assert run(AFTER, GRPC_EXPERIMENTS="") == ["GRPC_EXPERIMENTS at grpc's import: ''", "after: ''"]
    assert run(AFTER, GRPC_EXPERIMENTS="-event_engine_client") == [
        "GRPC_EXPERIMENTS at grpc's import: '-event_engine_client'", "after: '-event_engine_client'"]


def test_grpc_imported_before_vectord_is_not_touched():
    assert run("import grpc\n" + AFTER) == ["GRPC_EXPERIMENTS at grpc's import: None", "after: None"]


def test_an_untested_grpcio_keeps_its_default_engine():
    # a release past TESTED may have dropped the old I/O manager: naming its experiments
    # would log "Unknown experiment" at every start
    code = "import vectord.server.grpc_engine as g\ng.grpcio_version = lambda: (g.TESTED[1][0], g.TESTED[1][1])\n" + AFTER
    assert run(code) == ["GRPC_EXPERIMENTS at grpc's import: None", "after: None"]
    code = "import vectord.server.grpc_engine as g\ng.grpcio_version = lambda: None\n" + AFTER
    assert run(code) == ["GRPC_EXPERIMENTS at grpc's import: None", "after: None"]


def test_applies_reads_the_version_range_and_the_environment():
    inside, past = grpc_engine.TESTED[0], grpc_engine.TESTED[1]
    saved = sys.modules.pop("grpc", None)
    try:
        assert grpc_engine.applies({}, inside)
        assert not grpc_engine.applies({}, past)
        assert not grpc_engine.applies({}, (inside[0], inside[1] - 1))
        assert not grpc_engine.applies({"GRPC_EXPERIMENTS": ""}, inside)
        sys.modules["grpc"] = saved or sys  # grpc imported already: too late, whatever the rest says
        assert not grpc_engine.applies({}, inside)
    finally:
        if saved is None:
            del sys.modules["grpc"]
        else:
            sys.modules["grpc"] = saved


@pytest.mark.skipif(not GRPCIO_TESTED, reason="an untested grpcio keeps its default engine")
def test_vectord_serve_imports_grpc_on_the_polling_io_manager(tmp_path):
    code = ("import runpy\n"
            f"sys.argv = ['vectord', 'serve', '--data-dir', {str(tmp_path / 'data')!r}, '--port', '0', '--no-huge-pages']\n"
            "runpy.run_module('vectord', run_name='__main__')\n")
    environ = unset_environ()
    stderr = tmp_path / "stderr.log"  # a file, not a pipe nobody reads: the server never blocks on its log
    proc = subprocess.Popen([sys.executable, "-c", RECORDER + code], stdout=subprocess.PIPE,
                            stderr=stderr.open("w"), text=True, env=environ)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line.strip())
            if line.startswith("vectord listening on ") or not line:
                break
        assert lines[-1].startswith("vectord listening on "), (lines, stderr.read_text())
        assert lines[:-1] == [f"GRPC_EXPERIMENTS at grpc's import: {grpc_engine.POLLING_IO!r}"]
    finally:
        assert stop_or_explain(proc, 30, stderr.read_text) == 0


FORKED = """
import multiprocessing, sys
import vectord
address = sys.argv[1]
collection = vectord.Client(address).get_or_create_collection("forked", dim=2)
collection.upsert(ids=["a"], embeddings=[[1, 0]])
collection.query(query_embeddings=[[1, 0]], n_results=1)  # the parent's query stream is open at the fork
def child(i):
    return vectord.Client(address).get_collection("forked").query(query_embeddings=[[1, 0]], n_results=1)["ids"]
with multiprocessing.get_context("fork").Pool(2) as pool:
    print(pool.map_async(child, range(4)).get(timeout=60))
"""


def test_an_sdk_user_can_fork_children_that_make_their_own_clients(tmp_path):
    # The polling I/O manager has no fork support: with the SDK on it, a child of a fork
    # hung in its first call. Only servers, which never fork once started, take it.
    from vectord.testing import start_server

    server = start_server(tmp_path / "data")
    try:
        environ = unset_environ()
        out = subprocess.run([sys.executable, "-c", FORKED, server.address], capture_output=True, text=True,
                             env=environ, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip() == str([[["a"]]] * 4)
    finally:
        server.terminate()
