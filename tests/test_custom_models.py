"""Models of the user's own (issue 10, item 7): `vectord serve --models-dir DIR` serves any
ONNX sentence encoder laid out as the shipped ones, verified at start, pinned per collection.

The model is built by the test (tests/tiny_model.py): no download."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import vectord  # noqa: E402
import tiny_model  # noqa: E402
from serverproc import start_server  # noqa: E402
from vectord.errors import DataLossError, FailedPreconditionError, InvalidArgumentError  # noqa: E402
from vectord.server.encoders import BuiltinEncoders  # noqa: E402
from vectord.storage import Database  # noqa: E402

DOCS = ["cat dog bird", "car bus train plane", "apple pear bread milk", "river mountain water"]


@pytest.fixture
def models_dir(tmp_path):
    root = tmp_path / "models"
    tiny_model.build(root / "tiny")
    return root


def test_registry_serves_both_models_side_by_side(models_dir):
    registry = BuiltinEncoders(models_dir=models_dir)
    assert registry.names() == ["tiny-test", "vectord-gru-base", "vectord-gru-mini"]
    tiny = registry.get("tiny-test")
    assert (tiny.dim, tiny.max_tokens, tiny.pooling) == (8, 16, "mean")
    assert registry.get("default").name == "vectord-gru-base"
    vectors = tiny.embed(DOCS)
    assert vectors.shape == (4, 8)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    # deterministic in any batch, as the built-in model
    assert np.array_equal(np.concatenate([tiny.embed([d]) for d in DOCS]), vectors)


def _break(models_dir, how):
    folder = models_dir / "tiny"
    meta = json.loads((folder / "model.json").read_text())
    if how == "sha":
        meta["sha256"]["model.onnx"] = "0" * 64
        (folder / "model.json").write_text(json.dumps(meta))
    elif how == "json":
        (folder / "model.json").write_text("{not json")
    elif how == "field":
        del meta["dim"]
        (folder / "model.json").write_text(json.dumps(meta))
    elif how == "name":
        meta["name"] = "vectord-gru-mini"
        (folder / "model.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize("how, error, names", [
    ("sha", DataLossError, ["model.onnx", "sha256"]),
    ("json", DataLossError, ["model.json"]),
    ("field", DataLossError, ["model.json", "'dim'"]),
    ("name", InvalidArgumentError, ["model.json", "already taken"]),
])
def test_a_bad_model_is_one_clear_error_naming_the_file(models_dir, how, error, names):
    folder = _break(models_dir, how)
    with pytest.raises(error) as raised:
        BuiltinEncoders(models_dir=models_dir)
    message = str(raised.value)
    assert str(folder) in message and "\n" not in message
    for word in names:
        assert word in message


def test_server_refuses_to_start_with_a_damaged_model(models_dir, tmp_path):
    _break(models_dir, "sha")
    proc = subprocess.run([sys.executable, "-m", "vectord", "serve", "--data-dir", str(tmp_path / "data"),
                           "--port", "0", "--models-dir", str(models_dir)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line or "error" in line.lower()]
    assert len(errors) == 1 and "model.onnx" in errors[0] and str(models_dir / "tiny") in errors[0], proc.stderr


def test_models_dir_must_be_a_directory(tmp_path):
    with pytest.raises(InvalidArgumentError, match="models_dir"):
        BuiltinEncoders(models_dir=tmp_path / "missing")


def test_served_pinned_and_kept_across_restarts(models_dir, tmp_path):
    data = tmp_path / "data"
    server = start_server(data, "--models-dir", str(models_dir))
    try:
        with vectord.Client(server.address) as client:
            models = {m["name"]: m for m in client.list_models()}
            assert set(models) == {"tiny-test", "vectord-gru-base", "vectord-gru-mini"}
            assert models["tiny-test"]["dim"] == 8 and models["tiny-test"]["max_tokens"] == 16
            assert not models["tiny-test"]["is_default"]
            mine = client.create_collection("mine", encoder="tiny-test")
            assert mine.dim == 8 and mine.encoder == "tiny-test"
            result = mine.add(ids=[str(i) for i in range(4)], documents=DOCS)
            assert result["inserted"] == 4 and result["truncated"] == 0
            long = mine.add(ids=["long"], documents=["cat " * 40])  # 40 pieces > 14
            assert long["truncated"] == 1
            hits = mine.query(query_texts=["cat dog bird"], n_results=1)
            assert hits["ids"][0] == ["0"]
            vectors, cut = client.embed(["cat", "dog " * 20], model="tiny-test", return_truncated=True)
            assert vectors.shape == (2, 8) and cut == [1]
            builtin = client.create_collection("builtin")
            assert builtin.dim == 384
    finally:
        server.terminate()
    # env VECTORD_MODELS_DIR works as the flag does; the collection still answers
    server = start_server(data, env={"VECTORD_MODELS_DIR": str(models_dir)})
    try:
        with vectord.Client(server.address) as client:
            assert client.get_collection("mine").query(query_texts=["apple pear"], n_results=1)["ids"][0] == ["2"]
    finally:
        server.terminate()
    # without the model the collection refuses text (it never falls back to another model)
    server = start_server(data)
    try:
        with vectord.Client(server.address) as client:
            with pytest.raises(vectord.NotFoundError, match="tiny-test"):
                client.get_collection("mine").add(ids=["x"], documents=["cat"])
            assert client.get_collection("builtin").count() == 0
            # ... until it is moved to a model the server has: a re-embed needs only the new one
            moved = client.reembed_collection("mine", "vectord-gru-mini")
            assert moved["switched"] and moved["total"] == 5 and moved["model"]["dim"] == 384
            mine = client.get_collection("mine")
            assert mine.encoder == "vectord-gru-mini" and mine.dim == 384
            assert mine.add(ids=["x"], documents=["cat"])["inserted"] == 1
    finally:
        server.terminate()


def test_a_changed_model_of_the_same_name_is_refused(models_dir, tmp_path):
    with Database(tmp_path / "d", encoders=BuiltinEncoders(models_dir=models_dir)) as db:
        db.create_collection("mine", encoder="tiny-test").add(ids=["a"], documents=["cat"])
    other = tmp_path / "other"
    tiny_model.build(other / "tiny", seed=1)  # same name, other weights
    with Database(tmp_path / "d", encoders=BuiltinEncoders(models_dir=other)) as db:
        with pytest.raises(FailedPreconditionError, match="refusing to mix"):
            db.get_collection("mine").add(ids=["b"], documents=["dog"])


def test_collections_keep_their_model_when_the_default_changes(models_dir, tmp_path):
    registry = BuiltinEncoders(models_dir=models_dir)
    with Database(tmp_path / "d", encoders=registry) as db:
        db.create_collection("old").add(ids=["a"], documents=["cat"])
    registry = BuiltinEncoders(models_dir=models_dir)
    registry.default = "tiny-test"  # a new default model, e.g. a later release
    with Database(tmp_path / "d", encoders=registry) as db:
        old = db.get_collection("old")
        old.add(ids=["b"], documents=["dog"])  # still the model it was built with
        assert old.config.encoder["name"] == "vectord-gru-base" and old.config.dim == 384
        new = db.create_collection("new")
        assert new.config.encoder["name"] == "tiny-test" and new.config.dim == 8


def test_embedded_clients_read_the_same_models_dir_setting(models_dir, tmp_path, monkeypatch):
    """VECTORD_MODELS_DIR works in-process as it does for `vectord serve` (it was ignored)."""
    monkeypatch.setenv("VECTORD_MODELS_DIR", str(models_dir))
    with vectord.Client(path=str(tmp_path / "embedded")) as client:
        assert {m["name"] for m in client.list_models()} == {"tiny-test", "vectord-gru-base", "vectord-gru-mini"}
        mine = client.create_collection("mine", encoder="tiny-test")
        mine.add(ids=[str(i) for i in range(4)], documents=DOCS)
        assert mine.query(query_texts=["apple pear"], n_results=1)["ids"][0] == ["2"]
    monkeypatch.setenv("VECTORD_MODELS_DIR", str(tmp_path / "missing"))
    with pytest.raises(InvalidArgumentError, match="models_dir"):
        vectord.Client(path=str(tmp_path / "other"))
