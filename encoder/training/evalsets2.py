"""Held-out retrieval sets over technical documentation (issue 10), written by ``corpus2.build``.

Under ``<cache>/encoder/eval2/``, for each set NAME:

* ``NAME.queries.jsonl``  ``{"id": "q0", "text": "...", "positive": "p17"}``
* ``NAME.passages.jsonl`` ``{"id": "p17", "text": "..."}`` (the pool: every positive, then passages of
  the same documentation family, up to ``POOL_SIZE``)
* ``index.json``          the sets, their sizes and what they test

Sets: ``perlfaq`` and ``debian-faq`` (the held-out third of the questions -> the first passage of the
answer), ``gitfaq`` (all of it), ``headings`` (section heading -> first passage of the section, in the
held-out 5% of the manuals), ``man-name`` (a man page's NAME line -> the first passage of its
DESCRIPTION, held-out pages) and ``jargon`` (headword -> definition, held-out entries). No query
and no positive appears in the training text (corpus2 drops every held-out text from it); the pool's
other passages are of the same family and may be training text.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from .evalsets import RetrievalSet

POOL_SIZE = 5000
MAX_QUERIES = 1000
SEED = 4242
MANUALS = ("perl", "git", "postgres", "node", "go", "kernel", "debian-ref")
SETS = {
    # name: (pair kind, query domains, pool family domains, what)
    "perlfaq": ("faq", ("perl",), ("perl",), "perlfaq question -> its answer, among Perl manual passages"),
    "debian-faq": ("faq", ("debian-faq",), ("debian-faq", "debian-ref"),
                   "Debian FAQ question -> its answer, among Debian FAQ and Reference passages"),
    "gitfaq": ("faq", ("git",), ("git",), "gitfaq question -> its answer, among git manual passages"),
    "headings": ("heading", MANUALS, MANUALS, "section heading -> its section, held-out manual documents"),
    "man-name": ("man", ("man",), ("man",), "man page NAME line -> its DESCRIPTION, held-out pages"),
    "jargon": ("jargon", ("jargon",), ("jargon",), "Jargon File headword -> its definition"),
}


def write_sets(out: Path, held_units, family_train: dict[str, list[int]], entries, log=print) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    stats = {}
    index = {}
    for name, (kind, qdoms, fam, what) in SETS.items():
        rng = random.Random(f"{SEED}-{name}")
        queries: list[tuple[str, str]] = []  # (query, positive text)
        related: set[str] = set()  # other passages of a held-out answer: neither gold nor distractor
        held_pool: list[str] = []
        for u in held_units:
            if u.domain in fam and kind != "faq":
                held_pool.extend(t for t, _ in u.passages)
            if u.domain not in qdoms:
                continue
            for a, i, k in u.pairs:
                if k != kind:
                    continue
                queries.append((a, u.passages[i][0]))
                if k == "faq":
                    related.update(t for j, (t, _) in enumerate(u.passages) if j != i)
        seen_q: set[str] = set()
        uniq = []
        for q, p in queries:
            if q.lower() not in seen_q:
                seen_q.add(q.lower())
                uniq.append((q, p))
        queries = uniq
        rng.shuffle(queries)
        queries = queries[:MAX_QUERIES]
        if not queries:
            log(f"[evalsets2] {name}: no queries (package missing?)")
            continue
        pool: list[str] = []
        pid: dict[str, int] = {}

        def put(t: str) -> None:
            if t not in pid and len(pool) < POOL_SIZE:
                pid[t] = len(pool)
                pool.append(t)

        for _, p in queries:
            put(p)
        rng.shuffle(held_pool)
        for t in held_pool:
            if t not in related:
                put(t)
        train = [entries[i][0] for d in fam for i in family_train.get(d, [])]
        rng.shuffle(train)
        for t in train:
            if len(pool) >= POOL_SIZE:
                break
            if t not in related:
                put(t)
        order = list(range(len(pool)))
        rng.shuffle(order)  # positives are not at the front
        new = {old: f"p{k}" for k, old in enumerate(order)}
        with open(out / f"{name}.passages.jsonl", "w", encoding="utf-8") as fh:
            for k, old in enumerate(order):
                fh.write(json.dumps({"id": f"p{k}", "text": pool[old]}) + "\n")
        with open(out / f"{name}.queries.jsonl", "w", encoding="utf-8") as fh:
            for k, (q, p) in enumerate(queries):
                fh.write(json.dumps({"id": f"q{k}", "text": q, "positive": new[pid[p]]}) + "\n")
        stats[name] = {"queries": len(queries), "pool": len(pool)}
        index[name] = {"what": what, **stats[name]}
        log(f"[evalsets2] {name}: {len(queries)} queries, {len(pool)} passages")
    (out / "index.json").write_text(json.dumps(index, indent=1))
    return stats


def load(eval_dir: Path, name: str) -> RetrievalSet:
    """Read one set as a RetrievalSet (docs in pool order, gold = index of each query's positive)."""
    docs, ids = [], {}
    for ln in open(eval_dir / f"{name}.passages.jsonl", encoding="utf-8"):
        r = json.loads(ln)
        ids[r["id"]] = len(docs)
        docs.append(r["text"])
    qs, gold = [], []
    for ln in open(eval_dir / f"{name}.queries.jsonl", encoding="utf-8"):
        r = json.loads(ln)
        qs.append(r["text"])
        gold.append(ids[r["positive"]])
    return RetrievalSet(name, qs, docs, gold)


def available(eval_dir: Path) -> list[str]:
    p = eval_dir / "index.json"
    if not p.exists():
        return []
    return [n for n in json.loads(p.read_text()) if (eval_dir / f"{n}.queries.jsonl").exists()]
