"""Translation between v1 messages and the storage engine's plain types."""

from __future__ import annotations

import base64

import numpy as np

from vectord import limits
from vectord.errors import InvalidArgumentError
from vectord.storage import filters as f
from vectord.storage.analyzers import fulltext_config
from vectord.storage.types import CollectionInfo, HitColumns, Records, WriteResult
from vectord.v1 import collections_pb2 as cpb
from vectord.v1 import records_pb2 as rpb
from vectord.v1 import types_pb2 as pb
from vectord.wire import (
    metadata_from_proto,
    metadata_to_proto,
    value_from_proto,
    value_to_proto,
    vectors_from_proto,
    vectors_to_proto,
)

METRIC_TO_PROTO = {"cosine": cpb.COSINE, "l2": cpb.L2, "ip": cpb.IP}
METRIC_FROM_PROTO = {v: k for k, v in METRIC_TO_PROTO.items()}


def metric_from_proto(value: int) -> str:
    try:
        return METRIC_FROM_PROTO[value]
    except KeyError:
        raise InvalidArgumentError(f"metric: must be COSINE, L2 or IP, got {value}") from None


def _op_name(enum, value: int, what: str) -> str:
    """The operator's name; an enum number this server does not know is refused (a
    client built from a newer .proto, or a hostile one), not a crash."""
    try:
        return enum.Name(value).lower()
    except ValueError:
        raise InvalidArgumentError(
            f"{what}: unknown operator {value}; known: {', '.join(enum.keys()[1:])}") from None


def filter_from_proto(msg: pb.Filter, field: str = "where", depth: int = 1) -> f.Filter:
    if depth > limits.MAX_FILTER_DEPTH:
        raise InvalidArgumentError(f"{field}: filter nested deeper than {limits.MAX_FILTER_DEPTH} levels")
    kind = msg.WhichOneof("kind")
    if kind == "field":
        cond = msg.field
        if cond.op == pb.FieldCondition.OP_UNSPECIFIED:
            raise InvalidArgumentError(f"{field}: condition on {cond.path!r} has no operator")
        op = _op_name(pb.FieldCondition.Op, cond.op, f"{field}: condition on {cond.path!r}")
        return f.Field(cond.path, op, value_from_proto(cond.value))
    if kind == "document":
        cond = msg.document
        if cond.op == pb.DocumentCondition.OP_UNSPECIFIED:
            raise InvalidArgumentError(f"{field}: document condition has no operator")
        return f.Document(_op_name(pb.DocumentCondition.Op, cond.op, f"{field}: document condition"), cond.text)
    if kind in ("all_of", "any_of"):
        parts = tuple(filter_from_proto(x, field, depth + 1) for x in getattr(msg, kind).filters)
        return f.And(parts) if kind == "all_of" else f.Or(parts)
    if kind == "negation":
        return f.Not(filter_from_proto(msg.negation, field, depth + 1))
    raise InvalidArgumentError(f"{field}: empty filter (set one of field, all_of, any_of, negation, document)")


def optional_filter(request, field: str = "where") -> f.Filter | None:
    return filter_from_proto(getattr(request, field), field) if request.HasField(field) else None


def include_from_proto(request) -> list[str] | None:
    if not request.HasField("include"):
        return None
    inc = request.include
    return [name for name in ("embeddings", "documents", "metadatas", "distances") if getattr(inc, name)]


def write_result_to_proto(result: WriteResult) -> pb.WriteResult:
    return pb.WriteResult(inserted=result.inserted, updated=result.updated,
                          unchanged=result.unchanged, deleted=result.deleted, seq=result.seq,
                          truncated_texts=result.truncated_texts)


def _documents(values) -> list[pb.OptionalString]:
    return [pb.OptionalString() if d is None else pb.OptionalString(value=d) for d in values]


#: Rows added to a reply between two size checks: small enough that a check stops the
#: building within a few MiB of the limit, large enough that checking costs nothing.
_CHUNK = 1024


