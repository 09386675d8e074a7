"""The shipped model through the run-time package (numpy + onnxruntime + tokenizers only)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from multiprocessing.pool import ThreadPool
from pathlib import Path

import numpy as np
import pytest

TEXTS = [
    "A small domesticated carnivorous mammal with soft fur.",
    "the act of stripping off covering",
    "How do I reset my password?",
    "Stock markets fell sharply on Monday after the announcement.",
    "a",
    "The quick brown fox jumps over the lazy dog",
] * 5 + [f"sentence number {i} about topic {i % 7}" for i in range(40)]

ODD = ["", " ", "\t\n ", "😀", "🎉🎉🎉 party", "中文文本", "日本語のテキスト", "Ünïcödé àccents",
       "\u200b\u200d", "\x00\x01control", "\ud800 lone surrogate", "x" * 10_000, "word " * 10_000,
       "مرحبا بالعالم", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"]


SHIPPED = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "encoder" / "models").iterdir()
                 if (p / "model.json").is_file())
REFERENCE = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module", params=SHIPPED)
def enc(encmod, request):
    """Every shipped model: the default and the older ones that pinned collections still load."""
    return encmod.load(request.param)


def test_matches_tensorflow_on_the_reference_texts(enc):
    """The parity check of the export, repeated in CI (which has no TensorFlow): onnxruntime through
    the run time against the Keras graph's vectors, saved by export.write_reference."""
    path = REFERENCE / f"{enc.name}.keras-reference.npz"
    if not path.exists():
        pytest.skip(f"{enc.name} was exported before reference vectors were kept")
    ref = np.load(path)
    got = enc.embed([str(t) for t in ref["texts"]])
    assert np.abs(got - ref["vectors"]).max() < 1e-4


def test_vectord_gru_base_is_the_default_and_has_its_reference(encmod):
    assert encmod.DEFAULT_MODEL == "vectord-gru-base"
    assert (REFERENCE / f"{encmod.DEFAULT_MODEL}.keras-reference.npz").exists()


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_default_model_is_available(encmod):
    assert encmod.DEFAULT_MODEL in encmod.available_models()


def test_load_is_cached(encmod, enc):
    assert encmod.load(enc.name) is enc
    assert (encmod.load() is enc) == (enc.name == encmod.DEFAULT_MODEL)


def test_identity(enc):
    ident = enc.identity()
    assert set(ident) == {"name", "version", "sha256", "dim"}
    assert ident["dim"] == enc.dim == 384
    assert re.fullmatch(r"[0-9a-f]{64}", ident["sha256"])


def test_sha256_matches_model_json_and_card(enc):
    d = enc.model_dir
    meta = json.loads((d / "model.json").read_text())
    card = (d / "MODEL_CARD.md").read_text()
    for f in ("model.onnx", "tokenizer.json"):
        digest = _sha(d / f)
        assert meta["sha256"][f] == digest
        assert digest in card, f"MODEL_CARD.md does not list the sha256 of {f}"
    assert enc.sha256 == meta["sha256"]["model.onnx"]
    assert str(meta["window_tokens"]) in card and str(meta["dim"]) in card


def test_model_size_within_budget(enc):
    total = sum(p.stat().st_size for p in enc.model_dir.iterdir() if p.is_file())
    assert total < 32 * 1024 * 1024


def test_shape_dtype_unit_norm(enc):
    v = enc.embed(TEXTS)
    assert v.shape == (len(TEXTS), enc.dim)
    assert v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_empty_input(enc):
    v = enc.embed([])
    assert v.shape == (0, enc.dim) and v.dtype == np.float32


def test_rejects_single_string_and_non_str(encmod, enc):
    with pytest.raises(encmod.EncoderError):
        enc.embed("not a list")
    with pytest.raises(encmod.EncoderError):
        enc.embed(["ok", 3])


def test_semantics_sanity(enc):
    v = enc.embed(["a young dog", "a puppy", "the stock exchange closed lower"])
    assert v[0] @ v[1] > v[0] @ v[2]


