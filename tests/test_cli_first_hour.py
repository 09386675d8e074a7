"""A newcomer's first hour with the `vectord` command (issue 15): every error is one line and
exit 1, nothing is created by a command that fails or only reads, the messages say what to do
next, and `--help` documents every option, its default and every VECTORD_* variable.

Each behaviour runs the real `vectord` console command in a subprocess, against a real
server where it needs one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vectord
from serverproc import start_server
from vectord.server import cli
from vectord.server.settings import Settings

VECTORD = Path(sys.executable).with_name("vectord")  # the installed console script


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    command = [str(VECTORD)] if VECTORD.exists() else [sys.executable, "-m", "vectord"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**os.environ, **(env or {})})


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The failure's stderr, checked to be exactly one line and exit status 1."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = start_server(tmp_path_factory.mktemp("first-hour") / "data")
    yield proc
    assert proc.terminate() == 0, proc.log()


def _names(server) -> list[str]:
    with vectord.Client(server.address) as client:
        return [c.name for c in client.list_collections()]


# ------------------------------------------------------------------ 1. one line, not a traceback
def test_import_of_mixed_vector_lengths_fails_in_one_line_and_creates_nothing(server, tmp_path):
    source = tmp_path / "mixed.jsonl"
    source.write_text('{"id": "a", "embedding": [1, 2, 3]}\n{"id": "b", "embedding": [1, 2, 3]}\n'
                      '\n{"id": "c", "embedding": [1, 2]}\n')
    line = one_line_error(run("import", str(source), "-c", "mixed", "--address", server.address))
    assert f"{source}:4" in line and "length 2" in line and "dimension 3" in line, line
    assert "mixed" not in _names(server)
    assert not (tmp_path / "mixed.jsonl.progress").exists()
    # an existing collection fixes the dimension: the first line is already wrong
    with vectord.Client(server.address) as client:
        client.create_collection("dim4", dim=4)
    line = one_line_error(run("import", str(source), "-c", "dim4", "--address", server.address))
    assert f"{source}:1" in line and "length 3" in line and "dimension 4" in line and "dim4" in line, line


def test_import_checks_records_before_writing_offline_too(tmp_path):
    source = tmp_path / "bad.jsonl"
    source.write_text('{"id": "a", "embedding": [1, 2]}\n{"id": "b", "document": "no vector"}\n')
    data = tmp_path / "new-data"
    line = one_line_error(run("import", str(source), "-c", "bad", "--data-dir", str(data)))
    assert f"{source}:2" in line and "no embedding" in line, line
    assert not data.exists()  # the data directory it would have made is gone again
    source.write_text('{"id": "a", "embedding": [1, "x"]}\n')
    line = one_line_error(run("import", str(source), "-c", "bad", "--data-dir", str(data)))
    assert f"{source}:1" in line and "list of numbers" in line


def test_import_refused_by_the_server_leaves_no_collection(server, tmp_path):
    source = tmp_path / "empty-id.jsonl"
    source.write_text('{"id": "", "embedding": [1, 2]}\n')  # well-formed, but the server refuses the id
    line = one_line_error(run("import", str(source), "-c", "refused", "--address", server.address))
    assert "InvalidArgumentError" in line and "id" in line, line
    assert "refused" not in _names(server)


@pytest.mark.parametrize("name, content, expected", [
    ("latin.jsonl", b'{"id": "a", "embedding": [1]}\n\xff{"id": "b"}\n', ":2: not UTF-8 text"),
    ("list.jsonl", b'{"id": "a", "embedding": [1], "metadata": [1]}\n', ':1: record \'a\': "metadata" must be'),
    ("garbage.npy", b"not numpy at all\n", "not an .npy file"),
])
def test_unreadable_input_files_fail_in_one_line(tmp_path, name, content, expected):
    (tmp_path / name).write_bytes(content)
    (tmp_path / "garbage.jsonl").write_text('{"id": "a"}\n')  # the .npy's sidecar
    data = tmp_path / "data"
    line = one_line_error(run("import", str(tmp_path / name), "-c", "x", "--data-dir", str(data)))
    assert expected in line, line
    assert not data.exists()


def test_serve_on_an_unusable_data_directory_fails_in_one_line(tmp_path):
    # tests run as root, where chmod does not stop writes: a path under a regular file
    # gives a real ENOTDIR, and a regular file as the directory itself
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for data_dir, reason in ((blocker / "data", "Not a directory"), (blocker, "not a directory")):
        result = run("serve", "--data-dir", str(data_dir), "--port", "0")
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
        assert len(errors) == 1 and str(data_dir) in errors[0] and reason in errors[0], result.stderr
        assert "listening" not in result.stdout


# ------------------------------------------------------------------ 2. no silent surprises
def test_read_commands_refuse_a_missing_data_directory(tmp_path):
    typo = tmp_path / "typo"
    for args in (["collections", "list"], ["collections", "info", "x"], ["snapshot", "list"],
                 ["export", str(tmp_path / "out.jsonl"), "-c", "x"], ["query", "-c", "x", "--vector", "[1]"],
                 ["compact"]):
        line = one_line_error(run(*args, "--data-dir", str(typo)))
        assert "no such data directory" in line and str(typo) in line, (args, line)
        assert not typo.exists(), args
    assert not (tmp_path / "out.jsonl").exists()


def test_write_commands_create_a_data_directory_and_say_so(tmp_path):
    data = tmp_path / "fresh"
    result = run("collections", "create", "c", "--dim", "2", "--data-dir", str(data))
    assert result.returncode == 0, result.stderr
    assert f"creating data directory {data}" in result.stderr
    listed = run("collections", "list", "--data-dir", str(data))
    assert listed.returncode == 0 and "c " in listed.stdout and listed.stderr == ""


def test_export_refuses_an_unknown_extension(server, tmp_path):
    with vectord.Client(server.address) as client:
        client.create_collection("exp", dim=2).add(ids=["a"], embeddings=[[1, 0]])
    out = tmp_path / "out.csv"
    line = one_line_error(run("export", str(out), "-c", "exp", "--address", server.address))
    assert "'.csv'" in line and ".jsonl" in line and ".npy" in line, line
    assert not out.exists() and list(tmp_path.iterdir()) == []
    line = one_line_error(run("import", str(out), "-c", "exp", "--address", server.address))
    assert ".jsonl" in line and ".npy" in line


def test_import_of_texts_creates_an_encoder_collection_like_collections_create(server, tmp_path):
    source = tmp_path / "notes.jsonl"
    source.write_text('{"id": "cat", "document": "The cat sat on the mat."}\n'
                      '{"id": "rocket", "document": "The rocket carried a satellite into orbit."}\n')
    result = run("import", str(source), "-c", "imported-notes", "--no-progress", "--address", server.address)
    assert result.returncode == 0, result.stderr
    assert "created collection 'imported-notes' with the built-in encoder" in result.stderr
    created = run("collections", "create", "created-notes", "--address", server.address)
    assert created.returncode == 0, created.stderr
    with vectord.Client(server.address) as client:
        imported, made = client.get_collection("imported-notes"), client.get_collection("created-notes")
        assert imported.encoder and imported.encoder == made.encoder and imported.dim == made.dim
        assert imported.count() == 2
    assert f"encoder {made.encoder!r}" in created.stdout
    query = run("query", "a kitten on a rug", "-c", "imported-notes", "-n", "1", "--json", "--address", server.address)
    assert [r["id"] for r in json.loads(query.stdout)] == ["cat"]


# ------------------------------------------------------------------ 3. messages that help
def test_verify_points_at_snapshot_restore_and_repair(tmp_path):
    from vectord.storage import Database, Tuning
    from vectord.storage.checkpoint import read_manifest

    data = tmp_path / "data"
    vectors = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    with Database(data, tuning=Tuning(exact_threshold=8, index_threads=1)) as db:
        for name in ("broken", "index"):
            col = db.create_collection(name, dim=4)
            col.add([f"r{i}" for i in range(64)], vectors)
            col.checkpoint()
        paths = {c.name: c.path for c in db.list_collections()}
    manifest = paths["broken"] / "MANIFEST"
    manifest.write_bytes(manifest.read_bytes()[:-9])
    listed = read_manifest(paths["index"])  # the graph of the tail, or of the segment sealed
    holder = listed["segments"][0]["name"] if listed.get("segments") else listed["generation"]
    index = paths["index"] / holder / "index.hnsw"
    damaged = bytearray(index.read_bytes())
    damaged[len(damaged) // 2] ^= 0x10
    index.write_bytes(bytes(damaged))
    result = run("verify", "--data-dir", str(data))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "2 collections, 0 OK, 2 not OK" in result.stdout
    assert "vectord snapshot restore" in result.stderr and "--repair" in result.stderr, result.stderr
    repaired = run("verify", "--data-dir", str(data), "--repair")
    assert repaired.returncode == 1 and "INDEX_REBUILT" in repaired.stdout
    assert "snapshot restore" in repaired.stderr and "--repair" not in repaired.stderr, repaired.stderr


def test_start_log_counts_in_the_singular(tmp_path):
    proc = start_server(tmp_path / "data")
    with vectord.Client(proc.address) as client:
        client.create_collection("one", dim=2).add(ids=["a"], embeddings=[[1, 0]])
    assert proc.terminate() == 0
    proc = start_server(tmp_path / "data")
    assert proc.terminate() == 0
    log = proc.log()
    assert ": 1 collection recovered (0 damaged)" in log and "recovered 1 collection (1 record) from" in log, log
    assert "recovered 1 record, replayed 0 log records in" in log, log


def test_a_missing_api_key_tells_cli_users_about_api_key_and_the_environment(tmp_path):
    proc = start_server(tmp_path / "keyed", env={"VECTORD_API_KEY": "first-hour-key"})
    try:
        env = {k: v for k, v in os.environ.items() if k != "VECTORD_API_KEY"}
        result = subprocess.run([str(VECTORD) if VECTORD.exists() else sys.executable, *(
            [] if VECTORD.exists() else ["-m", "vectord"]), "collections", "list", "--address", proc.address],
            capture_output=True, text=True, env=env, timeout=60)
        line = one_line_error(result)
        assert "UnauthenticatedError" in line and "--api-key" in line and "VECTORD_API_KEY" in line, line
        ok = run("collections", "list", "--api-key", "first-hour-key", "--address", proc.address)
        assert ok.returncode == 0, ok.stderr
    finally:
        assert proc.terminate() == 0


def test_no_server_tells_cli_users_how_to_pick_one():
    line = one_line_error(run("collections", "list", "--address", "127.0.0.1:1", "--timeout", "5"))
    assert "UnavailableError" in line and "127.0.0.1:1" in line, line
    assert "--address" in line and "VECTORD_ADDRESS" in line and "--data-dir" in line, line


# ------------------------------------------------------------------ 4. help
def test_top_level_help_has_examples():
    out = run("--help").stdout
    examples = out.split("examples:", 1)[1].splitlines()
    commands = [line.split()[1] for line in examples if line.startswith("  vectord ")]
    assert len(commands) == 5 and {"serve", "collections", "import", "query"} <= set(commands), out


def test_serve_help_shows_defaults_and_every_environment_variable():
    out = run("serve", "--help").stdout
    flat = " ".join(out.split())
    for flag, default in (("--port PORT", "50051"), ("--host HOST", "127.0.0.1"),
                          ("--data-dir DATA_DIR", "./vectord-data"), ("--max-workers MAX_WORKERS", "16"),
                          ("--grace-period-s GRACE_PERIOD_S", "10.0"), ("--index-threads INDEX_THREADS", "0")):
        assert f"(default {default};" in flat.split(flag, 2)[2].split(" --", 1)[0], (flag, default)
    epilog = " ".join(out.split("environment variables", 1)[1].split())
    expected = ["VECTORD_CONFIG"] + [f"VECTORD_{name.upper()}" for name in Settings.model_fields]
    assert cli.environment_variables() == expected
    for name in expected + ["VECTORD_HOST", "VECTORD_ENCODER_THREADS", "VECTORD_INDEX_THREADS"]:
        assert name in epilog, name


def test_index_threads_flag_reaches_the_settings(tmp_path):
    result = run("serve", "--print-config", "--index-threads", "3", "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 0, result.stderr
    assert "index_threads = 3" in result.stdout.splitlines()
    assert not (tmp_path / "d").exists()


def _parsers(parser: argparse.ArgumentParser, path: str = "vectord"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def test_every_option_positional_and_subcommand_has_help():
    missing = []
    for path, parser in _parsers(cli._parser()):
        for action in parser._actions:
            label = "/".join(action.option_strings) or action.dest
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{path}: {label}")
            if isinstance(action, argparse._SubParsersAction):
                described = {choice.dest for choice in action._choices_actions if choice.help}
                missing += [f"{path} {name}" for name in action.choices if name not in described]
    assert not missing, f"without help text: {missing}"


def test_create_get_or_create_accepts_an_existing_collections_metric(tmp_path):
    """`collections create NAME --get-or-create` without --metric takes an existing l2 collection
    as it is (the flag used to default to cosine and so conflicted with it)."""
    data = str(tmp_path / "data")
    made = run("collections", "create", "docs", "--dim", "3", "--metric", "l2", "--data-dir", data)
    assert made.returncode == 0, made.stderr
    again = run("collections", "create", "docs", "--dim", "3", "--get-or-create", "--data-dir", data)
    assert again.returncode == 0, again.stderr
    assert "metric l2" in again.stdout
    conflicting = run("collections", "create", "docs", "--dim", "3", "--metric", "ip", "--get-or-create",
                      "--data-dir", data)
    assert "'ip'" in one_line_error(conflicting)
