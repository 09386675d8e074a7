"""Cut section bodies into passages of 64-256 WordPiece tokens on paragraph and sentence boundaries.

Token counts come from the teacher's WordPiece vocabulary (the shipped ``tokenizer.json``), counted
without [CLS]/[SEP], so a passage of at most ``MAX_PASSAGE`` tokens fits a 256-token window whole.
WordPiece never joins pieces across whitespace, so the count of "a b" is count(a) + count(b): the
packer adds counts instead of re-tokenising.
"""
from __future__ import annotations

import random
import re
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

MIN_PASSAGE = 64
MAX_PASSAGE = 254  # 256-token window less [CLS] and [SEP]
MIN_KEEP = 12  # a section body shorter than this is not a passage worth keeping
TOKENIZER = Path(__file__).resolve().parents[1] / "models" / "vectord-gru-mini" / "tokenizer.json"

_SENT = re.compile(r"(?<=[.!?;:])[\"')\]]*\s+(?=[\"'(\[`]?[A-Z0-9])")


@lru_cache(maxsize=1)
def _tokenizer():
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(TOKENIZER))
    tok.no_truncation()
    tok.no_padding()
    return tok


def count_tokens(texts: Sequence[str]) -> list[int]:
    """WordPiece tokens of each text, without [CLS]/[SEP]."""
    if not texts:
        return []
    return [len(e.ids) for e in _tokenizer().encode_batch(list(texts), add_special_tokens=False)]


def split_sentences(paragraph: str) -> list[str]:
    """Sentence boundaries: end punctuation, optional closing quote/bracket, space, capital or digit."""
    return [s.strip() for s in _SENT.split(paragraph) if s.strip()]


def _hard_split(text: str, n_tokens: int, limit: int) -> list[str]:
    """A sentence longer than the window: equal runs of words (code, tables, URLs)."""
    words = text.split()
    parts = max(2, -(-n_tokens // limit) + 1)
    step = max(1, -(-len(words) // parts))
    return [" ".join(words[i:i + step]) for i in range(0, len(words), step)]


def units(paragraphs: Sequence[str], count: Callable[[Sequence[str]], list[int]] = count_tokens,
          limit: int = MAX_PASSAGE) -> list[tuple[str, int]]:
    """(text, tokens) units no longer than ``limit``: paragraphs, else their sentences, else word runs."""
    out: list[tuple[str, int]] = []
    for p, n in zip(paragraphs, count(paragraphs)):
        if n <= limit:
            out.append((p, n))
            continue
        sents = split_sentences(p)
        for s, m in zip(sents, count(sents)):
            if m <= limit:
                out.append((s, m))
                continue
            pieces = _hard_split(s, m, limit)
            for _ in range(6):
                cnt = count(pieces)
                if max(cnt) <= limit:
                    break
                pieces = [q for x, c in zip(pieces, cnt) for q in (_hard_split(x, c, limit) if c > limit else [x])]
            out.extend((q, c) for q, c in zip(pieces, count(pieces)) if c <= limit)
    return [(t, n) for t, n in out if n > 0]


def pack(items: Sequence[tuple[str, int]], rng: random.Random, lo: int = MIN_PASSAGE, hi: int = MAX_PASSAGE,
         min_keep: int = MIN_KEEP) -> list[tuple[str, int]]:
    """Greedy packing of consecutive units into passages whose length is drawn from [lo, hi] each time,
    so the lengths cover the whole range; a short tail joins the passage before it when it fits."""
    out: list[tuple[str, int]] = []
    cur: list[str] = []
    n = 0
    target = rng.randint(lo, hi)
    for t, m in items:
        if cur and n + m > target:
            out.append((" ".join(cur), n))
            cur, n = [], 0
            target = rng.randint(lo, hi)
        cur.append(t)
        n += m
    if cur:
        if out and n < lo and out[-1][1] + n <= hi:
            t0, n0 = out.pop()
            out.append((t0 + " " + " ".join(cur), n0 + n))
        else:
            out.append((" ".join(cur), n))
    return [(t, m) for t, m in out if m >= min_keep]


def wordy(text: str, min_letters: float = 0.55) -> bool:
    """Mostly words (not a table of numbers or a block of punctuation-heavy code)."""
    if not text:
        return False
    letters = sum(c.isalpha() for c in text)
    return letters / len(text) >= min_letters


def passages(paragraphs: Sequence[str], rng: random.Random,
             count: Callable[[Sequence[str]], list[int]] = count_tokens) -> list[tuple[str, int]]:
    """Section body -> passages (text, tokens), in order."""
    return [(t, n) for t, n in pack(units([p for p in paragraphs if p.strip()], count), rng) if wordy(t)]
