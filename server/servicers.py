"""gRPC servicers: translate and validate requests, call the engine, translate results.

They never touch files or indexes, and they raise the engine's typed errors unchanged: the
error interceptor (remote) or the SDK's in-process transport (embedded) deals with them.
The same objects serve both modes, so there is one code path for validation and storage.
"""

from __future__ import annotations

import time

from vectord import __version__, limits
import numpy as np

from vectord.errors import DeadlineExceededError, FailedPreconditionError, InvalidArgumentError
from vectord.storage import Database, classify
from vectord.storage.collection import Collection
from vectord.v1 import admin_pb2, admin_pb2_grpc, encoder_pb2, encoder_pb2_grpc
from vectord.v1 import collections_pb2 as cpb
from vectord.v1 import collections_pb2_grpc
from vectord.v1 import records_pb2 as rpb
from vectord.v1 import records_pb2_grpc
from vectord.wire import metadata_from_proto, vectors_from_proto, vectors_to_proto

from . import budgets, convert
from .query_stream import DEFAULT_IDLE_S, DEFAULT_MAX_STREAMS, QueryStreams


def _check_deadline(context) -> None:
    """Refuses work whose caller has already given up (before expensive steps)."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise DeadlineExceededError("deadline passed before the server started the work")


class CollectionsServicer(collections_pb2_grpc.CollectionsServicer):
    def __init__(self, database: Database) -> None:
        self.db = database

    def CreateCollection(self, request: cpb.CreateCollectionRequest, context) -> cpb.CollectionInfo:
        hnsw = None
        if request.HasField("hnsw"):
            hnsw = {k: v for k, v in (("m", request.hnsw.m), ("ef_construction", request.hnsw.ef_construction),
                                      ("ef_search", request.hnsw.ef_search)) if v}
        # zero values are "not given": defaults for a new collection, and get_or_create
        # accepts whatever the existing one has (collections.proto, CreateCollection)
        metric = None if request.metric == cpb.METRIC_UNSPECIFIED else convert.metric_from_proto(request.metric)
        collection = self.db.create_collection(
            request.name, dim=request.dim or None, metric=metric, hnsw=hnsw,
            metadata=metadata_from_proto(request.metadata) if request.HasField("metadata") else None,
            get_or_create=request.get_or_create, encoder=request.encoder or None,
            fulltext=convert.fulltext_from_proto(request.fulltext) if request.HasField("fulltext") else None,
            **self._layout(request))
        return convert.collection_info_to_proto(collection.info())

    def _layout(self, request: cpb.CreateCollectionRequest) -> dict:
        """The create_collection keywords of the request's shards and replicas: none here, as
        one server holds one shard in one copy (1 is accepted, as what it is); the cluster
        gateway passes them on (cluster/gateway.py)."""
        for field in ("shards", "replicas"):
            value = getattr(request, field)
            if request.HasField(field) and value != 1:
                raise InvalidArgumentError(
                    f"{field}: got {value}, but a single vectord server holds one shard in one replica: {field} "
                    "must be 1 or unset (a vectord cluster spreads a collection over machines: docs/cluster.md)")
        return {}

    def GetCollection(self, request: cpb.GetCollectionRequest, context) -> cpb.CollectionInfo:
        return convert.collection_info_to_proto(self.db.get_collection(request.name).info())

    def ListCollections(self, request, context) -> cpb.ListCollectionsResponse:
        return cpb.ListCollectionsResponse(
            collections=[convert.collection_info_to_proto(c.info()) for c in self.db.list_collections()])

    def DeleteCollection(self, request: cpb.DeleteCollectionRequest, context) -> cpb.DeleteCollectionResponse:
        self.db.delete_collection(request.name)
        return cpb.DeleteCollectionResponse()

    def ModifyCollection(self, request: cpb.ModifyCollectionRequest, context) -> cpb.CollectionInfo:
        collection = self.db.modify_collection(
            request.name, new_name=request.new_name if request.HasField("new_name") else None,
            metadata=metadata_from_proto(request.metadata) if request.HasField("metadata") else None)
        return convert.collection_info_to_proto(collection.info())


class RecordsServicer(records_pb2_grpc.RecordsServicer):
    def __init__(self, database: Database, max_query_streams: int = DEFAULT_MAX_STREAMS,
                 query_stream_idle_s: float = DEFAULT_IDLE_S) -> None:
        self.db = database
        self.query_streams = QueryStreams(self.Query, max_query_streams, query_stream_idle_s)

    def _write(self, method: str, request: rpb.WriteRequest, context):
        collection = self.db.get_collection(request.collection)
        ids, embeddings, documents, metadatas = convert.write_columns(request)
        _check_deadline(context)
        if request.HasField("chunking"):  # long documents as chunks, one atomic write per request
            if embeddings is not None:
                raise InvalidArgumentError("chunking: the chunks are embedded by the collection's encoder; "
                                           "give documents, not embeddings")
            result = collection.put_chunked(method, ids, documents, metadatas,
                                            tokens=request.chunking.tokens, overlap=request.chunking.overlap)
        else:
            result = getattr(collection, method)(ids, embeddings, documents, metadatas)
        return convert.write_result_to_proto(result)

    def Add(self, request, context):
        return self._write("add", request, context)

    def Upsert(self, request, context):
        return self._write("upsert", request, context)

    def Update(self, request, context):
        return self._write("update", request, context)

    def Delete(self, request: rpb.DeleteRequest, context):
        collection = self.db.get_collection(request.collection)
        ids = list(request.ids) if request.ids else None
        result = collection.delete(ids=ids, where=convert.optional_filter(request))
        return convert.write_result_to_proto(result)

    def Get(self, request: rpb.GetRequest, context) -> rpb.GetResponse:
        collection = self.db.get_collection(request.collection)
        after = convert.page_token_to_id(request.page_token) if request.HasField("page_token") else None
        ids, where, include = list(request.ids) or None, convert.optional_filter(request), \
            convert.include_from_proto(request)
        budgets.check_get(collection, ids=ids, where=where, limit=request.limit, offset=request.offset,
                          cursor=after is not None, include=include)  # before the work
        records = collection.get(ids=ids, where=where,
                                 limit=request.limit or None, offset=request.offset,
                                 include=include, after=after)
        response = convert.records_to_get_response(records, budgets.ReplySize("Get", budgets.GET_ADVICE))
        if records.next_after is not None:
            response.next_page_token = convert.id_to_page_token(records.next_after)
        return response

    def Query(self, request: rpb.QueryRequest, context) -> rpb.QueryResponse:
        collection = self.db.get_collection(request.collection)
        queries = vectors_from_proto(request.queries, "query_embeddings") if request.HasField("queries") else None
        where, include, n_results = convert.optional_filter(request), convert.include_from_proto(request), \
            request.n_results or 10
        n_queries = len(queries) if queries is not None else len(request.query_texts)
        max_distance = request.max_distance if request.HasField("max_distance") else None
        group_by, group_size = request.group_by or None, request.group_size or 1
        # a grouped query returns up to n_results x group_size hits: that is the reply's budget
        hits = n_results * group_size if group_by else n_results
        budgets.check_query_shape(n_queries, hits)  # before any embedding or search
        budgets.check_query(collection, n_queries=n_queries, n_results=hits, where=where, include=include)
        _check_deadline(context)
        texts = list(request.query_texts) if request.query_texts else None
        rank, fusion = request.rank or "vector", request.fusion or "rrf"
        alpha = request.hybrid_alpha if request.HasField("hybrid_alpha") else 0.5
        if rank != "vector" and isinstance(collection, Collection):
            # bm25 and hybrid, with max_distance and group_by (storage/ranking.py); a
            # cluster's collection is no engine Collection: its query_with_plan answers UNIMPLEMENTED
            results, plan = collection.query_ranked_with_plan(
                rank, texts, queries, n_results=n_results, where=where, include=include, fusion=fusion,
                hybrid_alpha=alpha, max_distance=max_distance, group_by=group_by, group_size=group_size)
        else:
            # the bare hits of a packed batch as the engine's (or a cluster gateway's) columns
            # (convert.py)
            results, plan = collection.query_with_plan(
                queries, n_results=n_results, where=where, include=include, texts=texts,
                max_distance=max_distance, group_by=group_by, group_size=group_size,
                rank=rank, fusion=fusion, hybrid_alpha=alpha,
                columns=request.packed_results and request.packed_columns)
        response = convert.records_to_query_response(results, budgets.ReplySize("Query", budgets.QUERY_ADVICE),
                                                     packed=request.packed_results)
        if request.explain:
            response.plan.CopyFrom(rpb.QueryPlan(strategy=plan.strategy, candidates=plan.candidates, ef=plan.ef,
                                                 filter_path=plan.filter_path, elapsed_ms=plan.elapsed_ms,
                                                 rank=plan.rank, postings=plan.postings, fusion=plan.fusion,
                                                 tail=plan.tail,
                                                 segments=[rpb.SegmentPlan(segment=p.segment, strategy=p.strategy,
                                                                           candidates=p.candidates, ef=p.ef)
                                                           for p in plan.segments]))
        return response

    def QueryStream(self, request_iterator, context):
        return self.query_streams.serve(request_iterator, context)

    def Count(self, request: rpb.CountRequest, context) -> rpb.CountResponse:
        collection = self.db.get_collection(request.collection)
        return rpb.CountResponse(count=collection.count(where=convert.optional_filter(request)))

    def Classify(self, request: rpb.ClassifyRequest, context) -> rpb.ClassifyResponse:
        collection = self.db.get_collection(request.collection)
        label_key, k = classify.check(request.label_key, request.k)  # before any embedding or search
        vectors = vectors_from_proto(request.vectors, "vectors") if request.HasField("vectors") else None
        if (vectors is None) == (not request.texts):
            raise InvalidArgumentError("classify: give either vectors (embeddings) or texts")
        n_inputs = len(vectors) if vectors is not None else len(request.texts)
        budgets.check_query_shape(n_inputs, k)
        _check_deadline(context)
        results = classify.classify(collection, vectors, texts=list(request.texts) or None, label_key=label_key,
                                    k=k, where=convert.optional_filter(request))
        return convert.classifications_to_proto(results)


class EncoderServicer(encoder_pb2_grpc.EncoderServicer):
    def __init__(self, database: Database) -> None:
        self.db = database

    def _registry(self):
        if self.db.encoders is None:
            raise FailedPreconditionError("no built-in encoder is available in this process")
        return self.db.encoders

    def Embed(self, request: encoder_pb2.EmbedRequest, context) -> encoder_pb2.EmbedResponse:
        if len(request.texts) > limits.MAX_BATCH_RECORDS:
            raise InvalidArgumentError(
                f"texts: {len(request.texts)} texts, the limit is {limits.MAX_BATCH_RECORDS} per call")
        model = self._registry().get(request.model or "default")
        _check_deadline(context)
        truncated: list[int] = []  # texts longer than the model's window: said, never silent
        vectors = (model.embed(list(request.texts), truncated=truncated) if request.texts
                   else np.empty((0, model.dim), np.float32))
        return encoder_pb2.EmbedResponse(vectors=vectors_to_proto(vectors),
                                         model=_model_info(model, self._registry().default),
                                         truncated_texts=len(truncated), truncated_indices=sorted(truncated))

    def ListModels(self, request, context) -> encoder_pb2.ListModelsResponse:
        registry = self.db.encoders
        if registry is None:  # the encoder runtime is not installed: no models, not an error
            return encoder_pb2.ListModelsResponse()
        return encoder_pb2.ListModelsResponse(
            models=[_model_info(registry.get(name), registry.default) for name in registry.names()])


def _model_info(model, default: str) -> encoder_pb2.ModelInfo:
    return encoder_pb2.ModelInfo(name=model.name, version=model.version, sha256=model.sha256,
                                 dim=model.dim, max_tokens=model.max_tokens, is_default=model.name == default)


class AdminServicer(admin_pb2_grpc.AdminServicer):
    def __init__(self, database: Database, allow_reset: bool = False) -> None:
        self.db = database
        self.started = time.monotonic()
        self.allow_reset = allow_reset

    def GetServerInfo(self, request, context) -> admin_pb2.ServerInfo:
        return admin_pb2.ServerInfo(
            version=__version__, uptime_seconds=time.monotonic() - self.started,
            max_message_bytes=limits.MAX_MESSAGE_BYTES, max_batch_records=limits.MAX_BATCH_RECORDS,
            collection_count=len(self.db.list_collections()), server_time_unix_ns=time.time_ns(),
            allow_reset=self.allow_reset)

    def Reset(self, request, context) -> admin_pb2.ResetResponse:
        if not self.allow_reset:  # as Chroma: deleting everything is opt-in, per server
            raise FailedPreconditionError(
                "reset is disabled on this server: start it with `vectord serve --allow-reset` (or "
                "VECTORD_ALLOW_RESET=1, or allow_reset = true in its config file); embedded, use "
                "vectord.Client(path=..., allow_reset=True)")
        return admin_pb2.ResetResponse(deleted_collections=self.db.reset())

    def ReembedCollection(self, request: admin_pb2.ReembedCollectionRequest, context):
        from vectord.storage import reembed

        collection = self.db.get_collection(request.collection)
        _check_deadline(context)
        progress = reembed.step(collection, self.db.encoders, request.model or "default",
                                batch=request.batch, cancel=request.cancel)
        model = self.db.encoders.get(progress.model["name"])
        return admin_pb2.ReembedCollectionResponse(
            collection=collection.name, model=_model_info(model, self.db.encoders.default),
            done=progress.done, total=progress.total, switched=progress.switched,
            truncated_texts=progress.truncated_texts)

    def Checkpoint(self, request, context) -> admin_pb2.CheckpointResponse:
        targets = [self.db.get_collection(request.collection)] if request.collection else self.db.list_collections()
        before = sum(c.compacted_slots_total for c in targets)
        checkpointed = self.db.checkpoint(request.collection or None, compact=request.compact)
        return admin_pb2.CheckpointResponse(
            checkpointed=checkpointed, compacted_slots=sum(c.compacted_slots_total for c in targets) - before)

    # snapshots: the engine does the work (storage/snapshots.py); these translate
    def CreateSnapshot(self, request, context) -> admin_pb2.SnapshotInfo:
        if not request.collection:
            raise InvalidArgumentError("collection: the collection to snapshot is required")
        return _snapshot_info(self.db.create_snapshot(request.collection, request.name or None))

    def ListSnapshots(self, request, context) -> admin_pb2.ListSnapshotsResponse:
        return admin_pb2.ListSnapshotsResponse(snapshots=[_snapshot_info(i) for i in self.db.list_snapshots()])

    def DownloadSnapshot(self, request, context):
        from vectord.storage import snapshots

        directory = snapshots.path_of(self.db, request.name)  # raises before the stream starts
        return (admin_pb2.SnapshotChunk(path=path, offset_bytes=offset, data=data, file_size_bytes=size)
                for path, offset, data, size in snapshots.read_chunks(directory))

    def RestoreSnapshot(self, request_iterator, context) -> admin_pb2.RestoreSnapshotResponse:
        from vectord.storage import snapshots

        messages = iter(request_iterator)
        first = next(messages, None)
        if first is None:
            raise InvalidArgumentError("RestoreSnapshot: the stream is empty")
        if first.snapshot:
            if first.HasField("chunk"):
                raise InvalidArgumentError("RestoreSnapshot: give a snapshot name or upload files, not both")
            collection = self.db.restore_snapshot(first.snapshot, first.collection or None, first.replace)
        else:
            upload = snapshots.Upload(self.db)
            try:
                for message in _chain(first, messages):
                    if message.HasField("chunk"):
                        upload.add(message.chunk.path, message.chunk.offset_bytes, message.chunk.data)
                collection = self.db.restore_snapshot(upload, first.collection or None, first.replace)
            finally:
                upload.discard()
        return admin_pb2.RestoreSnapshotResponse(collection=collection.name, record_count=collection.info().count)


def _chain(first, rest):
    yield first
    yield from rest


def _snapshot_info(info: dict) -> admin_pb2.SnapshotInfo:
    return admin_pb2.SnapshotInfo(name=info["name"], collection=info["collection"],
                                  created_at_ms=info["created_at_ms"], record_count=info["record_count"],
                                  seq=info["seq"], size_bytes=info["size_bytes"], dim=info["dim"])


def servicers(database: Database, allow_reset: bool = False, max_query_streams: int = DEFAULT_MAX_STREAMS,
              query_stream_idle_s: float = DEFAULT_IDLE_S) -> dict[str, object]:
    """The servicers of every vectord service, keyed by service name (as the SDK calls them).

    ``allow_reset`` lets Admin.Reset delete every collection (``--allow-reset``);
    ``max_query_streams`` and ``query_stream_idle_s`` bound Records.QueryStream
    (server/query_stream.py).
    """
    return {
        "Collections": CollectionsServicer(database),
        "Records": RecordsServicer(database, max_query_streams, query_stream_idle_s),
        "Admin": AdminServicer(database, allow_reset),
        "Encoder": EncoderServicer(database),
    }
