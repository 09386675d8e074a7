"""Snapshots: online, point-in-time, consistent copies of one collection.

    <data dir>/snapshots/<name>/
        SNAPSHOT            JSON: name, collection, created_at_ms, record_count, seq, dim
        MANIFEST            the collection's manifest at the snapshot's checkpoint
        gen-<seq>/          that checkpoint's files (hard links when possible, else copies)
        seg-<seq>-<tag>/    each sealed segment the MANIFEST lists (storage/segment.py): its
        seg-<seq>-<tag>.deletes-<seq>   files and its delete bitmap, linked the same way

Taking one: the collection checkpoints (when its log holds anything), then, holding its
checkpoint mutex (no other checkpoint can replace or delete the generation meanwhile) and
its read lock, the generation's files, the listed segments' files and delete bitmaps, and
the MANIFEST are hard-linked into ``snapshots/.tmp-<name>``, which is renamed into place.
Generation and segment files and bitmaps are written once and never changed (checkpoints
write new ones; a segment's deletes go to a new bitmap file), so a hard link is a stable
copy; a MANIFEST is replaced by rename, never rewritten, so its link keeps the old content.
The checkpoint mutex also holds off seals and merges, which run inside checkpoints.

Restoring one treats the snapshot as untrusted input (snapshot_manifest.py): its MANIFEST
is checked before the file system is touched, every path is confined to its directory, and
the files are linked (or copied) into ``collections/.tmp-<new id>``, opened (every file's
sha256 verified) and only then switched in. An uploaded snapshot's ``index.hnsw`` is never
stored or loaded (hnswlib trusts its file: crafted links crash the process): the graph is
rebuilt from the verified vectors and checkpointed by the server itself (a segment's graph
is built and written into the restored segment's directory before it is opened). A snapshot the
server took itself (restored by name) keeps its graph, whose sha256 the server recorded.

Durability: uploaded files are fsynced (files and directories) before the restore uses them;
a replace is rename-first (``adopt_collection`` in database.py, markers below): the new
collection is complete and durable, its directory carries a ``REPLACES`` file naming the
directories it replaces, the rename that puts it in place is the atomic switch, and the old
directories are removed after it. A crash before the switch leaves the old collection (the
``.tmp-`` directory is swept at start); a crash after it leaves the new one (``recover``
finishes the removal at start). Leftover ``.upload-*`` and ``.tmp-*`` are swept at start.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Iterable

import hnswlib
import numpy as np

from vectord import limits
from vectord.errors import (
    AlreadyExistsError,
    DataLossError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    VectordError,
)
from . import layout as disk
from . import validation
from .collection import Collection
from .fsio import NO_SPACE, FileSystem, storage_error
from .snapshot_manifest import (MAX_MANIFEST_BYTES, MAX_SEGMENTS, check_manifest, check_metadata,
                                confined, regular_file)
from .types import CollectionConfig

log = logging.getLogger(__name__)

SNAPSHOTS = "snapshots"
INFO = "SNAPSHOT"
#: In a collection directory switched in by a replace: the directory names it replaces
#: (JSON list), removed once they are gone (see ``recover``).
REPLACES = "REPLACES"
#: The only paths an upload may hold (no path traversal; one generation, any segments).
FILE_PATTERN = re.compile(
    r"(MANIFEST|SNAPSHOT|(gen-[0-9]{20}|seg-[0-9]{20}-[0-9a-f]{8})/(vectors\.npy|records\.msgpack|index\.hnsw)"
    r"|seg-[0-9]{20}-[0-9a-f]{8}\.deletes-[0-9]{20})")
_ROWS_PER_CHECK = 1 << 16


def _link_or_copy(fs: FileSystem, src: Path, dst: Path) -> None:
    """Hard-links ``src`` (a regular file) to the new name ``dst``, or copies it durably."""
    try:
        os.link(src, dst, follow_symlinks=False)
        return
    except OSError as exc:  # another file system, or links unsupported: copy
        if exc.errno in NO_SPACE or exc.errno == errno.EEXIST:
            raise
    with open(src, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NOFOLLOW)) as source:
        handle = fs.create(dst)  # exclusive: never writes over an existing file
        try:
            shutil.copyfileobj(source, handle, 1 << 22)
        except BaseException:
            handle.close()
            raise
        fs.finish(handle)


def _size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def snapshot_files(directory: Path) -> list[str]:
    """The relative paths of a snapshot's files, MANIFEST and SNAPSHOT first."""
    files = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())
    return sorted(files, key=lambda name: (name.startswith(("gen-", "seg-")), name))


