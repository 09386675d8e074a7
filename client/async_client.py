"""``AsyncClient``: the same API for asyncio, over ``grpc.aio`` (or in-process).

Every method of ``Client`` and ``Collection`` has an ``async`` twin with the same
arguments and results; requests are built and read by the same functions
(``client/requests.py``), so the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, AsyncIterator, Callable, Mapping, Sequence

import grpc
import numpy as np

from vectord.errors import InvalidArgumentError, ResourceExhaustedError, UnavailableError
from vectord.v1 import admin_pb2, encoder_pb2
from vectord.v1 import collections_pb2 as cpb
from vectord.v1 import records_pb2 as rpb
from vectord.wire import vectors_from_proto

from . import checks, paging
from . import requests as rq
from .collection import CollectionInfo
from .transport import (
    BACKOFF_S,
    CHANNEL_OPTIONS,
    IDEMPOTENT,
    RETRIES,
    _STUBS,
    InProcessTransport,
    error_from_rpc,
    tls_credentials,
)


class _AioTransport:
    def __init__(self, address: str, api_key: str | None, credentials) -> None:
        self.address = address
        self._channel = (grpc.aio.secure_channel(address, credentials, options=CHANNEL_OPTIONS) if credentials
                         else grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS))
        self._stubs = {name: stub(self._channel) for name, stub in _STUBS.items()}
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else None

    async def call(self, service: str, method: str, request: Any, timeout_s: float | None) -> Any:
        rpc = getattr(self._stubs[service], method)
        tries = RETRIES + 1 if method in IDEMPOTENT else 1
        for attempt in range(tries):
            try:
                return await rpc(request, timeout=timeout_s, metadata=self._metadata)
            except grpc.RpcError as exc:
                error = error_from_rpc(exc, self.address)
                if not isinstance(error, UnavailableError) or attempt == tries - 1:
                    raise error from None
            await asyncio.sleep(BACKOFF_S * 2**attempt)

    async def close(self) -> None:
        await self._channel.close()


class _AioInProcess:
    """Embedded mode for asyncio: the engine's calls run in a worker thread."""

    def __init__(self, path: str | None, allow_reset: bool = False) -> None:
        self._inner = InProcessTransport(path, allow_reset=allow_reset)

    async def call(self, service: str, method: str, request: Any, timeout_s: float | None) -> Any:
        return await asyncio.to_thread(self._inner.call, service, method, request, timeout_s)

    async def close(self) -> None:
        await asyncio.to_thread(self._inner.close)


