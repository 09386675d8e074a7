"""Building requests and reading responses, shared by the sync and async SDKs.

Everything here is pure: no calls are made. ``Collection`` (sync) and ``AsyncCollection``
(grpc.aio) differ only in how they send what these functions build.
"""

from __future__ import annotations

import numbers
from itertools import accumulate
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from vectord import limits
from vectord.errors import InternalError, InvalidArgumentError
from vectord.v1 import collections_pb2 as cpb
from vectord.v1 import records_pb2 as rpb
from vectord.v1 import types_pb2 as pb
from vectord.wire import (metadata_from_proto, metadata_into, metadata_to_proto, value_from_proto, vectors_from_proto,
                          vectors_to_proto)

from . import checks
from .where import filter_to_proto

GET_INCLUDE = ("metadatas", "documents")
QUERY_INCLUDE = ("metadatas", "documents", "distances")
_INCLUDABLE = ("embeddings", "documents", "metadatas", "distances")
METRICS = {"cosine": cpb.COSINE, "l2": cpb.L2, "ip": cpb.IP}
METRIC_NAMES = {v: k for k, v in METRICS.items()}
WRITE_COUNTS = ("inserted", "updated", "unchanged", "deleted")


#: Include lists already checked, by (names, default, allow_distances): a query's include is
#: usually the same few lists call after call, and checking one costs more than the rest of
#: the request (issue 13's profile: benchmarks/results/remote-profile-2026-11-29.md).
_CHECKED_INCLUDES: dict[tuple, tuple[str, ...]] = {}


def include_message(include: Sequence[str] | None, default: Sequence[str], allow_distances: bool) -> pb.Include:
    key = None
    if include is None or (type(include) in (list, tuple) and all(type(n) is str for n in include)):
        key = (None if include is None else tuple(include), tuple(default), allow_distances)
    names = _CHECKED_INCLUDES.get(key) if key is not None else None
    if names is None:
        names = _check_include(include, default, allow_distances)
        if key is not None and len(_CHECKED_INCLUDES) < 256:
            _CHECKED_INCLUDES[key] = names
    return pb.Include(**dict.fromkeys(names, True))


def _check_include(include: Sequence[str] | None, default: Sequence[str], allow_distances: bool) -> tuple[str, ...]:
    include = list(default) if include is None else checks.as_list(include, "include")
    for name in include:
        if not isinstance(name, str) or name not in _INCLUDABLE or (name == "distances" and not allow_distances):
            raise InvalidArgumentError(f"include: unknown field {name!r}; choose from "
                                       f"{[n for n in _INCLUDABLE if allow_distances or n != 'distances']}")
    return tuple(include)


def as_matrix(embeddings: Any, field: str) -> np.ndarray:
    return checks.matrix(embeddings, field)


def as_list(value: Any, field: str) -> list:
    return checks.as_list(value, field)


def columns(records: Any, include: pb.Include, dim: int) -> dict[str, Any]:
    """A GetResponse or QueryResult as Chroma-style columns."""
    out: dict[str, Any] = {"ids": list(records.ids)}
    out["embeddings"] = (vectors_from_proto(records.embeddings).copy() if records.HasField("embeddings")
                         else np.empty((0, dim), np.float32)) if include.embeddings else None
    out["documents"] = ([d.value if d.HasField("value") else None for d in records.documents]
                        if include.documents else None)
    out["metadatas"] = ([metadata_from_proto(m) or None for m in records.metadatas]
                        if include.metadatas else None)
    return out


