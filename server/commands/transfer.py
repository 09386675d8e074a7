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

Each record is checked as it is read, before its batch is written: one error line names the
line number (e.g. an embedding of the wrong length, with the dimension expected and where
that came from). A missing collection is created when the first batch is written: with the
dimension of the vectors, or, for records without embeddings, with the built-in encoder
(``--encoder``, else the default model), as ``vectord collections create NAME`` does. If the
first batch fails, the collection (and a data directory the import made) is removed again.
Other extensions than .jsonl and .npy are refused, rather than read or written as JSONL.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
    p.add_argument("--encoder", help="the built-in model of a collection created for records without "
                   "embeddings (default: the default model)")
    p.add_argument("--chunk-tokens", type=int, metavar="N",
                   help="store each document as chunks of at most N word pieces (0: as many as the encoder "
                   "reads), records '<id>#<i>' with metadata source_id and chunk; a re-import replaces a "
                   "document's chunks (needs documents without embeddings)")
    p.add_argument("--chunk-overlap", type=int, metavar="M", help="word pieces shared by consecutive chunks "
                   "(default 0; implies chunking)")
    p.add_argument("--progress-file", help="where progress is kept (default <input>.progress)")
    p.add_argument("--restart", action="store_true", help="ignore a progress file and start from the first record")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_connection_args(p)
    p.set_defaults(func=import_command)
    p = sub.add_parser("export", help="export a collection to JSONL, or .npy plus a JSONL sidecar")
    p.add_argument("output", help="a .jsonl file, or a .npy file (the sidecar goes to <output>.jsonl)")
    p.add_argument("-c", "--collection", required=True, help="the collection to export")
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


#: The file formats import and export speak, by extension.
FORMATS = (".jsonl", ".npy")


def sidecar_of(path: Path) -> Path:
    return path.with_suffix(".jsonl")


# ---------------------------------------------------------------------------------- import
def _jsonl_records(path: Path, skip: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each record after the first ``skip`` ones."""
    with open(path, "rb") as handle:  # decoded a line at a time, so a bad byte has a line number
        number = 0
        for line_number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            if number >= skip:
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InvalidArgumentError(f"{path}:{line_number}: not UTF-8 text ({exc.reason} at byte "
                                               f"{exc.start} of the line)") from None
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise InvalidArgumentError(f"{path}:{line_number}: not valid JSON ({exc})") from None
                if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                    raise InvalidArgumentError(f"{path}:{line_number}: expected an object with a string \"id\"")
                unknown = set(record) - {"id", "document", "metadata", "embedding"}
                if unknown:
                    raise InvalidArgumentError(f"{path}:{line_number}: unknown field(s) {sorted(unknown)}")
                yield line_number, record
            number += 1


def _count_lines(path: Path) -> int:
    """Non-blank lines (bytes: the decoding, and its errors, are _jsonl_records')."""
    with open(path, "rb") as handle:
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


class _RecordCheck:
    """Checks each record as it is read, before anything is written or created, so a bad
    input fails with one line naming its line number (and, when the first batch is bad,
    leaves no collection behind). The vector dimension comes from the existing collection,
    the .npy file, or else the first embedding; every record has an embedding or none does."""

    def __init__(self, path: Path, collection, dim: int | None, dim_from: str) -> None:
        self.path = path
        self.collection = collection
        self.dim = dim
        self.dim_from = dim_from
        self.with_embeddings: bool | None = None  # decided by the first record
        self.first_line = 0

    def __call__(self, line: int, record: dict[str, Any]) -> None:
        where = f"{self.path}:{line}: record {record['id']!r}"
        if record.get("metadata") is not None and not isinstance(record["metadata"], dict):
            raise InvalidArgumentError(f"{where}: \"metadata\" must be an object, not "
                                       f"{type(record['metadata']).__name__}")
        embedding = record.get("embedding")
        has = embedding is not None
        if self.with_embeddings is None:
            self.with_embeddings, self.first_line = has, line
        elif has != self.with_embeddings:
            raise InvalidArgumentError(
                f"{where} has {'an' if has else 'no'} embedding but the record on line {self.first_line} "
                f"has {'none' if has else 'one'}; give every record an embedding, or none")
        if has:
            if not isinstance(embedding, list) or not embedding or not all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) for x in embedding):
                raise InvalidArgumentError(f"{where}: \"embedding\" must be a non-empty list of numbers")
            if self.dim is None:
                self.dim, self.dim_from = len(embedding), f"the embedding on line {line}"
            elif len(embedding) != self.dim:
                raise InvalidArgumentError(f"{where} has an embedding of length {len(embedding)}, "
                                           f"expected dimension {self.dim} (from {self.dim_from})")
            return
        if not isinstance(record.get("document"), str):
            raise InvalidArgumentError(f"{where} has neither an embedding nor a document to embed")
        if self.collection is not None and not self.collection.encoder:
            raise InvalidArgumentError(f"{where} has no embedding, and collection {self.collection.name!r} "
                                       "has no encoder to embed its document")


