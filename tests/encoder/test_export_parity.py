"""Export parity on a tiny model trained for a few steps (needs the training extra)."""
from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

pytestmark = pytest.mark.training

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
pytest.importorskip("tf_keras")
ort = pytest.importorskip("onnxruntime")


def _training(encmod, name):
    return importlib.import_module(f"{encmod.__name__}.training.{name}")


def test_tiny_model_exports_with_parity(encmod, tmp_path):
    student = _training(encmod, "student")
    train = _training(encmod, "train")
    export = _training(encmod, "export")
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    tok_src = encmod.runtime.MODELS_DIR / encmod.DEFAULT_MODEL / "tokenizer.json"
    rng = np.random.default_rng(0)
    words = ["cat", "dog", "river", "bank", "money", "tree", "green", "house", "small", "runs", "the", "a",
             "of", "quickly", "über", "中文", "😀", "mountain", "song", "reads"]
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 30))) for _ in range(300)] + ["", "x " * 200]
    cfg = student.StudentConfig(emb=16, hidden=16, dim=32, max_tokens=64)
    tok = student.make_tokenizer(tok_src, cfg.max_tokens)
    ids = student.encode_ids(tok, texts)
    targets = rng.normal(size=(len(texts), cfg.dim)).astype(np.float32)
    targets /= np.linalg.norm(targets, axis=1, keepdims=True)
    model = student.build_model(cfg, seed=1)
    before = model(student.pad(ids[:4])).numpy()
    hist = train.train_model(model, ids, targets, steps=6, batch=32, lr=1e-2, warmup=1, log_every=3)
    assert len(hist) == 2
    assert not np.allclose(before, model(student.pad(ids[:4])).numpy())  # it trained

    meta = export.export(model, cfg, tmp_path / "tiny", tok_src, texts, name="tiny-test", version="0.0.0")
    assert meta["parity_max_abs_diff"] < export.PARITY_TOL
    out = tmp_path / "tiny"
    assert json.loads((out / "model.json").read_text())["dim"] == 32

    # the run time loads the exported model and agrees with TensorFlow
    enc = encmod.TextEncoder(out)
    got = enc.embed(texts)
    want = np.concatenate([model(student.pad([s]), training=False).numpy() for s in ids])
    assert np.abs(got - want).max() < 1e-4
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input_ids"]
    assert [o.name for o in sess.get_outputs()] == ["embedding"]


def test_parity_failure_fails_the_export(encmod, tmp_path, monkeypatch):
    student = _training(encmod, "student")
    export = _training(encmod, "export")
    tok_src = encmod.runtime.MODELS_DIR / encmod.DEFAULT_MODEL / "tokenizer.json"
    cfg = student.StudentConfig(emb=8, hidden=8, dim=16)
    model = student.build_model(cfg, seed=2)
    monkeypatch.setattr(export, "PARITY_TOL", 0.0)  # nothing can pass a zero tolerance... unless exact
    real_parity = export.parity
    monkeypatch.setattr(export, "parity", lambda *a, **k: max(real_parity(*a, **k), 1.0))
    with pytest.raises(export.ParityError):
        export.export(model, cfg, tmp_path / "bad", tok_src, ["some text", "more text"], name="bad")
    assert not (tmp_path / "bad" / "model.onnx").exists()
