"""`vectord cluster import`: bulk ingest through Ray Data.

The source is streamed, never loaded whole: JSONL (the format of `vectord import`: one
record a line, ``{"id", "document", "metadata", "embedding"}``, all but ``id`` optional),
Parquet (columns of the same names; ``metadata`` a JSON string or a struct) or ``.npy``
(float32 vectors, ids ``<--id-prefix><row>``). Ray Data reads it in blocks on the
cluster's nodes; a pool of actors, each holding the built-in encoder, embeds the documents
of a collection with an encoder (the gateway embeds nothing); this process, the Ray
driver, groups the rows by shard with the collection's routing table and upserts each
shard's rows in batches of ``--batch-size`` through the gateway, so that every write is
numbered by the shard's one sequencer and touches one shard. Progress goes to stderr.

A collection with an encoder refuses vectors from outside, so that two models' vectors
never mix. The import's vectors come from the same model, which the gateway checks: each
write carries the model's sha256 in the call metadata (``IMPORT_MODEL_HEADER``), and the
gateway accepts the vectors only when it equals the collection's model's. Writes are
upserts: a rerun after a failure rewrites the same values (unchanged).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

#: gRPC call metadata of an import's writes: the sha256 of the model that embedded them.
IMPORT_MODEL_HEADER = "x-vectord-import-model"
FORMATS = ("jsonl", "parquet", "npy")


def source_format(path: str, given: str | None) -> str:
    if given:
        return given
    suffix = Path(path).suffix.lower().lstrip(".")
    fmt = {"jsonl": "jsonl", "ndjson": "jsonl", "parquet": "parquet", "npy": "npy"}.get(suffix)
    if fmt is None:
        raise ValueError(f"source {path!r}: cannot tell the format from the extension {suffix!r}; "
                         f"give --format ({', '.join(FORMATS)})")
    return fmt


def _parse_lines(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """JSONL lines -> columns; metadata stays JSON text (Arrow would turn maps with different
    keys into one struct, adding nulls), embeddings become a float32 tensor column."""
    ids, documents, metadatas, embeddings = [], [], [], []
    for line in batch["text"]:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"a line is not JSON ({exc}): {line[:80]!r}") from None
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise ValueError(f"a record needs a string \"id\": {line[:80]!r}")
        ids.append(row["id"])
        documents.append(row.get("document"))
        metadatas.append(None if row.get("metadata") is None else json.dumps(row["metadata"]))
        embeddings.append(row.get("embedding"))
    out = {"id": np.asarray(ids, dtype=object), "document": np.asarray(documents, dtype=object),
           "metadata": np.asarray(metadatas, dtype=object)}
    given = [e is not None for e in embeddings]
    if any(given):
        if not all(given):
            raise ValueError(f"records with and without \"embedding\" in one source (e.g. id {ids[given.index(False)]!r})")
        lengths = {len(e) for e in embeddings}
        if len(lengths) != 1:
            raise ValueError(f"embeddings of different lengths {sorted(lengths)} (e.g. id {ids[0]!r})")
        out["embedding"] = np.asarray(embeddings, np.float32)
    return out


def _parquet_columns(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    n = len(batch["id"])
    out = {"id": np.asarray([str(i) for i in batch["id"]], dtype=object),
           "document": np.asarray(batch["document"], dtype=object) if "document" in batch
           else np.full(n, None, dtype=object)}
    metadata = batch.get("metadata")
    out["metadata"] = np.asarray([None if m is None else m if isinstance(m, str) else json.dumps(
        {k: v for k, v in dict(m).items()}, default=lambda v: v.tolist()) for m in metadata] if metadata is not None
        else [None] * n, dtype=object)
    if "embedding" in batch:
        out["embedding"] = np.stack([np.asarray(e, np.float32) for e in batch["embedding"]]) if n else \
            np.zeros((0, 0), np.float32)
    return out


class Embedder:
    """An actor of the embedding pool: the built-in model, loaded once per actor."""

    def __init__(self, model: str, sha256: str) -> None:
        from vectord.server.encoders import BuiltinEncoders

        self.encoder = BuiltinEncoders(threads=1).get(model)
        if self.encoder.sha256 != sha256:  # a node with another vectord: never mix models
            raise RuntimeError(f"model {model!r} on this node has sha256 {self.encoder.sha256[:12]}..., the "
                               f"collection's is {sha256[:12]}...")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        documents = batch["document"]
        missing = [str(batch["id"][i]) for i, d in enumerate(documents) if not isinstance(d, str)]
        if missing:
            raise ValueError(f"record {missing[0]!r} has no document to embed (the collection has an encoder)")
        batch["embedding"] = np.asarray(self.encoder.embed([str(d) for d in documents]), np.float32)
        return batch


def dataset(path: str, fmt: str, *, encoder: dict | None, workers: int, batch_size: int):
    """The source as a Ray Dataset of id, document, metadata (JSON text) and embedding."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # .npy ids are row numbers, counted in order
    if fmt == "jsonl":
        ds = ray.data.read_text(path).map_batches(_parse_lines, batch_format="numpy", batch_size=batch_size)
    elif fmt == "parquet":
        ds = ray.data.read_parquet(path).map_batches(_parquet_columns, batch_format="numpy", batch_size=batch_size)
    elif fmt == "npy":
        ds = ray.data.read_numpy(path).rename_columns({"data": "embedding"})
    else:
        raise ValueError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if encoder is not None:
        if fmt == "npy":
            raise ValueError(f"collection embeds documents with {encoder['name']!r}: a .npy source has none")
        ds = ds.map_batches(Embedder, fn_constructor_kwargs={"model": encoder["name"], "sha256": encoder["sha256"]},
                            batch_format="numpy", batch_size=batch_size, concurrency=workers, num_cpus=1)
    return ds


