"""On-disk layout of one collection: the manifest and checkpoint generations.

    <collection id>/
        MANIFEST            one checksummed frame: config, generation, applied seq, each
                            file's size, sha256 and crc32c (an open checks the crc32c)
        wal.log             records after the generation's applied seq
        gen-<seq>/          vectors.npy, records.msgpack, index.hnsw (optional)
        compact-*.npy       a compaction's new vectors, until the next checkpoint copies
                            them into its generation (never named by a MANIFEST; removed at
                            the next start after a crash): storage/compaction.py

vectors.npy holds every slot's vector (label = row); records.msgpack the live records as
columns: {"labels": little-endian int64 bytes, "ids": [...], "documents": [...],
"metadatas": [msgpack bytes or None]} (a list of [label, id, document, metadata] rows in
generations written before the columns; both are read).

Order of a checkpoint: log durable -> new generation written and fsynced ->
MANIFEST replaced atomically -> log truncated -> old generations removed. A crash at any
step leaves either the old manifest (old generation + full log) or the new one.
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import google_crc32c
import hnswlib
import numpy as np

from vectord.errors import DataLossError
from . import framing, record_file
from .fsio import FileSystem, replace_atomically
from .records import RecordStore, encode_metadata
from .types import CollectionConfig
from .vectors import VectorStore, read_sqnorms

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "MANIFEST"
WAL = "wal.log"
VECTORS = "vectors.npy"
RECORDS = "records.msgpack"
INDEX = "index.hnsw"


class _HashingWriter:
    """Passes writes through to a file (``handle``; None: none, only the checksums) while
    computing their size, sha256 and crc32c: what a MANIFEST lists of a file (``entry``)."""

    def __init__(self, handle=None) -> None:
        self.handle, self.sha, self.crc = handle, hashlib.sha256(), google_crc32c.Checksum()
        self.size = 0

    def write(self, data) -> int:
        self.sha.update(data)
        if isinstance(data, bytes):
            self.crc.update(data)
        else:  # its C code takes only bytes-like objects that release nothing: copied by 4 MiB
            view = memoryview(data).cast("B")
            for start in range(0, len(view), 4 << 20):
                self.crc.update(bytes(view[start:start + (4 << 20)]))
        self.size += len(data)
        return self.handle.write(data) if self.handle is not None else len(data)

    update = write  # a digest too (``_feed``)

    def entry(self) -> dict[str, Any]:
        return {"sha256": self.sha.hexdigest(), "crc32c": _hex(self.crc), "size": self.size}


def file_entry(path: Path) -> dict[str, Any]:
    """What a MANIFEST lists of a file already on disk: its size, sha256 and crc32c (read
    in 1 MiB chunks: hashlib releases the GIL, crc32c holds it ~0.2 ms a chunk)."""
    checksums = _HashingWriter()
    _feed(path, checksums)
    return checksums.entry()


def _hex(digest) -> str:
    """A digest's hex string (google_crc32c's ``hexdigest`` returns bytes, hashlib's str)."""
    found = digest.hexdigest()
    return found.decode() if isinstance(found, bytes) else found


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    _feed(path, digest)
    return digest.hexdigest()


def _feed(path: Path, digest) -> None:
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)


def _checksum_of(expected: dict[str, Any]):
    """(MANIFEST key, a fresh digest) that an open checks a file by: crc32c when the
    MANIFEST has it (generations written since 2026-11-30), else sha256. Both guard against
    damage, not tampering (whoever writes a file can write its checksum): crc32c runs at
    ~6 GB/s here against sha256's ~1.2 GB/s, and an open reads every byte of the vectors and
    the graph (3.2 GB at 1M x 384). Snapshots and ``vectord verify`` keep the sha256."""
    if "crc32c" in expected:
        return "crc32c", google_crc32c.Checksum()
    return "sha256", hashlib.sha256()


def write_manifest(fs: FileSystem, directory: Path, manifest: dict[str, Any]) -> None:
    replace_atomically(fs, directory / MANIFEST, framing.encode_frame(manifest))


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataLossError(f"collection {directory.name}: cannot read MANIFEST ({exc})") from exc
    manifest = framing.decode_single(data, f"collection {directory.name}: MANIFEST")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        raise DataLossError(
            f"collection {directory.name}: MANIFEST format {manifest.get('format') if isinstance(manifest, dict) else '?'} "
            f"is not supported (expected {FORMAT_VERSION})"
        )
    return manifest


