"""The database: one data directory, owned by one process, holding collections.

    <data dir>/
        LOCK                    flock()ed by the owning process for its whole life
        collections/<id>/       one directory per collection (see layout.py)

Directory names are random internal ids, never user strings, so no collection name can
reach outside the data directory. Creating a collection builds it under ``.tmp-<id>`` and
renames it into place; deleting renames it to ``.trash-<id>`` and removes it at once.
Leftovers of either, after a crash, are removed at the next open.

``Database(None)`` is an in-memory database: the same collections and API, with no
directory, no lock, no log and no checkpoints (storage/memory.py); its data lasts as long
as the object. Snapshots need a directory and are refused there.

Thread-safety: all methods are safe to call from many threads.

A database still open when the interpreter exits is closed then (``_close_at_exit``): its
background indexer runs inside hnswlib's ``add_items``, whose C++ worker threads abort the
whole process ("terminate called without an active exception") if the interpreter tears
the daemon thread down mid-call; and a script that just ends expects what it wrote to be
there, graph included, at the next open.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from vectord import limits
from vectord.errors import (
    AlreadyExistsError,
    DataDirectoryLockedError,
    DataLossError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
)
from . import validation
from .analyzers import fulltext_config
from .collection import Collection
from .fsio import REAL, FileSystem, storage_error
from .types import CollectionConfig, EncoderRegistry, Tuning

log = logging.getLogger(__name__)

#: Databases open in this process, closed at interpreter exit if the program did not.
_OPEN: "weakref.WeakSet[Database]" = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    for database in list(_OPEN):
        if database._owner_pid != os.getpid():
            continue  # a forked child's copy: the parent owns the directory and closes it
        try:
            database.close()
        except Exception:  # the others still get closed; the log keeps every write anyway
            log.exception("closing data directory %s at exit failed", database.path)


class Database:
    """Owns a data directory (or, with ``path`` None, holds everything in memory). Use as
    a context manager or call ``close()``.

    Example:
        >>> with Database("./data") as db:
        ...     docs = db.create_collection("docs", dim=3)
        ...     docs.add(["a"], [[1.0, 0.0, 0.0]])
        >>> scratch = Database(None)  # in memory: nothing is written anywhere
    """

    def __init__(self, path: str | Path | None, *, tuning: Tuning | None = None,
                 fs: FileSystem = REAL, checkpoint_interval_s: float = 1.0,
                 encoders: EncoderRegistry | None = None) -> None:
        self.encoders = encoders
        self._owner_pid = os.getpid()  # the process that closes it at exit (not a forked child)
        self.fs = fs
        self.tuning = tuning or Tuning()
        if path is None:  # in memory: no directory, lock, recovery or checkpointer thread
            self.path: Path | None = None
            self._root: Path | None = None
            self._lock_file: FileLock | None = None
            self._mutex = threading.Lock()
            self._collections: dict[str, Collection] = {}
            self._damaged: dict[str, DataLossError] = {}
            self._closed = False
            self.recovery_seconds = 0.0
            self._stop = threading.Event()
            self._checkpointer: threading.Thread | None = None
            _OPEN.add(self)
            return
        self.path = Path(path).resolve()
        self.path.mkdir(parents=True, exist_ok=True)
        # not thread-local (filelock's default): a database opened in one thread and closed in
        # another (an embedded client closed by a worker thread) must release its lock
        self._lock_file = FileLock(str(self.path / "LOCK"), timeout=0, thread_local=False)
        try:
            self._lock_file.acquire()
        except Timeout:
            raise DataDirectoryLockedError(
                f"data directory {self.path} is in use by another vectord process "
                "(one process owns a data directory; stop the other one or use another --data-dir)"
            ) from None
        self._mutex = threading.Lock()
        self._collections: dict[str, Collection] = {}
        self._damaged: dict[str, DataLossError] = {}  # name (or dir id) -> why
        self._closed = False
        try:
            self._root = self.path / "collections"
            if not self._root.exists():
                self._root.mkdir()
                fs.fsync_dir(self.path)
            self._recover()
        except BaseException:
            self._lock_file.release()
            raise
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, args=(checkpoint_interval_s,),
                                              name="vectord-checkpointer", daemon=True)
        self._checkpointer.start()
        _OPEN.add(self)

    # ------------------------------------------------------------------ lifecycle
    def _recover(self) -> None:
        from . import snapshots

        started = time.monotonic()
        # snapshot uploads and restores cut short, and replaces that crashed after their switch
        snapshots.recover(self, self._root)
        for entry in sorted(self._root.iterdir()):
            if entry.name.startswith((".tmp-", ".trash-")):
                log.info("removing leftover %s from an interrupted create/delete", entry.name)
                self.fs.remove_tree(entry)
                continue
            if not entry.is_dir():
                continue
            try:
                collection = Collection.open(self.fs, entry, self.tuning)
            except DataLossError as exc:
                name = self._name_of_damaged(entry)
                log.error("collection %s is damaged and will not be served: %s", name, exc)
                self._damaged[name] = exc
                continue
            collection.encoders = self.encoders
            self._collections[collection.name] = collection
        self.fs.fsync_dir(self._root)
        #: How long opening the data directory took (read by the server's metrics).
        self.recovery_seconds = time.monotonic() - started
        log.info("data directory %s: %d collection%s recovered (%d damaged) in %.3f s", self.path,
                 len(self._collections), "" if len(self._collections) == 1 else "s", len(self._damaged),
                 self.recovery_seconds)

    @staticmethod
    def _name_of_damaged(entry: Path) -> str:
        from .layout import read_manifest

        try:
            return read_manifest(entry)["config"]["name"]
        except Exception:
            return entry.name

    def close(self) -> None:
        """Checkpoints every collection, closes them and releases the directory lock."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            collections = list(self._collections.values())
        _OPEN.discard(self)
        self._stop.set()
        for collection in collections:  # a background checkpoint stops after its merge in flight
            collection.stop_upkeep()
        if self._checkpointer is not None:
            self._checkpointer.join()
        for collection in collections:  # in memory: nothing to keep, so no compaction either
            collection.close(checkpoint=self.path is not None)
        if self._lock_file is not None:
            self._lock_file.release()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _checkpoint_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            for collection in list(self._collections.values()):
                if collection.needs_checkpoint():
                    try:
                        collection.checkpoint()
                    except Exception:  # logged; the log keeps the data and we retry later
                        log.exception("background checkpoint of %r failed", collection.name)

    # ------------------------------------------------------------------ collections
    def create_collection(self, name: str, *, dim: int | None = None, metric: str | None = None,
                          hnsw: dict[str, int] | None = None, metadata: dict[str, Any] | None = None,
                          get_or_create: bool = False, encoder: str | None = None,
                          fulltext: dict[str, Any] | None = None) -> Collection:
        """Creates a collection (or, with ``get_or_create``, returns the existing one).

        With ``encoder`` (a model name, or "default"), the collection records the model's
        identity and takes its dimension; its documents and query texts are embedded by it.

        A setting left None is not given: a new collection takes the default (metric
        cosine; the default encoder when neither ``dim`` nor ``encoder`` is given, as Chroma
        uses its default embedding function), and ``get_or_create`` accepts the existing
        collection's. A given setting that differs from the existing collection's raises
        AlreadyExistsError naming it; ``metadata`` is ignored for an existing collection
        (as in Chroma). ``fulltext`` sets the full-text index's analyzer (see
        storage/analyzers.py; None: the defaults); it is not compared by ``get_or_create``.
        """
        name = validation.collection_name(name)
        if dim is not None:
            dim = validation.dim(dim)
        if metric is not None:
            metric = validation.metric(metric)
        hnsw_given = {key: value for key, value in (hnsw or {}).items() if value}  # 0 = default
        hnsw = validation.hnsw_params(hnsw)
        if metadata is not None:
            validation.metadatas([metadata], 1, records=False)
        fulltext = fulltext_config(fulltext)
        identity = None
        if encoder:
            identity = self._encoder_identity(encoder)
            if dim not in (None, identity["dim"]):
                raise InvalidArgumentError(
                    f"dim: encoder {identity['name']!r} makes {identity['dim']}-d vectors, got dim {dim}")
        if get_or_create:  # the existing collection first: no default encoder is loaded for it
            with self._mutex:
                self._check_open()
                existing = self._collections.get(name)
                if existing is not None:
                    return self._same_settings(existing, dim, metric, hnsw_given, identity)
        if identity is None and dim is None:
            if self.encoders is None:
                raise InvalidArgumentError(
                    f"dim: give a dimension in 1..{limits.MAX_DIM:,} (no built-in encoder is available "
                    "in this process to take it from)")
            identity = self._encoder_identity("default")
        if identity is not None:
            dim = identity["dim"]
        assert dim is not None  # given, or the encoder's
        with self._mutex:
            self._check_open()
            existing = self._collections.get(name)
            if existing is not None:
                if get_or_create:  # created meanwhile by another caller
                    return self._same_settings(existing, dim, metric, hnsw_given, identity)
                raise AlreadyExistsError(f"collection {name!r} already exists")
            if name in self._damaged:
                raise self._damaged_error(name)
            if len(self._collections) >= limits.MAX_COLLECTIONS:
                raise ResourceExhaustedError(f"the data directory holds {limits.MAX_COLLECTIONS} collections, the limit")
            id_ = uuid.uuid4().hex
            config = CollectionConfig(id=id_, name=name, dim=dim, metric=metric or "cosine", hnsw=hnsw,
                                      metadata=metadata or {}, created_at_ms=int(time.time() * 1000),
                                      encoder=identity, fulltext=fulltext)
            if self.path is None:
                collection = self._collections[name] = Collection.in_memory(config, self.tuning)
                collection.encoders = self.encoders
                return collection
            tmp = self._root / f".tmp-{id_}"
            try:
                collection = Collection.create(self.fs, tmp, config, self.tuning)
                collection.close(checkpoint=False)
                self.fs.rename(tmp, self._root / id_)
                self.fs.fsync_dir(self._root)
            except OSError as exc:  # e.g. ENOSPC: nothing was created; free what was written
                try:
                    if tmp.exists():
                        self.fs.remove_tree(tmp)
                except OSError:  # removed at the next start anyway
                    pass
                raise storage_error(exc, f"create collection {name!r}") from exc
            collection = Collection.open(self.fs, self._root / id_, self.tuning)
            collection.encoders = self.encoders
            self._collections[name] = collection
            return collection

    @staticmethod
    def _same_settings(existing: Collection, dim: int | None, metric: str | None, hnsw: dict[str, int],
                       identity: dict[str, Any] | None) -> Collection:
        """``existing`` when every setting given (not None) matches it; else AlreadyExistsError
        naming each differing setting with the collection's value and the one asked for."""
        config = existing.config
        differ = []
        if dim is not None and dim != config.dim:
            differ.append(f"dim {config.dim} (asked for {dim})")
        if metric is not None and metric != config.metric:
            differ.append(f"metric {config.metric!r} (asked for {metric!r})")
        for key, value in sorted(hnsw.items()):
            if config.hnsw.get(key) != value:
                differ.append(f"hnsw.{key} {config.hnsw.get(key)} (asked for {value})")
        if identity is not None and identity.get("sha256") != (config.encoder or {}).get("sha256"):
            has = repr(config.encoder["name"]) if config.encoder else "none (it takes caller-supplied vectors)"
            differ.append(f"encoder {has} (asked for {identity['name']!r})")
        if differ:
            raise AlreadyExistsError(
                f"collection {config.name!r} exists with {'; '.join(differ)}. get_or_create returns an "
                "existing collection only when the settings given match it: omit a setting to accept the "
                "collection's, or choose another name")
        return existing

    def _encoder_identity(self, name: str) -> dict[str, Any]:
        if self.encoders is None:
            raise FailedPreconditionError("no built-in encoder is available in this process")
        if name == "default":
            name = self.encoders.default
        return dict(self.encoders.get(name).identity())

    def _damaged_error(self, name: str) -> DataLossError:
        return DataLossError(f"collection {name!r} is damaged: {self._damaged[name].message} "
                             "(run `vectord verify`; other collections are unaffected)")

    def _check_open(self) -> None:
        if self._closed:
            raise NotFoundError("the database is closed")

    def _check_on_disk(self, what: str) -> None:
        if self.path is None:
            raise FailedPreconditionError(
                f"{what} need a data directory; this database is in memory "
                "(use Client(path=...) or a server to keep data on disk)")

    def get_collection(self, name: str) -> Collection:
        if not isinstance(name, str):
            raise InvalidArgumentError(f"collection name must be a string, got {name!r}")
        collection = self._collections.get(name)
        if collection is None:
            if name in self._damaged:
                raise self._damaged_error(name)
            raise NotFoundError(f"collection {name!r} does not exist")
        return collection

    def list_collections(self) -> list[Collection]:
        return [self._collections[name] for name in sorted(self._collections)]

    def damaged_collections(self) -> dict[str, str]:
        return {name: exc.message for name, exc in self._damaged.items()}

    def delete_collection(self, name: str) -> None:
        """Deletes a collection and frees its files at once."""
        with self._mutex:
            self._check_open()
            collection = self._collections.pop(name, None)
            if collection is None:
                if name in self._damaged:
                    self._damaged.pop(name)
                    for entry in self._root.iterdir():
                        if entry.name == name or self._name_of_damaged(entry) == name:
                            self._remove_dir(entry)
                    return
                raise NotFoundError(f"collection {name!r} does not exist")
            collection.close(checkpoint=False)
            self._remove_dir(collection.path)

    def _remove_dir(self, path: Path | None) -> None:
        if path is None:  # an in-memory collection: nothing on disk
            return
        trash = self._root / f".trash-{path.name}"
        self.fs.rename(path, trash)
        self.fs.fsync_dir(self._root)
        self.fs.remove_tree(trash)

    def modify_collection(self, name: str, *, new_name: str | None = None,
                          metadata: dict[str, Any] | None = None) -> Collection:
        """Renames a collection and/or replaces its metadata; durable when it returns.

        Directories are named by internal id, so a rename touches no directory: it is a new
        MANIFEST (written atomically) holding the new config, and the name map changes.
        """
        if new_name is not None:
            new_name = validation.collection_name(new_name)
        if metadata is not None:
            validation.metadatas([metadata], 1, records=False)
        with self._mutex:
            self._check_open()
            collection = self.get_collection(name)
            if new_name is not None and new_name != name and (
                    new_name in self._collections or new_name in self._damaged):
                raise AlreadyExistsError(f"cannot rename collection {name!r} to {new_name!r}: a collection "
                                         f"of that name already exists")
            changes: dict[str, Any] = {}
            if new_name is not None:
                changes["name"] = new_name
            if metadata is not None:
                changes["metadata"] = dict(metadata)
            if not changes:
                return collection
            self._rewrite_config(collection, changes)
            if new_name is not None and new_name != name:
                self._collections[new_name] = self._collections.pop(name)
            return collection

    def _rewrite_config(self, collection: Collection, changes: dict[str, Any]) -> None:
        """Replaces the collection's MANIFEST with one holding the changed config. Holds the
        collection's checkpoint mutex and writers' mutex (the order its checkpoints take
        them), so no checkpoint writes a MANIFEST with the old config meanwhile."""
        import dataclasses

        from . import layout as disk

        with collection._checkpoint_mutex, collection._writers:
            collection._check_writable()
            config = dataclasses.replace(collection.config, **changes)
            manifest = {**collection._manifest, "config": dataclasses.asdict(config)}
            try:
                if collection.path is not None:  # an in-memory collection has no MANIFEST
                    disk.write_manifest(self.fs, collection.path, manifest)
            except OSError as exc:  # the old MANIFEST stands: nothing changed
                raise storage_error(exc, f"modify collection {collection.name!r}") from exc
            with collection._lock.write():
                collection.config, collection._manifest = config, manifest

    def reset(self) -> int:
        """Deletes every collection, damaged ones included, and frees their files; returns
        how many. Snapshots are kept. (Callers decide whether a reset is allowed.)"""
        with self._mutex:
            self._check_open()
            collections = list(self._collections.values())
            count = len(collections) + len(self._damaged)
            self._collections.clear()
            self._damaged.clear()
            for collection in collections:
                collection.close(checkpoint=False)
                self._remove_dir(collection.path)
            left = list(self._root.iterdir()) if self._root is not None else []  # None: in memory
            for entry in left:  # the damaged ones' directories
                if entry.is_dir() and not entry.name.startswith((".tmp-", ".trash-")):
                    self._remove_dir(entry)
            return count

    def checkpoint(self, name: str | None = None, compact: bool = False) -> int:
        """Checkpoints one collection, or all; returns how many wrote a new generation.

        With ``compact``, every deleted slot is compacted away now (see Collection.checkpoint).
        """
        targets = [self.get_collection(name)] if name else self.list_collections()
        return sum(1 for collection in targets if collection.checkpoint(compact=compact))

    # ------------------------------------------------------------------ snapshots (storage/snapshots.py)
    def create_snapshot(self, collection: str, name: str | None = None) -> dict[str, Any]:
        """Takes an online, point-in-time snapshot of a collection; returns its info."""
        from . import snapshots

        self._check_on_disk("snapshots")
        return snapshots.create(self, collection, name)

    def list_snapshots(self) -> list[dict[str, Any]]:
        from . import snapshots

        self._check_on_disk("snapshots")
        return snapshots.list_snapshots(self)

    def restore_snapshot(self, source: "str | Path | snapshots.Upload", collection: str | None = None,
                         replace: bool = False) -> Collection:
        """Restores a snapshot as a collection: ``source`` is the name of one this server took
        (under snapshots/), or an upload or a directory, which are untrusted: checked before
        any file is touched, and their HNSW graph is rebuilt (see storage/snapshots.py)."""
        from . import snapshots

        self._check_on_disk("snapshots")
        if isinstance(source, str):
            source = snapshots.path_of(self, source)
        return snapshots.restore(self, source, collection, replace)

    def adopt_collection(self, tmp: Path, id_: str, name: str, replace: bool = False) -> Collection:
        """Switches a complete, verified, durable collection directory ``tmp`` in as ``name``
        and serves it.

        A replace is rename-first: ``tmp`` records the directories it replaces (a REPLACES
        file), its rename into place is the atomic switch, and only then are the old
        directories removed. A crash leaves the old collection or the new one, never
        neither; the next start finishes an interrupted removal (snapshots.recover).
        """
        from . import snapshots

        with self._mutex:
            self._check_open()
            existing = self._collections.get(name)
            old = [existing.path.name] if existing is not None else []
            if name in self._damaged:
                old += [entry.name for entry in self._root.iterdir()
                        if not entry.name.startswith(".") and entry.is_dir() and self._name_of_damaged(entry) == name]
            if old and not replace:
                self.fs.remove_tree(tmp)
                raise AlreadyExistsError(f"collection {name!r} already exists (restore with replace to overwrite it)")
            final = self._root / id_
            try:
                if old:
                    snapshots.mark_replacing(self.fs, tmp, old)
                self.fs.rename(tmp, final)
                self.fs.fsync_dir(self._root)  # the switch
            except OSError as exc:  # not switched: the old collection stays
                for path in (tmp, final):
                    try:
                        if path.exists():
                            self.fs.remove_tree(path)
                    except OSError:  # removed at the next start
                        pass
                raise storage_error(exc, f"restore into collection {name!r}") from exc
            if existing is not None:
                self._collections.pop(name)
                existing.close(checkpoint=False)
            self._damaged.pop(name, None)
            if old:
                try:
                    snapshots.finish_replacing(self.fs, self._root, final)
                except OSError:
                    log.warning("restore into %r: the replaced directories %s are removed at the next start",
                                name, old, exc_info=True)
            collection = Collection.open(self.fs, final, self.tuning)
            collection.encoders = self.encoders
            self._collections[name] = collection
            return collection