# ---------------------------------------------------------------------- collections
def create_collection_request(name: str, dim: int | None, metric: str | None, hnsw: Mapping[str, int] | None,
                              metadata: Mapping[str, Any] | None, encoder: str | None,
                              get_or_create: bool, fulltext: Mapping[str, Any] | None = None,
                              shards: int | None = None, replicas: int | None = None
                              ) -> cpb.CreateCollectionRequest:
    """Settings left None are not sent: the server then uses its defaults (cosine; without
    dim or encoder, the default encoder, as Chroma uses its default embedding function;
    a cluster gateway's layout), and get_or_create accepts whatever an existing collection has."""
    name = checks.text(name, "name")
    dim = checks.optional_integer(dim, "dim", 1, limits.MAX_DIM)
    if metric is not None and (not isinstance(metric, str) or metric not in METRICS):
        raise InvalidArgumentError(f"metric must be one of {', '.join(METRICS)}, got {checks.shown(metric)}")
    hnsw = dict(checks.optional_mapping(hnsw, "hnsw") or {})
    unknown = set(hnsw) - {"m", "ef_construction", "ef_search"}
    if unknown:
        raise InvalidArgumentError(f"unknown hnsw parameter(s) {sorted(map(str, unknown))}; "
                                   "allowed: ['ef_construction', 'ef_search', 'm']")
    for key, value in hnsw.items():  # the ranges are the server's; 0 = its default
        hnsw[key] = checks.integer(value, f"hnsw.{key}", 0, checks.UINT32_MAX)
    request = cpb.CreateCollectionRequest(name=name, dim=dim or 0,
                                          metric=METRICS[metric] if metric else cpb.METRIC_UNSPECIFIED,
                                          get_or_create=checks.boolean(get_or_create, "get_or_create"),
                                          encoder=checks.optional_text(encoder, "encoder") or "")
    if hnsw:
        request.hnsw.CopyFrom(cpb.HnswParams(**hnsw))
    metadata = checks.optional_mapping(metadata, "metadata")
    if metadata:
        request.metadata.CopyFrom(metadata_to_proto(metadata))
    fulltext = checks.optional_mapping(fulltext, "fulltext")
    if fulltext is not None:
        unknown = set(fulltext) - {"analyzer", "stemming", "stop_words"}
        if unknown:
            raise InvalidArgumentError(f"fulltext: unknown setting(s) {sorted(map(str, unknown))}; "
                                       "allowed: analyzer, stemming, stop_words")
        request.fulltext.SetInParent()
        if fulltext.get("analyzer") is not None:
            request.fulltext.analyzer = checks.text(fulltext["analyzer"], "fulltext.analyzer")
        for key in ("stemming", "stop_words"):
            if fulltext.get(key) is not None:
                setattr(request.fulltext, key, checks.boolean(fulltext[key], f"fulltext.{key}"))
    # only the type and sign here: the upper limits are the server's (1 on one server, the
    # cluster's otherwise) and its message names them
    for field, value in (("shards", shards), ("replicas", replicas)):
        if value is not None:
            setattr(request, field, checks.integer(value, field, 1, checks.UINT32_MAX))
    return request


def modify_collection_request(name: str, new_name: str | None,
                              metadata: Mapping[str, Any] | None) -> cpb.ModifyCollectionRequest:
    request = cpb.ModifyCollectionRequest(name=name)
    if new_name is not None:
        request.new_name = checks.text(new_name, "name")
    metadata = checks.optional_mapping(metadata, "metadata")
    if metadata is not None:
        request.metadata.CopyFrom(metadata_to_proto(metadata))
    return request


def embed_texts(texts: Any) -> list[str]:
    """The texts of an embed call: one string, or a list of strings."""
    return checks.texts(texts, "texts")


# ---------------------------------------------------------------------- writes
def write_requests(collection: str, ids, embeddings, documents, metadatas) -> list[rpb.WriteRequest]:
    """The write as one request, or several when it exceeds the message or batch limit."""
    request = rpb.WriteRequest(collection=collection, ids=checks.texts(ids, "ids"))
    if embeddings is not None:
        request.embeddings.CopyFrom(vectors_to_proto(as_matrix(embeddings, "embeddings")))
    if documents is not None:
        request.documents.values.extend(
            pb.OptionalString() if d is None else pb.OptionalString(value=d)
            for d in checks.optional_texts(documents, "documents"))
    if metadatas is not None:
        values = request.metadatas.values
        for i, m in enumerate(as_list(metadatas, "metadatas")):
            metadata_into(values.add(), {} if m is None else m, f"metadatas[{i}]")
    return list(_split(request))


