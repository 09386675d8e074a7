"""The encoder's window (issue 10): 256 tokens for the shipped model, read from its model.json,
with the texts cut to it reported, and the determinism guarantee kept for long texts."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

WORDS = ("river stone music paper light city bird water green quick tool house person tree "
         "metal cloth game book food plant animal small large old new").split()


def passage(pieces: int, seed: int = 0) -> str:
    """A text of exactly ``pieces`` word pieces (each word here is one piece)."""
    rng = np.random.RandomState(seed)
    return " ".join(WORDS[i] for i in rng.randint(0, len(WORDS), size=pieces))


@pytest.fixture(scope="module")
def enc(encmod):
    return encmod.load()


def test_window_is_256_tokens_read_from_model_json(enc):
    meta = json.loads((enc.model_dir / "model.json").read_text())
    assert meta["window_tokens"] == enc.max_tokens == 256
    text = passage(400)
    assert len(enc.tokenize([text])[0]) == 256  # [CLS] + 254 pieces + [SEP]
    assert len(enc.tokenize([passage(254)])[0]) == 256


def test_window_comes_from_model_json_not_the_code(encmod, tmp_path):
    src = encmod.load().model_dir
    for name in ("model.onnx", "tokenizer.json"):
        os.symlink(src / name, tmp_path / name)
    meta = json.loads((src / "model.json").read_text())
    meta["window_tokens"] = 40
    (tmp_path / "model.json").write_text(json.dumps(meta))
    small = encmod.load_dir(tmp_path)
    assert small.max_tokens == 40
    assert len(small.tokenize([passage(100)])[0]) == 40


def test_256_token_input_is_finite_and_deterministic(enc):
    text = passage(254, seed=1)
    ids = enc.tokenize([text])[0]
    assert len(ids) == 256
    a = enc.embed([text])
    b = enc.embed_direct([text])
    assert np.isfinite(a).all() and np.array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_text_past_64_tokens_now_counts(enc):
    text = passage(98, seed=2)  # 100 tokens with [CLS] and [SEP]
    prefix = " ".join(text.split()[:62])  # the 64 tokens the old window kept
    assert len(enc.tokenize([text])[0]) == 100 and len(enc.tokenize([prefix])[0]) == 64
    full, cut = enc.embed([text, prefix])
    assert not np.array_equal(full, cut)
    assert float(full @ cut) < 0.9999


def test_long_texts_bitwise_same_in_any_batch(enc):
    texts = [passage(n, seed=n) for n in (5, 62, 63, 100, 200, 254, 254, 300, 1000)] + ["", "a"]
    together = enc.embed(texts)
    alone = np.concatenate([enc.embed([t]) for t in texts])
    reversed_ = enc.embed(texts[::-1])[::-1]
    direct = enc.embed_direct(texts)
    assert np.array_equal(together, alone)
    assert np.array_equal(together, reversed_)
    assert np.array_equal(together, direct)


def test_truncated_texts_are_reported(enc):
    texts = ["short text", passage(254), passage(255), "", passage(5000)]
    truncated: list[int] = []
    v = enc.embed(texts, truncated=truncated)
    assert truncated == [2, 4]  # 254 pieces fit exactly; 255 do not
    # reporting changes nothing in the vectors
    assert np.array_equal(v, enc.embed(texts))
    direct: list[int] = []
    enc.embed_direct(texts, truncated=direct)
    assert direct == [2, 4]
    # an unchanged signature for callers that do not ask
    assert enc.embed(["x"]).shape == (1, enc.dim)
