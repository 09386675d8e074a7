"""``Client``: connects to a vectord server, or runs the engine in-process."""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from vectord.errors import InvalidArgumentError
from vectord.v1 import admin_pb2, encoder_pb2
from vectord.v1 import collections_pb2 as cpb
from vectord.wire import vectors_from_proto

from . import checks
from . import requests as rq
from .collection import Collection
from .transport import GrpcTransport, InProcessTransport, tls_credentials


class Client:
    """The entry point of the SDK.

    ``Client("host:port")`` talks gRPC to a running ``vectord serve``;
    ``Client(path="./data")`` runs the same servicers in this process on that data
    directory (taking its lock: one process owns a directory).
    ``Client()``, with neither, runs them on an in-memory database, for notebooks and
    tests (as Chroma's ``EphemeralClient``): the same API, nothing written to disk, and the
    data gone at ``close()`` or exit. Each such client has its own database. Snapshots need
    a directory and are refused (FailedPreconditionError).

    Args:
        address: ``host:port`` of a server.
        api_key: sent as ``authorization: Bearer <key>`` on every call.
        timeout: default deadline of each call, in seconds (writes get more per record).
        path: a data directory for embedded use (instead of ``address``); give neither for
            an in-memory database.
        tls: connect with TLS, verifying the server against the system's root certificates
            (or ``tls_ca``). Implied by any of ``tls_ca``, ``tls_cert``, ``tls_key``.
        tls_ca: PEM file (path, or the PEM bytes) of the CA that signed the server's
            certificate, for servers with a private CA.
        tls_cert: PEM client certificate (path or bytes), for servers that require mutual
            TLS (``vectord serve --tls-client-ca``); needs ``tls_key``.
        tls_key: PEM private key of ``tls_cert`` (path or bytes).
        allow_reset: in-process only: let ``reset()`` delete every collection. Off for a
            data directory unless True; on for an in-memory client unless False. (A server
            allows it when started with ``vectord serve --allow-reset``.)

    Raises:
        InvalidArgumentError: both ``address`` and ``path``; TLS arguments without
            ``address``; ``tls_cert`` without ``tls_key`` (or the reverse); an unreadable PEM file;
            an argument of the wrong type, or a timeout that is not a positive number.

    Example:
        >>> scratch = vectord.Client()                 # in memory
        >>> client = vectord.Client(path="./data")
        >>> docs = client.get_or_create_collection("docs", dim=3)
        >>> docs.add(ids=["a"], embeddings=[[1, 0, 0]])
        >>> client.close()
        >>> secure = vectord.Client("db.internal:50051", api_key="...", tls_ca="ca.pem",
        ...                         tls_cert="client.pem", tls_key="client.key")
    """

    def __init__(self, address: str | None = None, *, api_key: str | None = None,
                 timeout: float = 30.0, path: str | None = None, tls: bool = False,
                 tls_ca: str | os.PathLike | bytes | None = None,
                 tls_cert: str | os.PathLike | bytes | None = None,
                 tls_key: str | os.PathLike | bytes | None = None, allow_reset: bool | None = None) -> None:
        timeout = checks.connection(address, path, api_key, timeout, tls,
                                    {"tls_ca": tls_ca, "tls_cert": tls_cert, "tls_key": tls_key}, allow_reset)
        if address is not None and path is not None:
            raise InvalidArgumentError("Client: give an address ('host:port') or path='./data', not both "
                                       "(or neither, for an in-memory database)")
        uses_tls = tls or any(v is not None for v in (tls_ca, tls_cert, tls_key))
        if address is None and uses_tls:
            raise InvalidArgumentError("Client: TLS arguments apply to a server address, not to path= "
                                       "or an in-memory database")
        self.timeout = timeout
        if address is not None:
            credentials = tls_credentials(tls, tls_ca, tls_cert, tls_key)
            self._transport: GrpcTransport | InProcessTransport = GrpcTransport(address, api_key, credentials)
        else:  # a data directory, or in memory when path is None
            # reset is opt-in on a data directory, as in Chroma; a scratch in-memory one allows it
            self._transport = InProcessTransport(path, allow_reset=path is None if allow_reset is None else allow_reset)

    def _call(self, service: str, method: str, request: Any, timeout: float | None = None) -> Any:
        return self._transport.call(service, method, request, timeout if timeout is not None else self.timeout)

    def _write_timeout(self, records: int) -> float:
        return self.timeout + records * 0.001  # bulk writes get 1 ms per record on top

    def close(self) -> None:
        """Closes the channel, or (embedded) checkpoints and releases the data directory, or
        (in memory) drops the data."""
        self._transport.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ collections
    def create_collection(self, name: str, *, dim: int | None = None, metric: str | None = None,
                          hnsw: Mapping[str, int] | None = None,
                          metadata: Mapping[str, Any] | None = None,
                          encoder: str | None = None,
                          fulltext: Mapping[str, Any] | None = None,
                          shards: int | None = None, replicas: int | None = None,
                          get_or_create: bool = False) -> Collection:
        """Creates a collection.

        Without ``dim`` the collection uses the built-in default encoder (as Chroma uses its
        default embedding function): add ``documents`` and query with ``query_texts``.

        Args:
            name: 1-128 characters of ``[A-Za-z0-9._-]``, not starting with ``.``.
            dim: vector dimension, 1..65536; omit it to take the encoder's.
            metric: ``"cosine"`` (the default), ``"l2"`` or ``"ip"``.
            hnsw: index parameters ``m``, ``ef_construction``, ``ef_search``.
            metadata: the collection's own metadata.
            encoder: a built-in model (see ``list_models``), or ``"default"``; documents and
                query texts are then embedded by the server, with that model only.
            fulltext: the full-text index's analyzer, for ``query(rank="bm25"|"hybrid")``:
                ``{"analyzer": "standard" | "cjk" | "none", "stemming": bool,
                "stop_words": bool}``; omitted keys take the defaults (standard, English
                stemming and stop words on); ``"cjk"`` indexes Chinese, Japanese and Korean
                text as character bigrams; ``"none"`` keeps no index.
            shards: on a vectord cluster (docs/cluster.md), the number of shards the records
                are spread over (1..256); None for the gateway's default. A single server
                holds one shard: it accepts only 1.
            replicas: on a vectord cluster, the copies of each shard, on distinct nodes
                (1..8, at most the alive nodes); None for the gateway's default. A single
                server accepts only 1.
            get_or_create: return the existing collection instead of failing (see
                ``get_or_create_collection``).

        Raises:
            AlreadyExistsError: the name is taken (with ``get_or_create``: a setting given
                differs from the existing collection's).
            InvalidArgumentError: a bad name, dimension, metric or parameter; ``shards`` or
                ``replicas`` other than 1 on a single server.

        Example:
            >>> docs = client.create_collection("docs", dim=384, metric="cosine",
            ...                                 hnsw={"m": 16, "ef_search": 64})
            >>> notes = client.create_collection("notes")        # built-in encoder
            >>> zh = client.create_collection("zh", fulltext={"analyzer": "cjk"})
            >>> # on a cluster gateway (`vectord cluster up`); one server refuses shards=3
            >>> big = client.create_collection("big", dim=384, shards=3, replicas=2)
            >>> (big.shards, big.replicas)
            (3, 2)
        """
        request = rq.create_collection_request(name, dim, metric, hnsw, metadata, encoder, get_or_create,
                                               fulltext, shards, replicas)
        return Collection(self, self._call("Collections", "CreateCollection", request))

    def get_or_create_collection(self, name: str, *, dim: int | None = None, metric: str | None = None,
                                 hnsw: Mapping[str, int] | None = None,
                                 metadata: Mapping[str, Any] | None = None,
                                 encoder: str | None = None, fulltext: Mapping[str, Any] | None = None,
                                 shards: int | None = None, replicas: int | None = None) -> Collection:
        """Returns the named collection, creating it (as ``create_collection``) if needed.

        As in Chroma, an existing collection is returned whatever its settings when none
        are given; each setting given (``dim``, ``metric``, ``hnsw``, ``encoder``, ``shards``,
        ``replicas``) must match it. ``metadata`` is used only when the collection is created.

        Args:
            name: the collection's name.
            dim, metric, hnsw, metadata, encoder, fulltext, shards, replicas: as
                ``create_collection``.

        Raises:
            AlreadyExistsError: the collection exists with a setting other than the one
                given; the message names the setting and both values.

        Example:
            >>> docs = client.get_or_create_collection("docs", dim=384)
            >>> same = client.get_or_create_collection("docs")   # any settings
            >>> big = client.get_or_create_collection("big", dim=384, shards=3, replicas=2)  # a cluster
        """
        return self.create_collection(name, dim=dim, metric=metric, hnsw=hnsw, metadata=metadata,
                                      encoder=encoder, fulltext=fulltext, shards=shards, replicas=replicas,
                                      get_or_create=True)

    def get_collection(self, name: str) -> Collection:
        """Returns an existing collection.

        Raises:
            NotFoundError: there is none of that name.
            DataLossError: its files are damaged.

        Example:
            >>> docs = client.get_collection("docs")
        """
        request = cpb.GetCollectionRequest(name=checks.text(name, "name"))
        return Collection(self, self._call("Collections", "GetCollection", request))

    def list_collections(self) -> list[Collection]:
        """Every collection, ordered by name.

        Example:
            >>> [c.name for c in client.list_collections()]
            ['docs']
        """
        response = self._call("Collections", "ListCollections", cpb.ListCollectionsRequest())
        return [Collection(self, info) for info in response.collections]

    def delete_collection(self, name: str) -> None:
        """Deletes a collection and its files.

        Raises:
            NotFoundError: there is none of that name.

        Example:
            >>> client.delete_collection("docs")
        """
        self._call("Collections", "DeleteCollection", cpb.DeleteCollectionRequest(name=checks.text(name, "name")))

    def reset(self) -> int:
        """Deletes every collection and its files (snapshots are kept); returns how many.

        As in Chroma, refused unless allowed: a server must run with ``--allow-reset``
        (``VECTORD_ALLOW_RESET=1``), a client on a data directory needs ``allow_reset=True``;
        an in-memory ``Client()`` allows it unless given ``allow_reset=False``.

        Raises:
            FailedPreconditionError: reset is not allowed (the message names the flag).

        Example:
            >>> client = vectord.Client(path="./scratch", allow_reset=True)
            >>> client.reset()
            2
        """
        return self._call("Admin", "Reset", admin_pb2.ResetRequest()).deleted_collections

    def heartbeat(self) -> int:
        """The server's clock, in nanoseconds since the Unix epoch (as Chroma's heartbeat);
        a cheap way to check that the server answers.

        Raises:
            UnavailableError: no server answers at the address.

        Example:
            >>> client.heartbeat()
            1764412345123456789
        """
        return self._call("Admin", "GetServerInfo", admin_pb2.GetServerInfoRequest()).server_time_unix_ns

    def server_info(self) -> dict[str, Any]:
        """The server's version, uptime and limits.

        Example:
            >>> client.server_info()["version"]
            '0.1.0'
        """
        info = self._call("Admin", "GetServerInfo", admin_pb2.GetServerInfoRequest())
        return {"version": info.version, "uptime_seconds": info.uptime_seconds,
                "max_message_bytes": info.max_message_bytes, "max_batch_records": info.max_batch_records,
                "collection_count": info.collection_count, "allow_reset": info.allow_reset}

    def checkpoint(self, name: str | None = None) -> int:
        """Checkpoints a collection (or all) now; returns how many wrote a new generation.

        Example:
            >>> client.checkpoint("docs")
            1
        """
        request = admin_pb2.CheckpointRequest(collection=checks.optional_text(name, "name") or "")
        return self._call("Admin", "Checkpoint", request).checkpointed

    # ------------------------------------------------------------------ encoder
    def embed(self, texts: Sequence[str] | str, model: str | None = None, *,
              return_truncated: bool = False) -> np.ndarray | tuple[np.ndarray, list[int]]:
        """Embeds texts with a built-in model, as the server does for collections.

        A text longer than the model's window (``list_models()``'s ``max_tokens``: 256
        tokens for the built-in model) is cut to it; ``return_truncated=True`` says which.

        Args:
            texts: a text or a list of texts (any Unicode).
            model: a model name; the default model when None.
            return_truncated: also return the positions (in ``texts``) of the texts that
                were longer than the window.

        Returns:
            float32 array of shape (len(texts), dim), rows of unit norm; with
            ``return_truncated``, a tuple ``(vectors, truncated_positions)``.

        Example:
            >>> client.embed(["a cat sat on the mat"]).shape
            (1, 384)
            >>> vectors, cut = client.embed(["short", "word " * 1000], return_truncated=True)
            >>> cut
            [1]
        """
        texts = rq.embed_texts(texts)
        model = checks.optional_text(model, "model") or ""
        vectors: list[np.ndarray] = []
        truncated: list[int] = []
        for start in range(0, max(len(texts), 1), 10_000):  # stay far below the message limit
            response = self._call("Encoder", "Embed", encoder_pb2.EmbedRequest(
                texts=texts[start:start + 10_000], model=model), self._write_timeout(len(texts)))
            vectors.append(vectors_from_proto(response.vectors).copy())
            truncated.extend(start + i for i in response.truncated_indices)
        out = np.concatenate(vectors) if len(vectors) > 1 else vectors[0]
        return (out, truncated) if return_truncated else out

    def reembed_collection(self, name: str, model: str | None = None, *, batch: int = 0,
                           on_progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Re-embeds a collection's documents with another model, online, and switches the
        collection to it when every record is done (Admin.ReembedCollection, called until
        the switch). Queries and writes go on meanwhile with the old model; writes made
        during the re-embed are re-embedded too. Progress is kept by the server, so calling
        again after an interruption (of this process or of the server) continues.

        Args:
            name: the collection.
            model: the target model (see ``list_models``); the default model when None.
            batch: records embedded per call (0: the server's default, 1,000).
            on_progress: called after each call with the progress dict.

        Returns:
            ``{"collection", "model" (a list_models() dict), "done", "total", "switched",
            "truncated"}`` of the last call; ``switched`` is True.

        Example:
            >>> client.reembed_collection("notes", "my-multilingual-model")["switched"]
            True
        """
        if on_progress is not None and not callable(on_progress):
            raise InvalidArgumentError(f"on_progress: expected a function or None, got {checks.shown(on_progress)}")
        while True:
            progress = self.reembed_step(name, model, batch=batch)
            if on_progress is not None:
                on_progress(progress)
            if progress["switched"]:
                return progress

    def reembed_step(self, name: str, model: str | None = None, *, batch: int = 0,
                     cancel: bool = False) -> dict[str, Any]:
        """One Admin.ReembedCollection call: embeds up to ``batch`` more records (or, at
        the end, switches); ``cancel=True`` discards the stored progress instead.

        Example:
            >>> client.reembed_step("notes", "my-model", batch=500)["done"]
            500
        """
        request = admin_pb2.ReembedCollectionRequest(
            collection=checks.text(name, "name"), model=checks.optional_text(model, "model") or "",
            batch=checks.integer(batch, "batch", 0, 100_000), cancel=checks.boolean(cancel, "cancel"))
        # up to 50 ms a record: a batch of long documents, or the final switch (new graph)
        response = self._call("Admin", "ReembedCollection", request, self.timeout + 0.05 * max(batch, 1000))
        return {"collection": response.collection, "model": rq.model_info(response.model), "done": response.done,
                "total": response.total, "switched": response.switched, "truncated": response.truncated_texts}

    def list_models(self) -> list[dict[str, Any]]:
        """The built-in models: name, version, sha256, dim, max_tokens, is_default.

        Example:
            >>> [m["name"] for m in client.list_models()]
            ['vectord-gru-base', 'vectord-gru-mini']
        """
        response = self._call("Encoder", "ListModels", encoder_pb2.ListModelsRequest())
        return [rq.model_info(m) for m in response.models]