def test_odd_unicode(enc):
    v = enc.embed(ODD)
    assert v.shape == (len(ODD), enc.dim)
    assert np.isfinite(v).all()
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # empty and whitespace-only text both encode as "[CLS] [SEP]": one fixed vector
    assert np.array_equal(v[0], v[1]) and np.array_equal(v[0], v[2])


def test_truncation_keeps_first_max_tokens(enc):
    assert enc.max_tokens == 256
    head = "the cat sat on the mat while the dog slept by the fire " * 22  # 264 word pieces > 254
    ids = enc.tokenize([head])[0]
    assert len(ids) == enc.max_tokens  # [CLS] + 254 pieces + [SEP]
    long_a = head + " completely different words about finance and markets " * 50
    long_b = head + " an unrelated tail that is never seen " * 200
    v = enc.embed([head, long_a, long_b])
    # only the first max_tokens tokens count: whatever follows is ignored
    assert np.array_equal(v[0], v[1]) and np.array_equal(v[0], v[2])
    short = enc.tokenize(["hello world"])[0]
    assert len(short) == 4  # [CLS] hello world [SEP]


def test_deterministic_across_batches(enc):
    together = enc.embed(TEXTS)
    alone = np.concatenate([enc.embed([t]) for t in TEXTS])
    reversed_ = enc.embed(TEXTS[::-1])[::-1]
    assert np.array_equal(together, alone)
    assert np.array_equal(together, reversed_)


def test_deterministic_across_threads(enc):
    ref = enc.embed(TEXTS)
    with ThreadPool(8) as pool:
        outs = pool.map(lambda i: enc.embed(TEXTS[i:] + TEXTS[:i]), range(24))
    for i, o in enumerate(outs):
        assert np.array_equal(np.roll(o, i, axis=0), ref)
    with ThreadPool(8) as pool:
        singles = pool.map(lambda t: enc.embed([t])[0], TEXTS)
    assert np.array_equal(np.stack(singles), ref)


_CHILD = r"""
import sys, hashlib
sys.path.insert(0, sys.argv[1])
try:
    import vectord.encoder as m
except ImportError:
    import encoder as m
import numpy as np
texts = [l for l in sys.stdin.read().split("\n") if l] + [""]
v = m.load(sys.argv[2]).embed(texts)
print(hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest())
"""


def test_deterministic_across_processes(enc):
    repo = str(Path(__file__).resolve().parents[2])
    inp = "\n".join(TEXTS)
    env = dict(os.environ)
    env.pop("PYTHONHASHSEED", None)
    outs = [subprocess.run([sys.executable, "-c", _CHILD, repo, enc.name], input=inp, capture_output=True, text=True,
                           env=env, timeout=120, check=True).stdout.strip() for _ in range(2)]
    v = enc.embed(TEXTS + [""])
    assert outs[0] == outs[1] == hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()


def test_damaged_model_is_refused(encmod, enc, tmp_path):
    d = tmp_path / "damaged"
    shutil.copytree(enc.model_dir, d)
    data = bytearray((d / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (d / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(encmod.EncoderError, match="damaged"):
        encmod.TextEncoder(d)


def test_unknown_model_is_refused(encmod):
    with pytest.raises(encmod.EncoderError, match="unknown"):
        encmod.load("no-such-model")
    with pytest.raises(encmod.EncoderError):
        encmod.load("../models")


def test_runtime_does_not_import_training_frameworks(encmod):
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "try:\n    import vectord.encoder as m\nexcept ImportError:\n    import encoder as m\n"
            "m.load().embed(['x'])\n"
            "bad = [k for k in ('tensorflow', 'torch', 'tf2onnx', 'keras', 'tf_keras') if k in sys.modules]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve().parents[2])],
                         capture_output=True, text=True, timeout=120, check=True).stdout.strip()
    assert out == ""
