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


def test_server_says_how_many_texts_were_truncated(tmp_path):
    """Embed and the writes report truncation, remotely and embedded alike (one servicer)."""
    import vectord

    long_text = passage(300, seed=5)
    with vectord.Client(path=str(tmp_path / "data")) as client:
        vectors, cut = client.embed(["short", long_text, "x", passage(255)], return_truncated=True)
        assert vectors.shape == (4, 384) and cut == [1, 3]
        assert client.embed(["short"]).shape == (1, 384)  # the plain call still returns the array
        assert client.list_models()[0]["max_tokens"] == 256
        docs = client.create_collection("docs")
        added = docs.add(ids=["a", "b", "c"], documents=["short", long_text, passage(254)])
        assert added["inserted"] == 3 and added["truncated"] == 1
        assert docs.upsert(ids=["a"], documents=[long_text])["truncated"] == 1
        assert docs.update(ids=["b"], metadatas=[{"k": 1}])["truncated"] == 0  # nothing embedded
        assert docs.get(ids=["b"])["documents"] == [long_text]  # the whole document is stored


def test_async_client_reports_truncation():
    import asyncio

    import vectord

    async def main():
        async with vectord.AsyncClient() as client:
            return await client.embed(["short", passage(400)], return_truncated=True)

    vectors, cut = asyncio.run(main())
    assert vectors.shape == (2, 384) and cut == [1]


def test_import_summary_counts_truncated_documents(tmp_path):
    import subprocess
    import sys

    source = tmp_path / "docs.jsonl"
    source.write_text("\n".join(json.dumps({"id": str(i), "document": passage(300 if i % 2 else 10, seed=i)})
                                for i in range(6)) + "\n")
    proc = subprocess.run([sys.executable, "-m", "vectord", "import", str(source), "--collection", "docs",
                           "--data-dir", str(tmp_path / "data"), "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "imported 6 records" in proc.stdout
    assert "truncated 3 document(s)" in proc.stdout
