"""label_job.py: teacher labels cached in chunks, resumable, and what gpu_job.py makes of them.

A tiny pack: 300 texts, a few pairs, the shipped model's WordPiece tokenizer (the teacher's vocabulary)
and a random teacher of the real shape (6 blocks, 384 wide) with a narrow feed-forward layer, so that
everything runs on one CPU core in seconds. Chunks are 64 texts here (1,024 in real runs).
"""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from encoder.training import gpu_job, label_job, teacher_lite  # noqa: E402

TOKENIZER = Path(__file__).resolve().parents[2] / "encoder" / "models" / "vectord-gru-mini" / "tokenizer.json"
WORDS = ("file process kernel memory page table socket thread signal mount device driver network packet "
         "buffer queue lock write read open close commit branch merge index tree object").split()


def random_teacher(seed: int = 0, ff: int = 32) -> dict:
    rng = np.random.default_rng(seed)
    h = teacher_lite.HIDDEN

    def m(*shape):
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    w = {"embeddings.word_embeddings.weight": m(30522, h), "embeddings.position_embeddings.weight": m(512, h),
         "embeddings.token_type_embeddings.weight": m(2, h),
         "embeddings.LayerNorm.weight": np.ones(h, np.float32), "embeddings.LayerNorm.bias": np.zeros(h, np.float32)}
    for i in range(teacher_lite.LAYERS):
        p = f"encoder.layer.{i}."
        for n in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            w[p + n + ".weight"], w[p + n + ".bias"] = m(h, h), m(h)
        w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"] = m(ff, h), m(ff)
        w[p + "output.dense.weight"], w[p + "output.dense.bias"] = m(h, ff), m(h)
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[p + n + ".weight"], w[p + n + ".bias"] = np.ones(h, np.float32), np.zeros(h, np.float32)
    return w


def make_pack(folder: Path, n: int = 300, seed: int = 0, teacher_seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    texts = []
    for i in range(n):
        k = int(rng.integers(2, 30))
        body = " ".join(rng.choice(WORDS, k))
        long = k > 25 and " ".join(["Then", *rng.choice(WORDS, 14)]) + "."  # 200+ characters: adds sentences
        texts.append(f"text {i}: {body}." + (f" {long}" if long else ""))
    (folder / "texts.txt").write_text("".join(t + "\n" for t in texts))
    pairs = [(i, i + 150) for i in range(0, 60, 3)]
    (folder / "pairs.tsv").write_text("".join(f"{a}\t{b}\tfaq\n" for a, b in pairs))
    np.savez(folder / "teacher.npz", **teacher_lite.pack(random_teacher(teacher_seed), np.arange(30522)))
    shutil.copy(TOKENIZER, folder / "tokenizer.json")
    return folder


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(label_job, "CHUNK", 64)
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    return make_pack(tmp_path_factory.mktemp("pack"))


def chunk_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("chunk-*.npy"))}


def stop_in_chunk_3(cache: Path):
    """Asked before every batch (and after each chunk): yes at the second batch of the third chunk."""
    calls = {"n": 0}

    def should_stop():
        if len(list(cache.glob("*/chunk-*.npy"))) >= 2:
            calls["n"] += 1
        return calls["n"] >= 3
    return should_stop


def test_a_stopped_and_resumed_run_writes_the_same_bytes_as_an_uninterrupted_one(pack, tmp_path):
    whole = label_job.run(pack, tmp_path / "a", batch_tokens=256, log=lambda m: None)
    assert whole["done"] == whole["chunks"] >= 5
    # stopped in the middle of a chunk: the finished chunks stay, the half-done one leaves no file
    first = label_job.run(pack, tmp_path / "b", batch_tokens=256, should_stop=stop_in_chunk_3(tmp_path / "b"),
                          log=lambda m: None)
    assert first["written"] == 2
    assert len(chunk_bytes(first["dir"])) == first["written"]
    assert not list(first["dir"].glob(".chunk-*"))
    # stopped by --max-texts, then resumed to the end
    second = label_job.run(pack, tmp_path / "b", batch_tokens=256, max_texts=64 * (first["written"] + 2),
                           log=lambda m: None)
    assert second["written"] == 2
    last = label_job.run(pack, tmp_path / "b", batch_tokens=256, log=lambda m: None)
    assert last["done"] == whole["chunks"] and last["written"] == whole["chunks"] - first["written"] - 2
    assert chunk_bytes(last["dir"]) == chunk_bytes(whole["dir"])
    again = label_job.run(pack, tmp_path / "b", batch_tokens=256, log=lambda m: None)
    assert again["written"] == 0


