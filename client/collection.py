"""``Collection``: the records API of the SDK, shaped like Chroma's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from vectord.errors import ResourceExhaustedError
from vectord.v1 import records_pb2 as rpb
from vectord.wire import metadata_from_proto

from . import paging
from . import requests as rq

if TYPE_CHECKING:
    from .client import Client


class CollectionInfo:
    """What every collection handle knows about its collection (sync and async alike).

    Attributes:
        name: the collection's name.
        dim: its vector dimension.
        metric: ``"cosine"``, ``"l2"`` or ``"ip"``.
        metadata: the collection's own metadata.
        hnsw: its index parameters.
        encoder: the built-in model embedding its documents ("" when none).
        shards: the shards its records are spread over (1 on a single server).
        replicas: the copies of each shard (1 on a single server).
    """

    def __init__(self, info) -> None:
        self.name: str = info.name
        self.id: str = info.id
        self.dim: int = info.dim
        self.metric: str = rq.METRIC_NAMES[info.metric]
        self.metadata: dict[str, Any] = metadata_from_proto(info.metadata)
        self.hnsw: dict[str, int] = {"m": info.hnsw.m, "ef_construction": info.hnsw.ef_construction,
                                     "ef_search": info.hnsw.ef_search}
        self.encoder: str = info.encoder
        # a server older than these fields sends 0: it holds one shard in one copy
        self.shards: int = info.shards or 1
        self.replicas: int = info.replicas or 1

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, metric={self.metric!r})"


class Collection(CollectionInfo):
    """A named set of records ``(id, embedding, document, metadata)``.

    Get one from ``Client.create_collection`` or ``Client.get_collection``. Every method is
    thread-safe and makes one or more calls (large writes are split to fit the message limit).
    """

    def __init__(self, client: "Client", info) -> None:
        super().__init__(info)
        self._client = client

    def modify(self, name: str | None = None, metadata: Mapping[str, Any] | None = None) -> None:
        """Renames the collection and/or replaces its metadata, as Chroma's ``modify``.

        The change is durable when the call returns; records, settings and ``id`` stay.
        Other handles of this collection keep its old name (get a new one by the new name).

        Args:
            name: the new name (same rules as ``create_collection``); None keeps it.
            metadata: the new metadata, replacing all of the old (``{}`` clears it); None
                keeps it.

        Raises:
            AlreadyExistsError: another collection has the new name.
            NotFoundError: the collection was deleted (or renamed through another handle).
            InvalidArgumentError: a bad name or metadata.

        Example:
            >>> docs.modify(name="articles", metadata={"owner": "search-team"})
            >>> docs.name
            'articles'
        """
        request = rq.modify_collection_request(self.name, name, metadata)
        CollectionInfo.__init__(self, self._client._call("Collections", "ModifyCollection", request))

    # ------------------------------------------------------------------ writes
    def _write(self, method: str, ids, embeddings, documents, metadatas, chunking=None) -> dict[str, int]:
        parts = rq.with_chunking(rq.write_requests(self.name, ids, embeddings, documents, metadatas), chunking)
        return rq.merge_write_results([
            self._client._call("Records", method, part, self._client._write_timeout(len(part.ids)))
            for part in parts])

    def add(self, ids, embeddings=None, documents=None, metadatas=None, chunking=None) -> dict[str, int]:
        """Adds new records. Fails, writing nothing, if any id exists or repeats.

        Args:
            ids: one id or a list of ids (non-empty strings, at most 512 bytes).
            embeddings: one vector per id (list of lists or a numpy array of shape (n, dim));
                may be omitted in a collection with an encoder, which embeds the documents.
            documents: optional text per id.
            metadatas: optional dict per id (str, int, float, bool, lists, nested dicts).
            chunking: in a collection with an encoder, store each document as chunks:
                ``True`` (chunks as long as the model reads, no overlap) or
                ``{"tokens": N, "overlap": M}`` (word pieces per chunk and shared by
                neighbours). Chunk ``j`` of id ``doc`` is the record ``"doc#j"`` with the
                metadata given plus ``{"source_id": "doc", "chunk": j}``; see upsert and
                delete for replacing and removing a source's chunks.

        Returns:
            Counts of what the write did: ``inserted``, ``updated``, ``unchanged``,
            ``deleted``, the durable log ``seq`` reached, and ``truncated``: documents
            longer than the encoder's window (``list_models()``'s ``max_tokens``) whose
            vector was made from their first tokens only (the whole document is stored).

        Raises:
            AlreadyExistsError: an id exists already.
            InvalidArgumentError: wrong dimension, NaN, duplicate ids, bad metadata...

        Example:
            >>> docs.add(ids=["a", "b"], embeddings=[[1, 0, 0], [0, 1, 0]],
            ...          documents=["apple", "banana"], metadatas=[{"n": 1}, {"n": 2}])
        """
        return self._write("Add", ids, embeddings, documents, metadatas, chunking)

    def upsert(self, ids, embeddings=None, documents=None, metadatas=None, chunking=None) -> dict[str, int]:
        """Inserts new records or replaces existing ones.

        Vectors and documents given replace the stored ones; metadata merges by key and a
        key set to ``None`` is removed. New records need an embedding (or a document, in a
        collection with an encoder).

        With ``chunking`` (see ``add``), each id is a source document: its old chunks are
        deleted and its new chunks stored in one atomic, logged write (each chunk gets
        exactly the metadata given, plus ``source_id`` and ``chunk``).

        Example:
            >>> docs.upsert(ids=["a"], embeddings=[[1, 1, 0]], metadatas=[{"n": None}])
            >>> books.upsert(ids=["moby"], documents=[long_text], chunking={"tokens": 48, "overlap": 8})
        """
        return self._write("Upsert", ids, embeddings, documents, metadatas, chunking)

    def update(self, ids, embeddings=None, documents=None, metadatas=None) -> dict[str, int]:
        """Changes existing records, keeping the fields not given.

        Raises:
            NotFoundError: an id does not exist (nothing is written).

        Example:
            >>> docs.update(ids=["a"], documents=["green apple"])
        """
        return self._write("Update", ids, embeddings, documents, metadatas)

    def delete(self, ids=None, where: Mapping | None = None, where_document: Mapping | None = None) -> int:
        """Deletes records by id and/or filter; returns how many were removed.

        Unknown ids are not an error. With both ids and a filter, records must match both.
        The id of a chunked source (see ``add``'s ``chunking``) deletes all its chunks.

        Example:
            >>> docs.delete(where={"n": {"$gt": 1}})
            1
        """
        request = rq.delete_request(self.name, ids, where, where_document)
        return 0 if request is None else self._client._call("Records", "Delete", request).deleted

    # ------------------------------------------------------------------ reads
    def get(self, ids=None, where: Mapping | None = None, where_document: Mapping | None = None,
            limit: int | None = None, offset: int | None = None,
            include: Sequence[str] | None = None, page_token: str | None = None) -> dict[str, Any]:
        """Reads records by id (in the order asked; missing ids skipped) or by filter.

        Filtered reads come back in a stable order, so ``limit``/``offset`` pages are
        consistent while nothing is written. For pages that stay consistent under
        concurrent writes, pass ``page_token=""`` and then each result's
        ``next_page_token`` (records in id order; see also ``pages``).

        A read whose reply would pass the message limit (64 MiB; e.g. every embedding of a
        large collection) is read in pages that fit and returned as one result, the same
        as one call would give; like a split write it is not one snapshot.

        Returns:
            A dict with ``ids``, ``embeddings`` (numpy array), ``documents`` and
            ``metadatas``; a field not in ``include`` is None. ``include`` defaults to
            ``["metadatas", "documents"]``.

        Example:
            >>> docs.get(where={"n": 1}, include=["embeddings"])["ids"]
            ['a']
        """
        request, include_msg = rq.get_request(self.name, ids, where, where_document, limit, offset,
                                              include, page_token)
        response = rpb.GetResponse() if request is None else self._get(request, include_msg)
        return rq.get_result(response, include_msg, self.dim, page_token is not None)

    def _get(self, request: rpb.GetRequest, include_msg) -> rpb.GetResponse:
        """One Get call, or pages of it when its reply would not fit one message."""
        try:
            return self._client._call("Records", "Get", request)
        except ResourceExhaustedError as exc:
            if not paging.reply_too_large(exc):
                raise
        return paging.get_in_pages(lambda part: self._client._call("Records", "Get", part), request,
                                   paging.first_page_rows(include_msg, self.dim))

    def pages(self, where: Mapping | None = None, where_document: Mapping | None = None,
              page_size: int = 1000, include: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """Yields every matching record, a page (a ``get`` result dict) at a time, in id order.

        Stable under concurrent writes: a record that exists for the whole iteration is
        yielded exactly once.

        Example:
            >>> for page in docs.pages(where={"kind": "fruit"}, page_size=500):
            ...     print(len(page["ids"]))
        """
        token: str | None = ""
        while token is not None:
            page = self.get(where=where, where_document=where_document, limit=page_size,
                            include=include, page_token=token)
            if page["ids"]:
                yield page
            token = page["next_page_token"]

    def peek(self, limit: int = 10) -> dict[str, Any]:
        """The first ``limit`` records, with embeddings.

        Example:
            >>> docs.peek(2)["ids"]
            ['a', 'b']
        """
        return self.get(limit=limit, include=["embeddings", "documents", "metadatas"])

    def count(self, where: Mapping | None = None, where_document: Mapping | None = None) -> int:
        """Counts records, optionally only those matching a filter.

        Example:
            >>> docs.count()
            2
        """
        return self._client._call("Records", "Count", rq.count_request(self.name, where, where_document)).count

    def query(self, query_embeddings=None, n_results: int = 10, where: Mapping | None = None,
              where_document: Mapping | None = None, include: Sequence[str] | None = None,
              query_texts: Sequence[str] | str | None = None, explain: bool = False,
              max_distance: float | None = None, group_by: str | None = None,
              group_size: int | None = None, rank: str = "vector", fusion: str = "rrf",
              hybrid_alpha: float = 0.5) -> dict[str, Any]:
        """Finds the nearest records to each query vector (or text), nearest first.

        ``rank`` chooses the ranking (docs/hybrid-search.md):

        - ``"vector"`` (default): nearest vectors first.
        - ``"bm25"``: keyword search: the records whose documents best match
          ``query_texts`` by BM25 over the collection's full-text index (no vectors);
          ``distances`` are NaN.
        - ``"hybrid"``: vector and BM25 rankings fused. ``fusion="rrf"`` (default) sums
          ``1 / (60 + rank)`` over both lists; ``fusion="weighted"`` sums
          ``hybrid_alpha * vector + (1 - hybrid_alpha) * bm25`` of each list's scores
          min-max normalised to 0..1. The vectors are ``query_embeddings`` (one per text)
          or the encoder's embedding of ``query_texts``; ``distances`` are the vector
          distances.

        bm25 and hybrid results add a ``scores`` column (higher is better); ``where``,
        ``where_document``, ``max_distance`` and ``group_by`` apply to all three rankings.

        ``max_distance`` keeps only hits at most that far (fewer than ``n_results`` then),
        by vector distance in every ranking: for hybrid, records farther than it take no
        part in either list; for bm25 it needs a query vector (``query_embeddings``, one
        per text, or the encoder's embedding of ``query_texts``), and ``distances`` then
        holds each hit's vector distance.
        ``group_by`` (a metadata path, dotted for nested maps, e.g. ``"source_id"``) returns
        up to ``n_results`` groups, one per distinct value, best group first, each with its
        best ``group_size`` hits (default 1), and adds a ``groups`` column (each hit's
        value); records without the path (or null there) are in no group and are left out.
        The server grows the search until the groups are full, looking at no more than the
        50,000 nearest hits per query.

        Distances: cosine ``1 - cos``, l2 squared Euclidean, ip ``1 - dot``.
        ``query_texts`` are embedded on the server by the collection's encoder. With
        ``explain=True`` the result also has ``plan``: the strategy (``exact`` or
        ``hnsw``), the number of candidate records the filter allowed, the ``ef`` used,
        how the filter was evaluated and the time spent (ms).

        Returns:
            A dict with ``ids``, ``distances``, ``embeddings``, ``documents`` and
            ``metadatas``, each a list with one entry per query. ``include`` defaults to
            ``["metadatas", "documents", "distances"]``.

        Example:
            >>> docs.query(query_embeddings=[[1, 0, 0]], n_results=1)["ids"]
            [['a']]
            >>> notes.query(query_texts=["apt-get broken dependencies"], rank="hybrid")["scores"]
        """
        request, include_msg = rq.query_request(self.name, query_embeddings, n_results, where, where_document,
                                                include, query_texts, explain, rank)
        rq.query_options(request, max_distance, group_by, group_size)
        rq.rank_options(request, rank, fusion, hybrid_alpha)
        response = self._client._call("Records", "Query", request)
        out = rq.query_groups(rq.query_result(response, include_msg, self.dim, explain), response,
                              group_by is not None)
        return rq.query_scores(out, response, rank)

    def classify(self, texts: Sequence[str] | str | None = None, embeddings=None, label_key: str = "label",
                 k: int = 10, where: Mapping | None = None,
                 where_document: Mapping | None = None) -> list[dict[str, Any]]:
        """Labels each text (or vector) by a vote of its ``k`` nearest labelled records.

        A record's label is its metadata at ``label_key`` (a dotted path; a string, number
        or bool); records without one do not vote. Each neighbour votes with weight
        ``1 / (distance + 0.001)`` (distance clamped at 0), a label's score is its share of
        the weight; ties go to more votes, then the nearest voter.

        Args:
            texts: texts to classify, embedded by the collection's encoder.
            embeddings: vectors to classify, instead of texts.
            label_key: the metadata path of the labels.
            k: neighbours that vote, 1..1000.
            where, where_document: only records matching these filters vote.

        Returns:
            One dict per input: ``label`` (None when nothing voted), ``scores``
            (label -> score, best first, summing to 1) and ``votes`` (label -> neighbours).

        Example:
            >>> news.classify(texts=["the striker scored twice"], k=5)[0]["label"]
            'sports'
        """
        request = rq.classify_request(self.name, texts, embeddings, label_key, k, where, where_document)
        return rq.classify_result(self._client._call("Records", "Classify", request))
