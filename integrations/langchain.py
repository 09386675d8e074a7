"""A LangChain ``VectorStore`` on a vectord collection (``pip install "vectord[langchain]"``).

    >>> from vectord.integrations.langchain import VectordVectorStore
    >>> store = VectordVectorStore("handbook", path="./data")     # built-in encoder
    >>> store.add_texts(["Vacation requests go to your manager."], metadatas=[{"source": "hr"}])
    >>> store.similarity_search("who approves my holidays?", k=1, filter={"source": "hr"})

Two ways to embed:

- No ``embedding`` given: the collection is created without ``dim`` and vectord's built-in
  encoder embeds texts on the server (writes send documents, searches send ``query_texts``);
  nothing to download, no API key.
- An ``Embeddings`` given: texts are embedded here and the collection is created with that
  model's dimension on the first write.

Filters (``filter=``) are vectord ``where`` dicts, passed through unchanged
(``{"year": {"$gte": 2020}}``, ``$and``/``$or``/``$not``, dotted paths); ``where_document=``
filters on the text. Async methods use a ``grpc.aio`` client when the store knows the server
address (one per event loop, since a channel belongs to the loop that made it) or when given an
``AsyncClient``; otherwise LangChain runs the sync method in a thread.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

import vectord
from vectord.errors import InvalidArgumentError, NotFoundError

__all__ = ["VectordEmbeddings", "VectordVectorStore"]

_SEARCH_INCLUDE = ["documents", "metadatas", "distances"]
_MMR_INCLUDE = ["documents", "metadatas", "distances", "embeddings"]


class VectordEmbeddings(Embeddings):
    """LangChain ``Embeddings`` computed by a vectord server's built-in model.

    Args:
        client: a ``vectord.Client`` (remote or embedded).
        model: a built-in model name; the server's default model when None.

    Example:
        >>> emb = VectordEmbeddings(vectord.Client(path="./data"))
        >>> len(emb.embed_query("a cat sat on the mat"))
        384
    """

    def __init__(self, client: vectord.Client, model: str | None = None) -> None:
        self.client = client
        self.model = model or None

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embeds texts on the server, one unit-norm vector each."""
        return self.client.embed(list(texts), model=self.model).tolist() if texts else []

    def embed_query(self, text: str) -> list[float]:
        """Embeds one query text on the server."""
        return self.embed_documents([text])[0]


# ---------------------------------------------------------------------- pure helpers
def _prepare(texts: Iterable[str], metadatas: Sequence[Mapping[str, Any] | None] | None,
             ids: Sequence[str | None] | None) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """Texts, metadata dicts and ids of one write, with an id generated where none is given."""
    texts = list(texts)
    if metadatas is not None and len(metadatas) != len(texts):
        raise ValueError(f"metadatas: got {len(metadatas)} for {len(texts)} texts")
    if ids is not None and len(ids) != len(texts):
        raise ValueError(f"ids: got {len(ids)} for {len(texts)} texts")
    metas = [dict(m or {}) for m in metadatas] if metadatas is not None else [{} for _ in texts]
    out_ids = [i if i else str(uuid.uuid4()) for i in ids] if ids is not None else [
        str(uuid.uuid4()) for _ in texts]
    return texts, metas, out_ids


def _replacing(stored: dict[str, Any], ids: list[str], metas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Metadata that makes vectord's upsert (which merges metadata by key) replace it instead.

    LangChain's contract is that adding a document under an existing id replaces the
    document; so every stored key the new metadata lacks is sent as None (removed).
    """
    old = {i: m or {} for i, m in zip(stored["ids"], stored["metadatas"] or [])}
    return [{**{k: None for k in old.get(i, {}) if k not in m}, **m} for i, m in zip(ids, metas)]


def _document(id_: str, text: str | None, metadata: Mapping[str, Any] | None) -> Document:
    return Document(id=id_, page_content=text or "", metadata=dict(metadata or {}))


def _scored(result: dict[str, Any]) -> list[tuple[Document, float]]:
    """The first query's hits of a ``Collection.query`` result, nearest first."""
    return [(_document(i, d, m), float(s)) for i, d, m, s in zip(
        result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0])]


def _mmr(query_vector: Sequence[float], result: dict[str, Any], k: int, lambda_mult: float) -> list[Document]:
    found = result["embeddings"][0]
    if len(found) == 0:
        return []
    picked = maximal_marginal_relevance(np.asarray(query_vector, np.float32), found.tolist(),
                                        lambda_mult=lambda_mult, k=k)
    return [_document(result["ids"][0][p], result["documents"][0][p], result["metadatas"][0][p])
            for p in picked]


