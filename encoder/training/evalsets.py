"""Evaluation sets with human labels, built from the installed packages (see encoder/README.md).

* definition paraphrase retrieval: for WordNet nouns with a single sense, the GCIDE (Webster 1913)
  definition is the query and the WordNet gloss is the document to find. GCIDE entries copied from
  WordNet, "See ..."/"Same as ..." cross references and definitions containing the headword are dropped.
* example to gloss: a WordNet example sentence must find the gloss of its own synset among
  ~20k distractor glosses.
* word similarity: SimLex-999 and WordSim-353 (shipped inside the gensim wheel).

The words/synsets used here are *held out* of the training text (corpus.py asks ``held_out()``).
Everything is deterministic (fixed seeds).
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from . import sources

SEED = 1234
N_DEF_QUERIES = 3000
N_EX_QUERIES = 1000
N_EX_DOCS = 20000


@dataclass
class RetrievalSet:
    name: str
    queries: list[str]
    docs: list[str]
    gold: list[int]  # index into docs for each query


def norm(s: str) -> str:
    return re.sub(r"\s+", " ", s.strip().lower())


@lru_cache(maxsize=1)
def _wordnet():
    return sources.read_wordnet()


@lru_cache(maxsize=1)
def _gcide():
    return sources.read_gcide()


@lru_cache(maxsize=1)
def _definition_candidates() -> list[tuple[str, str, str]]:
    """(lemma, synset key, gcide definition, ) for every usable single-sense noun, sorted."""
    counts = sources.wordnet_noun_sense_counts()
    gloss_of: dict[str, tuple[str, str]] = {}
    for ss in _wordnet():
        if ss.pos != "n":
            continue
        for lem in ss.lemmas:
            lw = lem.lower()
            if counts.get(lw.replace(" ", "_")) == 1 and re.fullmatch(r"[a-z]+", lw):
                gloss_of[lw] = (ss.key, ss.gloss)
    seen: set[str] = set()
    out = []
    for e in _gcide():
        hw = e.headword.lower()
        if hw in seen or hw not in gloss_of or e.wordnet_copy or not e.pos.startswith("n."):
            continue
        d = e.senses[0]
        if re.match(r"(See|Same as|Same|Alt\.|Pl\.|of)\b", d) or len(d.split()) < 4:
            continue
        if re.search(rf"\b{re.escape(hw)}", d.lower()):
            continue
        seen.add(hw)
        key, gloss = gloss_of[hw]
        out.append((hw, key, d, gloss))
    out.sort()
    return out


@lru_cache(maxsize=1)
def definition_set() -> tuple[RetrievalSet, list[str], list[str]]:
    """Returns (set, lemmas, synset keys) for the definition-paraphrase retrieval task."""
    cands = list(_definition_candidates())
    random.Random(SEED).shuffle(cands)
    chosen = cands[:N_DEF_QUERIES]
    docs: list[str] = []
    doc_idx: dict[str, int] = {}
    queries, gold = [], []
    for hw, key, d, gloss in chosen:
        if gloss not in doc_idx:
            doc_idx[gloss] = len(docs)
            docs.append(gloss)
        queries.append(d)
        gold.append(doc_idx[gloss])
    return RetrievalSet("definition-paraphrase", queries, docs, gold), [c[0] for c in chosen], [c[1] for c in chosen]


@lru_cache(maxsize=1)
def example_set() -> tuple[RetrievalSet, list[str]]:
    """Returns (set, held-out synset keys) for example -> gloss retrieval."""
    _, _, def_keys = definition_set()
    banned = set(def_keys)
    wn = [s for s in _wordnet() if s.key not in banned]
    rng = random.Random(SEED + 1)
    with_ex = [s for s in wn if s.examples]
    rng.shuffle(with_ex)
    qs = with_ex[:N_EX_QUERIES]
    qkeys = {s.key for s in qs}
    docs: list[str] = []
    doc_idx: dict[str, int] = {}
    queries, gold = [], []
    for s in qs:
        if s.gloss not in doc_idx:
            doc_idx[s.gloss] = len(docs)
            docs.append(s.gloss)
        queries.append(s.examples[0])
        gold.append(doc_idx[s.gloss])
    others = [s for s in wn if s.key not in qkeys]
    rng.shuffle(others)
    for s in others:
        if len(docs) >= N_EX_DOCS:
            break
        if s.gloss not in doc_idx:
            doc_idx[s.gloss] = len(docs)
            docs.append(s.gloss)
    return RetrievalSet("example-to-gloss", queries, docs, gold), sorted(qkeys)


def _gensim_test_data() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("gensim is needed for the SimLex/WordSim data files (pip install gensim)")
    return Path(list(spec.submodule_search_locations)[0]) / "test" / "test_data"


def word_pairs(name: str) -> list[tuple[str, str, float]]:
    fn = {"simlex999": "simlex999.txt", "wordsim353": "wordsim353.tsv"}[name]
    out = []
    for line in (_gensim_test_data() / fn).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        a, b, score = line.split("\t")[:3]
        out.append((a.strip(), b.strip(), float(score)))
    return out


def held_out() -> dict[str, set[str]]:
    """What the training corpus must not contain."""
    dset, lemmas, def_keys = definition_set()
    eset, ex_keys = example_set()
    words = set(lemmas)
    try:
        for nm in ("simlex999", "wordsim353"):
            for a, b, _ in word_pairs(nm):
                words.add(a.lower())
                words.add(b.lower())
    except RuntimeError:
        pass
    texts = {norm(t) for t in dset.queries + dset.docs + eset.queries}
    texts |= {norm(eset.docs[g]) for g in eset.gold}
    return {"words": words, "def_lemmas": set(lemmas), "synsets": set(def_keys) | set(ex_keys), "texts": texts}
