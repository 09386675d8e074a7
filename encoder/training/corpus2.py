"""The v2 training text (issue 10): technical passages, FAQ pairs and the short texts of v1.

Writes, under ``<cache>/encoder/v2/`` (never into the repository):

* ``texts.txt``   one text per line, deduplicated (case/space-insensitive), shuffled with a fixed seed;
* ``pairs.tsv``   ``anchor_index<TAB>positive_index<TAB>kind`` (kind: faq, heading, man, jargon), 0-based
  indices into texts.txt;
* ``domains.txt`` the domain of each line of texts.txt;
* a stats page    counts per domain and pair kind, sizes, token-length histogram (markdown);

and the held-out evaluation sets under ``<cache>/encoder/eval2/`` (see ``evalsets2``). Held out, never
in texts.txt: a stable-hash third of the perlfaq and Debian FAQ questions (question and answer), the
whole gitfaq, and a stable-hash 5% of the other documents (every passage and heading of them).

Extraction (about four minutes) is cached per domain in ``v2/docs/``; a rerun only reassembles.

    python -m encoder.training.corpus --v2
"""
from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from . import docsources, passages
from .docsources import Doc, Section

SEED = 20261129
V2_DIR_NAME = "v2"
EVAL2_DIR_NAME = "eval2"
DOMAINS = ("perl", "debian-faq", "debian-ref", "git", "man", "jargon", "postgres", "node", "go", "kernel")
# characters of passage text per domain (the man pages alone hold ~100 MB; texts.txt stays <= ~150 MB)
DOMAIN_CHAR_CAP = {"man": 45_000_000, "kernel": 18_000_000}
MAX_FILE_BYTES = 150_000_000
HELD_DOC_MOD = 20  # 1 in 20 documents held out whole
HELD_FAQ_MOD = 3  # 1 in 3 FAQ questions held out
GENERIC_HEADINGS = {
    "name", "synopsis", "description", "options", "see also", "author", "authors", "bugs", "copyright",
    "examples", "example", "notes", "note", "files", "environment", "return value", "errors", "history",
    "license", "licence", "introduction", "overview", "parameters", "returns", "summary", "conforming to",
    "standards", "versions", "availability", "attributes", "colophon", "reporting bugs", "exit status",
    "diagnostics", "caveats", "tip", "warning", "caution", "important", "todo", "references", "footnotes",
    "contents", "table of contents", "", "acknowledgements", "acknowledgments", "credits", "git", "usage",
    "configuration", "details", "background", "syntax", "arguments", "return values", "compatibility",
}


def stable_hash(s: str) -> int:
    return int.from_bytes(hashlib.sha1(s.encode("utf-8")).digest()[:8], "big")


def norm(s: str) -> str:
    return re.sub(r"\s+", " ", s.strip().lower())


def clean_line(s: str) -> str:
    return re.sub(r"\s+", " ", s.replace("\x00", " ")).strip()


def is_faq_doc(doc: Doc) -> bool:
    return any(s.question for s in doc.sections)


def held_doc(doc: Doc) -> bool:
    if doc.doc_id == "git/gitfaq":
        return True
    if is_faq_doc(doc):
        return False  # FAQ documents are split by question instead
    return stable_hash(doc.doc_id) % HELD_DOC_MOD == 0


def held_question(q: str) -> bool:
    return stable_hash(norm(q)) % HELD_FAQ_MOD == 0


# --------------------------------------------------------------------------- extraction cache
def _docs_cache(work: Path, domain: str) -> list[Doc]:
    p = work / V2_DIR_NAME / "docs" / f"{domain}.json.gz"
    if p.exists():
        raw = json.loads(gzip.open(p).read())
        docs = [Doc(d["domain"], d["doc_id"], d["title"], [Section(**s) for s in d["sections"]], d["name_line"])
                for d in raw]
        if domain == "man":  # caches written before the rule: apply it here too
            docs = [d for d in docs if docsources.man_page_wanted(d.doc_id.rsplit("/", 1)[-1])]
        return docs
    t = time.time()
    docs = list(docsources.iter_docs({domain}))
    if domain == "man":  # caches written before the rule: apply it here too
        docs = [d for d in docs if docsources.man_page_wanted(d.doc_id.rsplit("/", 1)[-1])]
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as fh:
        json.dump([asdict(d) for d in docs], fh)
    tmp.replace(p)
    print(f"[corpus2] {domain}: {len(docs)} documents extracted in {time.time() - t:.0f}s", flush=True)
    return docs


def _clean_sections(doc: Doc) -> list[Section]:
    out = []
    for s in doc.sections:
        # tables of contents rendered as text ("2.1. Foo 2.2. Bar ...") carry no prose
        paras = [p for p in s.paragraphs if len(re.findall(r"(?:^|\s)\d+(?:\.\d+)+\.?\s", p)) < 3]
        out.append(Section(s.heading, paras, s.question))
    return out


