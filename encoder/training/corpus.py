"""Step 1: build the training corpus (WordNet glosses + examples + lemmas, GCIDE definitions, Brown).

Deduplicated (case- and space-insensitive), shuffled with a fixed seed, written to
``<cache>/encoder/corpus.txt`` (outside the repository; GCIDE text is GPL and must not be committed).
The evaluation words and synsets (evalsets.held_out) are removed.

    python -m encoder.training.corpus
"""
from __future__ import annotations

import argparse
import json
import random
import re

from tqdm import tqdm

from . import evalsets, sources
from .common import CORPUS_FILE, SEED, WORK


def build(max_texts: int | None = None) -> dict:
    held = evalsets.held_out()
    words, def_lemmas, synsets, texts_out = held["words"], held["def_lemmas"], held["synsets"], held["texts"]
    items: list[tuple[str, str]] = []  # (source, text)
    for ss in tqdm(sources.read_wordnet(), desc="wordnet", mininterval=2):
        if ss.key in synsets:
            continue
        items.append(("wordnet-gloss", ss.gloss))
        items.extend(("wordnet-example", e) for e in ss.examples)
        for lem in ss.lemmas:
            if lem.lower() not in words:
                items.append(("wordnet-lemma", lem))
    for e in tqdm(sources.read_gcide(), desc="gcide", mininterval=2):
        if e.headword.lower() in def_lemmas or e.wordnet_copy:
            continue
        items.extend(("gcide", s) for s in e.senses)
    items.extend(("brown", s) for s in sources.read_brown())

    seen = set(texts_out)
    out: list[tuple[str, str]] = []
    for src, t in items:
        t = re.sub(r"\s+", " ", t).strip()
        k = evalsets.norm(t)
        if not t or k in seen:
            continue
        seen.add(k)
        out.append((src, t))
    random.Random(SEED).shuffle(out)
    if max_texts:
        out = out[:max_texts]
    WORK.mkdir(parents=True, exist_ok=True)
    tmp = CORPUS_FILE.with_suffix(".tmp")
    tmp.write_text("".join(t + "\n" for _, t in out), encoding="utf-8")
    tmp.replace(CORPUS_FILE)
    stats: dict = {"texts": len(out)}
    for src, _ in out:
        stats[src] = stats.get(src, 0) + 1
    (WORK / "corpus_stats.json").write_text(json.dumps(stats, indent=1))
    return stats


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-texts", type=int, default=None)
    a = ap.parse_args(argv)
    print(json.dumps(build(a.max_texts)))


if __name__ == "__main__":
    main()
