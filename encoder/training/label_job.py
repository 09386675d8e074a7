"""Teacher labels for a packed data folder, cached in chunks outside the repository, resumable, on the CPU.

gpu_job.py labels every text in memory and then trains: fine on a GPU (minutes), but on the 2-core
build machine the teacher labels about 10 texts a second, so ~700k texts take most of a day and a run
that is stopped loses everything. This job labels the same texts in a fixed order, 1,024 at a time,
and writes each chunk as one .npy file (float16 rows; tmp file + fsync + rename, so a file that exists
is whole), under

    $VECTORD_CACHE/encoder/v2-labels/<key>/chunk-000012-<sha256 of the file, 16 hex>.npy

The key is a hash of the texts in label order (so of texts.txt.xz and pairs.tsv.xz), teacher.npz,
tokenizer.json, the window, the chunk size and the file format: a different pack gets a different
folder, never a mixture. A chunk whose file does not match the digest in its name is labelled again.
A run stops cleanly at --seconds or on SIGTERM/SIGINT (the chunk in progress is dropped: at most
1,024 texts of work) and the next run starts with the first missing chunk. gpu_job.py reads the cache
(labels only what is missing, or with --labelled-only trains on the labelled subset).

The order makes a partial run useful: the validation texts are spread over the first tenth, the texts
of the source pairs (the two ends of a pair a few places apart, nearly always in one chunk) over the
first half, and the other texts and the passage sentences over the whole run; each group keeps its
own order, which interleaves domains (the corpus is shuffled, the sentences are shuffled here). So
the first chunk can already be evaluated and a run stopped half-way has every pair.

Labels are computed in float32 and stored as float16 (each chunk's worst cosine to its float32 rows and
worst norm error are printed: about 0.9999999 and 6e-5 on the v2 pack). Within a chunk the texts are batched by length, so a chunk's bytes depend
only on the chunk and the thread count: a resumed run writes the same files as an uninterrupted one
with the same --threads (tests/encoder/test_label_job.py).

    python -m encoder.training.label_job --data $VECTORD_CACHE/encoder/v2-pack --threads 1 [--seconds S]
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import WORK
from .gpu_job import WINDOW, load_data

CHUNK = 1024
DIM = 384
FORMAT = "vectord-teacher-labels/1 float16"
DEFAULT_LABEL_CACHE = WORK / "v2-labels"
VAL_END, PAIR_END = 0.1, 0.5  # the share of the order by which those groups are complete
SENTENCE_SEED = 20261130
_NAME = re.compile(r"^chunk-(\d{6})-([0-9a-f]{16})\.npy$")


@dataclass
class LabelSet:
    """The texts gpu_job trains on, the order they are labelled in and the cache key."""
    texts: list[str]
    pairs: np.ndarray
    val: np.ndarray
    n_base: int
    order: np.ndarray
    key: str

    @property
    def n_chunks(self) -> int:
        return -(-len(self.order) // CHUNK)

    def chunk_rows(self, c: int) -> np.ndarray:
        return self.order[c * CHUNK:(c + 1) * CHUNK]


def label_order(n_texts: int, n_base: int, pairs: np.ndarray, val: np.ndarray) -> np.ndarray:
    """A permutation of range(n_texts): validation in the first tenth, pair texts in the first half.

    The validation texts take evenly spaced places among the first VAL_END of the order, the pair
    texts (the ends of each pair one after the other) evenly spaced free places among the first
    PAIR_END; the other pack texts and the passage sentences fill the places left, merged so that
    each is spread evenly over the whole order.
    """
    seen = np.zeros(n_texts, dtype=bool)
    val = np.asarray(val, dtype=np.int64)
    seen[val] = True
    pair_texts = []
    for i in np.asarray(pairs, dtype=np.int64).reshape(-1):
        if not seen[i]:
            seen[i] = True
            pair_texts.append(i)
    pair_texts = np.array(pair_texts, dtype=np.int64)
    rest = np.flatnonzero(~seen[:n_base])
    sentences = np.arange(n_base, n_texts, dtype=np.int64)
    sentences = sentences[np.random.default_rng(SENTENCE_SEED).permutation(len(sentences))]
    order = np.full(n_texts, -1, dtype=np.int64)
    for group, share in ((val, VAL_END), (pair_texts, PAIR_END)):
        free = np.flatnonzero(order < 0)
        room = free[:max(len(group), int(np.searchsorted(free, share * n_texts)))]
        order[room[((np.arange(len(group)) + 0.5) * len(room) / max(1, len(group))).astype(np.int64)]] = group
    fill = [rest, sentences]
    pos = np.concatenate([(np.arange(len(g)) + 0.5) / max(1, len(g)) for g in fill])
    rank = np.concatenate([np.full(len(g), k) for k, g in enumerate(fill)])
    order[order < 0] = np.concatenate(fill)[np.lexsort((rank, pos))]
    assert len(np.unique(order)) == n_texts and order.min() >= 0
    return order


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def label_set(data: Path, loaded=None) -> LabelSet:
    """Everything a label run and gpu_job agree on, from a pack_job folder (loaded: its load_data(data))."""
    data = Path(data)
    texts, pairs, val, n_base = loaded or load_data(data)
    order = label_order(len(texts), n_base, pairs, val)
    h = hashlib.sha256(f"{FORMAT}\nchunk {CHUNK}\nwindow {WINDOW}\n".encode())
    for name in ("teacher.npz", "tokenizer.json"):
        h.update(f"{name} {_file_sha(data / name)}\n".encode())
    for i in order:
        h.update(texts[i].encode("utf-8") + b"\n")
    return LabelSet(texts, pairs, val, n_base, order, h.hexdigest()[:16])


class ChunkStore:
    """One folder of chunk files for one key: atomic writes, verified reads."""

    def __init__(self, root: Path, key: str):
        self.dir = Path(root) / key

    def files(self) -> dict[int, Path]:
        out = {}
        if self.dir.is_dir():
            for p in self.dir.iterdir():
                m = _NAME.match(p.name)
                if m:
                    out[int(m.group(1))] = p
        return out

    def read(self, path: Path, rows: int) -> np.ndarray | None:
        """The chunk's float16 rows, or None when the file is damaged, cut short or of the wrong shape."""
        m = _NAME.match(path.name)
        try:
            if not m or _file_sha(path)[:16] != m.group(2):
                return None
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        return arr if arr.shape == (rows, DIM) and arr.dtype == np.float16 else None

    def done(self, ls: LabelSet) -> dict[int, Path]:
        """Chunks whose files verify; the others (damaged) are removed so that they are labelled again."""
        good = {}
        for c, p in self.files().items():
            if c < ls.n_chunks and self.read(p, len(ls.chunk_rows(c))) is not None:
                good[c] = p
            else:
                p.unlink(missing_ok=True)
        return good

    def write(self, c: int, arr: np.ndarray) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".chunk-{c:06d}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        final = self.dir / f"chunk-{c:06d}-{_file_sha(tmp)[:16]}.npy"
        for old in self.dir.glob(f"chunk-{c:06d}-*.npy"):
            old.unlink(missing_ok=True)
        os.replace(tmp, final)
        fd = os.open(self.dir, os.O_RDONLY)  # the rename itself survives a crash only once the folder is synced
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return final

    def clear_stale_tmp(self) -> None:
        for p in self.dir.glob(".chunk-*.tmp"):
            pid = int(p.name.split(".")[2]) if p.name.split(".")[2].isdigit() else 0
            try:
                os.kill(pid, 0)
                alive = pid > 0 and pid != os.getpid()
            except OSError:
                alive = False
            if not alive:
                p.unlink(missing_ok=True)


