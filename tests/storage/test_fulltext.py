"""The full-text index (storage/fulltext.py) and its analyzers (storage/analyzers.py).

The index is checked against a brute-force BM25 over a plain Python model of the live
documents, through random sequences of adds, removes and updates (an update is a remove
and an add under a new label, as the collection does it)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vectord.errors import InvalidArgumentError
from vectord.storage.analyzers import Analyzer, _WORDS, analyzer, fulltext_config, words
from vectord.storage.fulltext import B, K1, FullTextIndex

standard = Analyzer("standard", stemming=True, stop_words=True)
plain = Analyzer("standard", stemming=False, stop_words=False)
cjk = Analyzer("cjk", stemming=False, stop_words=False)


# ---------------------------------------------------------------------- analyzers
def test_standard_lowercases_stems_and_drops_stop_words():
    assert standard("The Running dogs were RUNNING to the parks") == ["run", "dog", "run", "park"]


def test_standard_without_stemming_or_stop_words_keeps_words_as_written_lowercased():
    assert plain("The Running dogs") == ["the", "running", "dogs"]


def test_standard_keeps_contractions_decimals_and_dotted_words_whole():
    # UAX #29: no break inside "don't", "3.14", "e.g" (MidNumLet between letters/digits)
    assert plain("don't pay 3.14 for x.y.z, e-mail me") == ["don't", "pay", "3.14", "for", "x.y.z", "e", "mail", "me"]


def test_standard_segments_non_latin_scripts():
    assert plain("Привет, мир! Γειά σου κόσμε. مرحبا بالعالم") == [
        "привет", "мир", "γειά", "σου", "κόσμε", "مرحبا", "بالعالم"]
    assert plain("Straße ＦＵＬＬ width") == ["strasse", "full", "width"]  # casefold + NFKC
    # Han and Hiragana have no word breaks in UAX #29: one term per character
    assert plain("東京です") == ["東", "京", "で", "す"]
    assert plain("한국어 텍스트") == ["한국어", "텍스트"]


def test_stemming_maps_inflections_together():
    assert standard("connection connected connecting connections") == ["connect"] * 4


def test_curly_apostrophe_is_the_straight_one():
    assert plain("don\u2019t") == ["don't"]
    assert standard("don\u2019t stop") == ["stop"]  # a stop word either way


def test_cjk_bigrams_chinese():
    assert cjk("我爱北京天安门") == ["我爱", "爱北", "北京", "京天", "天安", "安门"]


def test_cjk_bigrams_japanese_mixed_scripts_and_half_width_katakana():
    assert cjk("東京は日本") == ["東京", "京は", "は日", "日本"]
    assert cjk("ｶﾀｶﾅ") == ["カタ", "タカ", "カナ"]  # NFKC: half-width -> full-width


def test_cjk_bigrams_korean():
    assert cjk("한국어 텍스트") == ["한국", "국어", "텍스", "스트"]


def test_cjk_single_characters_and_runs_broken_by_punctuation():
    assert cjk("猫") == ["猫"]
    assert cjk("東京。大阪") == ["東京", "大阪"]  # no bigram across the full stop
    assert cjk("東 京") == ["東", "京"]


def test_cjk_mixed_with_latin_text():
    assert sorted(cjk("vectord 数据库 Search")) == sorted(["数据", "据库", "vectord", "search"])
    stemmed = Analyzer("cjk", stemming=True, stop_words=True)
    assert sorted(stemmed("the searching 数据")) == sorted(["数据", "search"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(st.characters(codec="utf-8"), max_size=60),
                 st.text(st.sampled_from("ab1Z .,;:!?'\"-_()[]*<>`/@#\u00e9\u6771\u2019\t\n"), max_size=40)))
def test_fast_path_segments_as_the_regex_does(text):
    """words() takes plain ASCII words (edge punctuation stripped) without the regex: the
    same words as UAX #29 segmentation of each space-separated piece of the text."""
    assert words(text) == [word for piece in text.split() for word in _WORDS.findall(piece)]


def test_white_space_ends_a_word_even_a_narrow_no_break_space():
    """Found by the test above (text '0\u202f'): UAX #29 keeps U+202F inside a word, so the
    regex over the whole text gives '0\u202f', a term no query with an ordinary space finds;
    every white space splits words here (storage/analyzers.py, words)."""
    assert _WORDS.findall("0\u202f") == ["0\u202f"]  # what UAX #29 alone would index
    assert words("0\u202f") == ["0"]
    assert words("10\u202f000 mot\u202f!") == ["10", "000", "mot"]
    assert words("caf\u00e9\u202f!") == ["caf\u00e9"]  # the regex path, not the ASCII one


def test_a_word_ending_in_a_non_word_character_does_not_reach_over_a_space():
    """Found by test_fast_path_segments_as_the_regex_does in CI: "0\u00b8" (a digit and a
    cedilla) is one UAX #29 segment, and the word pattern ran on from it over the space to
    the next digit ("0\u00b8 0" as one word)."""
    assert _WORDS.findall("0\u00b8 0") == words("0\u00b8 0") == ["0\u00b8", "0"]
    assert _WORDS.findall("don't stop. foo.bar") == ["don't", "stop", "foo.bar"]