def new_manifest(config: CollectionConfig) -> dict[str, Any]:
    return {"format": FORMAT_VERSION, "config": asdict(config), "generation": None,
            "applied_seq": 0, "slots": 0, "files": {}, "index": None}


def remove_unlisted_segments(fs: FileSystem, directory: Path, manifest: dict[str, Any]) -> None:
    """Removes segment directories and delete bitmaps (storage/segment.py) the MANIFEST does
    not list: a seal's or merge's that crashed before its MANIFEST, or ones it replaced."""
    listed = {entry["name"] for entry in manifest.get("segments", ())}
    bitmaps = {entry["deletes"]["file"] for entry in manifest.get("segments", ()) if entry.get("deletes")}
    for path in directory.glob("seg-*"):
        if path.name in listed or path.name in bitmaps:
            continue
        try:
            if path.is_dir():
                fs.remove_tree(path)
            else:
                fs.remove(path)
        except OSError:  # best effort (`vectord verify` writes nothing); the next start tries again
            log.warning("cannot remove %s", path)


def remove_other_generations(fs: FileSystem, directory: Path, keep: str) -> None:
    """Removes every generation folder but ``keep`` (once the MANIFEST names ``keep``)."""
    for stale in directory.glob("gen-*"):
        if stale.name != keep:
            fs.remove_tree(stale)


def write_generation(
    fs: FileSystem,
    directory: Path,
    seq: int,
    vectors: VectorStore,
    records: dict[str, Any],
    index,
    name: str | None = None,
    graph_file: tuple[Path, dict[str, Any]] | None = None,
) -> tuple[str, dict[str, dict[str, Any]], dict[str, Any] | None]:
    """Writes gen-<seq>/ (or ``name``/: a segment, storage/segment.py) durably; returns
    (name, files with sha256 and crc32c, index description). ``graph_file`` (path,
    MANIFEST entry): ``index`` as a child process already wrote it (storage/graph_child.py),
    moved into place instead of saved by this process, which holds the GIL to save."""
    name = name or f"gen-{seq:020d}"
    gen = directory / name
    if gen.exists():
        # Never removed or rewritten here: the MANIFEST on disk may name it (a switch whose
        # directory fsync failed). The caller picks a fresh seq instead.
        raise AssertionError(f"{gen} exists: a checkpoint never writes over a generation")
    fs.mkdir(gen)
    files: dict[str, dict[str, Any]] = {}

    handle = fs.create(gen / VECTORS)
    writer = _HashingWriter(handle)
    try:
        vectors.write_npy(writer)
    except BaseException:
        handle.close()
        raise
    fs.finish(handle)
    files[VECTORS] = writer.entry()

    data = framing.pack(records)
    fs.write_file(gen / RECORDS, data)
    checksums = _HashingWriter()
    checksums.write(data)
    files[RECORDS] = checksums.entry()

    index_meta = None
    if index is not None:
        if graph_file is not None:
            fs.rename(graph_file[0], gen / INDEX)
            fs.fsync_path(gen / INDEX)
            files[INDEX] = graph_file[1]
        else:
            index.save(gen / INDEX)
            fs.fsync_path(gen / INDEX)
            files[INDEX] = file_entry(gen / INDEX)
        index_meta = {"file": INDEX, "count": index.count, "deleted": index.deleted,
                      "covered": index.covered,
                      "dim": index.dim, "space": index.metric, "m": index.m,
                      "ef_construction": index.ef_construction,
                      "hnswlib": getattr(hnswlib, "__version__", "0.8.0")}
    fs.fsync_dir(gen)
    fs.fsync_dir(directory)
    return name, files, index_meta