def label_chunk(teacher, tok, texts: list[str], batch_tokens: int, should_stop=lambda: False):
    """float32 (len(texts), 384) teacher vectors in input order, or None when stopped part-way."""
    import torch

    enc = tok.encode_batch(texts)
    lens = np.array([len(e.ids) for e in enc])
    order = np.argsort(lens, kind="stable")
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    i = 0
    with torch.inference_mode():
        while i < len(order):
            if should_stop():
                return None
            n = 1  # the most texts whose padded batch (sorted: the last is the longest) fits batch_tokens
            while i + n < len(order) and (n + 1) * max(1, int(lens[order[i + n]])) <= batch_tokens:
                n += 1
            idx = order[i:i + n]
            ids = np.zeros((len(idx), int(lens[idx].max())), dtype=np.int64)
            for r, j in enumerate(idx):
                ids[r, :lens[j]] = enc[j].ids
            x = torch.from_numpy(ids)
            out[idx] = teacher(x, x != 0).float().numpy()
            i += len(idx)
    return out, int(lens.sum())


def run(data: Path, cache: Path = DEFAULT_LABEL_CACHE, *, threads: int = 1, seconds: float = 0, max_texts: int = 0,
        batch_tokens: int = 4096, should_stop=None, log=print) -> dict:
    """Label the missing chunks (of the first max_texts texts of the order, if given) until done or stopped."""
    import torch
    from tokenizers import Tokenizer

    from . import teacher_lite

    t0 = time.time()
    torch.set_num_threads(threads)
    ls = label_set(data)
    store = ChunkStore(cache, ls.key)
    store.dir.mkdir(parents=True, exist_ok=True)
    lock = open(store.dir / ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"another label_job is labelling {store.dir} (lock {store.dir / '.lock'} held)")
    try:
        store.clear_stale_tmp()
        (store.dir / "meta.txt").write_text(
            f"data {Path(data).resolve()}\nformat {FORMAT}\ntexts {len(ls.texts)} ({ls.n_base} pack texts + "
            f"{len(ls.texts) - ls.n_base} passage sentences)\npairs {len(ls.pairs)}\nvalidation {len(ls.val)}\n"
            f"chunks {ls.n_chunks} of {CHUNK}\n")
        done = store.done(ls)
        limit = ls.n_chunks if not max_texts else min(ls.n_chunks, -(-max_texts // CHUNK))
        todo = [c for c in range(limit) if c not in done]
        log(f"key {ls.key}: {len(ls.texts)} texts in {ls.n_chunks} chunks; {len(done)} done, "
            f"{len(todo)} to label now ({store.dir})")
        deadline = t0 + seconds if seconds else float("inf")
        stop = {"signal": None}

        def on_signal(signum, frame):
            stop["signal"] = signum

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)} \
            if should_stop is None else {}

        def stopping():
            return stop["signal"] is not None or time.time() > deadline or (should_stop is not None and should_stop())

        teacher = teacher_lite.build(teacher_lite.unpack(dict(np.load(Path(data) / "teacher.npz"))))
        tok = Tokenizer.from_file(str(Path(data) / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(max_length=WINDOW)
        t_label, n_texts, n_tokens, written = time.time(), 0, 0, 0
        try:
            for c in todo:
                rows = ls.chunk_rows(c)
                got = label_chunk(teacher, tok, [ls.texts[i] for i in rows], batch_tokens, stopping)
                if got is None:
                    break
                v32, toks = got
                v16 = v32.astype(np.float16)
                back = v16.astype(np.float32)
                norms = np.linalg.norm(back, axis=1)
                fp16_cos = float(((back * v32).sum(1) / norms).min())
                fp16_norm = float(np.abs(norms - 1).max())
                store.write(c, v16)
                written += 1
                n_texts += len(rows)
                n_tokens += toks
                el = time.time() - t_label
                left = sum(len(ls.chunk_rows(k)) for k in todo[written:])
                log(f"chunk {c + 1}/{ls.n_chunks}: {n_texts} texts in {el:.0f} s, {n_texts / el:.1f} texts/s, "
                    f"{n_tokens / el:.0f} tokens/s, fp16 min cos {fp16_cos:.7f} max |norm-1| {fp16_norm:.1e}, about "
                    f"{left / max(n_texts / el, 1e-9) / 3600:.1f} h to go")
                if stopping():
                    break
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        why = "done" if written == len(todo) else (f"signal {stop['signal']}" if stop["signal"] else "stopped")
        total_done = len(done) + written
        log(f"{why}: wrote {written} chunks this run; {total_done}/{ls.n_chunks} chunks "
            f"({min(len(ls.texts), total_done * CHUNK)} texts) labelled")
        return {"key": ls.key, "dir": store.dir, "written": written, "done": total_done, "chunks": ls.n_chunks}
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def cached_labels(data: Path, cache: Path, texts: list[str] | None = None, loaded=None):
    """(labels float32 (len(texts), 384), labelled bool mask, key folder) from the cache, or None if absent.

    texts defaults to the full label set (gpu_job without --max-texts); other texts are matched by content.
    loaded: load_data(data) when the caller has it already.
    """
    ls = label_set(data, loaded)
    if loaded is not None and texts is loaded[0]:
        texts = ls.texts
    store = ChunkStore(cache, ls.key)
    if not store.dir.is_dir():
        return None
    full = np.zeros((len(ls.texts), DIM), dtype=np.float32)
    have = np.zeros(len(ls.texts), dtype=bool)
    for c, p in store.files().items():
        if c >= ls.n_chunks:
            continue
        rows = ls.chunk_rows(c)
        arr = store.read(p, len(rows))
        if arr is not None:
            full[rows] = arr
            have[rows] = True
    if texts is None or texts is ls.texts:
        return full, have, store.dir
    where = {t: i for i, t in enumerate(ls.texts)}
    pos = np.array([where.get(t, -1) for t in texts], dtype=np.int64)
    ok = pos >= 0
    labels = np.zeros((len(texts), DIM), dtype=np.float32)
    labels[ok] = full[pos[ok]]
    return labels, ok & have[np.maximum(pos, 0)], store.dir


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="folder made by pack_job.py")
    ap.add_argument("--cache", type=Path, default=DEFAULT_LABEL_CACHE,
                    help="root of the label cache; the chunks go under <cache>/<key>/")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the chunk bytes depend on it)")
    ap.add_argument("--seconds", type=float, default=0, help="stop cleanly after this many seconds (0: no limit)")
    ap.add_argument("--max-texts", type=int, default=0,
                    help="label only the chunks of the first N texts of the label order (0: all)")
    ap.add_argument("--batch-tokens", type=int, default=4096,
                    help="padded tokens per teacher batch (the chunk bytes depend on it)")
    a = ap.parse_args(argv)
    if a.threads < 1:
        ap.error(f"--threads must be at least 1, got {a.threads}")
    if a.threads == 1:  # the tokenizer's own thread pool would take the second core
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(k, str(a.threads))
    run(a.data, a.cache, threads=a.threads, seconds=a.seconds, max_texts=a.max_texts, batch_tokens=a.batch_tokens)


if __name__ == "__main__":
    main()
