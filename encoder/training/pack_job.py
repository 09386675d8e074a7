"""Pack the training data for gpu_job.py into one small folder (what travels to a lent GPU machine).

The corpus (corpus v2: texts.txt, pairs.tsv, domains.txt) is cut to a compressed-size budget: every
text that belongs to a source pair is kept, then the rest in their shuffled order, with short texts
of the dictionary/prose domains capped at a share, until the budget is full. Pair indices are
rewritten for the kept texts. The teacher is packed as int8 (teacher_lite.py) with the vocabulary
rows the kept texts use.

    python -m encoder.training.pack_job --corpus /work/cache/encoder/v2 --out .gpu --mib 18
"""
from __future__ import annotations

import argparse
import lzma
import shutil
from collections import Counter
from pathlib import Path

import numpy as np

GENERAL = {"wordnet", "gcide", "brown"}  # short general-English texts: a capped share of the budget
GENERAL_SHARE = 0.2


def select(texts: list[str], pairs: np.ndarray, domains: list[str], raw_budget: int) -> np.ndarray:
    in_pair = np.zeros(len(texts), dtype=bool)
    in_pair[pairs.ravel()] = True
    size = np.array([len(t.encode()) + 1 for t in texts])
    keep = in_pair.copy()
    used = int(size[keep].sum())
    general_cap = GENERAL_SHARE * raw_budget
    general_used = 0
    for i in np.flatnonzero(~in_pair):
        if used + size[i] > raw_budget:
            continue
        if domains[i] in GENERAL:
            if general_used + size[i] > general_cap:
                continue
            general_used += size[i]
        keep[i] = True
        used += size[i]
    return np.flatnonzero(keep)


def main(argv=None) -> None:
    from . import teacher_lite
    from .common import teacher_tokenizer_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True, help="folder with texts.txt, pairs.tsv, domains.txt")
    ap.add_argument("--out", type=Path, required=True, help="folder to write (replaced)")
    ap.add_argument("--mib", type=float, default=18.0, help="budget for the compressed texts, MiB")
    a = ap.parse_args(argv)
    texts = (a.corpus / "texts.txt").read_text(encoding="utf-8").split("\n")[:-1]
    domains = (a.corpus / "domains.txt").read_text(encoding="utf-8").split("\n")[:len(texts)]
    pairs = np.array([[int(c) for c in ln.split("\t")[:2]] for ln in
                      (a.corpus / "pairs.tsv").read_text().split("\n") if ln], dtype=np.int64).reshape(-1, 2)
    # xz ratio from a sample of the corpus, then a raw-size budget
    sample = "\n".join(texts[:20000]).encode()
    ratio = len(lzma.compress(sample, preset=9)) / len(sample)
    raw_budget = int(a.mib * 2 ** 20 / ratio)
    kept = select(texts, pairs, domains, raw_budget)
    new_index = -np.ones(len(texts), dtype=np.int64)
    new_index[kept] = np.arange(len(kept))
    if a.out.exists():
        shutil.rmtree(a.out)
    a.out.mkdir(parents=True)
    kept_texts = [texts[i] for i in kept]
    with lzma.open(a.out / "texts.txt.xz", "wt", encoding="utf-8", preset=9) as fh:
        fh.write("".join(t + "\n" for t in kept_texts))
    p = new_index[pairs]
    kinds = [ln.split("\t")[2] if ln.count("\t") >= 2 else "" for ln in
             (a.corpus / "pairs.tsv").read_text().split("\n") if ln]
    with lzma.open(a.out / "pairs.tsv.xz", "wt", preset=9) as fh:
        fh.write("".join(f"{x}\t{y}\t{k}\n" for (x, y), k in zip(p.tolist(), kinds)))
    tmp = a.out / "kept.txt"
    tmp.write_text("".join(t + "\n" for t in kept_texts), encoding="utf-8")
    keep_vocab = teacher_lite.corpus_vocab(teacher_tokenizer_path(), tmp)
    tmp.unlink()
    np.savez(a.out / "teacher.npz", **teacher_lite.pack(teacher_lite.original_weights(), keep_vocab))
    shutil.copy(teacher_tokenizer_path(), a.out / "tokenizer.json")
    counts = Counter(domains[i] for i in kept)
    total = sum(f.stat().st_size for f in a.out.iterdir())
    (a.out / "MANIFEST.txt").write_text(
        f"texts {len(kept)} of {len(texts)}; pairs {len(pairs)}; vocabulary rows {len(keep_vocab)}\n"
        + "".join(f"{d} {n}\n" for d, n in counts.most_common()) + f"bytes {total}\n")
    print((a.out / "MANIFEST.txt").read_text())


if __name__ == "__main__":
    main()