def _verified(gen: Path, files: dict[str, Any], name: str, feed=_feed) -> Path:
    """``gen/name`` once its size and checksum (``_checksum_of``; ``feed(path, digest)``
    reads the file into the digest) match the MANIFEST's."""
    path = gen / name
    expected = files.get(name)
    if expected is None:
        raise DataLossError(f"{gen}: MANIFEST lists no checksum for {name}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataLossError(f"{path}: missing ({exc})") from exc
    if size != expected["size"]:
        raise DataLossError(f"{path}: checksum mismatch (file damaged)")
    key, digest = _checksum_of(expected)
    feed(path, digest)
    if _hex(digest) != expected[key]:
        raise DataLossError(f"{path}: checksum mismatch (file damaged)")
    return path


def load_generation(directory: Path, manifest: dict[str, Any]) -> tuple[VectorStore, RecordStore, Path | None]:
    """Loads a generation's vectors (mapped) and records after verifying their checksums.

    Returns (vectors, records, index path or None). The index path is returned only when
    the index file passes its checksum and matches the collection's dim and metric; a bad
    index is logged, not fatal: the caller rebuilds it from the vectors.

    Raises:
        DataLossError: vectors or records are damaged.
    """
    gen = directory / manifest["generation"]
    files = manifest["files"]
    config = manifest["config"]
    slots = manifest["slots"]
    meta = manifest.get("index")
    # The graph file (as large as the vectors) is hashed in a second thread meanwhile: both
    # digests release the GIL, so the two checksums take the time of one (issue 12, restart)
    with ThreadPoolExecutor(1) as pool:
        index_check = pool.submit(_verified, gen, files, INDEX) if meta is not None else None
        sqnorms: list[np.ndarray] = []

        def digest_and_norms(path: Path, digest) -> None:
            try:
                sqnorms.append(read_sqnorms(path, config["dim"], digest))
            except OSError:
                raise
            except Exception as exc:
                # The .npy header is parsed before the checksum is known: a damaged header
                # (numpy raises ValueError, SyntaxError or tokenize's TokenError) is damage
                # of this file, not a failure of the whole database's open.
                raise DataLossError(f"{path}: unreadable .npy header (file damaged: {exc!r})") from exc

        vectors_path = _verified(gen, files, VECTORS, digest_and_norms)
        records_path = _verified(gen, files, RECORDS)
        try:
            vectors = VectorStore.mapped(vectors_path, config["dim"], sqnorms=sqnorms[0])
            with open(records_path, "rb") as stream:  # read by chunks (storage/record_file.py)
                records = record_file.read(stream, slots)
            if records is None:  # the row layout of older generations
                records = _records(framing.unpack(records_path.read_bytes()), slots)
        except Exception as exc:  # verified files that still do not decode: a bug or a format change
            raise DataLossError(f"{gen}: cannot decode checkpoint ({exc})") from exc
        if vectors.slots != slots:
            raise DataLossError(f"{gen}: the checkpoint holds {vectors.slots} vectors, its MANIFEST says {slots}")
        index_path = None
        if index_check is not None:
            try:
                candidate = index_check.result()
                if meta["dim"] != config["dim"] or meta["space"] != config["metric"]:
                    raise DataLossError(f"{candidate}: built for another dim or metric")
                index_path = candidate
            except DataLossError as exc:
                log.warning("%s; the index will be rebuilt from the stored vectors", exc)
    return vectors, records, index_path


def count_records(path: Path) -> int:
    """How many live records a generation's records file holds (either layout)."""
    data = framing.unpack(path.read_bytes())
    return len(data) if isinstance(data, list) else len(data["ids"])


def _records(data: Any, slots: int) -> RecordStore:
    if isinstance(data, list):  # rows, as generations before the columns stored them
        labels = [row[0] for row in data]
        columns = ([row[1] for row in data], [row[2] for row in data],
                   [encode_metadata(row[3]) for row in data])
    else:
        labels = np.frombuffer(data["labels"], "<i8").tolist()
        columns = (data["ids"], data["documents"], data["metadatas"])
    if any(len(column) != len(labels) for column in columns) or (
            labels and (min(labels) < 0 or max(labels) >= slots)):
        raise ValueError(f"record columns do not agree with each other or with {slots} slots")
    records = RecordStore.from_columns(labels, *columns, slots=slots)
    if len(records) != len(labels) or len(set(labels)) != len(labels):
        raise ValueError("record columns repeat a label or an id")
    return records