def _split(request: rpb.WriteRequest) -> Iterator[rpb.WriteRequest]:
    """Halves a request until each part fits the limits. A split write is not atomic as a
    whole: each part is all-or-nothing."""
    n = len(request.ids)
    if n <= 1 or (n <= limits.MAX_BATCH_RECORDS and request.ByteSize() <= limits.MAX_MESSAGE_BYTES * 0.9):
        yield request
        return
    half = n // 2
    for lo, hi in ((0, half), (half, n)):
        part = rpb.WriteRequest(collection=request.collection, ids=request.ids[lo:hi])
        if request.HasField("embeddings"):
            e = request.embeddings
            row = e.dim * 4
            part.embeddings.CopyFrom(pb.Vectors(dim=e.dim, count=hi - lo, data_f32le=e.data_f32le[lo * row:hi * row]))
        if request.HasField("documents"):
            part.documents.values.extend(request.documents.values[lo:hi])
        if request.HasField("metadatas"):
            part.metadatas.values.extend(request.metadatas.values[lo:hi])
        yield from _split(part)


def merge_write_results(results: Sequence[pb.WriteResult]) -> dict[str, int]:
    totals = {key: sum(getattr(r, key) for r in results) for key in WRITE_COUNTS}
    totals["seq"] = max((r.seq for r in results), default=0)
    # documents longer than the encoder's window, embedded from their first tokens only
    totals["truncated"] = sum(r.truncated_texts for r in results)
    return totals


def delete_request(collection: str, ids, where, where_document) -> rpb.DeleteRequest | None:
    """None when there is nothing to do (an empty list of ids and no filter)."""
    request = rpb.DeleteRequest(collection=collection)
    if ids is not None:
        request.ids.extend(checks.texts(ids, "ids"))
    where_msg = filter_to_proto(where, where_document)
    if where_msg is not None:
        request.where.CopyFrom(where_msg)
    elif ids is None:
        raise InvalidArgumentError("delete: give ids, where or where_document")
    if ids is not None and not request.ids and where_msg is None:
        return None
    return request


# ---------------------------------------------------------------------- reads
def get_request(collection: str, ids, where, where_document, limit, offset, include,
                page_token) -> tuple[rpb.GetRequest | None, pb.Include]:
    """(request, include); the request is None when ``ids`` is an empty list."""
    include_msg = include_message(include, GET_INCLUDE, allow_distances=False)
    limit = checks.optional_integer(limit, "limit", 0, checks.UINT32_MAX)
    offset = checks.optional_integer(offset, "offset", 0, checks.UINT32_MAX)
    request = rpb.GetRequest(collection=collection, include=include_msg, limit=limit or 0, offset=offset or 0)
    if page_token is not None:
        request.page_token = checks.text(page_token, "page_token")
    if ids is not None:
        ids = checks.texts(ids, "ids")
        if not ids:
            return None, include_msg
        request.ids.extend(ids)
    where_msg = filter_to_proto(where, where_document)
    if where_msg is not None:
        request.where.CopyFrom(where_msg)
    return request, include_msg


def get_result(response: rpb.GetResponse, include: pb.Include, dim: int, paged: bool) -> dict[str, Any]:
    out = columns(response, include, dim)
    if paged:
        out["next_page_token"] = response.next_page_token or None
    return out


def count_request(collection: str, where, where_document) -> rpb.CountRequest:
    request = rpb.CountRequest(collection=collection)
    where_msg = filter_to_proto(where, where_document)
    if where_msg is not None:
        request.where.CopyFrom(where_msg)
    return request


def query_request(collection: str, query_embeddings, n_results, where, where_document, include,
                  query_texts, explain, rank: str = "vector") -> tuple[rpb.QueryRequest, pb.Include]:
    if rank != "vector" and query_texts is not None:
        pass  # vectors optional (the encoder's): hybrid's, and bm25's for max_distance (the server checks)
    elif (query_embeddings is None) == (query_texts is None):
        raise InvalidArgumentError("query: give either query_embeddings or query_texts")
    n_results = checks.integer(n_results, "n_results", 1, limits.MAX_N_RESULTS)
    include_msg = include_message(include, QUERY_INCLUDE, allow_distances=True)
    request = rpb.QueryRequest(collection=collection, n_results=n_results, include=include_msg,
                               explain=checks.boolean(explain, "explain"))
    if query_embeddings is not None:
        request.queries.CopyFrom(vectors_to_proto(as_matrix(query_embeddings, "query_embeddings")))
    if query_texts is not None:
        request.query_texts.extend(checks.texts(query_texts, "query_texts"))
    where_msg = filter_to_proto(where, where_document)
    if where_msg is not None:
        request.where.CopyFrom(where_msg)
    # a batch's hits packed in one message when they are bare (server/convert.py): cheaper to
    # build and to read; a single query is left as it is (the coalescer joins those itself)
    request.packed_results = (request.queries.count or len(request.query_texts)) > 1
    request.packed_columns = request.packed_results  # as byte columns, where the server can
    return request, include_msg


