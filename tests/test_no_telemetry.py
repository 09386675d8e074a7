"""The README promises no telemetry: serving and embedding text write nothing outside the
data directory. onnxruntime, on import, wrote a device id and an event store under
~/.cache/Microsoft/DeveloperTools/.onnxruntime/ (under the systemd unit: in the data
directory, its HOME). Real processes, with HOME and the XDG directories in a fresh folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import vectord
from serverproc import start_server

pytest.importorskip("onnxruntime")


def _fresh_home(root: Path) -> dict[str, str]:
    home = root / "home"
    env = {"HOME": str(home)}
    for name, sub in (("XDG_CACHE_HOME", ".cache"), ("XDG_CONFIG_HOME", ".config"),
                      ("XDG_DATA_HOME", ".local/share"), ("XDG_STATE_HOME", ".local/state")):
        (home / sub).mkdir(parents=True)
        env[name] = str(home / sub)
    env["ORT_DISABLE_TELEMETRY"] = "0"  # vectord turns it off whatever the environment says
    return env


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def test_a_server_that_embeds_text_writes_nothing_to_home(tmp_path):
    env = _fresh_home(tmp_path)
    proc = start_server(tmp_path / "data", env=env)  # the data directory is outside HOME
    try:
        with vectord.Client(proc.address, timeout=60) as client:
            docs = client.create_collection("docs")  # the built-in encoder
            docs.add(ids=["a", "b"], documents=["a cat sat on the mat", "stock markets fell"])
            assert docs.query(query_texts=["kitten"], n_results=1)["ids"] == [["a"]]
            assert client.embed(["hello"]).shape[0] == 1
    finally:
        assert proc.terminate() == 0, proc.log()
    assert _files(Path(env["HOME"])) == []


EMBEDDED = """
import sys, vectord
with vectord.Client(path=sys.argv[1]) as client:
    docs = client.create_collection("docs")
    docs.add(ids=["a"], documents=["a cat sat on the mat"])
    assert docs.query(query_texts=["kitten"], n_results=1)["ids"] == [["a"]]
assert "onnxruntime" in sys.modules and "huggingface_hub" not in sys.modules, sorted(sys.modules)
"""


def test_embedded_use_writes_nothing_to_home_or_the_working_directory(tmp_path):
    env = _fresh_home(tmp_path)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    subprocess.run([sys.executable, "-c", EMBEDDED, str(tmp_path / "data")], cwd=cwd, check=True,
                   env={**os.environ, **env}, timeout=120)
    assert _files(Path(env["HOME"])) == []
    assert _files(cwd) == []
