"""Cutting documents into chunk records for a chunked write (docs/long-documents.md).

One collection (storage/collection.py) and the cluster gateway (cluster/engine.py) cut
documents the same way, with the same checks and errors: chunk ``j`` of source ``id`` is the
record ``f"{id}#{j}"``, its document a slice of the source's text, its metadata the source's
plus ``{"source_id": id, "chunk": j}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from vectord import limits
from vectord.errors import InvalidArgumentError
from . import validation

#: Metadata keys of a chunk record: the id of its source document and its ordinal.
SOURCE_KEY = "source_id"
CHUNK_KEY = "chunk"


@dataclass
class Chunks:
    """The records a chunked write makes (validated), and for each the position of its source."""

    ids: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    metadatas: list[dict[str, Any]] = field(default_factory=list)
    owner: list[int] = field(default_factory=list)


def check_request(kind: str, config, ids, documents, metadatas) -> tuple[list[str], list[Any], list[Any]]:
    """The checked (ids, documents, metadatas) of a chunked write to a collection of ``config``.

    Raises:
        InvalidArgumentError: a kind other than add/upsert, bad ids/documents/metadata, or a
            collection without an encoder (chunks are embedded by it).
    """
    if kind not in ("add", "upsert"):
        raise InvalidArgumentError(f"chunking: applies to add and upsert, not {kind}")
    ids = validation.ids(ids)
    n = len(ids)
    if documents is None:
        raise InvalidArgumentError("documents: chunking needs a document per id")
    documents = validation.documents(documents, n)
    metadatas = validation.metadatas(metadatas, n) if metadatas is not None else [None] * n
    if config.encoder is None:
        raise InvalidArgumentError(
            f"chunking: collection {config.name!r} has no encoder, and chunks are embedded by the "
            "collection's encoder; create the collection with encoder=... (or without dim)")
    return ids, documents, metadatas


def cut(encoder, ids: Sequence[str], documents: Sequence[Any], metadatas: Sequence[Any],
        tokens: int, overlap: int) -> Chunks:
    """Cuts each document into pieces of at most ``tokens`` word pieces (0: the most the
    encoder reads), consecutive pieces sharing ``overlap`` (see the encoder's ``chunk``).

    Raises:
        InvalidArgumentError: tokens or overlap out of range, a missing document, metadata
            using a chunking key, or more than limits.MAX_BATCH_RECORDS chunks.
    """
    limit = encoder.max_tokens - 2
    if isinstance(tokens, bool) or not isinstance(tokens, int) or not 0 <= tokens <= limit:
        raise InvalidArgumentError(f"chunking.tokens: must be 1..{limit} (encoder {encoder.name!r} reads "
                                   f"{encoder.max_tokens} tokens with [CLS] and [SEP]; 0 means {limit}), "
                                   f"got {tokens!r}")
    tokens = tokens or limit
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < tokens:
        raise InvalidArgumentError(f"chunking.overlap: must be 0..{tokens - 1} (less than tokens {tokens}), "
                                   f"got {overlap!r}")
    chunks = Chunks()
    for i, (source, document, metadata) in enumerate(zip(ids, documents, metadatas)):
        if document is None:
            raise InvalidArgumentError(f"documents[{i}]: chunking needs a document for {source!r}")
        for key in (SOURCE_KEY, CHUNK_KEY):
            if metadata and key in metadata:
                raise InvalidArgumentError(f"metadatas[{i}]: key {key!r} is set by chunking; rename it")
        for j, piece in enumerate(encoder.chunk(document, tokens, overlap)):
            chunks.ids.append(f"{source}#{j}")
            chunks.documents.append(piece)
            chunks.metadatas.append({**(metadata or {}), SOURCE_KEY: source, CHUNK_KEY: j})
            chunks.owner.append(i)
        if len(chunks.ids) > limits.MAX_BATCH_RECORDS:
            raise InvalidArgumentError(
                f"documents: the write makes more than {limits.MAX_BATCH_RECORDS} chunks "
                f"(limits.MAX_BATCH_RECORDS) by document {i} ({source!r}); write fewer or larger chunks")
    chunks.ids = validation.ids(chunks.ids)
    chunks.metadatas = validation.metadatas(chunks.metadatas, len(chunks.ids))
    return chunks