def packed_rows(packed: rpb.PackedHits, distances: bool) -> tuple[list[list[str]], list[list[float]] | None]:
    """A packed reply's ids (and distances) cut into one list per query, from its byte
    columns (QueryRequest.packed_columns) or its repeated fields, whichever the server set."""
    ends = list(accumulate(packed.counts))
    bounds = list(zip([0] + ends[:-1], ends))
    hits = ends[-1] if ends else 0
    if packed.ids_joined:  # one decode and one split, both in C (0xFF: see the proto)
        ids = packed.ids_joined.decode("utf-8", "surrogateescape").split("\udcff")
    else:
        ids = list(packed.ids)
    if len(ids) != hits:
        raise InternalError(f"query: the server's packed reply holds {len(ids)} ids for {hits} hits")
    if not distances:
        return [ids[a:b] for a, b in bounds], None
    if packed.distances_f32le:
        flat = np.frombuffer(packed.distances_f32le, "<f4").tolist()
    else:
        flat = list(packed.distances)
    if len(flat) != hits:
        raise InternalError(f"query: the server's packed reply holds {len(flat)} distances for {hits} hits")
    return [ids[a:b] for a, b in bounds], [flat[a:b] for a, b in bounds]


def query_result(response: rpb.QueryResponse, include: pb.Include, dim: int, explain: bool) -> dict[str, Any]:
    results = response.results
    out: dict[str, Any]
    if response.HasField("packed"):  # asked for by query_request, sent by servers that know it
        ids, distances = packed_rows(response.packed, include.distances)
        out = {"ids": ids, "distances": distances}
    else:
        out = {"ids": [list(result.ids) for result in results],
               "distances": [list(result.distances) for result in results] if include.distances else None}
    for key in ("embeddings", "documents", "metadatas"):  # the optional columns: one pass for all three
        out[key] = [] if getattr(include, key) else None
    if include.embeddings or include.documents or include.metadatas:
        for result in results:
            cols = columns(result, include, dim)
            for key in ("embeddings", "documents", "metadatas"):
                if out[key] is not None:
                    out[key].append(cols[key])
    if explain:
        plan = response.plan
        out["plan"] = {"strategy": plan.strategy, "candidates": plan.candidates, "ef": plan.ef,
                       "filter_path": plan.filter_path, "elapsed_ms": plan.elapsed_ms, "tail": plan.tail}
        if plan.segments:  # sealed segments (docs/segments.md): each part's own plan
            out["plan"]["segments"] = [{"segment": p.segment, "strategy": p.strategy, "candidates": p.candidates,
                                        "ef": p.ef} for p in plan.segments]
    return out


def model_info(model) -> dict[str, Any]:
    return {"name": model.name, "version": model.version, "sha256": model.sha256, "dim": model.dim,
            "max_tokens": model.max_tokens, "is_default": model.is_default}


# ---------------------------------------------------------------------- query options, chunking, classify
def query_options(request: rpb.QueryRequest, max_distance: Any, group_by: Any, group_size: Any) -> None:
    """Sets max_distance, group_by and group_size on a query request (the server checks the
    ranges: max_distance finite and >= 0, n_results x group_size within its limit)."""
    if max_distance is not None:
        if isinstance(max_distance, (bool, np.bool_)) or not isinstance(max_distance, numbers.Real):
            raise InvalidArgumentError(f"max_distance must be a number, got {checks.shown(max_distance)}")
        request.max_distance = float(max_distance)
    if group_by is not None:
        request.group_by = checks.text(group_by, "group_by")
    if group_size is not None:
        if group_by is None:
            raise InvalidArgumentError("group_size needs group_by (a metadata path)")
        request.group_size = checks.integer(group_size, "group_size", 1, limits.MAX_N_RESULTS)


RANKS = ("vector", "bm25", "hybrid")
FUSIONS = ("rrf", "weighted")


