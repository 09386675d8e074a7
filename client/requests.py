"""Building requests and reading responses, shared by the sync and async SDKs.

Everything here is pure: no calls are made. ``Collection`` (sync) and ``AsyncCollection``
(grpc.aio) differ only in how they send what these functions build.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from vectord import limits
from vectord.errors import InvalidArgumentError
from vectord.v1 import collections_pb2 as cpb
from vectord.v1 import records_pb2 as rpb
from vectord.v1 import types_pb2 as pb
from vectord.wire import metadata_from_proto, metadata_to_proto, vectors_from_proto, vectors_to_proto

from .where import filter_to_proto

GET_INCLUDE = ("metadatas", "documents")
QUERY_INCLUDE = ("metadatas", "documents", "distances")
_INCLUDABLE = ("embeddings", "documents", "metadatas", "distances")
METRICS = {"cosine": cpb.COSINE, "l2": cpb.L2, "ip": cpb.IP}
METRIC_NAMES = {v: k for k, v in METRICS.items()}
WRITE_COUNTS = ("inserted", "updated", "unchanged", "deleted")


def include_message(include: Sequence[str] | None, default: Sequence[str], allow_distances: bool) -> pb.Include:
    include = list(default if include is None else include)
    for name in include:
        if name not in _INCLUDABLE or (name == "distances" and not allow_distances):
            raise InvalidArgumentError(f"include: unknown field {name!r}; choose from "
                                       f"{[n for n in _INCLUDABLE if allow_distances or n != 'distances']}")
    return pb.Include(**{name: True for name in include})


def as_matrix(embeddings: Any, field: str) -> np.ndarray:
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim == 1 and array.size:
        array = array[None, :]
    if array.ndim != 2:
        raise InvalidArgumentError(f"{field}: expected a list of vectors or a 2-d array, got shape {array.shape}")
    return array


def as_list(value: Any, field: str) -> list:
    if isinstance(value, (str, bytes, Mapping)):
        return [value]
    if value is None:
        raise InvalidArgumentError(f"{field}: must not be None")
    return list(value)


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
def create_collection_request(name: str, dim: int | None, metric: str, hnsw: Mapping[str, int] | None,
                              metadata: Mapping[str, Any] | None, encoder: str | None,
                              get_or_create: bool) -> cpb.CreateCollectionRequest:
    if metric not in METRICS:
        raise InvalidArgumentError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    hnsw = dict(hnsw or {})
    unknown = set(hnsw) - {"m", "ef_construction", "ef_search"}
    if unknown:
        raise InvalidArgumentError(f"unknown hnsw parameter(s) {sorted(unknown)}; "
                                   "allowed: ['ef_construction', 'ef_search', 'm']")
    if dim is None and encoder is None:
        encoder = "default"  # as Chroma uses its default embedding function
    request = cpb.CreateCollectionRequest(name=name, dim=dim or 0, metric=METRICS[metric],
                                          hnsw=cpb.HnswParams(**hnsw), get_or_create=get_or_create,
                                          encoder=encoder or "")
    if metadata:
        request.metadata.CopyFrom(metadata_to_proto(metadata))
    return request


# ---------------------------------------------------------------------- writes
def write_requests(collection: str, ids, embeddings, documents, metadatas) -> list[rpb.WriteRequest]:
    """The write as one request, or several when it exceeds the message or batch limit."""
    request = rpb.WriteRequest(collection=collection, ids=as_list(ids, "ids"))
    if embeddings is not None:
        request.embeddings.CopyFrom(vectors_to_proto(as_matrix(embeddings, "embeddings")))
    if documents is not None:
        request.documents.values.extend(
            pb.OptionalString() if d is None else pb.OptionalString(value=d) for d in as_list(documents, "documents"))
    if metadatas is not None:
        request.metadatas.values.extend(
            metadata_to_proto(m or {}, f"metadatas[{i}]") for i, m in enumerate(as_list(metadatas, "metadatas")))
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
    return totals


def delete_request(collection: str, ids, where, where_document) -> rpb.DeleteRequest | None:
    """None when there is nothing to do (an empty list of ids and no filter)."""
    request = rpb.DeleteRequest(collection=collection)
    if ids is not None:
        request.ids.extend(as_list(ids, "ids"))
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
    if limit is not None and limit < 0 or offset is not None and offset < 0:
        raise InvalidArgumentError(f"limit and offset must not be negative, got {limit}, {offset}")
    request = rpb.GetRequest(collection=collection, include=include_msg, limit=limit or 0, offset=offset or 0)
    if page_token is not None:
        request.page_token = page_token
    if ids is not None:
        ids = as_list(ids, "ids")
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
                  query_texts, explain) -> tuple[rpb.QueryRequest, pb.Include]:
    if (query_embeddings is None) == (query_texts is None):
        raise InvalidArgumentError("query: give either query_embeddings or query_texts")
    if not isinstance(n_results, int) or isinstance(n_results, bool) or not 1 <= n_results <= limits.MAX_N_RESULTS:
        raise InvalidArgumentError(f"n_results must be in 1..{limits.MAX_N_RESULTS}, got {n_results!r}")
    include_msg = include_message(include, QUERY_INCLUDE, allow_distances=True)
    request = rpb.QueryRequest(collection=collection, n_results=n_results, include=include_msg, explain=explain)
    if query_embeddings is not None:
        request.queries.CopyFrom(vectors_to_proto(as_matrix(query_embeddings, "query_embeddings")))
    else:
        request.query_texts.extend(as_list(query_texts, "query_texts"))
    where_msg = filter_to_proto(where, where_document)
    if where_msg is not None:
        request.where.CopyFrom(where_msg)
    return request, include_msg


def query_result(response: rpb.QueryResponse, include: pb.Include, dim: int, explain: bool) -> dict[str, Any]:
    out: dict[str, Any] = {key: [] if key == "ids" or getattr(include, key) else None
                           for key in ("ids", "distances", "embeddings", "documents", "metadatas")}
    for result in response.results:
        cols = columns(result, include, dim)
        out["ids"].append(cols["ids"])
        if include.distances:
            out["distances"].append(list(result.distances))
        for key in ("embeddings", "documents", "metadatas"):
            if out[key] is not None:
                out[key].append(cols[key])
    if explain:
        plan = response.plan
        out["plan"] = {"strategy": plan.strategy, "candidates": plan.candidates, "ef": plan.ef,
                       "filter_path": plan.filter_path, "elapsed_ms": plan.elapsed_ms}
    return out


def model_info(model) -> dict[str, Any]:
    return {"name": model.name, "version": model.version, "sha256": model.sha256, "dim": model.dim,
            "max_tokens": model.max_tokens, "is_default": model.is_default}
