"""Run-time text encoder: tokenizer + one shared onnxruntime session (numpy, onnxruntime, tokenizers only).

Text handling (documented contract):
* any Unicode string is accepted; the tokenizer lower-cases, strips accents and splits into WordPiece
  pieces; characters outside the vocabulary become [UNK];
* window: a text is cut to its first ``max_tokens`` tokens, [CLS] and [SEP] included, i.e. the
  first ``max_tokens - 2`` word pieces (about 190 English words for the shipped model's 256 tokens);
  the rest is ignored. The window is a property of the model, read from its model.json
  (``window_tokens``; ``max_tokens`` in older layouts). ``embed(texts, truncated=[])`` reports
  which texts were cut, so that callers can say so (never a silent truncation);
* the empty string (or whitespace only) encodes as "[CLS] [SEP]" and gets that fixed unit vector;
* output: float32 (n, dim), each row L2-normalised (unit norm), deterministic: the same text gives
  bitwise the same vector whatever the batch it is computed in, the calling thread or the process
  (see ``TextEncoder._compute``).

Batching: ``embed`` groups its texts by token count and runs each group in batches of at most
``batch_size`` (exact-length buckets: no padding at all), then restores the caller's order. Concurrent callers
of the same encoder are merged by a small micro-batching queue (one worker thread) so that many
small requests share batches; results are identical either way.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# No telemetry (README). A bare `import onnxruntime` (1.32 on Linux) writes a device id and an
# event store under $XDG_CACHE_HOME or ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ (the
# executable's path, the OS, the network type), inside the data directory under the systemd
# unit. disable_telemetry_events() comes too late to stop that; this variable, read when the
# library loads, does (any other value, "0" included, leaves it on). Set here, before the
# only run-time import of onnxruntime (TextEncoder), for the server and embedded use alike.
# tokenizers and grpcio send nothing; huggingface_hub (which has telemetry) is never imported.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

MODELS_DIR = Path(__file__).resolve().parent / "models"
# New collections take the default; a collection pins the model it was made with, so collections of
# vectord-gru-mini (the default before it) keep embedding with it (encoder/training/RUNS.md compares the two).
DEFAULT_MODEL = "vectord-gru-base"


class EncoderError(Exception):
    """The model cannot be loaded or used (unknown name, missing or damaged file, bad input)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for b in iter(lambda: fh.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def available_models() -> list[str]:
    if not MODELS_DIR.is_dir():
        return []
    return sorted(p.name for p in MODELS_DIR.iterdir() if (p / "model.json").is_file() and (p / "model.onnx").is_file())


def _check_meta(path: Path, meta) -> dict:
    """model.json's fields, checked: one clear error naming the file and the field."""
    if not isinstance(meta, dict):
        raise EncoderError(f"{path}: must hold a JSON object, got {type(meta).__name__}")
    meta = dict(meta)
    if "window_tokens" not in meta and "max_tokens" in meta:  # layouts before the field was renamed
        meta["window_tokens"] = meta["max_tokens"]
    for key in ("name", "version", "dim", "window_tokens", "sha256"):
        if key not in meta:
            raise EncoderError(f"{path}: lacks the field {key!r}")
    if not isinstance(meta["name"], str) or not meta["name"] or "/" in meta["name"] or meta["name"].startswith("."):
        raise EncoderError(f"{path}: name must be a non-empty string without '/', got {meta['name']!r}")
    for key, top in (("dim", 65536), ("window_tokens", 1 << 16)):
        value = meta[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise EncoderError(f"{path}: {key} must be an integer in 1..{top}, got {value!r}")
    if meta["window_tokens"] < 3:
        raise EncoderError(f"{path}: window_tokens must be at least 3 ([CLS], a piece, [SEP]), "
                           f"got {meta['window_tokens']}")
    sha = meta["sha256"]
    if not isinstance(sha, dict) or not all(isinstance(sha.get(f), str) for f in ("model.onnx", "tokenizer.json")):
        raise EncoderError(f"{path}: sha256 must map 'model.onnx' and 'tokenizer.json' to their hex digests, "
                           f"got {sha!r}")
    if meta.get("pooling", "mean") not in ("mean", "cls", "max", "in-graph"):
        raise EncoderError(f"{path}: pooling must be 'mean', 'cls', 'max' or 'in-graph', got {meta['pooling']!r}")
    return meta


class _Job:
    __slots__ = ("ids", "out", "done", "error")

    def __init__(self, ids: list[np.ndarray]):
        self.ids = ids
        self.out: np.ndarray | None = None
        self.done = threading.Event()
        self.error: BaseException | None = None


class TextEncoder:
    """One model: tokenizer + one shared InferenceSession. Thread-safe."""

    def __init__(self, model_dir: Path, *, threads: int = 1, batch_size: int = 64, verify: bool = True,
                 lazy: bool = False):
        """Reads model.json and checks both files' sha256 (``verify``). The tokenizer and the
        onnxruntime session are made now, or with ``lazy`` at the first call that needs them:
        a server whose collections all bring their own vectors then never pays their ~60 MiB
        (onnxruntime's import, the session, two tokenizers; benchmarks/memory_steady.py)."""
        model_dir = Path(model_dir)
        try:
            meta = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise EncoderError(f"cannot read {model_dir / 'model.json'}: {e}") from e
        meta = _check_meta(model_dir / "model.json", meta)
        for fname in ("model.onnx", "tokenizer.json"):
            p = model_dir / fname
            if not p.is_file():
                raise EncoderError(f"model {meta['name']!r}: {fname} is missing")
            if verify:
                got = _sha256(p)
                want = meta["sha256"].get(fname)
                if got != want:
                    raise EncoderError(f"model {meta['name']!r}: {fname} is damaged "
                                       f"(sha256 {got[:16]}... != {str(want)[:16]}... in model.json)")
        self.name: str = meta["name"]
        self.version: str = meta["version"]
        self.dim: int = int(meta["dim"])
        #: The window: tokens the model reads of one text, [CLS] and [SEP] included.
        self.max_tokens: int = int(meta["window_tokens"])
        self.pooling: str = meta.get("pooling", "")
        self.sha256: str = meta["sha256"]["model.onnx"]
        self.model_dir = model_dir
        self.batch_size = int(batch_size)
        self.threads = int(threads)
        self._run_lock = threading.Lock()
        self._queue: queue.Queue[_Job] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._opened = False
        if not lazy:
            self.open()

    def open(self) -> None:
        """Makes the tokenizer and the onnxruntime session (once; thread-safe).

        Raises:
            EncoderError: the tokenizer or the graph cannot be loaded (the message names the file).
        """
        if self._opened:
            return
        with self._open_lock:
            if not self._opened:
                self._open()
                self._opened = True

    def _open(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_dir = self.model_dir
        try:
            tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as e:  # noqa: BLE001 - the tokenizers library raises plain Exception
            raise EncoderError(f"model {self.name!r}: cannot load tokenizer.json: {e}") from e
        tok.no_padding()
        tok.enable_truncation(max_length=self.max_tokens, strategy="longest_first", direction="right")
        self._tok = tok
        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, self.threads)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        try:
            self._sess = ort.InferenceSession(str(model_dir / "model.onnx"), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001
            raise EncoderError(f"model {self.name!r}: onnxruntime cannot load model.onnx: {e}") from e
        # Inputs by name: the shipped GRU takes input_ids alone; an exported transformer also
        # takes attention_mask (all ones: a batch never holds padding, see _compute) and
        # token_type_ids (zeros); each in the integer type the graph declares.
        self._inputs: list[tuple[str, type, str]] = []
        for inp in self._sess.get_inputs():
            dtype = np.int64 if inp.type == "tensor(int64)" else np.int32
            if inp.name not in ("input_ids", "attention_mask", "token_type_ids") and len(self._sess.get_inputs()) > 1:
                raise EncoderError(f"model {self.name!r}: model.onnx input {inp.name!r} is not one of "
                                   "input_ids, attention_mask, token_type_ids")
            self._inputs.append((inp.name if len(self._sess.get_inputs()) > 1 else "input_ids", dtype, inp.name))
        rank = len(self._sess.get_outputs()[0].shape or [])
        if self.pooling in ("", "in-graph") and rank != 2:
            raise EncoderError(f"model {self.name!r}: model.onnx's first output has rank {rank}; "
                               "model.json must name a pooling ('mean', 'cls' or 'max') for per-token outputs")
        self._splitter = Tokenizer.from_str(tok.to_str())  # the same tokenizer, whole texts (chunk)
        self._splitter.no_truncation()

    # ------------------------------------------------------------------ public
    def identity(self) -> dict:
        return {"name": self.name, "version": self.version, "sha256": self.sha256, "dim": self.dim}

    def tokenize(self, texts: Sequence[str], *, truncated: list[int] | None = None) -> list[np.ndarray]:
        """Token ids as the model sees them (after truncation to max_tokens); ``truncated``, when
        given, is extended with the positions of the texts that were cut."""
        clean = []
        for t in texts:
            if not isinstance(t, str):
                raise EncoderError(f"texts must be str, got {type(t).__name__}")
            # lone surrogates cannot be encoded to UTF-8 by the tokenizer: replace them
            clean.append(t.encode("utf-8", "replace").decode("utf-8") if not t.isascii() else t)
        self.open()
        encodings = self._tok.encode_batch(clean)
        if truncated is not None:  # a cut text has the rest of its tokens in `overflowing`
            truncated.extend(i for i, e in enumerate(encodings) if e.overflowing)
        return [np.asarray(e.ids, dtype=np.int32) for e in encodings]

    def chunk(self, text: str, tokens: int = 0, overlap: int = 0) -> list[str]:
        """``text`` cut into chunks of at most ``tokens`` word pieces (0: the most the model
        reads, ``max_tokens - 2``), consecutive chunks sharing at least ``overlap`` pieces.

        Cuts fall on word boundaries (a word is split only when it alone is longer than
        ``tokens``), and each chunk is the slice of the original text from its first piece
        to its last (case, accents and inner spacing kept), so every chunk is embedded whole.
        A text without any piece (empty, whitespace) is one chunk: itself.
        """
        self.open()
        limit = self.max_tokens - 2
        tokens = tokens or limit
        if not 1 <= tokens <= limit:
            raise EncoderError(f"chunk tokens: must be 1..{limit} (model {self.name!r} reads {self.max_tokens} "
                               f"tokens with [CLS] and [SEP]), got {tokens}")
        if not 0 <= overlap < tokens:
            raise EncoderError(f"chunk overlap: must be 0..{tokens - 1} (less than tokens {tokens}), got {overlap}")
        if not isinstance(text, str):
            raise EncoderError(f"texts must be str, got {type(text).__name__}")
        # lone surrogates become '?' (one character for one: the offsets still index `text`)
        clean = text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")
        encoding = self._splitter.encode(clean, add_special_tokens=False)
        offsets, words = encoding.offsets, encoding.word_ids
        n = len(offsets)
        if n == 0:
            return [text]
        word_start = [i == 0 or words[i] != words[i - 1] for i in range(n)] + [True]
        chunks, start = [], 0
        while True:
            end = min(start + tokens, n)
            cut = end
            while cut > start and not word_start[cut]:  # back to the start of the word cut
                cut -= 1
            end = cut if cut > start else end
            chunks.append(text[offsets[start][0]:offsets[end - 1][1]])
            if end >= n:
                return chunks
            following = max(end - overlap, start + 1)
            back = following
            while back > start + 1 and not word_start[back]:  # more overlap, never a half word
                back -= 1
            start = back if word_start[back] else following

    def embed(self, texts: Sequence[str], *, truncated: list[int] | None = None) -> np.ndarray:
        """float32 (len(texts), dim), unit-norm rows, deterministic.

        ``truncated``, when given, is extended with the positions (in ``texts``) of the texts
        longer than the window, of which only the first ``max_tokens`` tokens were read.
        """
        if isinstance(texts, str):
            raise EncoderError("embed() takes a sequence of strings, not one string")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids = self.tokenize(texts, truncated=truncated)
        job = _Job(ids)
        self._ensure_worker()
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise EncoderError(f"embedding failed: {job.error}") from job.error
        assert job.out is not None
        return job.out

    def embed_direct(self, texts: Sequence[str], *, truncated: list[int] | None = None) -> np.ndarray:
        """Same result as embed(), computed in the calling thread (no queue)."""
        ids = self.tokenize(list(texts), truncated=truncated)
        return self._compute(ids)

    # ------------------------------------------------------------------ internals
    def _compute(self, ids: list[np.ndarray]) -> np.ndarray:
        """Run the model over token-id rows, bucketed by *exact* token count.

        Rows of one bucket have the same length, so no padding enters a batch, and a row's vector
        does not depend on which other rows share its batch: the result is bitwise identical however
        requests are split or merged (onnxruntime's single-row GEMV path rounds differently from its
        GEMM path, so a lone row is run as a pair with itself).
        """
        n = len(ids)
        out = np.empty((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        self.open()
        lengths = np.fromiter((len(s) for s in ids), dtype=np.int64, count=n)
        order = np.argsort(lengths, kind="stable")
        sorted_len = lengths[order]
        starts = np.flatnonzero(np.r_[True, sorted_len[1:] != sorted_len[:-1]])
        ends = np.r_[starts[1:], n]
        for s0, e0 in zip(starts, ends):
            for i in range(s0, e0, self.batch_size):
                b = order[i:min(i + self.batch_size, e0)]
                x = np.stack([ids[j] for j in b]) if len(b) > 1 else np.stack([ids[b[0]], ids[b[0]]])
                if x.shape[1] == 0:  # cannot happen with [CLS]/[SEP], but never feed an empty row
                    x = np.zeros((x.shape[0], 1), dtype=np.int32)
                with self._run_lock:
                    y = self._sess.run(None, self._feeds(x))[0]
                if y.ndim == 3:  # per-token outputs: pool here (no padding in the batch)
                    y = y.mean(axis=1) if self.pooling == "mean" else y[:, 0] if self.pooling == "cls" else y.max(axis=1)
                if y.shape[1] != self.dim:
                    raise EncoderError(f"model {self.name!r} makes {y.shape[1]}-d vectors; model.json says dim {self.dim}")
                out[b] = y[:len(b)]
        if not np.isfinite(out).all():  # never hand back NaN
            raise EncoderError("model produced non-finite values")
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.maximum(norms, 1e-12)
        return out

    def _feeds(self, x: np.ndarray) -> dict[str, np.ndarray]:
        feeds = {}
        for role, dtype, name in self._inputs:
            if role == "input_ids":
                feeds[name] = x.astype(dtype, copy=False)
            elif role == "attention_mask":
                feeds[name] = np.ones(x.shape, dtype)
            else:
                feeds[name] = np.zeros(x.shape, dtype)
        return feeds

    def _ensure_worker(self) -> None:
        if self._worker is not None and self._worker.is_alive():
            return
        with self._worker_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._serve, name=f"encoder-{self.name}", daemon=True)
                self._worker.start()

    def _serve(self) -> None:
        # micro-batching: take every job waiting, compute them together, hand each its rows
        while True:
            jobs = [self._queue.get()]
            total = len(jobs[0].ids)
            while total < 4 * self.batch_size:
                try:
                    j = self._queue.get_nowait()
                except queue.Empty:
                    break
                jobs.append(j)
                total += len(j.ids)
            try:
                allids = [s for j in jobs for s in j.ids]
                res = self._compute(allids)
                k = 0
                for j in jobs:
                    j.out = res[k:k + len(j.ids)].copy()
                    k += len(j.ids)
            except BaseException as e:  # noqa: BLE001 - handed to the callers
                for j in jobs:
                    j.error = e
            finally:
                for j in jobs:
                    j.done.set()


_cache: dict[str, TextEncoder] = {}
_cache_lock = threading.Lock()


def load_dir(model_dir: str | os.PathLike, *, threads: int = 1) -> TextEncoder:
    """A model laid out as the shipped ones (model.onnx, tokenizer.json, model.json), from any
    directory (the server's ``--models-dir``), loaded once per directory and shared; its files'
    sha256 are checked against model.json at that load.

    Raises:
        EncoderError: one line naming the file at fault (missing, malformed model.json, a
            sha256 that does not match, a graph onnxruntime cannot load).
    """
    key = str(Path(model_dir).resolve())
    with _cache_lock:
        enc = _cache.get(key)
        if enc is None:
            enc = TextEncoder(Path(key), threads=threads)
            _cache[key] = enc
        return enc


def load(name: str = DEFAULT_MODEL, *, threads: int = 1, lazy: bool = False) -> TextEncoder:
    """The shipped model `name`, loaded once and shared by every caller (one InferenceSession per
    model name). The sha256 of its files is checked against model.json at the first load;
    `threads` (onnxruntime intra-op threads) and `lazy` (make the session at the first embedding,
    see ``TextEncoder``) apply to that first load only."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise EncoderError(f"unknown encoder model {name!r}; available: {available_models()}")
    with _cache_lock:
        enc = _cache.get(name)
        if enc is None:
            d = MODELS_DIR / name
            if not (d / "model.json").is_file():
                raise EncoderError(f"unknown encoder model {name!r}; available: {available_models()}")
            enc = TextEncoder(d, threads=threads, lazy=lazy)
            _cache[name] = enc
        return enc