def _fill_columns(out, records: Records, size=None):
    """Sets the optional columns shared by GetResponse and QueryResult; with ``size`` (a
    ``budgets.ReplySize``), stops as soon as the reply passes the message limit."""
    n = len(records.ids)
    if size is not None:
        size.add(sum(map(len, records.ids)) + 2 * n, 0)  # chars: a lower bound of the bytes
    if records.embeddings is not None:
        if size is not None:
            size.add(records.embeddings.size * 4, n)  # exact, and known before any copy
        out.embeddings.CopyFrom(vectors_to_proto(records.embeddings))
    if records.documents is not None:
        documents = records.documents
        for lo in range(0, n, _CHUNK):
            chunk = documents[lo:lo + _CHUNK]
            if size is not None:
                size.add(sum(len(d) + 4 for d in chunk if d is not None) + 2 * len(chunk), lo)
            out.documents.extend(_documents(chunk))
    if records.metadatas is not None:
        for lo in range(0, n, _CHUNK):
            chunk = [metadata_to_proto(m) for m in records.metadatas[lo:lo + _CHUNK]]
            if size is not None:
                size.add(sum(m.ByteSize() + 3 for m in chunk), lo)
            out.metadatas.extend(chunk)
    return out


def records_to_get_response(records: Records, size=None) -> rpb.GetResponse:
    response = _fill_columns(rpb.GetResponse(ids=records.ids), records, size)
    if size is not None:
        size.bytes = 0
        size.add(response.ByteSize(), len(records.ids))  # exact, once, for what the estimate missed
    return response


def _fill_query_result(out: rpb.QueryResult, records: Records, size=None) -> None:
    if records.distances is not None:
        if size is not None:
            size.add(4 * len(records.distances), 0)
        out.distances.extend(records.distances.tolist())
    if records.groups is not None:
        out.groups.extend(value_to_proto(value, "groups") for value in records.groups)
    if records.scores is not None:  # rank bm25 / hybrid
        if size is not None:
            size.add(4 * len(records.scores), 0)
        out.scores.extend(records.scores.tolist())
    _fill_columns(out, records, size)


def classifications_to_proto(results) -> rpb.ClassifyResponse:
    """storage.classify's Classifications as a ClassifyResponse."""
    response = rpb.ClassifyResponse()
    for result in results:
        out = response.results.add()
        if result.label is not None:
            out.label.CopyFrom(value_to_proto(result.label, "label"))
        for label, score, votes in result.scores:
            out.scores.add(label=value_to_proto(label, "label"), score=score, votes=votes)
    return response


#: The most bytes one hit without documents, metadata or vectors can take in a reply: its
#: id, its distance or score, and the field tags.
_BARE_HIT_BYTES = limits.MAX_ID_BYTES + 16


def records_to_query_response(results, size=None, packed: bool = False) -> rpb.QueryResponse:
    """The QueryResponse of every query's records, built under ``size`` when given.

    Hits checked row by row against ``size`` only when the reply could pass the message
    limit before the end (documents, metadata or vectors in it, or so many ids that even
    at their longest they might): a batch of 100 queries of 10 bare hits is measured once,
    at the end, rather than with 100 estimates on the way.

    ``packed`` (the request's packed_results): hits of ids and distances only go end to end
    in ``response.packed``, one message instead of one QueryResult per query (a batch of 100
    queries of 10 hits with distances: ~90 us to build instead of ~190, and ~130 us for the
    SDK to read instead of ~250; benchmarks/results/packed-hits-2026-12-01.md).
    """
    response = rpb.QueryResponse()
    if isinstance(results, HitColumns):  # QueryRequest.packed_columns: the engine's columns as they are
        hits = sum(results.counts)
        if size is not None:  # before any copy: the columns' own bytes, nearly the whole reply
            size.add(len(results.ids_joined) + 4 * hits, hits)
        _fill_packed_columns(response.packed, results)
        if size is not None:
            size.bytes = 0
            size.add(response.ByteSize(), hits)
        return response
    columns = any(r.embeddings is not None or r.documents is not None or r.metadatas is not None for r in results)
    hits = sum(len(r.ids) for r in results)
    row_size = size if columns or hits * _BARE_HIT_BYTES > limits.MAX_MESSAGE_BYTES else None
    if packed and row_size is None and all(r.scores is None and r.groups is None for r in results):
        _fill_packed(response.packed, results)
    else:
        add = response.results.add
        for records in results:
            _fill_query_result(add(ids=records.ids), records, row_size)
    if size is not None:
        size.bytes = 0
        size.add(response.ByteSize(), hits)
    return response