def rank_options(request: rpb.QueryRequest, rank: Any, fusion: Any, hybrid_alpha: Any) -> None:
    """Sets rank, fusion and hybrid_alpha on a query request (defaults are not sent)."""
    if rank == "vector" and fusion == "rrf" and type(hybrid_alpha) is float and hybrid_alpha == 0.5:
        return  # the defaults, as nearly every query passes them: nothing to check or send
    if rank not in RANKS:
        raise InvalidArgumentError(f"rank must be one of {list(RANKS)}, got {checks.shown(rank)}")
    if fusion not in FUSIONS:
        raise InvalidArgumentError(f"fusion must be one of {list(FUSIONS)}, got {checks.shown(fusion)}")
    if isinstance(hybrid_alpha, (bool, np.bool_)) or not isinstance(hybrid_alpha, numbers.Real) \
            or not 0.0 <= float(hybrid_alpha) <= 1.0:
        raise InvalidArgumentError(f"hybrid_alpha must be a number in [0, 1], got {checks.shown(hybrid_alpha)}")
    if rank != "vector":
        request.rank = rank
    if fusion != "rrf":
        request.fusion = fusion
    if float(hybrid_alpha) != 0.5:
        request.hybrid_alpha = float(hybrid_alpha)


def query_scores(out: dict[str, Any], response: rpb.QueryResponse, rank: str) -> dict[str, Any]:
    """Adds the ``scores`` column (per query; higher is better) to a bm25 or hybrid result."""
    if rank != "vector":
        out["scores"] = [list(result.scores) for result in response.results]
    if "plan" in out:
        plan = response.plan
        out["plan"].update(rank=plan.rank or "vector", postings=plan.postings, fusion=plan.fusion)
    return out


def query_groups(out: dict[str, Any], response: rpb.QueryResponse, grouped: bool) -> dict[str, Any]:
    """Adds the ``groups`` column (each hit's group value, per query) to a grouped result."""
    if grouped:
        out["groups"] = [[value_from_proto(v) for v in result.groups] for result in response.results]
    return out


def chunking_message(chunking: Any) -> rpb.Chunking | None:
    """``chunking=True`` (whole-window chunks, no overlap), or a dict ``{"tokens": N,
    "overlap": M}`` (both optional), as a Chunking message; None/False: no chunking."""
    if chunking is None or chunking is False:
        return None
    if chunking is True:
        return rpb.Chunking()
    chunking = checks.optional_mapping(chunking, "chunking")
    unknown = set(chunking) - {"tokens", "overlap"}
    if unknown:
        raise InvalidArgumentError(f"chunking: unknown key(s) {sorted(map(str, unknown))}; allowed: tokens, overlap")
    return rpb.Chunking(tokens=checks.integer(chunking.get("tokens", 0), "chunking.tokens", 0, checks.UINT32_MAX),
                        overlap=checks.integer(chunking.get("overlap", 0), "chunking.overlap", 0,
                                               checks.UINT32_MAX))


def with_chunking(parts: list[rpb.WriteRequest], chunking: Any) -> list[rpb.WriteRequest]:
    message = chunking_message(chunking)
    if message is not None:
        for part in parts:
            part.chunking.CopyFrom(message)
    return parts


def classify_request(collection: str, texts, embeddings, label_key, k, where, where_document) -> rpb.ClassifyRequest:
    if (texts is None) == (embeddings is None):
        raise InvalidArgumentError("classify: give either texts or embeddings")
    request = rpb.ClassifyRequest(collection=collection, label_key=checks.text(label_key, "label_key"),
                                  k=checks.integer(k, "k", 1, checks.UINT32_MAX))
    if embeddings is not None:
        request.vectors.CopyFrom(vectors_to_proto(as_matrix(embeddings, "embeddings")))
    else:
        request.texts.extend(checks.texts(texts, "texts"))
    where_msg = filter_to_proto(where, where_document)
    if where_msg is not None:
        request.where.CopyFrom(where_msg)
    return request


def classify_result(response: rpb.ClassifyResponse) -> list[dict[str, Any]]:
    return [{"label": value_from_proto(r.label) if r.HasField("label") else None,
             "scores": {value_from_proto(s.label): s.score for s in r.scores},
             "votes": {value_from_proto(s.label): s.votes for s in r.scores}}
            for r in response.results]
