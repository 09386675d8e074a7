"""``Collection``: the records API of the SDK, shaped like Chroma's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from vectord import limits
from vectord.errors import InvalidArgumentError
from vectord.v1 import records_pb2 as rpb
from vectord.v1 import types_pb2 as pb
from vectord.wire import metadata_from_proto, metadata_to_proto, vectors_from_proto, vectors_to_proto

from .where import filter_to_proto

if TYPE_CHECKING:
    from .client import Client

GET_INCLUDE = ("metadatas", "documents")
QUERY_INCLUDE = ("metadatas", "documents", "distances")
_INCLUDABLE = ("embeddings", "documents", "metadatas", "distances")


def _include(include: Sequence[str] | None, default: Sequence[str], allow_distances: bool) -> pb.Include:
    include = list(default if include is None else include)
    for name in include:
        if name not in _INCLUDABLE or (name == "distances" and not allow_distances):
            raise InvalidArgumentError(f"include: unknown field {name!r}; choose from "
                                       f"{[n for n in _INCLUDABLE if allow_distances or n != 'distances']}")
    return pb.Include(**{name: True for name in include})


def _as_matrix(embeddings: Any, field: str) -> np.ndarray:
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim == 1 and array.size:
        array = array[None, :]
    if array.ndim != 2:
        raise InvalidArgumentError(f"{field}: expected a list of vectors or a 2-d array, got shape {array.shape}")
    return array


def _as_list(value: Any, field: str) -> list:
    if isinstance(value, (str, bytes, Mapping)):
        return [value]
    if value is None:
        raise InvalidArgumentError(f"{field}: must not be None")
    return list(value)


def _columns(records: Any, include: pb.Include, dim: int) -> dict[str, Any]:
    """A GetResponse or QueryResult as Chroma-style columns."""
    out: dict[str, Any] = {"ids": list(records.ids)}
    out["embeddings"] = (vectors_from_proto(records.embeddings).copy() if records.HasField("embeddings")
                         else np.empty((0, dim), np.float32)) if include.embeddings else None
    out["documents"] = ([d.value if d.HasField("value") else None for d in records.documents]
                        if include.documents else None)
    out["metadatas"] = ([metadata_from_proto(m) or None for m in records.metadatas]
                        if include.metadatas else None)
    return out


class Collection:
    """A named set of records ``(id, embedding, document, metadata)``.

    Get one from ``Client.create_collection`` or ``Client.get_collection``. Every method is
    thread-safe and makes one or more calls (large writes are split to fit the message limit).

    Attributes:
        name: the collection's name.
        dim: its vector dimension.
        metric: ``"cosine"``, ``"l2"`` or ``"ip"``.
        metadata: the collection's own metadata.
    """

    def __init__(self, client: "Client", info) -> None:
        self._client = client
        self.name: str = info.name
        self.id: str = info.id
        self.dim: int = info.dim
        self.metric: str = {1: "cosine", 2: "l2", 3: "ip"}[info.metric]
        self.metadata: dict[str, Any] = metadata_from_proto(info.metadata)
        self.hnsw: dict[str, int] = {"m": info.hnsw.m, "ef_construction": info.hnsw.ef_construction,
                                     "ef_search": info.hnsw.ef_search}
        #: The built-in model embedding this collection's documents ("" when none).
        self.encoder: str = info.encoder

    def __repr__(self) -> str:
        return f"Collection(name={self.name!r}, dim={self.dim}, metric={self.metric!r})"

    # ------------------------------------------------------------------ writes
    def _write_request(self, ids, embeddings, documents, metadatas) -> rpb.WriteRequest:
        ids = _as_list(ids, "ids")
        request = rpb.WriteRequest(collection=self.name, ids=ids)
        if embeddings is not None:
            request.embeddings.CopyFrom(vectors_to_proto(_as_matrix(embeddings, "embeddings")))
        if documents is not None:
            documents = _as_list(documents, "documents")
            request.documents.values.extend(
                pb.OptionalString() if d is None else pb.OptionalString(value=d) for d in documents)
        if metadatas is not None:
            metadatas = _as_list(metadatas, "metadatas")
            request.metadatas.values.extend(
                metadata_to_proto(m or {}, f"metadatas[{i}]") for i, m in enumerate(metadatas))
        return request

    def _write(self, method: str, ids, embeddings, documents, metadatas) -> dict[str, int]:
        request = self._write_request(ids, embeddings, documents, metadatas)
        totals = {"inserted": 0, "updated": 0, "unchanged": 0, "deleted": 0, "seq": 0}
        for part in _split(request):
            result = self._client._call("Records", method, part, self._client._write_timeout(len(part.ids)))
            for key in ("inserted", "updated", "unchanged", "deleted"):
                totals[key] += getattr(result, key)
            totals["seq"] = max(totals["seq"], result.seq)
        return totals

    def add(self, ids, embeddings=None, documents=None, metadatas=None) -> dict[str, int]:
        """Adds new records. Fails, writing nothing, if any id exists or repeats.

        Args:
            ids: one id or a list of ids (non-empty strings, at most 512 bytes).
            embeddings: one vector per id (list of lists or a numpy array of shape (n, dim));
                may be omitted in a collection with an encoder, which embeds the documents.
            documents: optional text per id.
            metadatas: optional dict per id (str, int, float, bool, lists, nested dicts).

        Returns:
            Counts of what the write did: ``inserted``, ``updated``, ``unchanged``,
            ``deleted``, and the durable log ``seq`` reached.

        Raises:
            AlreadyExistsError: an id exists already.
            InvalidArgumentError: wrong dimension, NaN, duplicate ids, bad metadata...

        Example:
            >>> docs.add(ids=["a", "b"], embeddings=[[1, 0, 0], [0, 1, 0]],
            ...          documents=["apple", "banana"], metadatas=[{"n": 1}, {"n": 2}])
        """
        return self._write("Add", ids, embeddings, documents, metadatas)

    def upsert(self, ids, embeddings=None, documents=None, metadatas=None) -> dict[str, int]:
        """Inserts new records or replaces existing ones.

        Vectors and documents given replace the stored ones; metadata merges by key and a
        key set to ``None`` is removed. New records need an embedding.

        Example:
            >>> docs.upsert(ids=["a"], embeddings=[[1, 1, 0]], metadatas=[{"n": None}])
        """
        return self._write("Upsert", ids, embeddings, documents, metadatas)

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

        Example:
            >>> docs.delete(where={"n": {"$gt": 1}})
            1
        """
        request = rpb.DeleteRequest(collection=self.name)
        if ids is not None:
            request.ids.extend(_as_list(ids, "ids"))
        where_msg = filter_to_proto(where, where_document)
        if where_msg is not None:
            request.where.CopyFrom(where_msg)
        elif ids is None:
            raise InvalidArgumentError("delete: give ids, where or where_document")
        if ids is not None and not request.ids and where_msg is None:
            return 0
        return self._client._call("Records", "Delete", request).deleted

    # ------------------------------------------------------------------ reads
    def get(self, ids=None, where: Mapping | None = None, where_document: Mapping | None = None,
            limit: int | None = None, offset: int | None = None,
            include: Sequence[str] | None = None) -> dict[str, Any]:
        """Reads records by id (in the order asked; missing ids skipped) or by filter.

        Filtered reads come back in a stable order, so ``limit``/``offset`` pages are
        consistent while nothing is written.

        Returns:
            A dict with ``ids``, ``embeddings`` (numpy array), ``documents`` and
            ``metadatas``; a field not in ``include`` is None. ``include`` defaults to
            ``["metadatas", "documents"]``.

        Example:
            >>> docs.get(where={"n": 1}, include=["embeddings"])["ids"]
            ['a']
        """
        include_msg = _include(include, GET_INCLUDE, allow_distances=False)
        request = rpb.GetRequest(collection=self.name, include=include_msg,
                                 limit=limit or 0, offset=offset or 0)
        if limit is not None and limit < 0 or offset is not None and offset < 0:
            raise InvalidArgumentError(f"limit and offset must not be negative, got {limit}, {offset}")
        if ids is not None:
            ids = _as_list(ids, "ids")
            if not ids:
                return _columns(rpb.GetResponse(), include_msg, self.dim)
            request.ids.extend(ids)
        where_msg = filter_to_proto(where, where_document)
        if where_msg is not None:
            request.where.CopyFrom(where_msg)
        return _columns(self._client._call("Records", "Get", request), include_msg, self.dim)

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
        request = rpb.CountRequest(collection=self.name)
        where_msg = filter_to_proto(where, where_document)
        if where_msg is not None:
            request.where.CopyFrom(where_msg)
        return self._client._call("Records", "Count", request).count

    def query(self, query_embeddings=None, n_results: int = 10, where: Mapping | None = None,
              where_document: Mapping | None = None, include: Sequence[str] | None = None,
              query_texts: Sequence[str] | str | None = None) -> dict[str, Any]:
        """Finds the nearest records to each query vector (or text), nearest first.

        ``query_texts`` are embedded on the server by the collection's encoder.

        Distances: cosine ``1 - cos``, l2 squared Euclidean, ip ``1 - dot``.

        Returns:
            A dict with ``ids``, ``distances``, ``embeddings``, ``documents`` and
            ``metadatas``, each a list with one entry per query. ``include`` defaults to
            ``["metadatas", "documents", "distances"]``.

        Example:
            >>> docs.query(query_embeddings=[[1, 0, 0]], n_results=1)["ids"]
            [['a']]
        """
        if (query_embeddings is None) == (query_texts is None):
            raise InvalidArgumentError("query: give either query_embeddings or query_texts")
        include_msg = _include(include, QUERY_INCLUDE, allow_distances=True)
        request = rpb.QueryRequest(collection=self.name, n_results=n_results, include=include_msg)
        if query_embeddings is not None:
            request.queries.CopyFrom(vectors_to_proto(_as_matrix(query_embeddings, "query_embeddings")))
        else:
            request.query_texts.extend(_as_list(query_texts, "query_texts"))
        if not isinstance(n_results, int) or isinstance(n_results, bool) or not 1 <= n_results <= limits.MAX_N_RESULTS:
            raise InvalidArgumentError(f"n_results must be in 1..{limits.MAX_N_RESULTS}, got {n_results!r}")
        where_msg = filter_to_proto(where, where_document)
        if where_msg is not None:
            request.where.CopyFrom(where_msg)
        response = self._client._call("Records", "Query", request)
        out: dict[str, Any] = {key: [] if key == "ids" or getattr(include_msg, key) else None
                               for key in ("ids", "distances", "embeddings", "documents", "metadatas")}
        for result in response.results:
            columns = _columns(result, include_msg, self.dim)
            out["ids"].append(columns["ids"])
            if include_msg.distances:
                out["distances"].append(list(result.distances))
            for key in ("embeddings", "documents", "metadatas"):
                if out[key] is not None:
                    out[key].append(columns[key])
        return out


def _split(request: rpb.WriteRequest):
    """Yields requests small enough for the message and batch limits (halving as needed).

    A split write is no longer atomic as a whole: each part is all-or-nothing.
    """
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
