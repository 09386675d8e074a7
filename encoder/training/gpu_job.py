"""Label and train in one run: the job sent to the lent GPU machine (and the CPU pipeline's step 3).

Reads a data folder made by ``pack_job.py`` (texts.txt.xz, pairs.tsv.xz, teacher.npz,
tokenizer.json), adds the sentences of every training passage as texts of their own, tokenises
everything once (the student and the teacher share one WordPiece vocabulary and one 256-token
window), takes the labels label_job.py has cached for this pack (--label-cache; none on a lent GPU
machine), labels the other texts with the teacher (teacher_lite.py) or, with --labelled-only, leaves
them out, trains the student's twin (train_twin.py) within the time left, and writes student.npz +
student.json into --out, checkpointing as it goes so that a run stopped at its time limit still
returns its latest weights.

    python -m encoder.training.gpu_job --data .gpu --out $OUT --seconds 540
    python -m encoder.training.gpu_job --data DIR --out DIR --steps 2000 --device cpu   # slow, same code
    python -m encoder.training.label_job --data DIR --seconds 3600                      # resumable, CPU
    python -m encoder.training.gpu_job --data DIR --out DIR --steps 2000 --labelled-only
"""
from __future__ import annotations

import argparse
import lzma
import os
import re
import time
from pathlib import Path

import numpy as np

WINDOW = 256
VAL_TEXTS = 4096
_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def sentences_of(passage: str) -> list[str]:
    """The sentences of a passage worth a label of their own: 6+ words, at most 400 characters."""
    return [s for s in _SENT_END.split(passage) if len(s.split()) >= 6 and len(s) <= 400 and s != passage]


def read_lines(path: Path) -> list[str]:
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return fh.read().split("\n")[:-1]


