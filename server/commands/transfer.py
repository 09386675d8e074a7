"""`vectord import` and `vectord export`: JSONL, or `.npy` vectors with a JSONL sidecar.

JSONL: one record a line, ``{"id": "a", "document": "text" | null, "metadata": {...},
"embedding": [0.1, ...]}`` (``document``, ``metadata`` and ``embedding`` are optional; a
collection with an encoder embeds documents given without an embedding).

NPY: ``vectors.npy`` (float32, shape (n, dim)) plus a sidecar ``vectors.jsonl`` with the
same records in the same order, without ``embedding``.

Round trips are lossless: float32 vectors are written as the shortest decimal that reads
back to the same float32; metadata keeps ints apart from floats, nesting, and nulls;
documents keep null apart from "".

Imports are resumable: after each batch is durably written, the number of records done is
saved in a progress file (``<input>.progress``); a rerun skips them (and writes are upserts,
so a batch repeated after a crash changes nothing). The file is removed when the import
completes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from vectord.errors import InvalidArgumentError, NotFoundError

from .common import add_connection_args, command, connect


def register(sub) -> None:
    p = sub.add_parser("import", help="import records from JSONL, or .npy vectors with a JSONL sidecar")
    p.add_argument("input", help="a .jsonl file, or a .npy file (with --sidecar, default <input>.jsonl)")
    p.add_argument("-c", "--collection", required=True, help="the target collection")
    p.add_argument("--sidecar", help="JSONL of ids/documents/metadata for a .npy input")
    p.add_argument("--batch-size", type=int, default=1000, help="records per write (default 1000)")
    p.add_argument("--metric", default="cosine", choices=["cosine", "l2", "ip"],
                   help="metric when the collection is created (default cosine)")
    p.add_argument("--encoder", help="when the collection is created without embeddings: its built-in model")
    p.add_argument("--progress-file", help="where progress is kept (default <input>.progress)")
    p.add_argument("--restart", action="store_true", help="ignore a progress file and start from the first record")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_connection_args(p)
    p.set_defaults(func=import_command)
    p = sub.add_parser("export", help="export a collection to JSONL, or .npy plus a JSONL sidecar")
    p.add_argument("output", help="a .jsonl file, or a .npy file (the sidecar goes to <output>.jsonl)")
    p.add_argument("-c", "--collection", required=True)
    p.add_argument("--no-embeddings", action="store_true", help="JSONL without the embedding field")
    p.add_argument("--batch-size", type=int, default=1000, help="records per read (default 1000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_connection_args(p)
    p.set_defaults(func=export_command)


def _progress_bar(total: int | None, desc: str, disabled: bool):
    from tqdm import tqdm

    # rate and ETA come with tqdm's default format when the total is known
    return tqdm(total=total, desc=desc, unit="rec", unit_scale=True, dynamic_ncols=True,
                disable=disabled, file=sys.stderr, mininterval=0.5)


def sidecar_of(path: Path) -> Path:
    return path.with_suffix(".jsonl")


# ---------------------------------------------------------------------------------- import
def _jsonl_records(path: Path, skip: int) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as handle:
        number = 0
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if number >= skip:
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise InvalidArgumentError(f"{path}:{line_number}: not valid JSON ({exc})") from None
                if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                    raise InvalidArgumentError(f"{path}:{line_number}: expected an object with a string \"id\"")
                unknown = set(record) - {"id", "document", "metadata", "embedding"}
                if unknown:
                    raise InvalidArgumentError(f"{path}:{line_number}: unknown field(s) {sorted(unknown)}")
                yield number, record
            number += 1


def _count_lines(path: Path) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


class Progress:
    """The resumable part of an import: records durably written so far."""

    def __init__(self, path: Path, source: Path, collection: str) -> None:
        self.path = path
        stat = source.stat()
        self.key = {"source": str(source.resolve()), "size_bytes": stat.st_size,
                    "mtime_ns": stat.st_mtime_ns, "collection": collection}

    def load(self) -> int:
        try:
            saved = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return 0
        if {k: saved.get(k) for k in self.key} != self.key:
            print(f"vectord import: {self.path} is for another input or collection; starting over",
                  file=sys.stderr)
            return 0
        return int(saved.get("done", 0))

    def save(self, done: int) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({**self.key, "done": done}))
        os.replace(tmp, self.path)

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)


def _ensure_collection(client, name: str, dim: int | None, args) -> Any:
    try:
        return client.get_collection(name)
    except NotFoundError:
        if dim is None and not args.encoder:
            raise InvalidArgumentError(
                f"collection {name!r} does not exist and the input has no embeddings: create it first "
                "(vectord collections create ... --encoder default) or give --encoder") from None
        print(f"vectord import: creating collection {name!r} (dim {dim or 'of the encoder'}, {args.metric})",
              file=sys.stderr)
        return client.create_collection(name, dim=dim, metric=args.metric, encoder=args.encoder)


def _write_batch(collection, batch: list[dict[str, Any]], vectors: np.ndarray | None) -> None:
    ids = [r["id"] for r in batch]
    documents = [r.get("document") for r in batch]
    metadatas = [r.get("metadata") or {} for r in batch]
    if vectors is None:
        has = [r.get("embedding") is not None for r in batch]
        if all(has):
            vectors = np.asarray([r["embedding"] for r in batch], dtype=np.float32)
        elif any(has):
            raise InvalidArgumentError(
                f"records {ids[0]!r}..{ids[-1]!r}: some have an embedding and some do not; give all or none")
    documents_given = any(d is not None for d in documents)
    collection.upsert(ids=ids, embeddings=vectors, documents=documents if documents_given else None,
                      metadatas=metadatas)


@command
def import_command(args: argparse.Namespace) -> int:
    source = Path(args.input)
    if not source.exists():
        raise InvalidArgumentError(f"{source}: no such file")
    is_npy = source.suffix == ".npy"
    sidecar = Path(args.sidecar) if args.sidecar else sidecar_of(source)
    vectors_all = None
    if is_npy:
        vectors_all = np.load(source, mmap_mode="r", allow_pickle=False)
        if vectors_all.ndim != 2:
            raise InvalidArgumentError(f"{source}: expected a 2-d array (n, dim), got shape {vectors_all.shape}")
        if not sidecar.exists():
            raise InvalidArgumentError(f"{source}: its sidecar {sidecar} (ids, documents, metadata) is missing")
        total = len(vectors_all)
        lines = _count_lines(sidecar)
        if lines != total:
            raise InvalidArgumentError(f"{source} has {total} vectors but {sidecar} has {lines} records")
        records_path = sidecar
    else:
        total = _count_lines(source)
        records_path = source
    progress = Progress(Path(args.progress_file) if args.progress_file else source.with_name(source.name + ".progress"),
                        source, args.collection)
    done = 0 if args.restart else progress.load()
    if done:
        print(f"vectord import: resuming after {done} records (progress file {progress.path})", file=sys.stderr)
    batch_size = max(1, args.batch_size)
    with connect(args) as client:
        collection = None
        bar = _progress_bar(total, f"import {args.collection}", args.no_progress)
        bar.update(done)
        try:
            batch: list[dict[str, Any]] = []

            def flush() -> None:
                nonlocal collection, done
                if not batch:
                    return
                vectors = None
                if is_npy:
                    vectors = np.ascontiguousarray(vectors_all[done:done + len(batch)], dtype=np.float32)
                if collection is None:
                    first = batch[0].get("embedding")
                    dim = vectors.shape[1] if vectors is not None else (len(first) if first is not None else None)
                    collection = _ensure_collection(client, args.collection, dim, args)
                _write_batch(collection, batch, vectors)
                done += len(batch)
                progress.save(done)
                bar.update(len(batch))
                batch.clear()

            for _, record in _jsonl_records(records_path, done):
                if is_npy and "embedding" in record:
                    raise InvalidArgumentError(f"{records_path}: record {record['id']!r}: the vectors come "
                                               "from the .npy file; the sidecar must not have \"embedding\"")
                batch.append(record)
                if len(batch) >= batch_size:
                    flush()
            flush()
        finally:
            bar.close()
    progress.finish()
    print(f"imported {done} records into {args.collection!r}")
    return 0


# ---------------------------------------------------------------------------------- export
@command
def export_command(args: argparse.Namespace) -> int:
    output = Path(args.output)
    is_npy = output.suffix == ".npy"
    records_path = sidecar_of(output) if is_npy else output
    with_embeddings = is_npy or not args.no_embeddings
    include = ["documents", "metadatas"] + (["embeddings"] if with_embeddings else [])
    written = 0
    with connect(args) as client:
        collection = client.get_collection(args.collection)
        bar = _progress_bar(collection.count(), f"export {args.collection}", args.no_progress)
        chunks: list[np.ndarray] = []
        tmp = records_path.with_name(records_path.name + ".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as out:
                for page in collection.pages(page_size=max(1, args.batch_size), include=include):
                    embeddings = page.get("embeddings")
                    for i, id_ in enumerate(page["ids"]):
                        record: dict[str, Any] = {"id": id_, "document": page["documents"][i],
                                                  "metadata": page["metadatas"][i]}
                        if with_embeddings and not is_npy:
                            # float(float32) then repr: the shortest text that reads back exactly
                            record["embedding"] = np.asarray(embeddings[i], np.float32).tolist()
                        # sorted keys: the same records always give the same bytes
                        out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
                    if is_npy:
                        chunks.append(np.asarray(embeddings, np.float32).reshape(-1, collection.dim))
                    written += len(page["ids"])
                    bar.update(len(page["ids"]))
            if is_npy:
                vectors = np.concatenate(chunks) if chunks else np.empty((0, collection.dim), np.float32)
                np.save(output, vectors, allow_pickle=False)
            os.replace(tmp, records_path)
        finally:
            bar.close()
            tmp.unlink(missing_ok=True)
    where = f"{output} and {records_path}" if is_npy else str(output)
    print(f"exported {written} records from {args.collection!r} to {where}")
    return 0