class AsyncClient:
    """``Client`` for asyncio: the same arguments, every method awaitable.

    Example:
        >>> async with vectord.AsyncClient("localhost:50051") as client:
        ...     docs = await client.get_or_create_collection("docs", dim=3)
        ...     await docs.add(ids=["a"], embeddings=[[1, 0, 0]])
        ...     hits = await docs.query(query_embeddings=[[1, 0, 0]], n_results=1)
    """

    def __init__(self, address: str | None = None, *, api_key: str | None = None,
                 timeout: float = 30.0, path: str | None = None, tls: bool = False,
                 tls_ca: str | os.PathLike | bytes | None = None,
                 tls_cert: str | os.PathLike | bytes | None = None,
                 tls_key: str | os.PathLike | bytes | None = None, allow_reset: bool | None = None) -> None:
        timeout = checks.connection(address, path, api_key, timeout, tls,
                                    {"tls_ca": tls_ca, "tls_cert": tls_cert, "tls_key": tls_key}, allow_reset)
        if address is not None and path is not None:
            raise InvalidArgumentError("AsyncClient: give an address ('host:port') or path='./data', not both "
                                       "(or neither, for an in-memory database)")
        if address is None and (tls or any(v is not None for v in (tls_ca, tls_cert, tls_key))):
            raise InvalidArgumentError("AsyncClient: TLS arguments apply to a server address, not to path= "
                                       "or an in-memory database")
        self.timeout = timeout
        if address is not None:
            self._transport: Any = _AioTransport(address, api_key, tls_credentials(tls, tls_ca, tls_cert, tls_key))
        else:  # a data directory, or in memory when path is None (as Client)
            self._transport = _AioInProcess(path, allow_reset=path is None if allow_reset is None else allow_reset)

    async def _call(self, service: str, method: str, request: Any, timeout: float | None = None) -> Any:
        return await self._transport.call(service, method, request, timeout if timeout is not None else self.timeout)

    def _write_timeout(self, records: int) -> float:
        return self.timeout + records * 0.001

    async def close(self) -> None:
        """Closes the channel (or, embedded, checkpoints and releases the data directory)."""
        await self._transport.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def create_collection(self, name: str, *, dim: int | None = None, metric: str | None = None,
                                hnsw: Mapping[str, int] | None = None, metadata: Mapping[str, Any] | None = None,
                                encoder: str | None = None, fulltext: Mapping[str, Any] | None = None,
                                shards: int | None = None, replicas: int | None = None,
                                get_or_create: bool = False) -> "AsyncCollection":
        """See ``Client.create_collection``.

        Args:
            name, dim, metric, hnsw, metadata, encoder, fulltext, get_or_create: as
                ``Client.create_collection``.
            shards: on a vectord cluster, the number of shards (None: the gateway's
                default); a single server accepts only 1.
            replicas: on a vectord cluster, the copies of each shard (None: the gateway's
                default); a single server accepts only 1.

        Example:
            >>> docs = await client.create_collection("docs", dim=384)
            >>> # on a cluster gateway (`vectord cluster up`); one server refuses shards=3
            >>> big = await client.create_collection("big", dim=384, shards=3, replicas=2)
        """
        request = rq.create_collection_request(name, dim, metric, hnsw, metadata, encoder, get_or_create,
                                               fulltext, shards, replicas)
        return AsyncCollection(self, await self._call("Collections", "CreateCollection", request))

    async def get_or_create_collection(self, name: str, *, dim: int | None = None, metric: str | None = None,
                                       hnsw: Mapping[str, int] | None = None,
                                       metadata: Mapping[str, Any] | None = None,
                                       encoder: str | None = None, fulltext: Mapping[str, Any] | None = None,
                                       shards: int | None = None, replicas: int | None = None) -> "AsyncCollection":
        """See ``Client.get_or_create_collection``.

        Example:
            >>> docs = await client.get_or_create_collection("docs", dim=384)
            >>> big = await client.get_or_create_collection("big", dim=384, shards=3, replicas=2)  # cluster
        """
        return await self.create_collection(name, dim=dim, metric=metric, hnsw=hnsw, metadata=metadata,
                                            encoder=encoder, fulltext=fulltext, shards=shards, replicas=replicas,
                                            get_or_create=True)

    async def get_collection(self, name: str) -> "AsyncCollection":
        """See ``Client.get_collection``.

        Example:
            >>> docs = await client.get_collection("docs")
        """
        return AsyncCollection(self, await self._call("Collections", "GetCollection",
                                                      cpb.GetCollectionRequest(name=checks.text(name, "name"))))

    async def list_collections(self) -> list["AsyncCollection"]:
        """See ``Client.list_collections``.

        Example:
            >>> [c.name for c in await client.list_collections()]
        """
        response = await self._call("Collections", "ListCollections", cpb.ListCollectionsRequest())
        return [AsyncCollection(self, info) for info in response.collections]

    async def delete_collection(self, name: str) -> None:
        """See ``Client.delete_collection``.

        Example:
            >>> await client.delete_collection("docs")
        """
        await self._call("Collections", "DeleteCollection", cpb.DeleteCollectionRequest(name=checks.text(name, "name")))

    async def reset(self) -> int:
        """See ``Client.reset``.

        Example:
            >>> await client.reset()
        """
        return (await self._call("Admin", "Reset", admin_pb2.ResetRequest())).deleted_collections

    async def heartbeat(self) -> int:
        """See ``Client.heartbeat``.

        Example:
            >>> await client.heartbeat()
        """
        return (await self._call("Admin", "GetServerInfo", admin_pb2.GetServerInfoRequest())).server_time_unix_ns

    async def server_info(self) -> dict[str, Any]:
        """See ``Client.server_info``.

        Example:
            >>> (await client.server_info())["version"]
        """
        info = await self._call("Admin", "GetServerInfo", admin_pb2.GetServerInfoRequest())
        return {"version": info.version, "uptime_seconds": info.uptime_seconds,
                "max_message_bytes": info.max_message_bytes, "max_batch_records": info.max_batch_records,
                "collection_count": info.collection_count, "allow_reset": info.allow_reset}

    async def checkpoint(self, name: str | None = None) -> int:
        """See ``Client.checkpoint``.

        Example:
            >>> await client.checkpoint("docs")
        """
        request = admin_pb2.CheckpointRequest(collection=checks.optional_text(name, "name") or "")
        return (await self._call("Admin", "Checkpoint", request)).checkpointed

    async def reembed_collection(self, name: str, model: str | None = None, *, batch: int = 0,
                                 on_progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """See ``Client.reembed_collection``.

        Example:
            >>> (await client.reembed_collection("notes", "my-model"))["switched"]
            True
        """
        if on_progress is not None and not callable(on_progress):
            raise InvalidArgumentError(f"on_progress: expected a function or None, got {checks.shown(on_progress)}")
        while True:
            progress = await self.reembed_step(name, model, batch=batch)
            if on_progress is not None:
                on_progress(progress)
            if progress["switched"]:
                return progress

    async def reembed_step(self, name: str, model: str | None = None, *, batch: int = 0,
                           cancel: bool = False) -> dict[str, Any]:
        """See ``Client.reembed_step``.

        Example:
            >>> (await client.reembed_step("notes", "my-model", batch=500))["done"]
            500
        """
        request = admin_pb2.ReembedCollectionRequest(
            collection=checks.text(name, "name"), model=checks.optional_text(model, "model") or "",
            batch=checks.integer(batch, "batch", 0, 100_000), cancel=checks.boolean(cancel, "cancel"))
        response = await self._call("Admin", "ReembedCollection", request, self.timeout + 0.05 * max(batch, 1000))
        return {"collection": response.collection, "model": rq.model_info(response.model), "done": response.done,
                "total": response.total, "switched": response.switched, "truncated": response.truncated_texts}

    async def list_models(self) -> list[dict[str, Any]]:
        """See ``Client.list_models``.

        Example:
            >>> [m["name"] for m in await client.list_models()]
        """
        response = await self._call("Encoder", "ListModels", encoder_pb2.ListModelsRequest())
        return [rq.model_info(m) for m in response.models]

    async def embed(self, texts: Sequence[str] | str, model: str | None = None, *,
                    return_truncated: bool = False) -> np.ndarray | tuple[np.ndarray, list[int]]:
        """See ``Client.embed`` (``return_truncated=True``: also the positions of the texts
        longer than the model's window).

        Example:
            >>> (await client.embed(["a cat"])).shape
        """
        texts = rq.embed_texts(texts)
        request = encoder_pb2.EmbedRequest(texts=texts, model=checks.optional_text(model, "model") or "")
        response = await self._call("Encoder", "Embed", request, self._write_timeout(len(texts)))
        out = vectors_from_proto(response.vectors).copy()
        return (out, list(response.truncated_indices)) if return_truncated else out


class AsyncCollection(CollectionInfo):
    """``Collection`` for asyncio: the same methods, awaitable."""

    def __init__(self, client: AsyncClient, info) -> None:
        super().__init__(info)
        self._client = client

    async def modify(self, name: str | None = None, metadata: Mapping[str, Any] | None = None) -> None:
        """See ``Collection.modify``.

        Example:
            >>> await docs.modify(name="articles")
        """
        request = rq.modify_collection_request(self.name, name, metadata)
        CollectionInfo.__init__(self, await self._client._call("Collections", "ModifyCollection", request))

    async def _write(self, method: str, ids, embeddings, documents, metadatas, chunking=None) -> dict[str, int]:
        results = []
        for part in rq.with_chunking(rq.write_requests(self.name, ids, embeddings, documents, metadatas), chunking):
            results.append(await self._client._call("Records", method, part,
                                                    self._client._write_timeout(len(part.ids))))
        return rq.merge_write_results(results)

    async def add(self, ids, embeddings=None, documents=None, metadatas=None, chunking=None) -> dict[str, int]:
        """See ``Collection.add``.

        Example:
            >>> await docs.add(ids=["a"], embeddings=[[1, 0, 0]])
        """
        return await self._write("Add", ids, embeddings, documents, metadatas, chunking)

    async def upsert(self, ids, embeddings=None, documents=None, metadatas=None, chunking=None) -> dict[str, int]:
        """See ``Collection.upsert``.

        Example:
            >>> await docs.upsert(ids=["a"], embeddings=[[0, 1, 0]])
        """
        return await self._write("Upsert", ids, embeddings, documents, metadatas, chunking)

    async def update(self, ids, embeddings=None, documents=None, metadatas=None) -> dict[str, int]:
        """See ``Collection.update``.

        Example:
            >>> await docs.update(ids=["a"], metadatas=[{"seen": True}])
        """
        return await self._write("Update", ids, embeddings, documents, metadatas)

    async def delete(self, ids=None, where: Mapping | None = None, where_document: Mapping | None = None) -> int:
        """See ``Collection.delete``.

        Example:
            >>> await docs.delete(ids=["a"])
        """
        request = rq.delete_request(self.name, ids, where, where_document)
        return 0 if request is None else (await self._client._call("Records", "Delete", request)).deleted

    async def get(self, ids=None, where: Mapping | None = None, where_document: Mapping | None = None,
                  limit: int | None = None, offset: int | None = None,
                  include: Sequence[str] | None = None, page_token: str | None = None) -> dict[str, Any]:
        """See ``Collection.get``.

        Example:
            >>> (await docs.get(ids=["a"]))["ids"]
        """
        request, include_msg = rq.get_request(self.name, ids, where, where_document, limit, offset,
                                              include, page_token)
        response = rpb.GetResponse() if request is None else await self._get(request, include_msg)
        return rq.get_result(response, include_msg, self.dim, page_token is not None)

    async def _get(self, request: rpb.GetRequest, include_msg) -> rpb.GetResponse:
        """One Get call, or pages of it when its reply would not fit one message."""
        try:
            return await self._client._call("Records", "Get", request)
        except ResourceExhaustedError as exc:
            if not paging.reply_too_large(exc):
                raise
        return await paging.get_in_pages_async(lambda part: self._client._call("Records", "Get", part), request,
                                               paging.first_page_rows(include_msg, self.dim))

    async def pages(self, where: Mapping | None = None, where_document: Mapping | None = None,
                    page_size: int = 1000, include: Sequence[str] | None = None) -> AsyncIterator[dict[str, Any]]:
        """See ``Collection.pages``.

        Example:
            >>> async for page in docs.pages(page_size=500):
            ...     print(len(page["ids"]))
        """
        token: str | None = ""
        while token is not None:
            page = await self.get(where=where, where_document=where_document, limit=page_size,
                                  include=include, page_token=token)
            if page["ids"]:
                yield page
            token = page["next_page_token"]

    async def peek(self, limit: int = 10) -> dict[str, Any]:
        """See ``Collection.peek``.

        Example:
            >>> (await docs.peek(2))["ids"]
        """
        return await self.get(limit=limit, include=["embeddings", "documents", "metadatas"])

    async def count(self, where: Mapping | None = None, where_document: Mapping | None = None) -> int:
        """See ``Collection.count``.

        Example:
            >>> await docs.count()
        """
        return (await self._client._call("Records", "Count",
                                         rq.count_request(self.name, where, where_document))).count

    async def query(self, query_embeddings=None, n_results: int = 10, where: Mapping | None = None,
                    where_document: Mapping | None = None, include: Sequence[str] | None = None,
                    query_texts: Sequence[str] | str | None = None, explain: bool = False,
                    max_distance: float | None = None, group_by: str | None = None,
                    group_size: int | None = None, rank: str = "vector", fusion: str = "rrf",
                    hybrid_alpha: float = 0.5) -> dict[str, Any]:
        """See ``Collection.query`` (``rank``: "vector", "bm25" or "hybrid").

        Example:
            >>> (await docs.query(query_embeddings=[[1, 0, 0]], n_results=1))["ids"]
        """
        request, include_msg = rq.query_request(self.name, query_embeddings, n_results, where, where_document,
                                                include, query_texts, explain, rank)
        rq.query_options(request, max_distance, group_by, group_size)
        rq.rank_options(request, rank, fusion, hybrid_alpha)
        response = await self._client._call("Records", "Query", request)
        out = rq.query_groups(rq.query_result(response, include_msg, self.dim, explain), response,
                              group_by is not None)
        return rq.query_scores(out, response, rank)

    async def classify(self, texts: Sequence[str] | str | None = None, embeddings=None, label_key: str = "label",
                       k: int = 10, where: Mapping | None = None,
                       where_document: Mapping | None = None) -> list[dict[str, Any]]:
        """See ``Collection.classify``.

        Example:
            >>> (await news.classify(texts=["rain all week"]))[0]["label"]
            'weather'
        """
        request = rq.classify_request(self.name, texts, embeddings, label_key, k, where, where_document)
        return rq.classify_result(await self._client._call("Records", "Classify", request))
