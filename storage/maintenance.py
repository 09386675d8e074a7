"""Keeping a collection small and durable: checkpoints, compaction, snapshots, statistics.

``Maintenance`` is a part of ``Collection`` (storage/collection.py), which owns one and
delegates ``checkpoint``, ``needs_checkpoint``, ``snapshot`` and ``stats`` to it; it reads and
changes the collection only as ``Host`` (storage/state.py) lists. Checkpoints hold the
writers' mutex, and the write lock only briefly; compactions (storage/compaction.py) hold
neither while they build.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from . import layout as disk
from . import compaction
from .fsio import storage_error
from .state import State

log = logging.getLogger(__name__)


class Maintenance:
    """A collection's checkpoints, compactions, snapshots and statistics (see the module
    docstring). ``c`` below is the collection, read and changed only as ``Host``
    (storage/state.py) lists."""

    def __init__(self, host) -> None:
        self._host = host
        #: Counters read by stats() (the server's metrics collector reads them at scrape time).
        self.checkpoint_count = 0
        self.checkpoint_seconds_total = 0.0
        self.compacted_slots_total = 0

    # ------------------------------------------------------------------ checkpoints
    def needs_checkpoint(self) -> bool:
        c = self._host
        if c._closed or c._failed is not None or c._wal is None or c._wal.failed:
            return False
        data_bytes = c.state.vectors.slots * (c.config.dim * 4 + 64)
        threshold = max(c.tuning.checkpoint_min_bytes, c.tuning.checkpoint_ratio * data_bytes)
        return c._wal.size_bytes > threshold

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
        c = self._host
        if c.path is None:
            with c._checkpoint_mutex:
                self.compacted_slots_total += self._compact_beside(force=compact)
            return False
        started = time.monotonic()
        with c._checkpoint_mutex:
            compacted = self._compact_beside(force=compact)
            self.compacted_slots_total += compacted
            with c._writers:
                return self._write_checkpoint(force, compact, compacted, started)

    def _write_checkpoint(self, force: bool, compact: bool, compacted: int, started: float) -> bool:
        """The checkpoint proper; the caller holds the checkpoint and writers' mutexes."""
        c = self._host
        with c._lock.write():
            c._check_writable()
            seq = c._wal.last_seq
            dead = c.state.vectors.slots - len(c.state.records)
            if seq == c._applied_seq and not force and not compacted and not (compact and dead):
                return False
            if (seq == c._applied_seq and c._manifest["generation"] is not None) or \
                    (c.path / f"gen-{seq:020d}").exists():
                # The new generation needs a name no MANIFEST on disk may hold: gen-<seq>
                # is the one the MANIFEST names when forced (or compacting) with nothing
                # new in the log; and a gen-<seq> already on disk may be named by the
                # MANIFEST of a checkpoint whose switch reported an error (the rename can
                # be durable although the directory fsync failed). Rewriting either in
                # place would not survive a crash. A no-op record moves seq on.
                seq = c._log_and_apply({"op": "delete", "ids": []})
        c._wal.sync()
        slots = c.state.vectors.slots
        with c._lock.read():
            try:
                name, files, index_meta = disk.write_generation(
                    c.fs, c.path, seq, c.state.vectors, c.state.records.to_columns(), c.state.index)
            except OSError as exc:
                # e.g. ENOSPC: the log still holds every write; free the half-written
                # generation's space (the MANIFEST does not name it) and report the cause
                self.discard(c.path / f"gen-{seq:020d}")
                raise storage_error(exc, f"collection {c.config.name!r}: checkpoint") from exc
        manifest = {**disk.new_manifest(c.config), "generation": name, "applied_seq": seq,
                    "slots": slots, "files": files, "index": index_meta}
        try:
            disk.write_manifest(c.fs, c.path, manifest)
        except OSError as exc:
            # Old or new MANIFEST: both are consistent with the log, which is kept. Which
            # one the disk holds is unknown, so both generations are kept too, and a
            # retry writes under a new name (above).
            raise storage_error(exc, f"collection {c.config.name!r}: checkpoint") from exc
        with c._lock.write():
            c._manifest, c._applied_seq = manifest, seq
            # map the new generation's vectors (exactly the store's) before the old
            # generation goes: the in-memory tail is freed
            old_map = c.state.vectors.rebase(c.path / name / disk.VECTORS)
        # Outside the write lock (queries do not read the log; writes wait for the writers'
        # mutex, still held): truncating a log of many megabytes, and unmapping the old
        # vectors, took ~100 ms, and every query waited (50k x 384, 40% deleted, compact).
        del old_map
        c._wal.reset()
        disk.remove_other_generations(c.fs, c.path, name)
        compaction.remove_leftovers(c.fs, c.path)  # copied into the generation
        c.fs.fsync_dir(c.path)
        log.info("collection %r: checkpoint %s (%d records, %d slots)", c.config.name, name,
                 len(c.state.records), slots)
        self.checkpoint_count += 1
        self.checkpoint_seconds_total += time.monotonic() - started
        return True

    def discard(self, path: Path) -> None:
        """Removes a generation no MANIFEST names (best effort)."""
        c = self._host
        try:
            if path.exists():
                c.fs.remove_tree(path)
        except OSError:  # best effort; a stray generation is removed by the next checkpoint
            log.warning("collection %r: cannot remove %s", c.config.name, path)

    def _compact_beside(self, force: bool) -> int:
        """Drops deleted slots (when due, or any with ``force``) by building the compacted
        state beside the current one and swapping it in; returns how many were dropped.

        The caller holds the checkpoint mutex. Queries and writes go on during the build;
        they wait only for the two short steps: taking the ``Frozen`` view (writes wait)
        and the swap, which applies the writes made meanwhile (``_delta``) to the new
        structures, under the write lock.
        """
        c = self._host
        with c._writers:
            if c.path is None:
                c._check_open()
            else:
                c._check_writable()
            if not compaction.due(c.state.vectors.slots, len(c.state.records), c.state.index is not None,
                                  c.tuning.compact_min_dead, c.tuning.compact_ratio, force):
                return 0
            frozen = compaction.freeze(c.state)
            c._delta = []
        started = time.monotonic()
        try:
            new = compaction.build(frozen, c.config, c.tuning, c.fs, c.path, nice=c.tuning.maintenance_nice)
        except BaseException as exc:
            with c._writers:
                c._delta = None
            if c.path is not None and isinstance(exc, Exception):  # not a simulated power loss
                compaction.remove_leftovers(c.fs, c.path, keep=c.state.vectors.filename)
            if isinstance(exc, OSError):  # e.g. ENOSPC writing the new vectors: nothing changed
                raise storage_error(exc, f"collection {c.config.name!r}: compaction") from exc
            raise
        del frozen
        with c._writers, c._lock.write():
            delta, c._delta = c._delta, None
            if c._closed or c._failed is not None or new.records.slots != new.vectors.slots:
                old = new  # closed or failed meanwhile: nothing to swap in
                return 0
            old, c.state = c.state, State(new.vectors, new.records, new.meta_index, new.fulltext, new.index)
            try:
                for record in delta:  # the writes made during the build, again, by id
                    c._apply(record)
            except BaseException:
                # the old structures hold every write: keep them
                log.exception("collection %r: compaction could not apply the writes made during it; "
                              "keeping the uncompacted state", c.config.name)
                c.state = old
                return 0
        c._wake_indexer()  # the writes made during the build are the new state's tail
        # the old structures are freed here, outside the lock (freeing a large graph and
        # millions of Python objects is not instant)
        del old
        log.info("collection %r: compacted %d deleted slots in %.3f s (%d writes applied again)",
                 c.config.name, new.dropped, time.monotonic() - started, len(delta))
        return new.dropped

    # ------------------------------------------------------------------ operations
    def stats(self) -> dict[str, Any]:
        """Counters and sizes for monitoring; cheap, no lock (values may be a moment old)."""
        c = self._host
        disk_bytes = 0
        for path in list(c.path.rglob("*")) if c.path is not None else []:
            try:
                if path.is_file():
                    disk_bytes += path.stat().st_size
            except OSError:  # removed by a concurrent checkpoint
                pass
        return {"records": len(c.state.records), "slots": c.state.vectors.slots,
                "deleted_slots": c.state.vectors.slots - len(c.state.records),
                "wal_bytes": c._wal.size_bytes if c._wal is not None else 0,
                "disk_bytes": disk_bytes, "seq": c._wal.last_seq if c._wal is not None else 0,
                "recovery_seconds": c.recovery_seconds, "checkpoints": self.checkpoint_count,
                "checkpoint_seconds_total": self.checkpoint_seconds_total,
                "compacted_slots_total": self.compacted_slots_total,
                "tail_slots": c._indexer.tail_slots()}

    def snapshot(self, link) -> dict[str, Any]:
        """A point-in-time copy: checkpoints (if the log holds anything), then, under the
        checkpoint mutex (no other checkpoint may replace the generation meanwhile) and the
        read lock, calls ``link(collection_dir, manifest)`` to link or copy the generation's
        files and MANIFEST. Returns the manifest that was captured."""
        c = self._host
        with c._checkpoint_mutex:
            self.checkpoint(force=c._manifest["generation"] is None)
            with c._lock.read():
                c._check_open()
                manifest = c._manifest
                link(c.path, manifest)
                return manifest
