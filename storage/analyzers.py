"""Analyzers: text -> the terms the full-text index (fulltext.py) stores and searches.

Two analyzers, chosen per collection (``CollectionConfig.fulltext``):

- ``standard``: Unicode word segmentation (UAX #29 default word boundaries, from the
  ``regex`` module's ``(?w)`` mode, as Lucene's StandardTokenizer), NFKC normalisation and
  case folding, then optionally English stop words (the Snowball list) and the Snowball
  English stemmer (PyStemmer). Words of scripts without spaces (Han, Hiragana) come out one
  character per term, as UAX #29 defines them; use ``cjk`` for such text.
- ``cjk``: as Lucene's CJKAnalyzer: the same segmentation and width/case normalisation
  (NFKC turns full-width Latin and half-width Katakana into their usual forms), then every
  run of adjacent Han, Hiragana, Katakana and Hangul characters becomes overlapping
  character bigrams (a lone character stays a unigram); a run never spans punctuation or
  space. Other words pass as in ``standard`` (stemmed and stop-filtered when asked).

An analyzer is a pure function of its settings: the index stores no analyzer state, so an
index rebuilt at open from the stored documents is the same index.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable

import regex
import Stemmer

from vectord.errors import InvalidArgumentError

ANALYZERS = ("standard", "cjk", "none")
#: A collection's full-text settings when it gives none (and for MANIFESTs written before
#: the full-text index existed).
DEFAULT_FULLTEXT: dict[str, Any] = {"analyzer": "standard", "stemming": True, "stop_words": True}

# UAX #29 word segments; a segment is a word when it starts with a letter, a digit or a mark
# (punctuation and spaces are segments of their own). One segment a match: from a boundary
# through every character not preceded by one (\B), so a word that ends in a character
# that is not \w ("0\u00b8", a digit and a cedilla, one segment for the regex module) ends
# there, never reaching over a space to the next \w.
_WORDS = regex.compile(r"(?swV1)\b\w(?:\B.)*")


#: Characters that end a word when they lead or trail it (UAX #29 never keeps them at a
#: word's edge); "_" is not among them: it joins words ("foo_bar").
_EDGES = ".,;:!?()[]{}\"'`<>*-"


def words(text: str) -> list[str]:
    """The UAX #29 words of ``text``, in order.

    Words never span white space (``str.isspace``), so the text is split there first. That
    is UAX #29 for every space but U+202F NARROW NO-BREAK SPACE, which it keeps inside a word
    (as ExtendNumLet, with "_"): here "10\u202f000" is two words and "mot\u202f!" is "mot",
    not "mot\u202f", a term no query typed with an ordinary space would find. A piece of plain
    ASCII letters and digits, once stripped of punctuation at its edges ("order.",
    "(see"), is taken whole: most of English takes that path. Only the other pieces go
    through the segmentation regex, which costs ~1.5 us a word. (The tests check that this
    equals the regex on each space-separated piece of any text.)
    """
    out: list[str] = []
    for piece in text.split():
        if piece.isascii():
            if piece.isalnum():
                out.append(piece)
                continue
            core = piece.strip(_EDGES)
            if core.isalnum():
                out.append(core)
                continue
            if not core:
                continue
        out.extend(_WORDS.findall(piece))
    return out


# Snowball's English stop word list (snowballstem.org/algorithms/english/stop.txt), the list
# the Snowball English stemmer is meant to be used with, less the forms it would never see
# apart (it lists contractions, which UAX #29 keeps whole: "don't" stays one word, and is
# kept here). Apostrophes are normalised to ' before the check.
STOP_WORDS = frozenset("""
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
she her hers herself it its itself they them their theirs themselves what which who whom
this that these those am is are was were be been being have has had having do does did
doing would should could ought i'm you're he's she's it's we're they're i've you've we've
they've i'd you'd he'd she'd we'd they'd i'll you'll he'll she'll we'll they'll isn't
aren't wasn't weren't hasn't haven't hadn't doesn't don't didn't won't wouldn't shan't
shouldn't can't cannot couldn't mustn't let's that's who's what's here's there's when's
where's why's how's a an the and but if or because as until while of at by for with about
against between into through during before after above below to from up down in out on off
over under again further then once here there when where why how all any both each few
more most other some such no nor not only own same so than too very
""".split())

#: Distinct words whose stems are cached per analyzer (~100 bytes each).
STEM_CACHE = 200_000
#: Distinct space-separated pieces whose terms are cached per analyzer (~150 bytes each).
PIECE_CACHE = 200_000
_CJK_CHAR = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")


def fulltext_config(value: Any) -> dict[str, Any]:
    """A collection's full-text settings, completed with the defaults and checked.

    Raises:
        InvalidArgumentError: an unknown key, analyzer or a non-boolean flag.
    """
    if value is None:
        return dict(DEFAULT_FULLTEXT)
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"fulltext: expected a map like {DEFAULT_FULLTEXT}, got {value!r}")
    unknown = sorted(str(k) for k in set(value) - set(DEFAULT_FULLTEXT))
    if unknown:
        raise InvalidArgumentError(f"fulltext: unknown setting(s) {unknown}; known: {sorted(DEFAULT_FULLTEXT)}")
    config = {**DEFAULT_FULLTEXT, **value}
    if config["analyzer"] not in ANALYZERS:
        raise InvalidArgumentError(f"fulltext.analyzer: {config['analyzer']!r} is not one of {list(ANALYZERS)}")
    for key in ("stemming", "stop_words"):
        if not isinstance(config[key], bool):
            raise InvalidArgumentError(f"fulltext.{key}: expected true or false, got {config[key]!r}")
    return config


def _normalise(text: str) -> str:
    # NFKC folds full-width and compatibility forms (Ｗｉｄｅ -> Wide, ｶﾀｶﾅ -> カタカナ);
    # casefold is Unicode lower-casing (Straße -> strasse, as a search should match)
    return unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'")


@dataclass(frozen=True)
class Analyzer:
    """Turns a text into its terms, in order, repeats kept (term frequencies count them)."""

    name: str
    stemming: bool
    stop_words: bool

    def __post_init__(self) -> None:
        # PyStemmer's objects are not thread-safe and queries analyse their text under the
        # shared read lock: one stemmer per thread. Stems are cached (a dict lookup costs a
        # tenth of a stemming call) up to STEM_CACHE words.
        object.__setattr__(self, "_local", threading.local())
        object.__setattr__(self, "_stems", {})
        object.__setattr__(self, "_pieces", {})

    def _words(self, words: list[str]) -> list[str]:
        if self.stop_words:
            words = [w for w in words if w not in STOP_WORDS]
        if not self.stemming or not words:
            return words
        cache: dict[str, str] = self._stems  # type: ignore[attr-defined]
        stems = [cache.get(w) for w in words]
        missing = [w for w, stem in zip(words, stems) if stem is None]
        if not missing:
            return stems  # type: ignore[return-value]
        local = self._local  # type: ignore[attr-defined]
        stemmer = getattr(local, "stemmer", None)
        if stemmer is None:
            stemmer = local.stemmer = Stemmer.Stemmer("english")
        new = dict(zip(missing, stemmer.stemWords(missing)))
        if len(cache) < STEM_CACHE:
            cache.update(new)
        return [stem if stem is not None else new[w] for w, stem in zip(words, stems)]

    def __call__(self, text: str | None) -> list[str]:
        if not text:
            return []
        text = _normalise(text)
        if self.name == "cjk":
            return self._cjk(text)
        # Terms never span white space, so each space-separated piece is analysed alone,
        # and its terms are cached: pieces repeat (Zipf), and a lookup costs a tenth of
        # segmenting, filtering and stemming the piece again.
        cache: dict[str, tuple[str, ...]] = self._pieces  # type: ignore[attr-defined]
        out: list[str] = []
        for piece in text.split():
            terms = cache.get(piece)
            if terms is None:
                terms = tuple(self._words(words(piece)))
                if len(cache) < PIECE_CACHE:
                    cache[piece] = terms
            out.extend(terms)
        return out

    def _cjk(self, text: str) -> list[str]:
        """Bigrams of each run of adjacent CJK words, then the other words (a bag of
        terms: the order of terms does not matter to the index)."""
        terms: list[str] = []
        others: list[str] = []
        run: list[str] = []  # characters of the current CJK run
        end = -1  # where the run's last word ended: the next word continues it only there

        def flush() -> None:
            if len(run) == 1:
                terms.append(run[0])
            else:
                terms.extend(a + b for a, b in zip(run, run[1:]))
            run.clear()

        for match in _WORDS.finditer(text):  # offsets needed: no fast path
            word = match.group()
            if _CJK_CHAR.match(word):
                if match.start() != end:
                    flush()
                run.extend(word)  # a CJK word may hold marks or digits: they join the run
                end = match.end()
            else:
                others.append(word)
        flush()
        return terms + self._words(others)


def analyzer(config: dict[str, Any]) -> Callable[[str | None], list[str]] | None:
    """The analyzer of a collection's full-text settings; None for ``"none"`` (no index)."""
    if config["analyzer"] == "none":
        return None
    return Analyzer(config["analyzer"], config["stemming"], config["stop_words"])