def _fill_packed_columns(out: rpb.PackedHits, hits: HitColumns) -> None:
    """The hits' columns as bytes: no field per hit to build (or, for the client, to read)."""
    out.counts.extend(hits.counts)
    out.ids_joined = hits.ids_joined
    if hits.distances is not None:
        out.distances_f32le = hits.distances.astype("<f4", copy=False).tobytes()


def _fill_packed(out: rpb.PackedHits, results) -> None:
    """Every query's ids and distances end to end, and each query's count."""
    out.counts.extend([len(r.ids) for r in results])
    ids: list[str] = []
    for records in results:
        ids += records.ids
    out.ids.extend(ids)
    if results and results[0].distances is not None:  # included for every query or for none
        out.distances.extend(np.concatenate([r.distances for r in results]).tolist())


def collection_info_to_proto(info: CollectionInfo) -> cpb.CollectionInfo:
    config = info.config
    return cpb.CollectionInfo(
        name=config.name, id=config.id, dim=config.dim, metric=METRIC_TO_PROTO[config.metric],
        hnsw=cpb.HnswParams(m=config.hnsw["m"], ef_construction=config.hnsw["ef_construction"],
                            ef_search=config.hnsw["ef_search"]),
        metadata=metadata_to_proto(config.metadata), count=info.count,
        created_at_unix_ms=config.created_at_ms,
        encoder=(config.encoder or {}).get("name", ""), seq=info.seq,
        encoder_sha256=(config.encoder or {}).get("sha256", ""),
        fulltext=cpb.FullTextConfig(**fulltext_config(config.fulltext)),
        # one server: one shard in one copy; a cluster collection's info carries its layout
        # (cluster/engine.py, ClusterCollection.info)
        shards=getattr(info, "shards", 1), replicas=getattr(info, "replicas", 1),
    )


def fulltext_from_proto(msg: cpb.FullTextConfig) -> dict:
    """A CreateCollectionRequest's FullTextConfig as the engine's settings (absent fields
    left out, so that they take the defaults)."""
    out: dict = {}
    if msg.analyzer:
        out["analyzer"] = msg.analyzer
    for key in ("stemming", "stop_words"):
        if msg.HasField(key):
            out[key] = getattr(msg, key)
    return out


def write_columns(request: rpb.WriteRequest):
    """Returns (ids, embeddings or None, documents or None, metadatas or None)."""
    embeddings = vectors_from_proto(request.embeddings) if request.HasField("embeddings") else None
    documents = ([d.value if d.HasField("value") else None for d in request.documents.values]
                 if request.HasField("documents") else None)
    metadatas = ([metadata_from_proto(m) for m in request.metadatas.values]
                 if request.HasField("metadatas") else None)
    return list(request.ids), embeddings, documents, metadatas


def id_to_page_token(id_: str) -> str:
    """Page tokens are opaque to clients: the last id returned, base64url-encoded."""
    return base64.urlsafe_b64encode(id_.encode("utf-8", "surrogatepass")).decode("ascii")


def page_token_to_id(token: str) -> str:
    """The id a page token resumes after ("" for the first page)."""
    if not token:
        return ""
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8", "surrogatepass")
    except (ValueError, UnicodeError):
        raise InvalidArgumentError(f"page_token: {token[:40]!r} is not a token this server issued") from None
