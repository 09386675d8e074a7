"""Keeping a collection small and durable: checkpoints, compaction, snapshots, statistics.

``MaintenanceMixin`` is part of ``Collection`` (storage/collection.py), split out so that
each file has one job. Checkpoints hold the writers' mutex, and the write lock only briefly;
compactions (storage/compaction.py) hold neither while they build.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from . import layout as disk
from . import compaction
from .fsio import storage_error

log = logging.getLogger(__name__)


class MaintenanceMixin:
    # ------------------------------------------------------------------ checkpoints
    def needs_checkpoint(self) -> bool:
        if self._closed or self._failed is not None or self._wal is None or self._wal.failed:
            return False
        data_bytes = self._vectors.slots * (self.config.dim * 4 + 64)
        threshold = max(self.tuning.checkpoint_min_bytes, self.tuning.checkpoint_ratio * data_bytes)
        return self._wal.size_bytes > threshold

    def checkpoint(self, force: bool = False, compact: bool = False) -> bool:
        """Writes a new generation and truncates the log; returns whether it wrote one.

        With ``compact``, every deleted slot is compacted away now (not only past the
        compaction threshold), writing a generation if there was any.

        Compaction, when due, builds its new structures beside the old ones while queries
        and writes go on, and swaps them in under the write lock (``_compact_beside``).
        Then writes wait for the rest of the checkpoint (the writers' mutex), but queries
        and reads wait only for its short steps under the write lock: the generation's
        files, the O(N) part, are written under the read lock, since nothing can change the
        state while the writers' mutex is held (hnswlib's save only reads the graph, as
        searches do).

        An in-memory collection (no ``path``) writes nothing: it only compacts, when due or
        asked, and returns False.
        """
        if self.path is None:
            with self._checkpoint_mutex:
                self.compacted_slots_total += self._compact_beside(force=compact)
            return False
        started = time.monotonic()
        with self._checkpoint_mutex:
            compacted = self._compact_beside(force=compact)
            self.compacted_slots_total += compacted
            with self._writers:
                return self._write_checkpoint(force, compact, compacted, started)

    def _write_checkpoint(self, force: bool, compact: bool, compacted: int, started: float) -> bool:
        """The checkpoint proper; the caller holds the checkpoint and writers' mutexes."""
        with self._lock.write():
            self._check_writable()
            seq = self._wal.last_seq
            dead = self._vectors.slots - len(self._records)
            if seq == self._applied_seq and not force and not compacted and not (compact and dead):
                return False
            if (seq == self._applied_seq and self._manifest["generation"] is not None) or \
                    (self.path / f"gen-{seq:020d}").exists():
                # The new generation needs a name no MANIFEST on disk may hold: gen-<seq>
                # is the one the MANIFEST names when forced (or compacting) with nothing
                # new in the log; and a gen-<seq> already on disk may be named by the
                # MANIFEST of a checkpoint whose switch reported an error (the rename can
                # be durable although the directory fsync failed). Rewriting either in
                # place would not survive a crash. A no-op record moves seq on.
                seq = self._log_and_apply({"op": "delete", "ids": []})
        self._wal.sync()
        slots = self._vectors.slots
        with self._lock.read():
            try:
                name, files, index_meta = disk.write_generation(
                    self.fs, self.path, seq, self._vectors, self._records.to_columns(), self._index)
            except OSError as exc:
                # e.g. ENOSPC: the log still holds every write; free the half-written
                # generation's space (the MANIFEST does not name it) and report the cause
                self._discard(self.path / f"gen-{seq:020d}")
                raise storage_error(exc, f"collection {self.config.name!r}: checkpoint") from exc
        manifest = {**disk.new_manifest(self.config), "generation": name, "applied_seq": seq,
                    "slots": slots, "files": files, "index": index_meta}
        try:
            disk.write_manifest(self.fs, self.path, manifest)
        except OSError as exc:
            # Old or new MANIFEST: both are consistent with the log, which is kept. Which
            # one the disk holds is unknown, so both generations are kept too, and a
            # retry writes under a new name (above).
            raise storage_error(exc, f"collection {self.config.name!r}: checkpoint") from exc
        with self._lock.write():
            self._manifest, self._applied_seq = manifest, seq
            # map the new generation's vectors (exactly the store's) before the old
            # generation goes: the in-memory tail is freed
            self._vectors.rebase(self.path / name / disk.VECTORS)
            self._wal.reset()
        disk.remove_other_generations(self.fs, self.path, name)
        compaction.remove_leftovers(self.fs, self.path)  # copied into the generation
        self.fs.fsync_dir(self.path)
        log.info("collection %r: checkpoint %s (%d records, %d slots)", self.config.name, name,
                 len(self._records), slots)
        self.checkpoint_count += 1
        self.checkpoint_seconds_total += time.monotonic() - started
        return True

    def _discard(self, path: Path) -> None:
        try:
            if path.exists():
                self.fs.remove_tree(path)
        except OSError:  # best effort; a stray generation is removed by the next checkpoint
            log.warning("collection %r: cannot remove %s", self.config.name, path)

    def _compact_beside(self, force: bool) -> int:
        """Drops deleted slots (when due, or any with ``force``) by building the compacted
        state beside the current one and swapping it in; returns how many were dropped.

        The caller holds the checkpoint mutex. Queries and writes go on during the build;
        they wait only for the two short steps: taking the ``Frozen`` view (writes wait)
        and the swap, which applies the writes made meanwhile (``_delta``) to the new
        structures, under the write lock.
        """
        with self._writers:
            if self.path is None:
                self._check_open()
            else:
                self._check_writable()
            if not compaction.due(self._vectors.slots, len(self._records), self._index is not None,
                                  self.tuning.compact_min_dead, self.tuning.compact_ratio, force):
                return 0
            frozen = compaction.freeze(self)
            self._delta = []
        started = time.monotonic()
        try:
            new = compaction.build(frozen, self.config, self.tuning, self.fs, self.path)
        except BaseException as exc:
            with self._writers:
                self._delta = None
            if self.path is not None and isinstance(exc, Exception):  # not a simulated power loss
                compaction.remove_leftovers(self.fs, self.path, keep=self._vectors.filename)
            if isinstance(exc, OSError):  # e.g. ENOSPC writing the new vectors: nothing changed
                raise storage_error(exc, f"collection {self.config.name!r}: compaction") from exc
            raise
        del frozen
        with self._writers, self._lock.write():
            delta, self._delta = self._delta, None
            if self._closed or self._failed is not None or new.records.slots != new.vectors.slots:
                old = new  # closed or failed meanwhile: nothing to swap in
                return 0
            old = (self._vectors, self._records, self._meta_index, self._fulltext, self._index)
            self._vectors, self._records, self._meta_index = new.vectors, new.records, new.meta_index
            self._fulltext, self._index = new.fulltext, new.index
            try:
                for record in delta:  # the writes made during the build, again, by id
                    self._apply(record)
            except BaseException:
                # the old structures hold every write: keep them
                log.exception("collection %r: compaction could not apply the writes made during it; "
                              "keeping the uncompacted state", self.config.name)
                (self._vectors, self._records, self._meta_index, self._fulltext, self._index) = old
                return 0
        # the old structures are freed here, outside the lock (freeing a large graph and
        # millions of Python objects is not instant)
        del old
        log.info("collection %r: compacted %d deleted slots in %.3f s (%d writes applied again)",
                 self.config.name, new.dropped, time.monotonic() - started, len(delta))
        return new.dropped

    # ------------------------------------------------------------------ operations
    def stats(self) -> dict[str, Any]:
        """Counters and sizes for monitoring; cheap, no lock (values may be a moment old)."""
        disk_bytes = 0
        for path in list(self.path.rglob("*")) if self.path is not None else []:
            try:
                if path.is_file():
                    disk_bytes += path.stat().st_size
            except OSError:  # removed by a concurrent checkpoint
                pass
        return {"records": len(self._records), "slots": self._vectors.slots,
                "deleted_slots": self._vectors.slots - len(self._records),
                "wal_bytes": self._wal.size_bytes if self._wal is not None else 0,
                "disk_bytes": disk_bytes, "seq": self._wal.last_seq if self._wal is not None else 0,
                "recovery_seconds": self.recovery_seconds, "checkpoints": self.checkpoint_count,
                "checkpoint_seconds_total": self.checkpoint_seconds_total,
                "compacted_slots_total": self.compacted_slots_total}

    def snapshot(self, link) -> dict[str, Any]:
        """A point-in-time copy: checkpoints (if the log holds anything), then, under the
        checkpoint mutex (no other checkpoint may replace the generation meanwhile) and the
        read lock, calls ``link(collection_dir, manifest)`` to link or copy the generation's
        files and MANIFEST. Returns the manifest that was captured."""
        with self._checkpoint_mutex:
            self.checkpoint(force=self._manifest["generation"] is None)
            with self._lock.read():
                self._check_open()
                manifest = self._manifest
                link(self.path, manifest)
                return manifest
