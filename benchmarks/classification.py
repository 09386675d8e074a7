"""kNN classification with ``Collection.classify`` against a logistic-regression baseline.

    python benchmarks/classification.py [--per-class 300] [--seed 0]

Data: WordNet 3.0 noun glosses (``apt-get install -y wordnet-base``), labelled by their
lexicographer file (noun.animal, noun.food, noun.artifact, ... : 25 classes, noun.Tops left
out). Each synset's definition (the gloss before its first quoted example) is one text; at
most ``--per-class`` per class are drawn at random (seeded), then split 80/20, stratified.

Both methods see the same vectors: the built-in encoder's (the training records are
embedded by the collection on ``add``; the test texts are classified by text, which the
collection embeds with the same model, bit for bit). kNN: ``classify(texts=..., k=K)`` for
several K (distance-weighted vote, see storage/classify.py). Baseline: scikit-learn's
``LogisticRegression`` (lbfgs, C=1 and C=10, max_iter 3000) on the train vectors.

Caveat: the encoder was distilled on WordNet glosses among other texts (never on their
lexicographer labels), so its vectors know these texts; both methods share that advantage.

Writes ``benchmarks/results/classification-<date>.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

WORDNET = Path("/usr/share/wordnet/data.noun")
RESULTS = Path(__file__).resolve().parent / "results"
#: Lexicographer file numbers of nouns (WordNet's lexnames), 04..28; 03 (noun.Tops) is left out.
LEXNAMES = {4: "act", 5: "animal", 6: "artifact", 7: "attribute", 8: "body", 9: "cognition",
            10: "communication", 11: "event", 12: "feeling", 13: "food", 14: "group", 15: "location",
            16: "motive", 17: "object", 18: "person", 19: "phenomenon", 20: "plant", 21: "possession",
            22: "process", 23: "quantity", 24: "relation", 25: "shape", 26: "state", 27: "substance",
            28: "time"}
K_VALUES = (1, 5, 10, 25)


def read_glosses() -> dict[str, list[str]]:
    """Definitions by lexicographer class, in file order."""
    if not WORDNET.exists():
        sys.exit(f"{WORDNET} is missing: apt-get install -y wordnet-base")
    by_class: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    with open(WORDNET, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("  "):  # the licence header
                continue
            fields, _, gloss = line.partition(" | ")
            lexfile = int(fields.split()[1])
            definition = gloss.split('; "')[0].strip().rstrip(";").strip()
            if lexfile in LEXNAMES and len(definition.split()) >= 3 and definition not in seen:
                seen.add(definition)
                by_class[f"noun.{LEXNAMES[lexfile]}"].append(definition)
    return by_class


def split(by_class: dict[str, list[str]], per_class: int, seed: int):
    rng = random.Random(seed)
    train, test = [], []
    for label in sorted(by_class):
        texts = list(by_class[label])
        rng.shuffle(texts)
        texts = texts[:per_class]
        cut = int(len(texts) * 0.8)
        train += [(t, label) for t in texts[:cut]]
        test += [(t, label) for t in texts[cut:]]
    return train, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression

    import vectord

    train, test = split(read_glosses(), args.per_class, args.seed)
    labels = sorted({label for _, label in train})
    print(f"{len(train)} train, {len(test)} test texts, {len(labels)} classes", file=sys.stderr)
    figures: dict = {"train": len(train), "test": len(test), "classes": len(labels),
                     "per_class": args.per_class, "seed": args.seed,
                     "class_counts_test": dict(Counter(label for _, label in test))}
    with vectord.Client() as client:  # in memory: the engine and servicers, no socket
        collection = client.create_collection("wordnet-nouns")  # the built-in encoder
        started = time.perf_counter()
        for lo in range(0, len(train), 1000):
            part = train[lo:lo + 1000]
            collection.add(ids=[f"t{lo + i}" for i in range(len(part))], documents=[t for t, _ in part],
                           metadatas=[{"label": label} for _, label in part])
        figures["embed_train_s"] = time.perf_counter() - started
        stored = collection.get(ids=[f"t{i}" for i in range(len(train))], include=["embeddings", "metadatas"])
        x_train = np.asarray(stored["embeddings"])
        y_train = [m["label"] for m in stored["metadatas"]]
        test_texts, y_test = [t for t, _ in test], [label for _, label in test]
        x_test = client.embed(test_texts)
        knn = {}
        for k in K_VALUES:
            started = time.perf_counter()
            results = collection.classify(texts=test_texts, label_key="label", k=k)
            elapsed = time.perf_counter() - started
            accuracy = float(np.mean([r["label"] == y for r, y in zip(results, y_test)]))
            knn[k] = {"accuracy": accuracy, "seconds": elapsed, "per_text_ms": 1000 * elapsed / len(test)}
            print(f"kNN k={k}: accuracy {accuracy:.4f}", file=sys.stderr)
        # the same vectors, given as embeddings: the answers must not change
        same = collection.classify(embeddings=x_test, label_key="label", k=10)
        figures["vectors_agree_with_texts"] = [r["label"] for r in same] == [
            r["label"] for r in collection.classify(texts=test_texts, label_key="label", k=10)]
    figures["knn"] = knn
    logistic = {}
    for c in (1.0, 10.0):
        started = time.perf_counter()
        model = LogisticRegression(C=c, max_iter=3000).fit(x_train, y_train)
        fit_s = time.perf_counter() - started
        accuracy = float(np.mean(model.predict(x_test) == np.asarray(y_test)))
        logistic[str(c)] = {"accuracy": accuracy, "fit_seconds": fit_s}
        print(f"logistic regression C={c}: accuracy {accuracy:.4f}", file=sys.stderr)
    figures["logistic_regression"] = logistic
    figures["majority_class"] = max(Counter(y_test).values()) / len(y_test)
    machine = (f"{platform.machine()}, {os.cpu_count()} cores (shared with other work), Python "
               f"{platform.python_version()}, {platform.platform()}")
    figures["machine"] = machine
    today = dt.date.today().isoformat()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"classification-{today}.json").write_text(json.dumps(figures, indent=1) + "\n")
    best_knn = max(knn.items(), key=lambda kv: kv[1]["accuracy"])
    best_lr = max(logistic.items(), key=lambda kv: kv[1]["accuracy"])
    rows = "\n".join(f"| kNN `classify`, k={k} | {v['accuracy']:.3f} | {v['per_text_ms']:.2f} ms per text |"
                     for k, v in knn.items())
    rows += "\n" + "\n".join(f"| logistic regression, C={c} | {v['accuracy']:.3f} | fit {v['fit_seconds']:.1f} s |"
                             for c, v in logistic.items())
    (out / f"classification-{today}.md").write_text(f"""# kNN classification vs logistic regression, {today}

Command: `python benchmarks/classification.py --per-class {args.per_class} --seed {args.seed}` (one run).
Machine: {machine}.

Data: WordNet 3.0 noun definitions labelled by lexicographer file ({len(labels)} classes:
noun.act ... noun.time, noun.Tops left out), at most {args.per_class} per class, split 80/20 per
class: {len(train)} train, {len(test)} test. Vectors: the built-in encoder (vectord-gru-mini,
384-d), the same for both methods. Majority-class accuracy: {figures['majority_class']:.3f}.

| method | test accuracy | cost |
|---|---:|---|
{rows}

Best kNN (k={best_knn[0]}): {best_knn[1]['accuracy']:.3f}; best logistic regression (C={best_lr[0]}):
{best_lr[1]['accuracy']:.3f}; difference {best_knn[1]['accuracy'] - best_lr[1]['accuracy']:+.3f}.
kNN needs no training step (a new labelled record votes at once); the per-text time includes
embedding the text on the server. Classifying by vectors instead of texts gave the same labels:
{figures['vectors_agree_with_texts']}.

Caveat: the encoder was distilled on texts that include WordNet glosses (never their labels);
both methods share that advantage.
""")
    print(f"wrote {out / f'classification-{today}.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