def _existing_collection(client, name: str) -> Any:
    try:
        return client.get_collection(name)
    except NotFoundError:
        return None


def _create_collection(client, name: str, dim: int | None, args) -> tuple[Any, str]:
    """Creates the missing target collection; returns it and the line that says so (printed
    once a batch is in it: a collection removed again after a refused first batch is not
    announced). Records without embeddings get an encoder collection (--encoder, else the
    default model), as `vectord collections create NAME` does."""
    if dim is None:
        collection = client.create_collection(name, metric=args.metric, encoder=args.encoder)
        return collection, (f"vectord import: created collection {name!r} with the built-in encoder "
                            f"{collection.encoder or args.encoder or 'default'!r} (dim {collection.dim}, "
                            f"{args.metric}): the records have no embeddings, so their documents are embedded "
                            "(--encoder chooses the model)")
    collection = client.create_collection(name, dim=dim, metric=args.metric, encoder=args.encoder)
    return collection, f"vectord import: created collection {name!r} (dim {dim}, {args.metric})"


def _chunking(args: argparse.Namespace) -> dict[str, int] | None:
    """--chunk-tokens/--chunk-overlap as the SDK's chunking argument (None: whole records)."""
    if args.chunk_tokens is None and args.chunk_overlap is None:
        return None
    return {"tokens": args.chunk_tokens or 0, "overlap": args.chunk_overlap or 0}


def _write_batch(collection, batch: list[dict[str, Any]], vectors: np.ndarray | None,
                 chunking: dict[str, int] | None = None) -> dict[str, int]:
    ids = [r["id"] for r in batch]
    documents = [r.get("document") for r in batch]
    metadatas = [r.get("metadata") or {} for r in batch]
    if vectors is None and batch[0].get("embedding") is not None:
        # _RecordCheck saw to it that every record has one, all of the same length
        vectors = np.asarray([r["embedding"] for r in batch], dtype=np.float32)
    documents_given = any(d is not None for d in documents)
    if chunking is not None:  # each record a source document: its chunks replaced in one write
        return collection.upsert(ids=ids, documents=documents, metadatas=metadatas, chunking=chunking)
    return collection.upsert(ids=ids, embeddings=vectors, documents=documents if documents_given else None,
                             metadatas=metadatas)


def check_format(path: Path, what: str) -> None:
    """Refuses a file name whose extension is not a format import/export speaks (rather
    than, say, writing JSONL into out.csv)."""
    if path.suffix.lower() not in FORMATS:
        raise InvalidArgumentError(
            f"{path}: unsupported {what} format {path.suffix or '(no extension)'!r}; "
            "supported: .jsonl (one JSON record a line) and .npy (float32 vectors with a .jsonl sidecar)")


