"""kNN classification over a collection's labelled records.

Each input (a vector, or a text the collection's encoder embeds) is labelled by a vote of
its ``k`` nearest records that carry a label (metadata at ``label_key``, a dotted path
like filters use). Each neighbour votes for its label with weight

    w = 1 / (max(distance, 0) + EPSILON)        (EPSILON = 0.001)

so nearer neighbours count more (scikit-learn's ``weights="distance"``, with an epsilon that
keeps an exact duplicate from taking an infinite weight). A label's score is its share of
the total weight (the scores of one input sum to 1). The winner is the highest score; ties
go to the label with more votes, then the one with the nearest voter, then the smaller
label (by type, then value), so the answer is deterministic.

Labels are strings, numbers or bools; records whose label is a list, a map or null do not
vote. Records without the key are not searched at all (the query filters on it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from vectord.errors import InvalidArgumentError
from .filters import And, Field, Filter
from .search import group_key, lookup_path

#: Added to each distance before inverting it (see the module doc).
EPSILON = 1e-3
#: Neighbours one input may ask for.
MAX_K = 1000
DEFAULT_K = 10
DEFAULT_LABEL_KEY = "label"


@dataclass
class Classification:
    """The vote for one input: ``label`` (None when nothing voted) and every candidate's
    ``(label, score, votes)``, best first."""

    label: Any = None
    scores: list[tuple[Any, float, int]] = field(default_factory=list)


def check(label_key: Any, k: Any) -> tuple[str, int]:
    """(label_key, k) after checking them; "" and 0 mean the defaults."""
    label_key = label_key or DEFAULT_LABEL_KEY
    if not isinstance(label_key, str) or label_key.startswith("$") or "" in label_key.split("."):
        raise InvalidArgumentError(f"label_key: {label_key!r} is not a metadata path (keys joined by '.', "
                                   "not starting with '$')")
    k = DEFAULT_K if k is None or k == 0 else k
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidArgumentError(f"k: must be 1..{MAX_K} (storage.classify.MAX_K), got {k!r}")
    return label_key, k


def classify(collection, queries=None, texts: Sequence[str] | None = None, label_key: str = DEFAULT_LABEL_KEY,
             k: int = DEFAULT_K, where: Filter | None = None) -> list[Classification]:
    """One ``Classification`` per query vector (or text), in order.

    Raises:
        InvalidArgumentError: a bad label_key or k (or query, as ``Collection.query``).
    """
    label_key, k = check(label_key, k)
    labelled: Filter = Field(label_key, "exists", True)
    if where is not None:
        labelled = And((where, labelled))
    results = collection.query(queries, n_results=k, where=labelled, include=["metadatas", "distances"],
                               texts=texts)
    parts = tuple(label_key.split("."))
    return [vote([lookup_path(m or {}, parts) for m in r.metadatas], r.distances.tolist()) for r in results]


def vote(labels: Sequence[Any], distances: Sequence[float]) -> Classification:
    """The distance-weighted vote of neighbours (see the module doc)."""
    tally: dict[Any, list] = {}  # key -> [label, weight, votes, nearest distance]
    for label, distance in zip(labels, distances):
        if label is None or isinstance(label, (list, dict)):
            continue
        entry = tally.setdefault(group_key(label), [label, 0.0, 0, distance])
        entry[1] += 1.0 / (max(distance, 0.0) + EPSILON)
        entry[2] += 1
        entry[3] = min(entry[3], distance)
    if not tally:
        return Classification()
    total = sum(entry[1] for entry in tally.values())
    ranked = sorted(tally.items(), key=lambda item: (-item[1][1], -item[1][2], item[1][3], item[0]))
    return Classification(label=ranked[0][1][0],
                          scores=[(label, weight / total, votes) for _, (label, weight, votes, _) in ranked])

