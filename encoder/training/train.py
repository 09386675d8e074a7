"""Step 3: train the student to reproduce the teacher's vectors (distillation).

Loss = mean(1 - cos(student, teacher)) + CONTRAST_W * in-batch InfoNCE(student, teacher, tau).
Batches are length-bucketed (texts sorted by token count, cut into batches, batches shuffled with a
fixed seed). Chunk 0 of the teacher cache is held out for validation and the export parity check.
Weights are saved to <cache>/encoder/checkpoints/ every --save-every steps and at the end.

    python -m encoder.training.train --steps 12000
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
from tqdm import tqdm

from .common import CHECKPOINT_DIR, CHUNK, SEED, one_core, read_corpus, seed_everything, teacher_tokenizer_path
from .student import StudentConfig, build_model, encode_ids, make_tokenizer, pad
from .teacher import available_chunks, chunk_path

CONTRAST_W = 0.1
TAU = 0.05


def load_data(max_chunks: int | None = None):
    chunks = available_chunks()
    if max_chunks:
        chunks = chunks[:max_chunks]
    if len(chunks) < 2:
        raise SystemExit("need at least 2 teacher chunks (run: python -m encoder.training.teacher)")
    texts = read_corpus()
    n = len(chunks) * CHUNK
    vecs = np.concatenate([np.load(chunk_path(i)) for i in chunks]).astype(np.float32)
    texts = texts[:len(vecs)]
    assert len(texts) == len(vecs) <= n
    return texts[CHUNK:], vecs[CHUNK:], texts[:CHUNK], vecs[:CHUNK]


def make_batches(lengths: np.ndarray, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
    # sort by length with random tie-breaking, cut into batches, shuffle the batches
    order = np.lexsort((rng.random(len(lengths)), lengths))
    bs = [order[i:i + batch] for i in range(0, len(order), batch)]
    rng.shuffle(bs)
    return bs


def train_model(model, ids: list[np.ndarray], targets: np.ndarray, *, steps: int, batch: int = 128,
                lr: float = 2e-3, warmup: int = 200, seed: int = SEED, val=None, log_every: int = 200,
                save_every: int = 0, save_path=None, contrast_w: float = CONTRAST_W, desc: str = "train"):
    import tensorflow as tf
    import tf_keras as keras

    schedule = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=max(1, steps - warmup), alpha=0.05,
                                                      warmup_target=lr, warmup_steps=warmup)
    opt = keras.optimizers.Adam(learning_rate=schedule, clipnorm=1.0)
    tau = tf.constant(TAU)
    cw = tf.constant(contrast_w)

    @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None, None), tf.float32)],
                 reduce_retracing=True)
    def step(x, t):
        with tf.GradientTape() as tape:
            s = model(x, training=True)
            cos = tf.reduce_sum(s * t, axis=-1)
            l_cos = tf.reduce_mean(1.0 - cos)
            logits = tf.matmul(s, t, transpose_b=True) / tau
            labels = tf.range(tf.shape(s)[0])
            l_con = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
            loss = l_cos + cw * l_con
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss, tf.reduce_mean(cos)

    rng = np.random.default_rng(seed)
    lengths = np.array([len(s) for s in ids])
    batches: list[np.ndarray] = []
    history = []
    t0 = time.time()
    ema = None
    bar = tqdm(range(steps), desc=desc, mininterval=5)
    for it in bar:
        if not batches:
            batches = make_batches(lengths, batch, rng)
        b = batches.pop()
        loss, cos = step(pad([ids[i] for i in b]), targets[b])
        c = float(cos)
        ema = c if ema is None else 0.98 * ema + 0.02 * c
        if (it + 1) % log_every == 0 or it + 1 == steps:
            rec = {"step": it + 1, "loss": round(float(loss), 4), "train_cos_ema": round(ema, 4),
                   "elapsed_s": round(time.time() - t0, 1)}
            if val is not None and ((it + 1) % (log_every * 5) == 0 or it + 1 == steps):
                rec["val_cos"] = round(evaluate_cos(model, *val), 4)
            history.append(rec)
            bar.set_postfix(cos=f"{ema:.3f}")
            tqdm.write(json.dumps(rec))
        if save_every and save_path and (it + 1) % save_every == 0:
            model.save_weights(str(save_path))
    if save_path:
        model.save_weights(str(save_path))
    return history


def evaluate_cos(model, ids: list[np.ndarray], targets: np.ndarray, batch: int = 256) -> float:
    order = np.argsort([len(s) for s in ids], kind="stable")
    out = np.zeros(len(ids), dtype=np.float64)
    for i in range(0, len(order), batch):
        b = order[i:i + batch]
        s = model(pad([ids[j] for j in b]), training=False).numpy()
        out[b] = (s * targets[b]).sum(-1)
    return float(out.mean())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=12000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--max-chunks", type=int, default=None, help="use only the first N teacher chunks")
    ap.add_argument("--emb", type=int, default=StudentConfig.emb)
    ap.add_argument("--hidden", type=int, default=StudentConfig.hidden)
    a = ap.parse_args(argv)
    run(a.steps, a.batch, a.lr, a.max_chunks, a.emb, a.hidden)


def run(steps=12000, batch=128, lr=2e-3, max_chunks=None, emb=StudentConfig.emb, hidden=StudentConfig.hidden):
    one_core()
    seed_everything()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tr_texts, tr_vecs, va_texts, va_vecs = load_data(max_chunks)
    tok = make_tokenizer(teacher_tokenizer_path())
    cfg = StudentConfig(vocab_size=tok.get_vocab_size(), emb=emb, hidden=hidden)
    print(f"train texts {len(tr_texts)}, validation texts {len(va_texts)}, config {cfg.to_dict()}")
    tr_ids = encode_ids(tok, tr_texts)
    va_ids = encode_ids(tok, va_texts)
    model = build_model(cfg, seed=SEED)
    CHECKPOINT_DIR.mkdir(parents=True, exist_ok=True)
    ckpt = CHECKPOINT_DIR / "student.weights.h5"
    hist = train_model(model, tr_ids, tr_vecs, steps=steps, batch=batch, lr=lr, val=(va_ids, va_vecs),
                       save_every=500, save_path=ckpt)
    info = {"config": cfg.to_dict(), "steps": steps, "chunks": max_chunks or len(available_chunks()), "batch": batch, "lr": lr, "train_texts": len(tr_texts),
            "val_texts": len(va_texts), "history": hist, "val_cos": hist[-1].get("val_cos"),
            "contrast_weight": CONTRAST_W, "tau": TAU, "seed": SEED}
    (CHECKPOINT_DIR / "train_info.json").write_text(json.dumps(info, indent=1))
    print("saved", ckpt)
    return info


if __name__ == "__main__":
    main()