class _Import:
    """One run of `vectord import` into a connected client: records are checked as they are
    read, written in batches, and progress saved after each; a collection this run created
    is deleted again if not one batch got into it."""

    def __init__(self, args: argparse.Namespace, records_path: Path, vectors: np.ndarray | None, total: int,
                 progress: Progress, done: int, new_dir: Path | None) -> None:
        self.args, self.records_path, self.vectors, self.total = args, records_path, vectors, total
        self.progress, self.done, self.new_dir = progress, done, new_dir
        self.written = 0  # records written by this run
        self.truncated = 0  # documents of this run longer than the encoder's window
        self.created = False  # the collection, by this run
        self.collection = None
        self.bar = None

    def run(self, client) -> None:
        args = self.args
        self.collection = _existing_collection(client, args.collection)
        if self.collection is not None:
            dim, dim_from = self.collection.dim, f"collection {args.collection!r}"
            if self.vectors is not None and self.vectors.shape[1] != dim:
                raise InvalidArgumentError(f"{args.input} has vectors of length {self.vectors.shape[1]}, "
                                           f"expected dimension {dim} (from collection {args.collection!r})")
        elif self.vectors is not None:
            dim, dim_from = self.vectors.shape[1], str(args.input)
        else:
            dim, dim_from = None, ""
        check = _RecordCheck(self.records_path, self.collection, dim, dim_from)
        batch: list[dict[str, Any]] = []
        try:
            for line, record in _jsonl_records(self.records_path, self.done):
                if self.vectors is not None:
                    if "embedding" in record:
                        raise InvalidArgumentError(
                            f"{self.records_path}:{line}: record {record['id']!r}: the vectors come from the "
                            ".npy file; the sidecar must not have \"embedding\"")
                else:
                    check(line, record)
                batch.append(record)
                if len(batch) >= max(1, args.batch_size):
                    self._flush(client, batch, check.dim)
            self._flush(client, batch, check.dim)
        except BaseException:
            if self.created and self.written == 0:  # e.g. the server refused the first batch
                try:
                    client.delete_collection(args.collection)
                except Exception:  # the original error is the one to report
                    pass
            raise
        finally:
            if self.bar is not None:
                self.bar.close()

    def _flush(self, client, batch: list[dict[str, Any]], dim: int | None) -> None:
        """Writes the batch, creating the collection first if needed."""
        if not batch:
            return
        news: list[str] = []
        if self.collection is None:
            if self.new_dir is not None:
                news.append(f"vectord import: created data directory {self.new_dir}")
            self.collection, line = _create_collection(client, self.args.collection, dim, self.args)
            news.append(line)
            self.created = True
        vectors = None
        if self.vectors is not None:
            vectors = np.ascontiguousarray(self.vectors[self.done:self.done + len(batch)], dtype=np.float32)
        result = _write_batch(self.collection, batch, vectors, _chunking(self.args))
        self.truncated += (result or {}).get("truncated", 0)
        self.done += len(batch)
        self.written += len(batch)
        self.progress.save(self.done)
        for line in news:
            print(line, file=sys.stderr)
        if self.bar is None:  # from the first durable batch on: a refused input prints only its error
            self.bar = _progress_bar(self.total, f"import {self.args.collection}", self.args.no_progress)
            self.bar.update(self.done - len(batch))
        self.bar.update(len(batch))
        batch.clear()


@command
def import_command(args: argparse.Namespace) -> int:
    source = Path(args.input)
    check_format(source, "import")
    if _chunking(args) is not None and source.suffix.lower() == ".npy":
        raise InvalidArgumentError(f"{source}: --chunk-tokens/--chunk-overlap chunk documents, which the "
                                   "collection's encoder embeds; a .npy input brings its own vectors")
    if not source.exists():
        raise InvalidArgumentError(f"{source}: no such file")
    sidecar = Path(args.sidecar) if args.sidecar else sidecar_of(source)
    vectors = None
    if source.suffix.lower() == ".npy":
        try:
            vectors = np.load(source, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:  # not an .npy file (numpy then suspects a pickle)
            why = "not an .npy file of numbers" if "pickle" in str(exc) else f"cannot read it ({exc})"
            raise InvalidArgumentError(f"{source}: {why}") from None
        if vectors.ndim != 2:
            raise InvalidArgumentError(f"{source}: expected a 2-d array (n, dim), got shape {vectors.shape}")
        if not sidecar.exists():
            raise InvalidArgumentError(f"{source}: its sidecar {sidecar} (ids, documents, metadata) is missing")
        total = len(vectors)
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
    # a data directory this import makes is removed again if not one record gets into it
    new_dir = Path(args.data_dir) if args.data_dir and not Path(args.data_dir).exists() else None
    run = _Import(args, records_path, vectors, total, progress, done, new_dir)
    try:
        with connect(args, create=True, announce=False) as client:
            run.run(client)
    except BaseException:
        if new_dir is not None and run.written == 0:
            shutil.rmtree(new_dir, ignore_errors=True)
        raise
    progress.finish()
    print(f"imported {run.done} records into {args.collection!r}")
    if run.truncated:  # never silent: say how many documents the encoder read only in part
        print(f"truncated {run.truncated} document(s): longer than the encoder's window, embedded from "
              "their first tokens only (the whole documents are stored; --chunk-tokens embeds every part)")
    return 0


# ---------------------------------------------------------------------------------- export
@command
def export_command(args: argparse.Namespace) -> int:
    output = Path(args.output)
    check_format(output, "export")
    is_npy = output.suffix.lower() == ".npy"
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