def _rows(ds, fmt: str, id_prefix: str, batch_size: int) -> Iterator[tuple[list[str], np.ndarray | None, list, list]]:
    row = 0
    for batch in ds.iter_batches(batch_size=batch_size, batch_format="numpy"):
        embeddings = batch.get("embedding")
        n = len(embeddings) if fmt == "npy" else len(batch["id"])
        if fmt == "npy":
            ids, documents, metadatas = [f"{id_prefix}{row + i}" for i in range(n)], None, None
        else:
            ids = [str(i) for i in batch["id"]]
            documents = list(batch["document"])
            metadatas = [None if m is None else json.loads(m) for m in batch["metadata"]]
        row += n
        yield ids, (None if embeddings is None else np.asarray(embeddings, np.float32)), documents, metadatas


def run_import(client, table: dict[str, Any], collection, path: str, fmt: str, *, workers: int = 2,
               batch_size: int = 1000, id_prefix: str = "row-", progress=sys.stderr) -> dict[str, Any]:
    """Streams ``path`` into ``collection`` (an SDK collection on the gateway) shard by shard;
    returns {"records", "writes", "seconds"}."""
    from .routing import RoutingTable

    routing = RoutingTable.from_dict(table)
    encoder = table["config"].get("encoder")
    if encoder is not None:  # the gateway accepts this model's vectors (see the module docstring)
        transport = client._transport
        transport._metadata = (*(transport._metadata or ()), (IMPORT_MODEL_HEADER, encoder["sha256"]))
    ds = dataset(path, fmt, encoder=encoder, workers=workers, batch_size=batch_size)
    buffers: dict[int, dict[str, list]] = {}
    started, last, records, writes = time.monotonic(), 0.0, 0, 0

    def flush(shard: int) -> None:
        nonlocal writes
        buf = buffers.pop(shard)
        collection.upsert(ids=buf["ids"], embeddings=np.stack(buf["embeddings"]),
                          documents=buf["documents"] if any(d is not None for d in buf["documents"]) else None,
                          metadatas=buf["metadatas"] if any(m is not None for m in buf["metadatas"]) else None)
        writes += 1

    for ids, embeddings, documents, metadatas in _rows(ds, fmt, id_prefix, batch_size):
        if embeddings is None:
            raise ValueError("records without embeddings, and the collection has no encoder to embed them")
        for shard, positions in routing.group(ids).items():
            buf = buffers.setdefault(shard, {"ids": [], "embeddings": [], "documents": [], "metadatas": []})
            for i in positions:
                buf["ids"].append(ids[i])
                buf["embeddings"].append(embeddings[i])
                buf["documents"].append(documents[i] if documents is not None else None)
                buf["metadatas"].append(metadatas[i] if metadatas is not None else None)
            if len(buf["ids"]) >= batch_size:
                flush(shard)
        records += len(ids)
        now = time.monotonic()
        if progress is not None and now - last >= 2.0:
            last = now
            print(f"imported {records:,} records ({records / max(now - started, 1e-9):,.0f}/s)", file=progress,
                  flush=True)
    for shard in sorted(buffers):
        flush(shard)
    seconds = time.monotonic() - started
    if progress is not None:
        print(f"imported {records:,} records in {seconds:.1f} s ({writes} writes, one shard each)", file=progress,
              flush=True)
    return {"records": records, "writes": writes, "seconds": seconds}
