"""Snapshots: online, point-in-time, consistent copies of one collection.

    <data dir>/snapshots/<name>/
        SNAPSHOT            JSON: name, collection, created_at_ms, record_count, seq, dim
        MANIFEST            the collection's manifest at the snapshot's checkpoint
        gen-<seq>/          that checkpoint's files (hard links when possible, else copies)

Taking one: the collection checkpoints (when its log holds anything), then, holding its
checkpoint mutex (no other checkpoint can replace or delete the generation meanwhile) and
its read lock, the generation's files and the MANIFEST are hard-linked into
``snapshots/.tmp-<name>``, which is renamed into place. Generation files are written once
and never changed (checkpoints write new ones), so a hard link is a stable copy; a MANIFEST
is replaced by rename, never rewritten, so its link keeps the old content.

Restoring one: its files are linked (or copied) into a new collection directory with a new
internal id and the target's name, opened (every file's sha256 is verified against the
MANIFEST), and only then swapped in, replacing a same-named collection when asked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Iterable

from vectord.errors import AlreadyExistsError, DataLossError, InvalidArgumentError, NotFoundError
from . import checkpoint as disk
from . import validation
from .collection import Collection
from .fsio import storage_error

SNAPSHOTS = "snapshots"
INFO = "SNAPSHOT"
#: The only paths a snapshot may hold (uploads are checked against it: no path traversal).
FILE_PATTERN = re.compile(
    r"(MANIFEST|SNAPSHOT|gen-[0-9]{20}/(vectors\.npy|records\.msgpack|index\.hnsw))")
#: Largest uploaded snapshot file accepted, in bytes.
MAX_UPLOAD_FILE_BYTES = 1 << 40


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links unsupported: copy
        shutil.copy2(src, dst)


def _size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def snapshot_files(directory: Path) -> list[str]:
    """The relative paths of a snapshot's files, MANIFEST and SNAPSHOT first."""
    files = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())
    return sorted(files, key=lambda name: (name.startswith("gen-"), name))


def _root(db) -> Path:
    root = db.path / SNAPSHOTS
    root.mkdir(exist_ok=True)
    return root


def _info(directory: Path) -> dict[str, Any]:
    try:
        info = json.loads((directory / INFO).read_text())
    except (OSError, ValueError) as exc:
        raise DataLossError(f"snapshot {directory.name}: cannot read {INFO} ({exc})") from exc
    info["name"] = directory.name
    info["size_bytes"] = _size(directory)
    return info


def create(db, collection_name: str, name: str | None = None) -> dict[str, Any]:
    """Snapshots one collection into ``<data dir>/snapshots/<name>``; returns its info."""
    collection = db.get_collection(collection_name)
    if not name:
        name = f"{collection.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    name = validation.collection_name(name)
    root = _root(db)
    final = root / name
    if final.exists():
        raise AlreadyExistsError(f"snapshot {name!r} already exists")
    tmp = root / f".tmp-{name}-{uuid.uuid4().hex[:8]}"

    def link(source: Path, manifest: dict[str, Any]) -> None:
        tmp.mkdir()
        gen = manifest["generation"]
        (tmp / gen).mkdir()
        for file in manifest["files"]:
            _link_or_copy(source / gen / file, tmp / gen / file)
        _link_or_copy(source / disk.MANIFEST, tmp / disk.MANIFEST)

    try:
        manifest = collection.snapshot(link)
        info = {"format": 1, "collection": collection.name, "created_at_ms": int(time.time() * 1000),
                "record_count": disk.count_records(tmp / manifest["generation"] / disk.RECORDS), "seq": manifest["applied_seq"],
                "dim": manifest["config"]["dim"]}
        db.fs.write_file(tmp / INFO, json.dumps(info, indent=1).encode())
        db.fs.fsync_dir(tmp / manifest["generation"])
        db.fs.fsync_dir(tmp)
        if final.exists():
            raise AlreadyExistsError(f"snapshot {name!r} already exists")
        db.fs.rename(tmp, final)
        db.fs.fsync_dir(root)
    except OSError as exc:
        raise storage_error(exc, f"snapshot of collection {collection.name!r}") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return _info(final)


