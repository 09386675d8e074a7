"""Keyword (BM25), hybrid and grouped queries at the gateway: each shard returns its
candidate lists, the gateway merges them and ranks as one server would (storage/ranking.py,
storage/search.py), then reads documents and metadata of the final hits only.

- ``bm25``: every shard returns its best ``n_results`` by BM25; the gateway keeps the best
  overall. A shard scores with its own corpus statistics (document frequencies, average
  length): ids are spread over shards by a hash (cluster/routing.py), so each shard's
  statistics are those of a uniform sample of the collection and the scores agree closely
  with one server's (Elasticsearch's default query-then-fetch makes the same trade; the
  exact alternative, its DFS mode, needs a first round for the statistics).
- ``hybrid``: every shard returns its ``window`` nearest by vector (with distances) and
  its ``window`` best by BM25 (with their vector distances, measured on the shard); the
  gateway merges each list over the shards, cuts it to ``window`` and fuses the two with the
  engine's own ``rrf`` / ``weighted`` functions. Ties rank by id (one server ranks them by
  insertion order, which the gateway does not know).
- ``group_by``: the merged ranking, ``depth`` deep, is grouped at the gateway with the
  engine's ``lookup_path`` / ``group_key`` on the candidates' metadata (read for them), and
  deepened x4 until the groups are full or the shards run out, as storage does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vectord.storage import ranking as engine_ranking
from vectord.storage.ranking import rrf, weighted
from vectord.storage.search import MAX_GROUP_FETCH, group_hits, lookup_path

#: One hit in a merged ranking: (id, vector distance or NaN, score or None).
Hit = tuple[str, float, Any]


def merge_vector(lists: list[tuple[list[str], np.ndarray]], depth: int) -> list[Hit]:
    """Shards' nearest lists -> the overall nearest ``depth`` (ties by id), de-duplicated."""
    best: dict[str, float] = {}
    for ids, distances in lists:
        for record_id, distance in zip(ids, np.asarray(distances).tolist()):
            if record_id not in best or distance < best[record_id]:
                best[record_id] = distance
    return [(i, d, None) for i, d in sorted(best.items(), key=lambda h: (h[1], h[0]))[:depth]]


def merge_vector_many(per_shard: list, count: int, depth: int) -> list[list[Hit]]:
    """``merge_vector`` of each of ``count`` queries over the shards' replies (a list per
    shard, indexed by query). When every shard's reply is flat (cluster.dataplane.FlatHits)
    with as many hits for every query, the batch is merged as one matrix (sorted by distance
    with numpy); a query whose top ``depth`` holds a tie of distances, a NaN or an id twice
    is merged by ``merge_vector`` itself, so the result is the same either way."""
    widths = [getattr(part, "width", lambda: None)() for part in per_shard]
    if count == 0 or not per_shard or any(w is None for w in widths) or sum(widths) == 0:
        return [merge_vector([part[q][:2] for part in per_shard], depth) for q in range(count)]
    distances = np.concatenate([part.distances.reshape(count, w) for part, w in zip(per_shard, widths)], axis=1)
    ids = np.empty((count, distances.shape[1]), object)
    column = 0
    for part, w in zip(per_shard, widths):
        if w:
            ids[:, column:column + w] = np.asarray(part.ids, object).reshape(count, w)
        column += w
    order = np.argsort(distances, axis=1, kind="stable")
    cut = min(depth, distances.shape[1])
    # the cut's neighbour too: a tie across it decides which record is kept
    look = min(cut + 1, distances.shape[1])
    sorted_d = np.take_along_axis(distances, order[:, :look], axis=1)
    top_ids = np.take_along_axis(ids, order[:, :cut], axis=1).tolist()
    doubtful = (np.isnan(sorted_d).any(axis=1) | (np.diff(sorted_d, axis=1) == 0).any(axis=1)).tolist()
    top_d = sorted_d[:, :cut].tolist()
    out = []
    for q in range(count):
        row = top_ids[q]
        if doubtful[q] or len(set(row)) < cut:
            out.append(merge_vector([part[q] for part in per_shard], depth))
        else:
            out.append([(i, d, None) for i, d in zip(row, top_d[q])])
    return out


def merge_bm25(lists: list[tuple[list[str], np.ndarray, np.ndarray]], depth: int) -> list[Hit]:
    """Shards' BM25 lists -> the overall best ``depth`` by score (ties by id)."""
    best: dict[str, tuple[float, float]] = {}
    for ids, scores, distances in lists:
        for record_id, score, distance in zip(ids, np.asarray(scores).tolist(), np.asarray(distances).tolist()):
            if record_id not in best or score > best[record_id][0]:
                best[record_id] = (score, distance)
    ranked = sorted(best.items(), key=lambda h: (-h[1][0], h[0]))[:depth]
    return [(i, d, s) for i, (s, d) in ranked]


def fuse(vector: list[Hit], bm25: list[Hit], fusion: str, alpha: float) -> list[Hit]:
    """The two rankings fused as storage/ranking.py fuses them: (id, distance, fused score)."""
    ids = sorted({h[0] for h in vector} | {h[0] for h in bm25})
    label = {record_id: n for n, record_id in enumerate(ids)}
    vector_labels = np.asarray([label[h[0]] for h in vector], np.int64)
    bm25_labels = np.asarray([label[h[0]] for h in bm25], np.int64)
    if fusion == "rrf":
        labels, scores = rrf([vector_labels, bm25_labels])
    else:
        labels, scores = weighted(vector_labels, np.asarray([h[1] for h in vector], np.float32), bm25_labels,
                                  np.asarray([h[2] for h in bm25], np.float64), alpha)
    distance = {h[0]: h[1] for h in bm25}
    distance.update({h[0]: h[1] for h in vector})  # the search's own distances win, as in storage
    order = np.lexsort((labels, -scores))  # labels are ids in sorted order: ties by id
    return [(ids[lab], distance[ids[lab]], float(sc)) for lab, sc in zip(labels[order].tolist(), scores[order].tolist())]


def window(rank: str, fusion: str, n_results: int) -> int:
    """How deep each list is taken: the engine's fusion window for hybrid, else n_results."""
    if rank != "hybrid":
        return n_results
    engine_window = getattr(engine_ranking, "window", None)  # per fusion, where the engine has it
    if engine_window is not None:
        return engine_window(fusion, n_results)
    return max(n_results, engine_ranking.RANK_WINDOW)


def group_depth(rank: str, fusion: str, n_results: int, group_size: int) -> int:
    """The first depth of a grouped ranking: the ungrouped window of n_results x group_size
    for hybrid (its groups are then those of the ungrouped ranking), else 4 x that, >= 32."""
    if rank == "hybrid":
        return window(rank, fusion, n_results * group_size)
    return max(4 * n_results * group_size, 32)


def group(ranking: list[Hit], metadata: dict[str, Any], parts: tuple[str, ...], n_results: int,
          group_size: int) -> tuple[list[Hit], list[Any], bool]:
    """Hits grouped by the metadata value at ``parts`` (groups in the order of their best
    hit, each its best ``group_size``): (hits, their group values, whether the groups are full)."""
    return group_hits(ranking, lambda id_: lookup_path(metadata.get(id_) or {}, parts), n_results, group_size)


def group_limit() -> int:
    from vectord import limits

    return min(MAX_GROUP_FETCH, limits.MAX_N_RESULTS)
