"""A LlamaIndex vector store on a vectord collection (``pip install "vectord[llamaindex]"``).

    >>> from llama_index.core import Document, StorageContext, VectorStoreIndex
    >>> from vectord.integrations.llamaindex import VectordEmbedding, VectordVectorStore
    >>> store = VectordVectorStore("handbook", path="./data")          # built-in encoder
    >>> index = VectorStoreIndex.from_documents(
    ...     [Document(text="Vacation requests go to your manager.")],
    ...     storage_context=StorageContext.from_defaults(vector_store=store),
    ...     embed_model=VectordEmbedding(store.client))
    >>> index.as_retriever(similarity_top_k=1).retrieve("who approves my holidays?")

Two ways to embed:

- ``dim`` not given: the collection uses vectord's built-in encoder. Nodes without an
  embedding are embedded by the server, and the store sets ``is_embedding_query=False``, so
  LlamaIndex's retrievers send the query text and the server embeds it too. ``VectordEmbedding``
  is the same model as a LlamaIndex embed model, for code that wants the vectors here.
- ``dim=N``: nodes carry embeddings from your own embed model, queries carry theirs.

Nodes are stored as records: id = node id, document = the node's text, metadata = the node's
metadata plus LlamaIndex's ``_node_content``/``ref_doc_id`` keys (``node_to_metadata_dict``),
so nodes come back whole and ``delete(ref_doc_id)`` is one filtered delete. ``MetadataFilters``
become vectord ``where`` dicts. The async methods run the sync ones in a worker thread.
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.indices.query.embedding_utils import get_top_k_mmr_embeddings
from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

import vectord
from vectord.errors import InvalidArgumentError, NotFoundError

__all__ = ["VectordEmbedding", "VectordVectorStore", "filters_to_where"]

_COMPARISONS = {
    FilterOperator.EQ: "$eq", FilterOperator.NE: "$ne", FilterOperator.GT: "$gt", FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt", FilterOperator.LTE: "$lte", FilterOperator.IN: "$in", FilterOperator.NIN: "$nin",
    FilterOperator.CONTAINS: "$contains",
}


def _one(f: MetadataFilter) -> dict[str, Any]:
    if f.operator in _COMPARISONS:
        return {f.key: {_COMPARISONS[f.operator]: f.value}}
    if f.operator in (FilterOperator.ANY, FilterOperator.ALL):  # a list field holds any/all values
        if not isinstance(f.value, list) or not f.value:
            raise InvalidArgumentError(f"filters: {f.operator.value!r} on {f.key!r} needs a non-empty list, "
                                       f"got {f.value!r}")
        parts = [{f.key: {"$contains": v}} for v in f.value]
        return {"$or" if f.operator == FilterOperator.ANY else "$and": parts}
    if f.operator == FilterOperator.IS_EMPTY:  # vectord stores no nulls: empty means absent
        return {"$not": {f.key: {"$exists": True}}}
    raise InvalidArgumentError(f"filters: operator {f.operator.value!r} on {f.key!r} is not supported by vectord; "
                               "use ==, !=, >, >=, <, <=, in, nin, contains, any, all or is_empty")


def filters_to_where(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """LlamaIndex ``MetadataFilters`` as a vectord ``where`` dict (None when there are none).

    Example:
        >>> filters_to_where(MetadataFilters(filters=[MetadataFilter(key="year", value=2020,
        ...                                                          operator=">=")]))
        {'year': {'$gte': 2020}}
    """
    if filters is None or not filters.filters:
        return None
    parts = [filters_to_where(f) if isinstance(f, MetadataFilters) else _one(f) for f in filters.filters]
    parts = [p for p in parts if p]
    if not parts:
        return None
    both = parts[0] if len(parts) == 1 else {"$and": parts}
    if filters.condition == FilterCondition.OR:
        return parts[0] if len(parts) == 1 else {"$or": parts}
    if filters.condition == FilterCondition.NOT:
        return {"$not": both}
    return both


class VectordEmbedding(BaseEmbedding):
    """vectord's built-in encoder as a LlamaIndex embed model (embedding runs on the server).

    Args:
        client: a ``vectord.Client``.
        model: a built-in model name; the server's default when None.

    Example:
        >>> embed_model = VectordEmbedding(vectord.Client(path="./data"))
        >>> len(embed_model.get_text_embedding("a cat sat on the mat"))
        384
    """

    model: str | None = None
    _client: Any = PrivateAttr()

    def __init__(self, client: vectord.Client, model: str | None = None, **kwargs: Any) -> None:
        super().__init__(model_name=model or "vectord-default", model=model, **kwargs)
        self._client = client

    @classmethod
    def class_name(cls) -> str:
        return "VectordEmbedding"

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._client.embed(list(texts), model=self.model).tolist() if texts else []

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embedding(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)


class VectordVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store backed by one vectord collection.

    Give exactly one of ``client``, ``address`` or ``path``.

    Args:
        collection_name: the collection (created on the first write if missing).
        client: an open ``vectord.Client`` (not closed by the store).
        address: ``host:port`` of a ``vectord serve``.
        path: a data directory for embedded use.
        api_key: the server's API key (with ``address``).
        dim: the dimension of your own embeddings; None uses the built-in encoder.
        metric: ``"cosine"`` (default), ``"l2"`` or ``"ip"`` for a new collection.
        hnsw: HNSW parameters for a new collection.
        encoder: the built-in model of a new collection without ``dim``.

    Raises:
        InvalidArgumentError: not exactly one of ``client``, ``address``, ``path``.

    Example:
        >>> store = VectordVectorStore("docs", address="localhost:50051")
        >>> store.add([TextNode(text="the sky is blue", id_="s1")])
        ['s1']
        >>> store.query(VectorStoreQuery(query_str="sky", similarity_top_k=1)).ids
        ['s1']
    """

    stores_text: bool = True
    flat_metadata: bool = False
    collection_name: str
    dim: int | None = None
    metric: str = "cosine"
    hnsw: dict[str, int] | None = None
    encoder: str | None = None

    _client: Any = PrivateAttr()
    _owns_client: bool = PrivateAttr(default=False)
    _collection: Any = PrivateAttr(default=None)

    def __init__(self, collection_name: str = "llamaindex", *, client: vectord.Client | None = None,
                 address: str | None = None, path: str | None = None, api_key: str | None = None,
                 timeout: float = 30.0, dim: int | None = None, metric: str = "cosine",
                 hnsw: dict[str, int] | None = None, encoder: str | None = None, **kwargs: Any) -> None:
        if sum(x is not None for x in (client, address, path)) != 1:
            raise InvalidArgumentError("VectordVectorStore: give exactly one of client=, address= or path=")
        super().__init__(collection_name=collection_name, dim=dim, metric=metric, hnsw=hnsw, encoder=encoder,
                         **kwargs)
        if client is not None:
            self._client = client
        elif address is not None:
            self._client = vectord.Client(address, api_key=api_key, timeout=timeout)
        else:
            self._client = vectord.Client(path=path, timeout=timeout)
        self._owns_client = client is None
        existing = self._existing()
        # Retrievers embed the query themselves only when the store needs a vector: a
        # collection with an encoder takes the query text and embeds it on the server.
        self.is_embedding_query = not existing.encoder if existing is not None else dim is not None

    @classmethod
    def class_name(cls) -> str:
        return "VectordVectorStore"

    @property
    def client(self) -> vectord.Client:
        """The ``vectord.Client`` the store talks through."""
        return self._client

    def close(self) -> None:
        """Closes the client the store opened itself (not a ``client=`` it was given)."""
        if self._owns_client:
            self._client.close()

    def _existing(self) -> vectord.Collection | None:
        if self._collection is None:
            try:
                self._collection = self._client.get_collection(self.collection_name)
            except NotFoundError:
                return None
        return self._collection

    def _writable(self) -> vectord.Collection:
        collection = self._existing()
        if collection is None:
            # without dim, the built-in encoder's collection, even if these nodes carry vectors
            # (from VectordEmbedding): later text-only queries need the encoder
            collection = self._collection = self._client.get_or_create_collection(
                self.collection_name, dim=self.dim, metric=self.metric, hnsw=self.hnsw, encoder=self.encoder)
        return collection

    # ------------------------------------------------------------------ writes
    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Stores nodes (replacing any with the same id); returns their ids.

        In a collection with ``dim`` nodes are stored with their embeddings; in one with the
        built-in encoder (made without ``dim``) the server embeds each node's text.

        Example:
            >>> store.add([TextNode(text="the sky is blue", id_="s1", metadata={"topic": "sky"})])
            ['s1']
        """
        if not nodes:
            return []
        collection = self._writable()
        # A collection with the built-in encoder embeds every text itself and refuses vectors
        # (so that two models' vectors never mix): nodes embedded by the index's embed_model
        # (VectordEmbedding, the same model) are sent as text.
        with_vectors = [] if collection.encoder else [n for n in nodes if n.embedding is not None]
        without = [n for n in nodes if collection.encoder or n.embedding is None]
        for group, vectors in ((with_vectors, True), (without, False)):
            if not group:
                continue
            ids = [n.node_id for n in group]
            # LlamaIndex's own record layout, so any of its tools can read the nodes back
            metadatas = [node_to_metadata_dict(n, remove_text=True, flat_metadata=self.flat_metadata)
                         for n in group]
            stored = collection.get(ids=ids, include=["metadatas"])
            old = {i: m or {} for i, m in zip(stored["ids"], stored["metadatas"])}
            # upsert merges metadata by key: send the keys a node no longer has as None (removed)
            metadatas = [{**{k: None for k in old.get(i, {}) if k not in m}, **m} for i, m in zip(ids, metadatas)]
            collection.upsert(ids=ids, embeddings=[n.embedding for n in group] if vectors else None,
                              documents=[n.get_content(metadata_mode=MetadataMode.NONE) for n in group],
                              metadatas=metadatas)
        return [n.node_id for n in nodes]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Deletes every node of a source document.

        Example:
            >>> store.delete("handbook.md")
        """
        collection = self._existing()
        if collection is not None:
            collection.delete(where={"ref_doc_id": ref_doc_id})

    def delete_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None,
                     **delete_kwargs: Any) -> None:
        """Deletes nodes by id and/or filters (both must match when both are given).

        Example:
            >>> store.delete_nodes(["s1"])
        """
        collection = self._existing()
        where = filters_to_where(filters)
        if collection is not None and (node_ids or where):
            collection.delete(ids=node_ids or None, where=where)

    def clear(self) -> None:
        """Deletes every node (the collection and its settings stay).

        Example:
            >>> store.clear()
        """
        collection = self._existing()
        if collection is not None:
            for page in list(collection.pages(include=[])):
                collection.delete(ids=page["ids"])

    # ------------------------------------------------------------------ reads
    def get_nodes(self, node_ids: list[str] | None = None,
                  filters: MetadataFilters | None = None) -> list[BaseNode]:
        """Nodes by id and/or filters.

        Example:
            >>> [n.node_id for n in store.get_nodes(["s1"])]
            ['s1']
        """
        collection = self._existing()
        if collection is None:
            return []
        found = collection.get(ids=node_ids, where=filters_to_where(filters))
        return [_node(*row) for row in zip(found["ids"], found["documents"], found["metadatas"])]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The nearest nodes to ``query.query_embedding`` (or, in a collection with the
        built-in encoder, to ``query.query_str``), with ``filters`` and ``doc_ids`` applied.

        Supports the default mode and ``mmr`` (``mmr_threshold`` weighs relevance against
        diversity); similarities are ``1 - distance`` (cosine, ip) or ``1 / (1 + distance)``
        (l2).

        Example:
            >>> store.query(VectorStoreQuery(query_str="sky", similarity_top_k=1)).ids
            ['s1']
        """
        if query.mode not in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR):
            raise InvalidArgumentError(f"query: mode {query.mode.value!r} is not supported; use 'default' or 'mmr'")
        if query.node_ids:
            raise InvalidArgumentError("query: node_ids is not supported; filter on metadata instead")
        collection = self._existing()
        if collection is None:
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        where = filters_to_where(query.filters)
        if query.doc_ids:
            doc_filter = {"ref_doc_id": {"$in": list(query.doc_ids)}}
            where = doc_filter if where is None else {"$and": [where, doc_filter]}
        mmr = query.mode == VectorStoreQueryMode.MMR
        k = query.similarity_top_k
        vector = query.query_embedding
        if vector is None and mmr:
            vector = self._client.embed([query.query_str or ""], model=collection.encoder or None)[0].tolist()
        if vector is not None:
            search: dict[str, Any] = {"query_embeddings": [vector]}
        elif query.query_str is not None and collection.encoder:
            search = {"query_texts": [query.query_str]}
        else:
            raise InvalidArgumentError(
                f"query: collection {self.collection_name!r} has no built-in encoder, so the query needs "
                "query_embedding")
        include = ["documents", "metadatas", "distances"] + (["embeddings"] if mmr else [])
        result = collection.query(**search, n_results=max(k * 4, 20) if mmr else k, where=where, include=include)
        ids, docs, metas, distances = (result["ids"][0], result["documents"][0], result["metadatas"][0],
                                       result["distances"][0])
        order = list(range(len(ids)))
        if mmr and ids:
            _, order = get_top_k_mmr_embeddings(vector, result["embeddings"][0].tolist(), similarity_top_k=k,
                                                embedding_ids=order, mmr_threshold=query.mmr_threshold)
        to_similarity = (lambda d: 1.0 / (1.0 + d)) if collection.metric == "l2" else (lambda d: 1.0 - d)
        return VectorStoreQueryResult(nodes=[_node(ids[i], docs[i], metas[i]) for i in order],
                                      similarities=[to_similarity(distances[i]) for i in order],
                                      ids=[ids[i] for i in order])

    # ------------------------------------------------------------------ asyncio: a worker thread
    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """See ``add``."""
        return await asyncio.to_thread(self.add, nodes, **kwargs)

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """See ``delete``."""
        await asyncio.to_thread(self.delete, ref_doc_id, **delete_kwargs)

    async def adelete_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None,
                            **delete_kwargs: Any) -> None:
        """See ``delete_nodes``."""
        await asyncio.to_thread(self.delete_nodes, node_ids, filters, **delete_kwargs)

    async def aclear(self) -> None:
        """See ``clear``."""
        await asyncio.to_thread(self.clear)

    async def aget_nodes(self, node_ids: list[str] | None = None,
                         filters: MetadataFilters | None = None) -> list[BaseNode]:
        """See ``get_nodes``."""
        return await asyncio.to_thread(self.get_nodes, node_ids, filters)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """See ``query``."""
        return await asyncio.to_thread(self.query, query, **kwargs)


def _node(id_: str, text: str | None, metadata: dict[str, Any] | None) -> BaseNode:
    """A stored record as a node: whole when LlamaIndex wrote it, else a plain TextNode."""
    metadata = metadata or {}
    if "_node_content" in metadata:
        node = metadata_dict_to_node(metadata, text=text)
        node.id_ = id_
        return node
    return TextNode(id_=id_, text=text or "", metadata=metadata)