def _root(db) -> Path:
    db._check_on_disk("snapshots")  # an in-memory database has no directory for them
    root = db.path / SNAPSHOTS
    if not root.is_dir():
        try:
            db.fs.mkdir(root)
            db.fs.fsync_dir(db.path)
        except FileExistsError:
            pass
        except OSError as exc:  # ENOSPC: RESOURCE_EXHAUSTED like every disk-full path
            raise storage_error(exc, "create the snapshots directory") from exc
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
        db.fs.mkdir(tmp)
        for directory, files in _directories(manifest):
            db.fs.mkdir(tmp / directory)
            for file in files:
                _link_or_copy(db.fs, source / directory / file, tmp / directory / file)
        for entry in manifest.get("segments", ()):
            if entry.get("deletes"):
                _link_or_copy(db.fs, source / entry["deletes"]["file"], tmp / entry["deletes"]["file"])
        _link_or_copy(db.fs, source / disk.MANIFEST, tmp / disk.MANIFEST)

    try:
        manifest = collection.snapshot(link)
        info = {"format": 1, "collection": collection.name, "created_at_ms": int(time.time() * 1000),
                "record_count": _record_count(tmp, manifest), "seq": manifest["applied_seq"],
                "dim": manifest["config"]["dim"]}
        db.fs.write_file(tmp / INFO, json.dumps(info, indent=1).encode())
        for directory, _ in _directories(manifest):
            db.fs.fsync_dir(tmp / directory)
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