def test_damaged_or_cut_short_chunks_are_labelled_again(pack, tmp_path):
    whole = label_job.run(pack, tmp_path, batch_tokens=256, log=lambda m: None)
    good = chunk_bytes(whole["dir"])
    files = sorted(whole["dir"].glob("chunk-*.npy"))
    cut = files[1].read_bytes()
    files[1].write_bytes(cut[:len(cut) // 2])  # a torn write (what tmp + rename prevents)
    flipped = bytearray(files[3].read_bytes())
    flipped[-5] ^= 0x01  # one bit of one label: still a valid .npy with plausible values
    files[3].write_bytes(bytes(flipped))
    (whole["dir"] / ".chunk-000004.999999999.tmp").write_bytes(b"left by a killed run")
    assert label_job.cached_labels(pack, tmp_path)[1].sum() == len(label_job.label_set(pack).texts) - 2 * 64
    redo = label_job.run(pack, tmp_path, batch_tokens=256, log=lambda m: None)
    assert redo["written"] == 2
    assert chunk_bytes(whole["dir"]) == good
    assert not list(whole["dir"].glob(".chunk-*"))


def test_a_different_pack_or_teacher_gets_a_different_key(pack, tmp_path):
    key = label_job.label_set(pack).key
    assert label_job.label_set(pack).key == key
    other_texts = make_pack(tmp_path / "texts", seed=1)
    other_teacher = make_pack(tmp_path / "teacher", teacher_seed=1)
    keys = {key, label_job.label_set(other_texts).key, label_job.label_set(other_teacher).key}
    assert len(keys) == 3
    # the same pack copied elsewhere shares the cache
    assert label_job.label_set(shutil.copytree(pack, tmp_path / "copy")).key == key


def test_the_order_puts_validation_then_pairs_early(pack):
    ls = label_job.label_set(pack)
    n = len(ls.texts)
    assert n > ls.n_base and sorted(ls.order.tolist()) == list(range(n))
    rank = np.empty(n, dtype=np.int64)
    rank[ls.order] = np.arange(n)
    assert rank[ls.val].max() < 0.1 * n + 1
    assert rank[ls.pairs].max() < 0.5 * n + 1
    assert rank[ls.val].min() < 64  # the first chunk can already be evaluated


def test_float16_labels_stay_close_to_float32(pack, tmp_path):
    from tokenizers import Tokenizer

    run = label_job.run(pack, tmp_path, batch_tokens=256, max_texts=64, log=lambda m: None)
    ls = label_job.label_set(pack)
    tok = Tokenizer.from_file(str(pack / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=gpu_job.WINDOW)
    teacher = teacher_lite.build(teacher_lite.unpack(dict(np.load(pack / "teacher.npz"))))
    v32, _ = label_job.label_chunk(teacher, tok, [ls.texts[i] for i in ls.chunk_rows(0)], 256)
    stored = np.load(next(run["dir"].glob("chunk-000000-*.npy"))).astype(np.float32)
    cos = (stored * v32).sum(1) / np.linalg.norm(stored, axis=1)
    assert cos.min() > 0.99999


def test_gpu_job_trains_on_the_labelled_subset_and_labels_only_what_is_missing(pack, tmp_path):
    label_job.run(pack, tmp_path / "cache", batch_tokens=256, max_texts=128, log=lambda m: None)
    labels, have, _ = label_job.cached_labels(pack, tmp_path / "cache")
    assert have.sum() == 128
    tiny = ["--hidden", "8", "--emb", "8", "--batch", "16", "--pair-batch", "2", "--steps", "2", "--device", "cpu",
            "--label-cache", str(tmp_path / "cache")]
    gpu_job.main(["--data", str(pack), "--out", str(tmp_path / "sub"), "--labelled-only", "--pair-weight", "faq=8"]
                 + tiny)
    meta = json.loads((tmp_path / "sub" / "student.json").read_text())
    assert meta["labelled_texts"] == 128 and meta["texts"] > 128
    assert meta["pair_weights"] == {"faq": 8.0}
    assert "pairs drawn by source weight {'faq': 8.0}" in (tmp_path / "sub" / "job.log").read_text()
    ls = label_job.label_set(pack)
    assert meta["pairs"] == int(have[ls.pairs].all(1).sum()) and meta["val_texts"] == int(have[ls.val].sum()) > 0
    gpu_job.main(["--data", str(pack), "--out", str(tmp_path / "all")] + tiny)
    log = (tmp_path / "all" / "job.log").read_text()
    assert f"labelled {len(ls.texts) - 128} texts" in log
    assert json.loads((tmp_path / "all" / "student.json").read_text())["labelled_texts"] == len(ls.texts)


def test_labels_are_matched_by_text_for_a_smaller_selection(pack, tmp_path):
    label_job.run(pack, tmp_path, batch_tokens=256, log=lambda m: None)
    full, have, _ = label_job.cached_labels(pack, tmp_path)
    assert have.all()
    ls = label_job.label_set(pack)
    sub, _, _, _ = gpu_job.load_data(pack, max_texts=100)
    labels, sub_have, _ = label_job.cached_labels(pack, tmp_path, sub)
    where = {t: i for i, t in enumerate(ls.texts)}
    assert sub_have.all()
    assert np.array_equal(labels, full[[where[t] for t in sub]])


def test_the_command_stops_at_its_time_limit_without_a_partial_chunk(pack, tmp_path, capsys, monkeypatch):
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TOKENIZERS_PARALLELISM"):
        monkeypatch.setenv(k, "false" if k.startswith("TOKENIZERS") else "1")  # main sets them; undone after
    label_job.main(["--data", str(pack), "--cache", str(tmp_path), "--seconds", "0.001"])
    out = capsys.readouterr().out
    assert "stopped: wrote 0 chunks this run" in out
    key_dir = tmp_path / label_job.label_set(pack).key
    assert not list(key_dir.glob("chunk-*")) and not list(key_dir.glob(".chunk-*"))
    with pytest.raises(SystemExit):
        label_job.main(["--data", str(pack), "--cache", str(tmp_path), "--threads", "0"])
    assert "--threads must be at least 1, got 0" in capsys.readouterr().err