def _doc_title(doc: Doc) -> str:
    if doc.domain in ("kernel", "node"):
        for s in doc.sections:
            if s.heading:
                return s.heading
    t = re.sub(r"^(?:Chapter |Appendix )?[\dA-Z]+(?:\.\d+)*\.\s+", "", doc.title)
    return re.sub(r"\s*(—|-)\s*PostgreSQL.*$|\s*- The Go Programming Language$", "", t).strip()


def heading_anchor(doc: Doc, heading: str) -> str | None:
    h = clean_line(heading)
    if norm(h) in GENERIC_HEADINGS or len(h) < 3 or not re.search(r"[A-Za-z]{3}", h):
        return None
    if len(h.split()) < 3:
        title = _doc_title(doc)
        if title and norm(title) != norm(h):
            h = f"{title}: {h}"
    return h


# --------------------------------------------------------------------------- units of text
class Unit:
    """One document's contribution: passages, and pairs (anchor text, index of the positive passage)."""

    __slots__ = ("domain", "passages", "pairs", "held", "kind_of")

    def __init__(self, domain: str, held: bool):
        self.domain = domain
        self.passages: list[tuple[str, int]] = []
        self.pairs: list[tuple[str, int, str]] = []  # (anchor, passage index, kind)
        self.held = held


def doc_units(doc: Doc, rng: random.Random) -> list[Unit]:
    """A held-out document is one held unit; an FAQ document gives one unit per question (held by hash)."""
    whole = Unit(doc.domain, held_doc(doc))
    units = [whole]
    secs = _clean_sections(doc)
    for idx, s in enumerate(secs):
        ps = passages.passages(s.paragraphs, rng)
        if not ps:
            continue
        if s.question:
            u = Unit(doc.domain, whole.held or held_question(s.heading))
            units.append(u)
            u.passages.extend(ps)
            u.pairs.append((clean_line(s.heading), 0, "faq"))
            continue
        base = len(whole.passages)
        whole.passages.extend(ps)
        if doc.domain == "jargon":
            whole.pairs.append((clean_line(s.heading), base, "jargon"))
        elif doc.domain == "man":
            if s.heading.upper() == "DESCRIPTION" and doc.name_line and not any(k == "man" for _, _, k in whole.pairs):
                whole.pairs.append((clean_line(doc.name_line), base, "man"))
        else:
            a = heading_anchor(doc, s.heading)
            if a and ps[0][1] >= 20:
                whole.pairs.append((a, base, "heading"))
    return [u for u in units if u.passages]


def iter_units(work: Path, log=print):
    for domain in DOMAINS:
        docs = _docs_cache(work, domain)
        rng = random.Random(f"{SEED}-{domain}")
        cap = DOMAIN_CHAR_CAP.get(domain)
        if cap:  # a fixed-seed sample of documents, man pages of sections 2, 3, 5, 7 first
            order = list(docs)
            random.Random(SEED).shuffle(order)
            if domain == "man":
                order.sort(key=lambda d: 0 if re.match(r"man/man[2357]/", d.doc_id) else 1)
        else:
            order = docs
        used = 0
        n = 0
        for doc in order:
            held = held_doc(doc)
            if cap and used > cap and not held:
                continue
            for u in doc_units(doc, rng):
                n += 1
                if not u.held:
                    used += sum(len(t) for t, _ in u.passages)
                yield u
        log(f"[corpus2] {domain}: {n} units, {used / 1e6:.1f} MB of training passages")


# --------------------------------------------------------------------------- assembly
def _hist(lengths) -> list[tuple[str, int]]:
    edges = [(1, 8), (9, 16), (17, 32), (33, 64), (65, 128), (129, 192), (193, 256), (257, 10 ** 9)]
    c = Counter()
    for n in lengths:
        for lo, hi in edges:
            if lo <= n <= hi:
                c[(lo, hi)] += 1
                break
    return [(f"{lo}-{hi}" if hi < 10 ** 9 else f">{lo - 1}", c[(lo, hi)]) for lo, hi in edges]