def _directories(manifest: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(directory, its files) of a MANIFEST: the generation, then each sealed segment."""
    return [(manifest["generation"], list(manifest["files"]))] + \
        [(entry["name"], list(entry["files"])) for entry in manifest.get("segments", ())]


def _record_count(directory: Path, manifest: dict[str, Any]) -> int:
    """The live records of a snapshot: the generation's, and each segment's less the ones
    its delete bitmap marks (a segment is written with every slot live)."""
    count = disk.count_records(directory / manifest["generation"] / disk.RECORDS)
    for entry in manifest.get("segments", ()):
        count += disk.count_records(directory / entry["name"] / disk.RECORDS)
        if entry.get("deletes"):
            bits = np.unpackbits(np.frombuffer((directory / entry["deletes"]["file"]).read_bytes(), np.uint8))
            count -= int(bits[:entry["slots"]].sum())
    return count


def list_snapshots(db) -> list[dict[str, Any]]:
    """Every snapshot's info, ordered by name (damaged ones are skipped)."""
    out = []
    for entry in sorted(_root(db).iterdir()):
        if entry.is_dir() and not entry.is_symlink() and not entry.name.startswith("."):
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
    directory = confined(_root(db), name)
    if not directory.is_dir() or not (directory / INFO).exists():
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
    """Receives a snapshot's files chunk by chunk into ``snapshots/.upload-<id>/``.

    Every byte goes through the storage seam (so ENOSPC is RESOURCE_EXHAUSTED and the
    crash tests see it); ``finish`` fsyncs the files and their directories. The upload as
    a whole may hold at most ``limits.MAX_SNAPSHOT_UPLOAD_BYTES``; ``index.hnsw`` chunks are
    accepted and dropped (the restore rebuilds the graph, see the module docstring).
    """

    def __init__(self, db) -> None:
        self.fs: FileSystem = db.fs
        self.directory = _root(db) / f".upload-{uuid.uuid4().hex}"
        try:
            self.fs.mkdir(self.directory)
        except OSError as exc:
            raise storage_error(exc, "snapshot upload") from exc
        self._sizes: dict[str, int] = {}
        self._fds: dict[str, int] = {}
        self._generation: str | None = None
        self._directories: set[str] = set()  # the generation's and the segments'
        self.total_bytes = 0

    def add(self, path: str, offset: int, data: bytes) -> None:
        if not FILE_PATTERN.fullmatch(path or ""):
            raise InvalidArgumentError(
                f"snapshot upload: chunk path {path[:80]!r} is not a snapshot file "
                "(MANIFEST, SNAPSHOT, gen-<20 digits>/ or seg-<20 digits>-<8 hex>/ and "
                "vectors.npy|records.msgpack|index.hnsw, or seg-<20 digits>-<8 hex>.deletes-<20 digits>)")
        generation, _, file = path.rpartition("/")
        if generation.startswith("gen-") and self._generation not in (None, generation):
            raise InvalidArgumentError(
                f"snapshot upload: chunk path {path!r} is in a second generation ({self._generation} came first)")
        if generation and generation not in self._directories and len(self._directories) > MAX_SEGMENTS:
            raise InvalidArgumentError(
                f"snapshot upload: chunk path {path!r} is in directory {len(self._directories) + 1}, more than "
                f"the limit of one generation and {MAX_SEGMENTS} segments")
        written = self._sizes.get(path, 0)
        if offset != written:
            raise InvalidArgumentError(
                f"snapshot upload: {path} chunk at byte {offset}, expected byte {written} (chunks in order)")
        self._sizes[path] = written + len(data)
        if self.total_bytes + len(data) > limits.MAX_SNAPSHOT_UPLOAD_BYTES:
            raise InvalidArgumentError(
                f"snapshot upload: more than {limits.MAX_SNAPSHOT_UPLOAD_BYTES} bytes, the limit "
                f"(MAX_SNAPSHOT_UPLOAD_BYTES) of one uploaded snapshot (at {path}, byte {offset})")
        if file in (disk.MANIFEST, INFO) and written + len(data) > MAX_MANIFEST_BYTES:
            raise InvalidArgumentError(
                f"snapshot upload: {path} is larger than {MAX_MANIFEST_BYTES} bytes, the limit of that file")
        self.total_bytes += len(data)
        if file == disk.INDEX:
            return  # counted, never stored: an uploaded graph is never loaded
        try:
            fd = self._fds.get(path)
            if fd is None:
                if generation and generation not in self._directories:
                    self.fs.mkdir(self.directory / generation)
                    self._directories.add(generation)
                    if generation.startswith("gen-"):
                        self._generation = generation
                fd = self._fds[path] = self.fs.open_log(self.directory / path)
            self.fs.append(fd, data)
        except OSError as exc:
            raise storage_error(exc, f"snapshot upload ({path})") from exc

    def finish(self) -> Path:
        """Makes the uploaded files durable (files, then directories); returns the directory."""
        try:
            for fd in self._fds.values():
                self.fs.fsync(fd)
            self._close()
            for generation in sorted(self._directories):
                self.fs.fsync_dir(self.directory / generation)
            self.fs.fsync_dir(self.directory)
        except OSError as exc:
            raise storage_error(exc, "snapshot upload") from exc
        return self.directory

    def _close(self) -> None:
        fds, self._fds = list(self._fds.values()), {}
        for fd in fds:
            try:
                self.fs.close(fd)
            except OSError:
                pass

    def discard(self) -> None:
        self._close()
        shutil.rmtree(self.directory, ignore_errors=True)


def restore(db, source: Path | Upload, collection_name: str | None = None, replace: bool = False) -> Collection:
    """Restores a snapshot as a collection; returns it.

    ``source`` is a snapshot directory the server wrote (a name under snapshots/, resolved
    by the caller), or an ``Upload`` (or any other directory), whose files are untrusted:
    its ``index.hnsw`` is ignored and the graph rebuilt.

    Raises:
        InvalidArgumentError: (uploads) the MANIFEST or a file is malformed, or a file does
            not match its MANIFEST; nothing was written.
        FailedPreconditionError: the same for a stored snapshot.
        AlreadyExistsError: the target exists and ``replace`` is false.
    """
    # only a snapshot this server took (snapshots/<name>, a checked name) is trusted
    uploaded = not (isinstance(source, Path) and source.parent == db.path / SNAPSHOTS
                    and not source.name.startswith("."))
    directory = source.finish() if isinstance(source, Upload) else source
    error: type[VectordError] = InvalidArgumentError if uploaded else FailedPreconditionError
    where = "snapshot upload" if isinstance(source, Upload) else f"snapshot {directory.name!r}"
    manifest = _read_manifest(directory, where, error, uploaded)
    name = validation.collection_name(collection_name or manifest["config"]["name"])
    if not replace and name in {c.name for c in db.list_collections()}:
        raise AlreadyExistsError(f"collection {name!r} already exists (restore with replace to overwrite it)")
    gen = manifest["generation"]
    files = dict(manifest["files"])
    index = manifest["index"]
    if uploaded:
        files.pop(disk.INDEX, None)
        index = None
    sources = _sources(directory, gen, files, where, error)
    if uploaded:
        _check_vectors(sources[disk.VECTORS], manifest["slots"], manifest["config"], f"{gen}/{disk.VECTORS}",
                       where, error)
    # the sealed segments (storage/segment.py): each directory's files and its delete bitmap,
    # checked as the generation's; an uploaded segment's graph is dropped and rebuilt below
    segments = []
    for entry in manifest.get("segments", ()):
        seg_files = dict(entry["files"])
        seg_index = entry.get("index")
        if uploaded:
            seg_files.pop(disk.INDEX, None)
            seg_index = None
        seg_sources = _sources(directory, entry["name"], seg_files, where, error)
        if uploaded:
            _check_vectors(seg_sources[disk.VECTORS], entry["slots"], manifest["config"],
                           f"{entry['name']}/{disk.VECTORS}", where, error)
        deletes = entry.get("deletes")
        if deletes is not None:
            path = confined(directory, deletes["file"], error=error)
            size = regular_file(path, f"{where}: {deletes['file']}", error)
            if size != deletes["size"]:
                raise error(f"{where}: {deletes['file']} is {size} bytes, its MANIFEST says {deletes['size']}")
            deletes = dict(deletes, source=path)
        segments.append((entry, seg_files, seg_index, seg_sources, deletes))
    id_ = uuid.uuid4().hex
    tmp = confined(db.path / "collections", f".tmp-{id_}")
    try:
        db.fs.mkdir(tmp)
        db.fs.mkdir(tmp / gen)
        for file, path in sources.items():
            _link_or_copy(db.fs, path, tmp / gen / file)
        listed = []
        for entry, seg_files, seg_index, seg_sources, deletes in segments:
            db.fs.mkdir(tmp / entry["name"])
            for file, path in seg_sources.items():
                _link_or_copy(db.fs, path, tmp / entry["name"] / file)
            if uploaded and entry["slots"] >= db.tuning.exact_threshold:
                seg_files, seg_index = _segment_graph(db, tmp / entry["name"], seg_files, entry["slots"],
                                                      manifest["config"])
            if deletes is not None:
                _link_or_copy(db.fs, deletes.pop("source"), tmp / deletes["file"])
            db.fs.fsync_dir(tmp / entry["name"])
            listed.append({"name": entry["name"], "slots": entry["slots"], "files": seg_files,
                           "index": seg_index, "deletes": deletes})
        # the engine's own MANIFEST, holding only the checked values (no key of the source's
        # that nothing checked is carried over)
        config = CollectionConfig(**{**manifest["config"], "id": id_, "name": name})
        own = {**disk.new_manifest(config), "generation": gen, "files": files,
               "applied_seq": manifest["applied_seq"], "slots": manifest["slots"], "index": index}
        if "segments" in manifest:  # (a snapshot of a collection that never sealed has no key)
            own["segments"] = listed
        disk.write_manifest(db.fs, tmp, own)
        db.fs.fsync_dir(tmp / gen)
        db.fs.fsync_dir(tmp)
        _open_and_settle(db, tmp, uploaded, where, error)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise storage_error(exc, f"restore of {where}") from exc
        raise
    return db.adopt_collection(tmp, id_, name, replace=replace)


def _read_manifest(directory: Path, where: str, error: type[VectordError], uploaded: bool) -> dict[str, Any]:
    path = confined(directory, disk.MANIFEST, error=error)
    if regular_file(path, f"{where}: MANIFEST", error) > MAX_MANIFEST_BYTES:
        raise error(f"{where}: MANIFEST is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = disk.read_manifest(directory)
    except DataLossError as exc:
        raise error(f"{where}: {exc.message}") from None
    return check_manifest(manifest, where, error, uploaded)


def _sources(directory: Path, name: str, files: dict[str, Any], where: str,
             error: type[VectordError]) -> dict[str, Path]:
    """The paths of a generation's or segment's listed files, each confined to the snapshot,
    a regular file, of the size its MANIFEST says."""
    sources = {}
    for file, meta in files.items():
        path = confined(directory, name, file, error=error)
        size = regular_file(path, f"{where}: {name}/{file}", error)
        if size != meta["size"]:
            raise error(f"{where}: {name}/{file} is {size} bytes, its MANIFEST says {meta['size']}")
        sources[file] = path
    return sources


def _segment_graph(db, directory: Path, files: dict[str, Any], slots: int,
                   config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Builds an uploaded segment's graph from its (checked) vectors, every slot live as
    ``Segment.write`` saves one, into the restored segment's directory (not yet listed by
    any MANIFEST, so not yet immutable); returns its files and index description. The open
    that follows verifies it as any segment's graph."""
    from .index import HnswIndex  # only restores of uploads with segments build one here
    array = np.load(directory / disk.VECTORS, mmap_mode="r", allow_pickle=False)
    hnsw = config["hnsw"]
    index = HnswIndex.create(config["metric"], config["dim"], hnsw["m"], hnsw["ef_construction"], hnsw["ef_search"],
                             capacity=max(slots, 16), threads=db.tuning.index_threads)
    for start in range(0, slots, 65536):
        stop = min(slots, start + 65536)
        index.add(np.asarray(array[start:stop]), np.arange(start, stop, dtype=np.int64))
    index.covered = slots
    del array
    path = directory / disk.INDEX
    index.save(path)
    db.fs.fsync_path(path)
    files = {**files, disk.INDEX: {"sha256": disk.sha256_file(path), "size": path.stat().st_size}}
    meta = {"file": disk.INDEX, "count": index.count, "deleted": index.deleted, "covered": index.covered,
            "dim": index.dim, "space": index.metric, "m": index.m, "ef_construction": index.ef_construction,
            "hnswlib": getattr(hnswlib, "__version__", "0.8.0")}
    return files, meta


def _check_vectors(path: Path, slots: int, config: dict[str, Any], label: str, where: str,
                   error: type[VectordError]) -> None:
    """An uploaded vectors.npy (``label``: its path in the snapshot) must be the (slots,
    dim) float32 array the MANIFEST describes, of finite vectors (and non-zero ones for
    cosine), as writes guarantee."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # a crafted header: numpy raises ValueError and friends
        raise error(f"{where}: {label} is not a .npy array ({exc})") from None
    if array.dtype != np.float32 or array.shape != (slots, config["dim"]) or not array.flags.c_contiguous:
        raise error(f"{where}: {label} holds {array.dtype} {array.shape} "
                    f"(C order: {array.flags.c_contiguous}), the MANIFEST says float32 "
                    f"({slots}, {config['dim']}) in C order")
    for start in range(0, len(array), _ROWS_PER_CHECK):
        block = np.asarray(array[start:start + _ROWS_PER_CHECK])
        bad = ~np.isfinite(block).all(axis=1)
        if config["metric"] == "cosine":
            bad |= ~block.any(axis=1)
        if bad.any():
            row = start + int(np.argmax(bad))
            raise error(f"{where}: {label} row {row} is not finite (or zero in a cosine collection)")
    del array


def _open_and_settle(db, directory: Path, uploaded: bool, where: str, error: type[VectordError]) -> None:
    """Opens the new collection (which verifies every file's sha256); for an upload, also
    checks its records' types and, when the graph was rebuilt, checkpoints it, so that the
    collection holds a graph this server wrote and the next starts load it."""
    try:
        collection = Collection.open(db.fs, directory, db.tuning)
    except DataLossError as exc:
        raise error(f"{where}: {exc.message}") from None
    try:
        if uploaded:
            seen: set[str] = set()  # an id lives in one place: the tail or one segment
            for state in collection._holders():
                records = state.records
                for label, document, metadata in records.items():
                    id_ = records.ids[label]
                    if not isinstance(id_, str) or not id_ or (document is not None and not isinstance(document, str)):
                        raise error(f"{where}: record {_short(id_)} (label {label}) has a malformed id or document")
                    if id_ in seen:
                        raise error(f"{where}: record {_short(id_)} is live in two places (the tail and the "
                                    "segments must hold each id once)")
                    seen.add(id_)
                    try:
                        check_metadata(metadata, f"metadata of record {_short(id_)}")
                    except InvalidArgumentError as exc:
                        raise error(f"{where}: {exc.message}") from None
            if collection._index is not None:
                collection.checkpoint(force=True)
    finally:
        collection.close(checkpoint=False)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


# ---------------------------------------------------------------- replace and start-up
def mark_replacing(fs: FileSystem, new_directory: Path, old_names: list[str]) -> None:
    """Records in the new collection's directory which directories it replaces (durably,
    before the rename that switches it in)."""
    fs.write_file(new_directory / REPLACES, json.dumps(sorted(old_names)).encode())
    fs.fsync_dir(new_directory)


def finish_replacing(fs: FileSystem, root: Path, directory: Path) -> None:
    """After the switch: removes the replaced directories, then the marker."""
    try:
        old_names = json.loads((directory / REPLACES).read_text())
    except (OSError, ValueError):
        old_names = []
    for old in old_names:
        if isinstance(old, str) and "/" not in old and not old.startswith(".") and old != directory.name:
            path = root / old
            if path.is_dir() and not path.is_symlink():
                trash = root / f".trash-{old}"
                fs.rename(path, trash)
                fs.fsync_dir(root)
                fs.remove_tree(trash)
    fs.remove(directory / REPLACES)
    fs.fsync_dir(directory)


def recover(db, collections_root: Path) -> None:
    """At start, before collections open: sweeps snapshot leftovers (``.upload-*``,
    ``.tmp-*``) and finishes replaces that crashed after their switch."""
    root = db.path / SNAPSHOTS
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if entry.name.startswith((".upload-", ".tmp-")):
                log.info("removing leftover %s from an interrupted snapshot upload or creation", entry.name)
                if entry.is_dir() and not entry.is_symlink():
                    db.fs.remove_tree(entry)
                else:
                    db.fs.remove(entry)
        db.fs.fsync_dir(root)
    for entry in sorted(collections_root.iterdir()):
        if not entry.name.startswith(".") and (entry / REPLACES).exists():
            log.info("finishing the replace that switched in collection directory %s", entry.name)
            finish_replacing(db.fs, collections_root, entry)
