"""Step 4: export the trained student to ONNX (tf2onnx, opset 17) and check parity.

The parity check runs TensorFlow and onnxruntime on held-out text (chunk 0 of the corpus, never
trained on), length-bucketed like the runtime, and fails the run (exit 1) if the largest absolute
difference is >= 1e-4. Writes model.onnx, tokenizer.json and a partial model.json into --out
(evaluate.py then adds the metrics and the model card).

    python -m encoder.training.export --out encoder/models/vectord-gru-mini
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from .common import CHECKPOINT_DIR, CHUNK, DEFAULT_OUT, one_core, read_corpus, teacher_tokenizer_path
from .student import StudentConfig, build_model, encode_ids, make_tokenizer, pad

OPSET = 17
PARITY_TOL = 1e-4
MODEL_NAME = "vectord-gru-mini"
MODEL_VERSION = "1.0.0"


class ParityError(RuntimeError):
    pass


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for b in iter(lambda: fh.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def to_onnx(model, path: Path) -> None:
    import tensorflow as tf
    import tf2onnx

    import onnx

    spec = (tf.TensorSpec((None, None), tf.int32, name="input_ids"),)
    path.parent.mkdir(parents=True, exist_ok=True)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    # stable public names for the run time: input "input_ids", output "embedding"
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = ["embedding" if o == old else o for o in node.output]
    proto.graph.output[0].name = "embedding"
    ops = {n.op_type for n in proto.graph.node}
    if "GRU" not in ops:
        raise RuntimeError(f"tf2onnx did not produce ONNX GRU ops (got {sorted(ops)}): the run time would be slow")
    onnx.save(proto, str(path))


def parity(model, onnx_path: Path, id_seqs: list[np.ndarray], batch: int = 64) -> float:
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # as the server does: no usage reports, ever
    import onnxruntime as ort
    from tqdm import tqdm

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    order = np.argsort([len(s) for s in id_seqs], kind="stable")
    worst = 0.0
    for i in tqdm(range(0, len(order), batch), desc="parity", mininterval=5):
        x = pad([id_seqs[j] for j in order[i:i + batch]])
        a = model(x, training=False).numpy()
        b = sess.run(None, {"input_ids": x})[0]
        worst = max(worst, float(np.abs(a - b).max()))
    # unbucketed batch too: padding must not matter
    x = pad(id_seqs[:batch])
    worst = max(worst, float(np.abs(model(x, training=False).numpy() - sess.run(None, {"input_ids": x})[0]).max()))
    return worst


# Texts whose TensorFlow vectors are kept beside the tests (tests/encoder/data/<name>.keras-reference.npz):
# CI has no TensorFlow, so it checks the shipped ONNX file against these (the parity check, repeated
# on every run; tests/encoder/test_runtime.py). Short and long, odd and empty, a question, a passage.
REFERENCE_TEXTS = [
    "", "a", "How do I reset my password?", "the act of stripping off covering",
    "A small domesticated carnivorous mammal with soft fur.", "中文文本 and emoji 😀",
    "git rebase -i HEAD~3 rewrites the last three commits",
    "What is the difference between a list and an array in Perl?",
    "The kernel schedules tasks on every CPU; each runqueue holds the tasks ready to run there. " * 6,
    "word " * 400,
]
REFERENCE_DIR = Path(__file__).resolve().parents[2] / "tests" / "encoder" / "data"


def write_reference(model, cfg: StudentConfig, tokenizer_src: Path, name: str, out_dir: Path = REFERENCE_DIR) -> Path:
    """TensorFlow's vectors of REFERENCE_TEXTS, one text at a time (no padding), for CI's parity test."""
    tok = make_tokenizer(tokenizer_src, cfg.max_tokens)
    vecs = np.concatenate([model(pad([ids]), training=False).numpy() for ids in encode_ids(tok, REFERENCE_TEXTS)])
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.keras-reference.npz"
    np.savez(path, texts=np.array(REFERENCE_TEXTS), vectors=vecs.astype(np.float32))
    return path


def export(model, cfg: StudentConfig, out: Path, tokenizer_src: Path, parity_texts: list[str],
           name: str = MODEL_NAME, version: str = MODEL_VERSION, extra: dict | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    tmp_onnx = out / "model.onnx.tmp"
    to_onnx(model, tmp_onnx)
    tok = make_tokenizer(tokenizer_src, cfg.max_tokens)
    worst = parity(model, tmp_onnx, encode_ids(tok, parity_texts))
    print(f"parity: max abs diff TF vs onnxruntime = {worst:.3g} on {len(parity_texts)} held-out texts")
    if not worst < PARITY_TOL:
        tmp_onnx.unlink(missing_ok=True)
        raise ParityError(f"parity check failed: max abs diff {worst} >= {PARITY_TOL}")
    tmp_onnx.replace(out / "model.onnx")
    tok.save(str(out / "tokenizer.json"))
    meta = {
        "name": name,
        "version": version,
        "dim": cfg.dim,
        "window_tokens": cfg.max_tokens,
        "trained_tokens": cfg.max_tokens,
        "pooling": "in-graph",
        "truncation": f"a text is cut to its first {cfg.max_tokens} WordPiece tokens ([CLS] + the first "
                      f"{cfg.max_tokens - 2} word pieces of the lower-cased text + [SEP])",
        "input": "input_ids int32 (batch, time), any time >= 1 (masked GRU); batches hold rows of one length "
                 "(no padding)",
        "output": "embedding float32 (batch, dim), unit norm",
        "opset": OPSET,
        "parity_max_abs_diff": worst,
        "architecture": cfg.to_dict(),
        "sha256": {"model.onnx": sha256(out / "model.onnx"), "tokenizer.json": sha256(out / "tokenizer.json")},
    }
    if extra:
        meta.update(extra)
    mj = out / "model.json"
    if mj.exists():  # keep metrics written by an earlier evaluation only if the weights did not change
        old = json.loads(mj.read_text())
        if old.get("sha256") == meta["sha256"] and "metrics" in old:
            meta["metrics"] = old["metrics"]
    mj.write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model directory to write")
    ap.add_argument("--weights", type=Path, default=CHECKPOINT_DIR / "student.weights.h5",
                    help="Keras weights of the student (train.py)")
    ap.add_argument("--twin", type=Path, help="student.npz of the PyTorch twin (gpu_job.py) instead of --weights")
    ap.add_argument("--parity-data", type=Path, help="with --twin: texts.txt[.xz] whose last lines are held out")
    ap.add_argument("--name", default=MODEL_NAME, help="model name written to model.json")
    ap.add_argument("--version", default=MODEL_VERSION, help="model version written to model.json")
    ap.add_argument("--parity-texts", type=int, default=CHUNK, help="held-out texts for the parity check")
    a = ap.parse_args(argv)
    if a.twin:
        run_twin(a.out, a.twin, a.parity_data, a.parity_texts, a.name, a.version)
    else:
        run(a.out, a.weights, a.parity_texts)


def run_twin(out: Path, twin: Path, parity_data: Path, parity_texts: int, name: str, version: str) -> dict:
    """Export the PyTorch twin's weights through the Keras graph (twin.py maps them exactly)."""
    one_core()
    import tensorflow as tf

    from .gpu_job import WINDOW, read_lines
    from .train_twin import load_twin_state
    from .twin import load_into_keras

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    info = json.loads(twin.with_suffix(".json").read_text())
    c = info["config"]
    cfg = StudentConfig(vocab_size=c["vocab_size"], emb=c["emb"], hidden=c["hidden"], dim=c["dim"], max_tokens=WINDOW)
    model = build_model(cfg)
    load_into_keras(model, load_twin_state(twin), cfg.hidden)
    texts = read_lines(parity_data)[-parity_texts:]  # gpu_job holds the last texts out of training
    last = info["history"][-1] if info.get("history") else {}
    extra = {"training": {"trainer": "PyTorch twin (encoder/training/twin.py), weights mapped into the Keras graph",
                          "device": info.get("device"), "steps": c["steps"], "batch": c["batch"],
                          "pair_batch": c["pair_batch"], "lr": c["lr"], "texts": info.get("texts"),
                          "pairs": info.get("pairs"), "val_cos": last.get("val_cos"), "seed": c["seed"],
                          "contrast_weight": c["contrast_w"], "pair_weight": c["pair_w"], "tau": c["tau"]}}
    try:
        meta = export(model, cfg, Path(out), teacher_tokenizer_path(), texts, name=name, version=version,
                      extra=extra)
    except ParityError as e:
        print(e, file=sys.stderr)
        raise SystemExit(1)
    print(f"reference vectors for CI: {write_reference(model, cfg, teacher_tokenizer_path(), name)}")
    print(json.dumps(meta["sha256"]))
    return meta


def run(out: Path = DEFAULT_OUT, weights: Path = CHECKPOINT_DIR / "student.weights.h5", parity_texts: int = CHUNK):
    one_core()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    info_p = CHECKPOINT_DIR / "train_info.json"
    info = json.loads(info_p.read_text()) if info_p.exists() else {}
    cfg = StudentConfig(**info["config"]) if "config" in info else StudentConfig()
    model = build_model(cfg)
    model.load_weights(str(weights))
    texts = read_corpus()[:parity_texts]  # chunk 0: held out of training
    extra = {"training": {k: info[k] for k in ("steps", "chunks", "batch", "lr", "train_texts", "val_cos", "seed",
                                               "contrast_weight", "tau") if k in info}}
    try:
        meta = export(model, cfg, Path(out), teacher_tokenizer_path(), texts, extra=extra)
    except ParityError as e:
        print(e, file=sys.stderr)
        raise SystemExit(1)
    print(json.dumps(meta["sha256"]))
    return meta


if __name__ == "__main__":
    main()