def build(work: Path, short_texts: list[tuple[str, str]] | None = None, max_bytes: int = MAX_FILE_BYTES,
          log=print) -> dict:
    """Build texts.txt, pairs.tsv, domains.txt, the stats page and the eval2 sets. Returns the stats."""
    from . import evalsets, evalsets2

    if short_texts is None:  # fail now, not after ten minutes: the SimLex/WordSim words must be held out
        evalsets.word_pairs("simlex999")
    t0 = time.time()
    units = list(iter_units(work, log))
    held_units = [u for u in units if u.held]
    held_norms = {norm(t) for u in held_units for t, _ in u.passages}
    held_norms |= {norm(a) for u in held_units for a, _, _ in u.pairs}

    entries: list[tuple[str, str, int]] = []  # (text, domain, tokens or -1)
    index: dict[str, int] = {}
    size = 0

    def add(text: str, domain: str, ntok: int = -1) -> int | None:
        nonlocal size
        text = clean_line(text)
        k = norm(text)
        if not text or k in held_norms:
            return None
        if k in index:
            return index[k]
        index[k] = len(entries)
        entries.append((text, domain, ntok))
        size += len(text.encode("utf-8")) + 1
        return index[k]

    pairs: set[tuple[int, int, str]] = set()
    family_train: dict[str, list[int]] = {}
    for u in units:
        if u.held:
            continue
        pidx = [add(t, u.domain, n) for t, n in u.passages]
        family_train.setdefault(u.domain, []).extend(i for i in pidx if i is not None)
        for a, i, kind in u.pairs:
            ai, pi = add(a, u.domain), pidx[i]
            if ai is not None and pi is not None and ai != pi:
                pairs.add((ai, pi, kind))
    n_doc_texts = len(entries)
    log(f"[corpus2] {n_doc_texts} document texts ({size / 1e6:.1f} MB), {len(pairs)} pairs")

    if short_texts is None:
        from .corpus import collect_short

        short_texts = collect_short()
    short = list(short_texts)
    random.Random(SEED).shuffle(short)
    dropped_short = 0
    for dom, t in short:
        if size >= max_bytes:
            dropped_short += 1
            continue
        add(t, dom)

    # shuffle with a fixed seed; indices of pairs are remapped to the shuffled order
    perm = list(range(len(entries)))
    random.Random(SEED).shuffle(perm)
    new_of = {old: new for new, old in enumerate(perm)}
    out = work / V2_DIR_NAME
    out.mkdir(parents=True, exist_ok=True)

    def write(name: str, lines) -> None:
        tmp = out / (name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for ln in lines:
                fh.write(ln + "\n")
        tmp.replace(out / name)

    write("texts.txt", (entries[o][0] for o in perm))
    write("domains.txt", (entries[o][1] for o in perm))
    pair_rows = sorted((new_of[a], new_of[p], k) for a, p, k in pairs)
    write("pairs.tsv", (f"{a}\t{p}\t{k}" for a, p, k in pair_rows))

    # token lengths (passages carry theirs; short texts and anchors counted here)
    missing = [i for i, e in enumerate(entries) if e[2] < 0]
    counts = passages.count_tokens([entries[i][0] for i in missing])
    ntok = [e[2] for e in entries]
    for i, c in zip(missing, counts):
        ntok[i] = c

    eval_stats = evalsets2.write_sets(work / EVAL2_DIR_NAME, held_units, family_train, entries, log)

    dom_count = Counter(e[1] for e in entries)
    dom_bytes = Counter()
    for e in entries:
        dom_bytes[e[1]] += len(e[0].encode("utf-8")) + 1
    kind_count = Counter(k for _, _, k in pair_rows)
    kind_dom = Counter((k, entries[perm[a]][1]) for a, _, k in pair_rows)
    stats = {"texts": len(entries), "bytes": size, "pairs": len(pair_rows), "document_texts": n_doc_texts,
             "short_texts_dropped_for_size": dropped_short, "domains": dict(dom_count),
             "pair_kinds": dict(kind_count), "eval2": eval_stats, "seconds": round(time.time() - t0)}
    (out / "stats.json").write_text(json.dumps(stats, indent=1))
    md = [f"# v2 training text\n\nBuilt by `python -m encoder.training.corpus --v2` in {stats['seconds']} s.\n",
          f"- texts.txt: {len(entries):,} lines, {size / 1e6:.1f} MB "
          f"({n_doc_texts:,} from the documentation packages, the rest short texts; "
          f"{dropped_short:,} short texts left out for size)",
          f"- pairs.tsv: {len(pair_rows):,} pairs\n",
          "| domain | texts | MB | mean tokens |", "| --- | --- | --- | --- |"]
    tok_by_dom: dict[str, list[int]] = {}
    for e, n in zip(entries, ntok):
        tok_by_dom.setdefault(e[1], []).append(n)
    for d, n in dom_count.most_common():
        ls = tok_by_dom[d]
        md.append(f"| {d} | {n:,} | {dom_bytes[d] / 1e6:.1f} | {sum(ls) / len(ls):.0f} |")
    md += ["", "| pair kind | domain | pairs |", "| --- | --- | --- |"]
    md += [f"| {k} | {d} | {n:,} |" for (k, d), n in sorted(kind_dom.items())]
    md += ["", "WordPiece tokens per text (without [CLS]/[SEP]):", "", "| tokens | texts |", "| --- | --- |"]
    md += [f"| {b} | {n:,} |" for b, n in _hist(ntok)]
    md += ["", "Held-out evaluation sets (eval2/):", "", "| set | queries | pool passages |", "| --- | --- | --- |"]
    md += [f"| {k} | {v['queries']:,} | {v['pool']:,} |" for k, v in eval_stats.items()]
    (out / "stats.md").write_text("\n".join(md) + "\n")
    log("\n".join(md))
    return stats
