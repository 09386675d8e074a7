"""Step 1: build the training corpus (WordNet glosses + examples + lemmas, GCIDE definitions, Brown).

Deduplicated (case- and space-insensitive), shuffled with a fixed seed, written to
``<cache>/encoder/corpus.txt`` (outside the repository; GCIDE text is GPL and must not be committed).
The evaluation words and synsets (evalsets.held_out) are removed.

    python -m encoder.training.corpus
    python -m encoder.training.corpus --v2     # issue 10: see corpus2.py
"""
from __future__ import annotations

import argparse
import json
import random
import re

from tqdm import tqdm

from . import evalsets, sources
from .common import CORPUS_FILE, SEED, WORK


def collect_short() -> list[tuple[str, str]]:
    """(domain, text) of the v1 short texts (wordnet, gcide, brown), evaluation words and synsets removed,
    deduplicated, in source order."""
    return [(src.split("-")[0], t) for src, t in _short_items()]


def _short_items() -> list[tuple[str, str]]:
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
    return out


def build(max_texts: int | None = None) -> dict:
    out = _short_items()
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
    ap.add_argument("--max-texts", type=int, default=None, help="keep only this many texts (v1 corpus)")
    ap.add_argument("--v2", action="store_true",
                    help="build the v2 text of issue 10 (documentation passages, pairs, eval2 sets); see corpus2.py")
    a = ap.parse_args(argv)
    if a.v2:
        from . import corpus2

        stats = corpus2.build(WORK)
        print(json.dumps({k: v for k, v in stats.items() if k != "eval2"}))
        return
    print(json.dumps(build(a.max_texts)))


if __name__ == "__main__":
    main()
