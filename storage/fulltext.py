"""A collection's full-text index: postings per term, document lengths, BM25 scoring.

Structure, and why: an in-memory inverted index over the collection's labels, kept on
every put and delete like the metadata index (metadata_index.py), and rebuilt from the
stored documents when the collection opens. For each term the index holds two growable
arrays, the labels of the documents holding it and the term's frequency in each (labels
only grow between compactions, so each list stays in label order and an add is an append).
A query reads each of its terms' postings as numpy arrays and scores them in a few vector
operations, so its cost is the length of its terms' postings, not the collection's size.

Why not tantivy or bm25s: the documents are already durable in the records and the log, so
a second store with its own files, commits and crash story (tantivy) would be a second
truth to keep in step with the log; bm25s builds a static matrix and cannot take a write
or a delete. This index is derived state, like the HNSW graph: it is rebuilt at open from
the recovered records, so a kill -9 can never leave it behind the log. The cost is the
rebuild time at open (benchmarks/results/hybrid-*.md measures it).

Deletes and updates (an update is a delete and an add under a new label) only mark the
label dead: document frequency is counted over live postings at query time, so scores are
exactly those of the live documents. Dead postings are dropped when they outnumber the
live ones (``purge``), and the collection's compaction rebuilds the index anyway.

BM25, as Lucene computes it (bm25s's default "lucene" method), for a document d and query
terms t (each distinct term once):

    score(d) = sum_t idf(t) * tf(t,d) * (k1 + 1) / (tf(t,d) + k1 * (1 - b + b * |d| / avgdl))
    idf(t)   = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

N: live records that have a document; df(t): those holding t; |d|: d's number of terms;
avgdl: the mean |d|. ``K1`` (1.2) sets how fast repeats of a term saturate; ``B`` (0.75)
how much a long document is penalised. Every matching document scores above zero.

Not thread-safe: the collection's read/write lock guards it (searches only read).
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from typing import Callable, Iterable

import numpy as np

#: Term-frequency saturation (Lucene's and bm25s's default).
K1 = 1.2
#: Document-length normalisation, 0 (none) .. 1 (full) (Lucene's and bm25s's default).
B = 0.75

Analyze = Callable[[str | None], list[str]]


class FullTextIndex:
    def __init__(self, analyze: Analyze) -> None:
        self.analyze = analyze
        #: term -> (labels 'q', term frequencies 'i'), in label order
        self._postings: dict[str, tuple[array, array]] = {}
        self._lengths = np.zeros(16, np.int32)  # terms per document, by label
        self._unique = np.zeros(16, np.int32)  # distinct terms per document (its postings)
        self._alive = np.zeros(16, np.bool_)  # labels whose document is indexed
        self._docs = 0
        self._total_terms = 0
        self._live_postings = 0
        self._dead_postings = 0

    # ------------------------------------------------------------------ writing
    def _grow(self, label: int) -> None:
        size = len(self._alive)
        if label < size:
            return
        while size <= label:
            size *= 2
        for name in ("_lengths", "_unique", "_alive"):
            old = getattr(self, name)
            new = np.zeros(size, old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def add(self, label: int, text: str | None) -> None:
        """Indexes ``text`` under ``label`` (a new label: labels are never reused before a
        rebuild). A record without a document (None) is not indexed."""
        if text is None:
            return
        self._add_terms(label, self.analyze(text))

    def _add_terms(self, label: int, terms: list[str]) -> None:
        self._grow(label)
        counts = Counter(terms)
        postings = self._postings
        for term, tf in counts.items():
            entry = postings.get(term)
            if entry is None:
                entry = postings[term] = (array("q"), array("i"))
            entry[0].append(label)
            entry[1].append(tf)
        self._lengths[label] = len(terms)
        self._unique[label] = len(counts)
        self._alive[label] = True
        self._docs += 1
        self._total_terms += len(terms)
        self._live_postings += len(counts)

    def remove(self, label: int) -> None:
        """Removes ``label``'s document, if indexed."""
        if label >= len(self._alive) or not self._alive[label]:
            return
        self._alive[label] = False
        self._docs -= 1
        self._total_terms -= int(self._lengths[label])
        unique = int(self._unique[label])
        self._live_postings -= unique
        self._dead_postings += unique
        if self._dead_postings > max(4096, self._live_postings):
            self.purge()

    def purge(self) -> None:
        """Drops the postings of removed documents (O(postings); amortised by the caller's
        threshold to O(1) per removal)."""
        alive = self._alive
        for term in list(self._postings):
            labels, tfs = self._postings[term]
            keep = alive[np.frombuffer(labels, np.int64)]
            if keep.all():
                continue
            if not keep.any():
                del self._postings[term]
                continue
            self._postings[term] = (array("q", np.frombuffer(labels, np.int64)[keep].tobytes()),
                                    array("i", np.frombuffer(tfs, np.int32)[keep].tobytes()))
        self._dead_postings = 0

    @classmethod
    def build(cls, analyze: Analyze, rows: Iterable[tuple[int, str | None]]) -> "FullTextIndex":
        """An index of many (label, document) at once, in ascending label order (as when a
        collection opens or compacts)."""
        index = cls(analyze)
        for label, text in rows:
            if text is not None:
                index._add_terms(label, analyze(text))
        return index

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        """Indexed documents (live records with a document)."""
        return self._docs

    def df(self, term: str) -> int:
        """Live documents holding ``term``."""
        entry = self._postings.get(term)
        if entry is None:
            return 0
        return int(np.count_nonzero(self._alive[np.frombuffer(entry[0], np.int64)]))

    def search(self, query: str, k: int, allowed: np.ndarray | None = None,
               stats: tuple[int, float, dict[str, int]] | None = None) -> tuple[np.ndarray, np.ndarray, int]:
        """The ``k`` best documents for ``query`` by BM25, best first (ties by label).

        Args:
            query: the query text, analysed as the documents were.
            k: how many results at most.
            allowed: labels the results must be among (a filter's matches), or None.
            stats: (documents, average length, document frequency by term) of the whole
                collection when this index is one segment's of several (storage/segment.py):
                the scores are then the collection's, comparable across segments.

        Returns:
            (labels int64, scores float64, postings scanned); only documents holding at
            least one query term are returned, so there may be fewer than ``k``.
        """
        terms = list(dict.fromkeys(self.analyze(query)))
        empty = np.zeros(0, np.int64), np.zeros(0, np.float64)
        if not terms or self._docs == 0 or k <= 0:
            return (*empty, 0)
        alive = self._alive
        mask = None
        if allowed is not None:
            mask = np.zeros(len(alive), np.bool_)
            allowed = np.asarray(allowed, np.int64)
            mask[allowed[allowed < len(alive)]] = True
            mask &= alive
        n, avgdl = (self._docs, self._total_terms / self._docs) if stats is None else stats[:2]
        found_labels, found_scores = [], []
        scanned = 0
        for term in terms:
            entry = self._postings.get(term)
            if entry is None:
                continue
            # copies, not views: a view would pin the array and stop the next append
            labels = np.frombuffer(entry[0], np.int64).copy()
            tfs = np.frombuffer(entry[1], np.int32)[:len(labels)].astype(np.float64)
            scanned += len(labels)
            live = alive[labels]
            df = int(np.count_nonzero(live))
            if df == 0:
                continue
            keep = live if mask is None else mask[labels]
            if not keep.all():
                labels, tfs = labels[keep], tfs[keep]
            if len(labels) == 0:
                continue
            if stats is not None:
                df = stats[2][term]
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            # avgdl > 0 here: a live document holds this term
            norm = K1 * (1 - B + B * self._lengths[labels] / avgdl)
            found_labels.append(labels)
            found_scores.append(idf * tfs * (K1 + 1) / (tfs + norm))
        if not found_labels:
            return (*empty, scanned)
        if len(found_labels) == 1:  # one term: each label once already
            hits, totals = found_labels[0], found_scores[0]
        else:
            # sum each label's terms: through a dense array when the postings are many
            # (no sort), else by sorting the few (no pass over every label)
            total = sum(len(part) for part in found_labels)
            if total * 16 > len(alive):
                dense = np.zeros(len(alive), np.float64)
                for part_labels, part_scores in zip(found_labels, found_scores):
                    dense[part_labels] += part_scores  # labels are unique within a term
                hits = np.flatnonzero(dense > 0)  # every contribution is > 0
                totals = dense[hits]
            else:
                hits, inverse = np.unique(np.concatenate(found_labels), return_inverse=True)
                totals = np.bincount(inverse, weights=np.concatenate(found_scores), minlength=len(hits))
        if len(hits) > k:
            # the k best by score; ties at the boundary kept, then broken by label below
            cutoff = np.partition(totals, len(totals) - k)[len(totals) - k]
            chosen = totals >= cutoff
            hits, totals = hits[chosen], totals[chosen]
        order = np.lexsort((hits, -totals))[:k]
        return hits[order].astype(np.int64), totals[order], scanned

    def term_counts(self, label: int) -> int:
        """Terms in ``label``'s document (0 when not indexed); for tests and stats."""
        return int(self._lengths[label]) if label < len(self._alive) and self._alive[label] else 0