def load_data(data: Path, max_texts: int = 0):
    texts = read_lines(data / "texts.txt.xz" if (data / "texts.txt.xz").exists() else data / "texts.txt")
    pairs_path = data / "pairs.tsv.xz" if (data / "pairs.tsv.xz").exists() else data / "pairs.tsv"
    pairs = np.array([[int(c) for c in ln.split("\t")[:2]] for ln in read_lines(pairs_path)] or
                     np.zeros((0, 2)), dtype=np.int64).reshape(-1, 2)
    if max_texts:
        texts = texts[:max_texts]
        pairs = pairs[(pairs < len(texts)).all(1)]
    in_pair = np.zeros(len(texts), dtype=bool)
    in_pair[pairs.ravel()] = True
    # validation: the last texts that belong to no pair (their sentences are not added either)
    cand = np.flatnonzero(~in_pair)
    val = cand[-min(VAL_TEXTS, len(cand) // 10):]
    is_val = np.zeros(len(texts), dtype=bool)
    is_val[val] = True
    seen = set(texts)
    extra = []
    for i, t in enumerate(texts):
        if is_val[i] or len(t) < 200:
            continue
        for s in sentences_of(t):
            if s not in seen:
                seen.add(s)
                extra.append(s)
    return texts + extra, pairs, val, len(texts)


def pair_probabilities(data: Path, pairs: np.ndarray, weights: dict[str, float]) -> np.ndarray | None:
    """How likely each of ``pairs`` (load_data's, filtered or not) is drawn into a batch: its
    source's weight (pairs.tsv's third column: faq, heading, jargon, man; 1 when not named),
    normalised; None when no weight is given (every pair once a pass)."""
    if not weights:
        return None
    pairs_path = data / "pairs.tsv.xz" if (data / "pairs.tsv.xz").exists() else data / "pairs.tsv"
    source = {}
    for ln in read_lines(pairs_path):
        cols = ln.split("\t")
        source[(int(cols[0]), int(cols[1]))] = cols[2] if len(cols) > 2 else ""
    w = np.array([weights.get(source.get((int(a), int(b)), ""), 1.0) for a, b in pairs], dtype=np.float64)
    return w / w.sum()


def tokenize(tokenizer_json: Path, texts: list[str]):
    from tokenizers import Tokenizer

    from .train_twin import Ragged

    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.no_padding()
    tok.enable_truncation(max_length=WINDOW)
    seqs = []
    for i in range(0, len(texts), 50000):
        seqs += [np.asarray(e.ids, dtype=np.int32) for e in tok.encode_batch(texts[i:i + 50000])]
    return Ragged(seqs)


def label(teacher, ids, device: str, batch_tokens: int, log, rows: np.ndarray | None = None,
          out: np.ndarray | None = None) -> np.ndarray:
    """Teacher vectors for the sequences `rows` (default all) into out, in length-sorted batches (bf16 on a GPU)."""
    import torch

    rows = np.arange(len(ids)) if rows is None else np.asarray(rows, dtype=np.int64)
    order = rows[np.argsort(ids.lens[rows], kind="stable")]
    out = np.zeros((len(ids), 384), dtype=np.float32) if out is None else out
    i = 0
    t0 = time.time()
    with torch.inference_mode():
        while i < len(order):
            n = max(1, batch_tokens // max(1, int(ids.lens[order[min(i + 255, len(order) - 1)]])))
            idx = order[i:i + n]
            x = torch.from_numpy(ids.batch(idx)).to(device)
            if device.startswith("cuda"):
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    v = teacher(x, x != 0)
            else:
                v = teacher(x, x != 0)
            out[idx] = v.float().cpu().numpy()
            i += len(idx)
    log(f"labelled {len(rows)} texts in {time.time() - t0:.1f} s")
    return out


def main(argv=None) -> None:
    from . import teacher_lite
    from .label_job import DEFAULT_LABEL_CACHE, cached_labels
    from .train_twin import TrainConfig, save_twin, train

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="folder made by pack_job.py")
    ap.add_argument("--out", type=Path, required=True, help="where student.npz and student.json go")
    ap.add_argument("--seconds", type=float, default=0, help="total time budget of this run (labelling included)")
    ap.add_argument("--steps", type=int, default=0, help="fixed number of training steps instead of a time budget")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--max-texts", type=int, default=0, help="use only the first N texts (smoke runs)")
    ap.add_argument("--hidden", type=int, default=TrainConfig.hidden, help="GRU units per direction")
    ap.add_argument("--emb", type=int, default=TrainConfig.emb, help="token embedding width")
    ap.add_argument("--batch", type=int, default=TrainConfig.batch, help="texts per distillation batch")
    ap.add_argument("--pair-batch", type=int, default=TrainConfig.pair_batch, help="source pairs per batch")
    ap.add_argument("--pair-weight", action="append", default=[], metavar="SOURCE=W",
                    help="draw the pairs of one source W times as often as the others (repeatable; sources: faq, "
                         "heading, jargon, man); e.g. faq=8: FAQ questions are 1.3%% of the pairs")
    ap.add_argument("--label-cache", type=Path, default=DEFAULT_LABEL_CACHE,
                    help="root of label_job.py's cache: labels found there are used, only the rest is labelled "
                         "(absent on a lent GPU machine: everything is labelled there)")
    ap.add_argument("--resume", type=Path, default=None,
                    help="an earlier run's student.npz: continue its training from the step its student.json "
                         "names (with --steps, the whole schedule's length; with --seconds too, this run stops "
                         "when its time is up and the next --resume continues)")
    ap.add_argument("--labelled-only", action="store_true",
                    help="train on the cached labels only (no teacher run): texts, pairs and validation texts "
                         "without a label are left out")
    a = ap.parse_args(argv)
    if not a.steps and not a.seconds:
        ap.error("give --steps or --seconds")
    try:
        weights = {k: float(v) for k, v in (item.split("=", 1) for item in a.pair_weight)}
    except ValueError:
        ap.error(f"--pair-weight: expected SOURCE=W, got {a.pair_weight}")
    if any(w <= 0 for w in weights.values()):
        ap.error(f"--pair-weight: weights must be > 0, got {weights}")
    import torch

    t0 = time.time()
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    a.out.mkdir(parents=True, exist_ok=True)
    logf = open(a.out / "job.log", "a")

    def log(msg):
        line = f"[{time.time() - t0:7.1f}s] {msg}"
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    log(f"device {device} ({torch.cuda.get_device_name(0) if device == 'cuda' else os.cpu_count()} )")
    texts, pairs, val, n_base = load_data(a.data, a.max_texts)
    log(f"{n_base} texts + {len(texts) - n_base} passage sentences = {len(texts)}; {len(pairs)} pairs; "
        f"{len(val)} held out for validation")
    ids = tokenize(a.data / "tokenizer.json", texts)
    log(f"tokenised: {int(ids.lens.sum())} tokens, mean {ids.lens.mean():.1f}, "
        f"{int((ids.lens >= WINDOW).sum())} at the {WINDOW}-token window")
    tv, have = np.zeros((len(texts), 384), dtype=np.float32), np.zeros(len(texts), dtype=bool)
    cached = None
    if a.label_cache and a.label_cache.is_dir():
        cached = cached_labels(a.data, a.label_cache, texts,
                               loaded=None if a.max_texts else (texts, pairs, val, n_base))
    if cached is not None:
        tv, have, where = cached
        log(f"label cache {where}: {int(have.sum())} of {len(texts)} texts labelled")
    else:
        log(f"no labels cached for this pack under {a.label_cache}")
    if a.labelled_only:
        if not have.any():
            ap.error(f"--labelled-only: no cached labels for {a.data} under {a.label_cache} "
                     "(run python -m encoder.training.label_job first)")
        n_all = (len(texts), len(pairs), len(val))
        val = val[have[val]]
        pairs = pairs[have[pairs].all(1)]
        log(f"--labelled-only: training on {int(have.sum())} of {n_all[0]} texts, {len(pairs)} of {n_all[1]} "
            f"pairs, {len(val)} of {n_all[2]} validation texts")
    elif not have.all():
        missing = np.flatnonzero(~have)
        teacher = teacher_lite.build(teacher_lite.unpack(dict(np.load(a.data / "teacher.npz"))), device=device)
        label(teacher, ids, device, 262144 if device == "cuda" else 8192, log, rows=missing, out=tv)
        have[:] = True
        if device == "cuda":  # how close are the bf16 labels to fp32 ones, on a sample
            import torch as _t

            s = missing[np.arange(0, len(missing), max(1, len(missing) // 2048))]
            with _t.inference_mode():
                x = _t.from_numpy(ids.batch(s)).to(device)
                ref = teacher(x, x != 0).float().cpu().numpy()
            log(f"bf16 vs fp32 teacher labels on {len(s)} texts: mean cos {(ref * tv[s]).sum(1).mean():.5f}")
        del teacher
    train_idx = np.setdiff1d(np.flatnonzero(have), val)
    cfg = TrainConfig(hidden=a.hidden, emb=a.emb, batch=a.batch, pair_batch=a.pair_batch, steps=a.steps,
                      seconds=max(30.0, a.seconds - (time.time() - t0) - 25) if a.seconds else 0)
    extra = {"texts": len(texts), "base_texts": n_base, "pairs": int(len(pairs)), "val_texts": int(len(val)),
             "labelled_texts": int(have.sum()), "device": device, "pair_weights": weights}
    pair_p = pair_probabilities(a.data, pairs, weights)
    if pair_p is not None:
        log(f"pairs drawn by source weight {weights}")

    def checkpoint(model, step):
        save_twin(model, cfg, a.out / "student.npz", {**extra, "checkpoint_step": step})
        log(f"checkpoint at step {step}")

    init_state, start_step = None, 0
    if a.resume is not None:
        import json

        from .train_twin import load_twin_state

        before = json.loads(a.resume.with_suffix(".json").read_text())
        init_state = load_twin_state(a.resume)
        start_step = int(before.get("checkpoint_step", before["config"]["steps"]))
        log(f"resuming {a.resume} at step {start_step}")
    model = train(ids, tv, pairs, train_idx, val, cfg, device=device, log=log, checkpoint=checkpoint,
                  init_state=init_state, start_step=start_step, pair_p=pair_p)
    save_twin(model, cfg, a.out / "student.npz", {**extra, "seconds": round(time.time() - t0, 1),
                                                  "checkpoint_step": cfg.steps})
    log(f"done: {cfg.steps} steps, final {cfg.history[-1] if cfg.history else ''}")


if __name__ == "__main__":
    main()