def test_fulltext_config_defaults_and_errors():
    assert fulltext_config(None) == {"analyzer": "standard", "stemming": True, "stop_words": True}
    assert fulltext_config({"analyzer": "cjk"})["analyzer"] == "cjk"
    assert analyzer(fulltext_config({"analyzer": "none"})) is None
    with pytest.raises(InvalidArgumentError, match="fulltext.analyzer: 'klingon'"):
        fulltext_config({"analyzer": "klingon"})
    with pytest.raises(InvalidArgumentError, match=r"fulltext.stemming: expected true or false, got 'yes'"):
        fulltext_config({"stemming": "yes"})
    with pytest.raises(InvalidArgumentError, match=r"unknown setting\(s\) \['lang'\]"):
        fulltext_config({"lang": "en"})


# ---------------------------------------------------------------------- BM25 vs brute force
def brute_force(docs: dict[int, str], query: str, analyze, k: int, allowed=None):
    """BM25 (Lucene's idf) over a dict label -> text, by the formula, one doc at a time."""
    terms = {label: analyze(text) for label, text in docs.items()}
    n = len(terms)
    if n == 0:
        return []
    avgdl = sum(len(t) for t in terms.values()) / n
    q = list(dict.fromkeys(analyze(query)))
    df = {t: sum(1 for ts in terms.values() if t in ts) for t in q}
    scored = []
    for label, ts in terms.items():
        if allowed is not None and label not in allowed:
            continue
        counts = Counter(ts)
        score = 0.0
        for t in q:
            if counts[t]:
                idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                score += idf * counts[t] * (K1 + 1) / (counts[t] + K1 * (1 - B + B * len(ts) / avgdl))
        if score > 0:
            scored.append((-score, label))
    scored.sort()
    return [(label, -neg) for neg, label in scored[:k]]


def check(index: FullTextIndex, docs: dict[int, str], query: str, k: int, allowed=None):
    labels, scores, _ = index.search(query, k, None if allowed is None else np.array(sorted(allowed), np.int64))
    expected = brute_force(docs, query, index.analyze, k, allowed)
    assert labels.tolist() == [label for label, _ in expected]
    assert np.allclose(scores, [score for _, score in expected], rtol=1e-9)


VOCAB = ["apple", "banana", "cherry", "date", "apples", "the", "running", "runs", "東京", "日本"]
texts = st.lists(st.sampled_from(VOCAB), max_size=8).map(" ".join)
ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(0, 9), texts),
    st.tuples(st.just("remove"), st.integers(0, 9), st.just("")),
    st.tuples(st.just("none"), st.integers(0, 9), st.just(""))), max_size=30)


@settings(max_examples=150, deadline=None)
@given(ops, st.lists(st.sampled_from(VOCAB), min_size=1, max_size=3).map(" ".join), st.integers(1, 6),
       st.booleans(), st.sampled_from([standard, plain, cjk]))
def test_index_matches_brute_force_bm25(operations, query, k, filtered, analyze):
    index = FullTextIndex(analyze)
    model: dict[int, str] = {}  # live label -> text
    live_label: dict[int, int] = {}  # record id -> its current label
    next_label = 0
    for op, record, text in operations:
        old = live_label.pop(record, None)
        if old is not None:  # an update or delete drops the old label
            index.remove(old)
            model.pop(old, None)
        if op == "add":  # a put under a new label
            index.add(next_label, text)
            model[next_label] = text
            live_label[record] = next_label
        elif op == "none":  # a record without a document: not indexed
            index.add(next_label, None)
            live_label[record] = next_label
        next_label += 1
    assert len(index) == len(model)
    allowed = {label for label in model if label % 2 == 0} if filtered else None
    check(index, model, query, k, allowed)
    rebuilt = FullTextIndex.build(analyze, sorted(model.items()))
    check(rebuilt, model, query, k, allowed)


def test_purge_drops_dead_postings_and_keeps_scores():
    index = FullTextIndex(plain)
    docs = {}
    for label in range(6000):  # every update leaves dead postings until the purge
        text = f"common word{label % 50} other{label % 7}"
        index.add(label, text)
        docs[label] = text
        if label >= 10:
            index.remove(label - 10)
            docs.pop(label - 10)
    assert index._dead_postings <= max(4096, index._live_postings)
    assert sum(len(p[0]) for p in index._postings.values()) < 6000 * 3
    check(index, docs, "common word3 other2", 5)


def test_search_returns_nothing_for_unknown_or_stop_word_queries():
    index = FullTextIndex(standard)
    index.add(0, "apples and pears")
    assert index.search("zebra", 5)[0].tolist() == []
    assert index.search("the and", 5)[0].tolist() == []  # stop words only
    assert index.search("apple", 5)[0].tolist() == [0]  # stemmed on both sides


@pytest.mark.parametrize("query", ["w3 w7 doc5", "common w3", "common other1 w3"])
def test_sparse_and_dense_summing_agree_with_brute_force(query):
    """A query whose terms have few postings sums by sorting them, one with many through a
    dense array over the labels: both give the brute-force scores."""
    index = FullTextIndex(plain)
    docs = {}
    for label in range(3000):
        text = f"doc{label} w{label % 500} other{label % 3}" + (" common" if label % 2 else "")
        index.add(label, text)
        docs[label] = text
    for label in range(0, 3000, 7):
        index.remove(label)
        docs.pop(label)
    check(index, docs, query, 8)
    check(index, docs, query, 8, allowed={label for label in docs if label % 5 == 1})
