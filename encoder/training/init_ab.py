"""A/B of the twin's initialisation on the CPU: short texts only, a few hundred steps.

Why this exists: GPU run 1 (encoder/training/RUNS.md) trained the twin from PyTorch's default
initialisation and fitted short texts far worse than the Keras-trained mini model; this script
showed the cause in minutes on a CPU, with the labels label_job.py cached for the pack:

    python -m encoder.training.init_ab --init torch --steps 300
    python -m encoder.training.init_ab --init keras --steps 300

Prints one JSON line: cosine to the teacher on 2,000 held-out short pack texts (val_short) and on
1,000 WordNet glosses of the definition-paraphrase evaluation set (def_glosses).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> None:
    import torch

    from . import evalsets
    from .evaluate import Teacher
    from .gpu_job import load_data, tokenize
    from .label_job import DEFAULT_LABEL_CACHE, cached_labels
    from .train_twin import TrainConfig, train
    from .twin import build_twin

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", choices=("keras", "torch"), default="keras",
                    help="keras: twin.keras_init (the default of build_twin); torch: PyTorch's own defaults")
    ap.add_argument("--steps", type=int, default=300, help="training steps")
    ap.add_argument("--batch", type=int, default=128, help="texts per batch")
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    ap.add_argument("--data", type=Path, default=Path(".gpu"), help="the pack (pack_job.py) the labels belong to")
    ap.add_argument("--label-cache", type=Path, default=DEFAULT_LABEL_CACHE, help="label_job.py's cache root")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    loaded = load_data(a.data)
    texts, _, val, _ = loaded
    cached = cached_labels(a.data, a.label_cache, texts, loaded=loaded)
    if cached is None:
        raise SystemExit(f"no labels for {a.data} under {a.label_cache}: run encoder.training.label_job first")
    tv, have, _ = cached
    ids = tokenize(a.data / "tokenizer.json", texts)
    short = np.setdiff1d(np.flatnonzero(have & (ids.lens <= 16)), val)
    held = np.random.default_rng(1).choice(short, 2000, replace=False)
    cfg = TrainConfig(batch=a.batch, steps=a.steps, lr=a.lr, warmup=100)
    init = None
    if a.init == "torch":  # undo keras_init: PyTorch's defaults, as GPU run 1 had them
        torch.manual_seed(cfg.seed)
        model = build_twin(cfg.vocab_size, cfg.emb, cfg.hidden, cfg.dim)
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        init = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    t0 = time.time()
    model = train(ids, tv, np.zeros((0, 2), np.int64), np.setdiff1d(short, held), held, cfg, device="cpu",
                  log=lambda _: None, init_state=init)
    glosses = list(evalsets.definition_set()[0].docs[:1000])
    want = Teacher(1).embed(glosses)
    gids = tokenize(a.data / "tokenizer.json", glosses)
    model.eval()
    with torch.no_grad():
        got = np.concatenate([model(torch.from_numpy(gids.batch(np.arange(i, min(i + 200, len(glosses)))))).numpy()
                              for i in range(0, len(glosses), 200)])
    print(json.dumps({"init": a.init, "steps": a.steps, "batch": a.batch, "lr": a.lr, "s": round(time.time() - t0),
                      "val_short": cfg.history[-1]["val_cos"],
                      "def_glosses": round(float((got * want).sum(1).mean()), 4)}))


if __name__ == "__main__":
    main()