def list_snapshots(db) -> list[dict[str, Any]]:
    """Every snapshot's info, ordered by name (damaged ones are skipped)."""
    out = []
    for entry in sorted(_root(db).iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            try:
                out.append(_info(entry))
            except DataLossError:
                continue
    return out


def path_of(db, name: str) -> Path:
    """The directory of snapshot ``name``."""
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError("snapshot name must be a non-empty string")
    validation.collection_name(name)
    directory = _root(db) / name
    if not (directory / INFO).exists():
        raise NotFoundError(f"snapshot {name!r} does not exist")
    return directory


def read_chunks(directory: Path, chunk_bytes: int = 1 << 20) -> Iterable[tuple[str, int, bytes, int]]:
    """Yields ``(relative path, offset, data, file size)`` over a snapshot's files."""
    for relative in snapshot_files(directory):
        path = directory / relative
        size = path.stat().st_size
        with open(path, "rb") as handle:
            offset = 0
            while True:
                data = handle.read(chunk_bytes)
                if not data and offset > 0:
                    break
                yield relative, offset, data, size
                offset += len(data)
                if not data:
                    break


class Upload:
    """Receives a snapshot's files chunk by chunk into ``snapshots/.upload-<id>/``."""

    def __init__(self, db) -> None:
        self.directory = _root(db) / f".upload-{uuid.uuid4().hex}"
        self.directory.mkdir()
        self._sizes: dict[str, int] = {}

    def add(self, path: str, offset: int, data: bytes) -> None:
        if not FILE_PATTERN.fullmatch(path or ""):
            raise InvalidArgumentError(f"snapshot upload: unexpected file {path[:80]!r}")
        written = self._sizes.get(path, 0)
        if offset != written:
            raise InvalidArgumentError(
                f"snapshot upload: {path} chunk at byte {offset}, expected byte {written} (chunks in order)")
        if written + len(data) > MAX_UPLOAD_FILE_BYTES:
            raise InvalidArgumentError(f"snapshot upload: {path} is too large")
        target = self.directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "ab") as handle:
            handle.write(data)
        self._sizes[path] = written + len(data)

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def restore(db, source: Path, collection_name: str | None = None, replace: bool = False) -> Collection:
    """Restores the snapshot in ``source`` as a collection; returns it.

    Raises:
        AlreadyExistsError: the target exists and ``replace`` is false.
        DataLossError: a file of the snapshot is missing or fails its checksum.
    """
    manifest = disk.read_manifest(source)
    if manifest.get("generation") is None:
        raise DataLossError(f"snapshot {source.name}: its MANIFEST names no checkpoint generation")
    name = validation.collection_name(collection_name or manifest["config"]["name"])
    if not replace and name in {c.name for c in db.list_collections()}:
        raise AlreadyExistsError(f"collection {name!r} already exists (restore with replace to overwrite it)")
    id_ = uuid.uuid4().hex
    root = db.path / "collections"
    tmp = root / f".tmp-{id_}"
    gen = manifest["generation"]
    try:
        db.fs.mkdir(tmp)
        db.fs.mkdir(tmp / gen)
        for file in manifest["files"]:
            if not (source / gen / file).exists():
                raise DataLossError(f"snapshot {source.name}: {gen}/{file} is missing")
            _link_or_copy(source / gen / file, tmp / gen / file)
        manifest = {**manifest, "config": {**manifest["config"], "id": id_, "name": name}}
        disk.write_manifest(db.fs, tmp, manifest)
        db.fs.fsync_dir(tmp / gen)
        db.fs.fsync_dir(tmp)
        # Opening verifies every file against the MANIFEST's sha256 before anything is replaced.
        Collection.open(db.fs, tmp, db.tuning).close(checkpoint=False)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise storage_error(exc, f"restore of snapshot {source.name}") from exc
        raise
    return db.adopt_collection(tmp, id_, name, replace=replace)