class _AsyncSide:
    """The store's grpc.aio client and collection handle for one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None, client: vectord.AsyncClient) -> None:
        self.loop = loop
        self.client = client
        self.collection: vectord.AsyncCollection | None = None


class VectordVectorStore(VectorStore):
    """A LangChain vector store backed by one vectord collection.

    Give exactly one of ``client``, ``address`` or ``path``.

    Args:
        collection_name: the collection (created on the first write if missing).
        embedding: a LangChain ``Embeddings``; None uses vectord's built-in encoder on the
            server (the collection is then created without ``dim``).
        client: an open ``vectord.Client``; the store does not close it.
        address: ``host:port`` of a ``vectord serve``; the store opens its own clients.
        path: a data directory for embedded use (this process then owns it).
        api_key: the server's API key (with ``address``).
        timeout: default deadline of each call, in seconds (with ``address`` or ``path``).
        async_client: a ``vectord.AsyncClient`` for the async methods, used on the event loop
            it was made in. Without it, a store made with ``address`` opens one per loop,
            and any other store runs the sync methods in a thread.
        metric: ``"cosine"`` (default), ``"l2"`` or ``"ip"``, for a new collection.
        hnsw: HNSW parameters for a new collection (``m``, ``ef_construction``, ``ef_search``).
        encoder: the built-in model for a new collection without ``embedding``; the
            server's default when None.
        collection_metadata: the new collection's own metadata.

    Raises:
        InvalidArgumentError: not exactly one of ``client``, ``address``, ``path``.

    Example:
        >>> store = VectordVectorStore("docs", address="localhost:50051")
        >>> ids = store.add_texts(["apples are red", "the sky is blue"], ids=["a", "b"])
        >>> store.similarity_search_with_score("fruit", k=1)[0][0].id
        'a'
    """

    def __init__(self, collection_name: str = "langchain", embedding: Embeddings | None = None, *,
                 client: vectord.Client | None = None, address: str | None = None, path: str | None = None,
                 api_key: str | None = None, timeout: float = 30.0,
                 async_client: vectord.AsyncClient | None = None, metric: str = "cosine",
                 hnsw: Mapping[str, int] | None = None, encoder: str | None = None,
                 collection_metadata: Mapping[str, Any] | None = None) -> None:
        if sum(x is not None for x in (client, address, path)) != 1:
            raise InvalidArgumentError("VectordVectorStore: give exactly one of client=, address= or path=")
        if client is not None:
            self._client = client
        elif address is not None:
            self._client = vectord.Client(address, api_key=api_key, timeout=timeout)
        else:
            self._client = vectord.Client(path=path, timeout=timeout)
        self._owns_client = client is None
        self._address, self._api_key, self._timeout = address, api_key, timeout
        self._async: _AsyncSide | None = _AsyncSide(None, async_client) if async_client is not None else None
        self.collection_name = collection_name
        self._embedding = embedding
        self._create = {"metric": metric, "hnsw": hnsw, "encoder": encoder, "metadata": collection_metadata}
        self._collection: vectord.Collection | None = None

    # ------------------------------------------------------------------ plumbing
    @property
    def client(self) -> vectord.Client:
        """The ``vectord.Client`` the store talks through."""
        return self._client

    @property
    def embeddings(self) -> Embeddings:
        """The user's ``Embeddings``, or the built-in encoder's (``VectordEmbeddings``)."""
        if self._embedding is not None:
            return self._embedding
        collection = self._existing()
        return VectordEmbeddings(self._client, collection.encoder if collection else self._create["encoder"])

    def close(self) -> None:
        """Closes the clients the store opened itself (not a ``client=`` it was given)."""
        if self._owns_client:
            self._client.close()

    async def aclose(self) -> None:
        """``close``, and also the grpc.aio client the store opened on the running loop.

        Example:
            >>> await store.aclose()
        """
        if self._async is not None and self._async.loop is asyncio.get_running_loop():
            await self._async.client.close()
            self._async = None
        self.close()

    def _existing(self) -> vectord.Collection | None:
        """The collection, or None if it does not exist yet (reads of it find nothing)."""
        if self._collection is None:
            try:
                self._collection = self._client.get_collection(self.collection_name)
            except NotFoundError:
                return None
            self._check_encoder(self._collection.encoder)
        return self._collection

    def _writable(self, dim: int | None) -> vectord.Collection:
        collection = self._existing()
        if collection is None:
            collection = self._collection = self._client.get_or_create_collection(
                self.collection_name, dim=dim, **self._create)
            self._check_encoder(collection.encoder)
        return collection

    def _check_encoder(self, encoder: str) -> None:
        if self._embedding is None and not encoder:
            raise InvalidArgumentError(
                f"collection {self.collection_name!r} has no built-in encoder (it was created with a dim): "
                "pass embedding= to embed texts yourself")

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Distances to [0, 1] scores: vectord's cosine and ip distances are ``1 - similarity``,
        its l2 distance is squared."""
        collection = self._existing()
        metric = collection.metric if collection else self._create["metric"]
        if metric == "l2":
            return lambda d: 1.0 - math.sqrt(max(d, 0.0)) / math.sqrt(2)
        return self._cosine_relevance_score_fn

    # ------------------------------------------------------------------ writes
    def add_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, *,
                  ids: list[str] | None = None, **kwargs: Any) -> list[str]:
        """Embeds and stores texts; a text whose id exists replaces that record.

        Args:
            texts: the texts.
            metadatas: one dict per text (str, int, float, bool, lists, nested dicts; a
                None value is not stored).
            ids: one id per text; a None or missing id gets a new UUID.

        Returns:
            The ids, in the order of ``texts``.

        Example:
            >>> store.add_texts(["the sky is blue"], metadatas=[{"topic": "sky"}], ids=["s1"])
            ['s1']
        """
        texts, metas, ids = _prepare(texts, metadatas, ids)
        if not texts:
            return []
        vectors = self._embedding.embed_documents(texts) if self._embedding is not None else None
        collection = self._writable(len(vectors[0]) if vectors else None)
        stored = collection.get(ids=ids, include=["metadatas"])
        collection.upsert(ids=ids, embeddings=vectors, documents=texts, metadatas=_replacing(stored, ids, metas))
        return ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Deletes records by id, or by ``filter=``/``where_document=``, or all of them.

        Unknown ids are not an error. With no ids and no filter, every record goes (the
        collection and its settings stay).

        Example:
            >>> store.delete(["s1"])
            True
            >>> store.delete(filter={"topic": "sky"})
            True
        """
        collection = self._existing()
        where, where_document = kwargs.get("filter"), kwargs.get("where_document")
        if collection is None:
            return True
        if ids is None and not where and not where_document:
            for page in list(collection.pages(include=[])):
                collection.delete(ids=page["ids"])
        elif ids is None or ids:
            collection.delete(ids=ids, where=where, where_document=where_document)
        return True

    # ------------------------------------------------------------------ reads
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents stored under these ids, in that order; missing ids are skipped.

        Example:
            >>> [d.page_content for d in store.get_by_ids(["s1", "nope"])]
            ['the sky is blue']
        """
        collection = self._existing()
        if collection is None or not ids:
            return []
        found = collection.get(ids=list(ids))
        return [_document(*row) for row in zip(found["ids"], found["documents"], found["metadatas"])]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: dict | None = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        """The ``k`` nearest documents to a text, with vectord's distance (lower is nearer).

        Args:
            query: the text.
            k: how many.
            filter: a vectord ``where`` dict on metadata.
            where_document: a vectord ``where_document`` dict on the text.

        Example:
            >>> doc, distance = store.similarity_search_with_score("blue sky", k=1,
            ...                                                     filter={"topic": "sky"})[0]
        """
        collection = self._existing()
        if collection is None:
            return []
        if self._embedding is not None:
            query_kwargs: dict[str, Any] = {"query_embeddings": [self._embedding.embed_query(query)]}
        else:
            query_kwargs = {"query_texts": [query]}
        return _scored(collection.query(**query_kwargs, n_results=k, where=filter,
                                        where_document=kwargs.get("where_document"), include=_SEARCH_INCLUDE))

    def similarity_search(self, query: str, k: int = 4, filter: dict | None = None,
                          **kwargs: Any) -> list[Document]:
        """The ``k`` nearest documents to a text, nearest first.

        Example:
            >>> store.similarity_search("what colour is the sky?", k=1)[0].page_content
            'the sky is blue'
        """
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_by_vector_with_score(self, embedding: list[float], k: int = 4,
                                               filter: dict | None = None,
                                               **kwargs: Any) -> list[tuple[Document, float]]:
        """The ``k`` nearest documents to a vector, with their distances.

        Example:
            >>> store.similarity_search_by_vector_with_score([0.1] * 384, k=2)
        """
        collection = self._existing()
        if collection is None:
            return []
        return _scored(collection.query(query_embeddings=[embedding], n_results=k, where=filter,
                                        where_document=kwargs.get("where_document"), include=_SEARCH_INCLUDE))

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, filter: dict | None = None,
                                    **kwargs: Any) -> list[Document]:
        """The ``k`` nearest documents to a vector.

        Example:
            >>> store.similarity_search_by_vector(store.embeddings.embed_query("sky"), k=1)
        """
        return [d for d, _ in self.similarity_search_by_vector_with_score(embedding, k, filter, **kwargs)]

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4, fetch_k: int = 20,
                                                lambda_mult: float = 0.5, filter: dict | None = None,
                                                **kwargs: Any) -> list[Document]:
        """``k`` documents near a vector and unlike each other, picked from the ``fetch_k``
        nearest (whose stored embeddings come back with the query).

        Example:
            >>> store.max_marginal_relevance_search_by_vector([0.1] * 384, k=2, fetch_k=10)
        """
        collection = self._existing()
        if collection is None:
            return []
        result = collection.query(query_embeddings=[embedding], n_results=max(fetch_k, k), where=filter,
                                  where_document=kwargs.get("where_document"), include=_MMR_INCLUDE)
        return _mmr(embedding, result, k, lambda_mult)

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
                                      filter: dict | None = None, **kwargs: Any) -> list[Document]:
        """Maximal marginal relevance: relevant to ``query`` and diverse among themselves.

        Args:
            query: the text (embedded by ``embedding`` or by the built-in encoder).
            k: how many documents to return.
            fetch_k: how many nearest candidates to choose from.
            lambda_mult: 1 favours relevance, 0 diversity.
            filter: a vectord ``where`` dict.

        Example:
            >>> store.max_marginal_relevance_search("sky", k=2, fetch_k=10, lambda_mult=0.3)
        """
        if self._existing() is None:
            return []
        return self.max_marginal_relevance_search_by_vector(self.embeddings.embed_query(query), k, fetch_k,
                                                            lambda_mult, filter, **kwargs)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings | None = None,
                   metadatas: list[dict] | None = None, *, ids: list[str] | None = None,
                   collection_name: str = "langchain", **kwargs: Any) -> "VectordVectorStore":
        """A store on ``collection_name`` holding these texts.

        ``kwargs`` are the constructor's (``client=``, ``address=`` or ``path=``, ...).

        Example:
            >>> store = VectordVectorStore.from_texts(["a", "b"], path="./data", collection_name="t")
        """
        store = cls(collection_name, embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    # ------------------------------------------------------------------ asyncio
    def _aio(self) -> _AsyncSide | None:
        """The async client for the running loop, or None: fall back to a thread."""
        if self._async is not None and self._async.loop is None:
            return self._async  # the user's own AsyncClient
        if self._address is None:
            return None
        loop = asyncio.get_running_loop()
        if self._async is None or self._async.loop is not loop:
            # a grpc.aio channel is bound to the loop that created it
            self._async = _AsyncSide(loop, vectord.AsyncClient(self._address, api_key=self._api_key,
                                                               timeout=self._timeout))
        return self._async

    async def _aexisting(self, side: _AsyncSide) -> vectord.AsyncCollection | None:
        if side.collection is None:
            try:
                side.collection = await side.client.get_collection(self.collection_name)
            except NotFoundError:
                return None
            self._check_encoder(side.collection.encoder)
        return side.collection

    async def aadd_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, *,
                         ids: list[str] | None = None, **kwargs: Any) -> list[str]:
        """See ``add_texts``.

        Example:
            >>> await store.aadd_texts(["the sky is blue"], ids=["s1"])
        """
        side = self._aio()
        if side is None:
            return await super().aadd_texts(texts, metadatas, ids=ids, **kwargs)
        texts, metas, ids = _prepare(texts, metadatas, ids)
        if not texts:
            return []
        vectors = await self._embedding.aembed_documents(texts) if self._embedding is not None else None
        collection = await self._aexisting(side)
        if collection is None:
            collection = side.collection = await side.client.get_or_create_collection(
                self.collection_name, dim=len(vectors[0]) if vectors else None, **self._create)
            self._check_encoder(collection.encoder)
        stored = await collection.get(ids=ids, include=["metadatas"])
        await collection.upsert(ids=ids, embeddings=vectors, documents=texts,
                                metadatas=_replacing(stored, ids, metas))
        return ids

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """See ``delete``.

        Example:
            >>> await store.adelete(["s1"])
        """
        side = self._aio()
        if side is None:
            return bool(await super().adelete(ids, **kwargs))
        collection = await self._aexisting(side)
        where, where_document = kwargs.get("filter"), kwargs.get("where_document")
        if collection is None:
            return True
        if ids is None and not where and not where_document:
            pages = [page async for page in collection.pages(include=[])]
            for page in pages:
                await collection.delete(ids=page["ids"])
        elif ids is None or ids:
            await collection.delete(ids=ids, where=where, where_document=where_document)
        return True

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """See ``get_by_ids``.

        Example:
            >>> await store.aget_by_ids(["s1"])
        """
        side = self._aio()
        if side is None:
            return await super().aget_by_ids(ids)
        collection = await self._aexisting(side)
        if collection is None or not ids:
            return []
        found = await collection.get(ids=list(ids))
        return [_document(*row) for row in zip(found["ids"], found["documents"], found["metadatas"])]

    async def _aquery(self, include: list[str], k: int, filter: dict | None, kwargs: dict[str, Any],
                      query: str | None = None, vector: list[float] | None = None) -> dict[str, Any] | None:
        side = self._aio()
        assert side is not None  # callers check
        collection = await self._aexisting(side)
        if collection is None:
            return None
        if vector is None and self._embedding is not None:
            vector = await self._embedding.aembed_query(query or "")
        search: dict[str, Any] = ({"query_embeddings": [vector]} if vector is not None
                                  else {"query_texts": [query]})
        return await collection.query(**search, n_results=k, where=filter,
                                      where_document=kwargs.get("where_document"), include=include)

    async def asimilarity_search_with_score(self, query: str, k: int = 4, filter: dict | None = None,
                                            **kwargs: Any) -> list[tuple[Document, float]]:
        """See ``similarity_search_with_score``.

        Example:
            >>> await store.asimilarity_search_with_score("sky", k=1)
        """
        if self._aio() is None:
            return await super().asimilarity_search_with_score(query, k, filter=filter, **kwargs)
        result = await self._aquery(_SEARCH_INCLUDE, k, filter, kwargs, query=query)
        return [] if result is None else _scored(result)

    async def asimilarity_search(self, query: str, k: int = 4, filter: dict | None = None,
                                 **kwargs: Any) -> list[Document]:
        """See ``similarity_search``.

        Example:
            >>> await store.asimilarity_search("sky", k=1)
        """
        return [d for d, _ in await self.asimilarity_search_with_score(query, k, filter, **kwargs)]

    async def asimilarity_search_by_vector(self, embedding: list[float], k: int = 4,
                                           filter: dict | None = None, **kwargs: Any) -> list[Document]:
        """See ``similarity_search_by_vector``.

        Example:
            >>> await store.asimilarity_search_by_vector([0.1] * 384, k=1)
        """
        if self._aio() is None:
            return await super().asimilarity_search_by_vector(embedding, k, filter=filter, **kwargs)
        result = await self._aquery(_SEARCH_INCLUDE, k, filter, kwargs, vector=embedding)
        return [] if result is None else [d for d, _ in _scored(result)]

    async def amax_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4,
                                                       fetch_k: int = 20, lambda_mult: float = 0.5,
                                                       filter: dict | None = None,
                                                       **kwargs: Any) -> list[Document]:
        """See ``max_marginal_relevance_search_by_vector``.

        Example:
            >>> await store.amax_marginal_relevance_search_by_vector([0.1] * 384, k=2)
        """
        if self._aio() is None:
            return await super().amax_marginal_relevance_search_by_vector(
                embedding, k, fetch_k, lambda_mult, filter=filter, **kwargs)
        result = await self._aquery(_MMR_INCLUDE, max(fetch_k, k), filter, kwargs, vector=embedding)
        return [] if result is None else _mmr(embedding, result, k, lambda_mult)

    async def amax_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                             lambda_mult: float = 0.5, filter: dict | None = None,
                                             **kwargs: Any) -> list[Document]:
        """See ``max_marginal_relevance_search``.

        Example:
            >>> await store.amax_marginal_relevance_search("sky", k=2)
        """
        side = self._aio()
        if side is None:
            return await super().amax_marginal_relevance_search(query, k, fetch_k, lambda_mult,
                                                                filter=filter, **kwargs)
        collection = await self._aexisting(side)
        if collection is None:
            return []
        if self._embedding is not None:
            vector = await self._embedding.aembed_query(query)
        else:
            vector = (await side.client.embed([query], model=collection.encoder))[0].tolist()
        return await self.amax_marginal_relevance_search_by_vector(vector, k, fetch_k, lambda_mult, filter,
                                                                   **kwargs)
