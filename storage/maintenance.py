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

import numpy as np

from . import layout as disk
from . import compaction
from .fsio import storage_error
from .segment import Segment, graph_child_of, merge_all, merge_build, tiered_merge
from .state import State

log = logging.getLogger(__name__)


#: ``seal_due``: a tail of more than this many times the segment bound is never sealed.
SEAL_HEADROOM = 4
#: The fewest graph slots, unsaved once the indexer has caught up, that make a checkpoint due
#: (``Maintenance.unsaved_graph_slots``): re-indexing fewer at a restart costs less than a
#: rewrite of the generation.
GRAPH_SAVE_MIN_SLOTS = 4096


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
        if self.seal_due() or self.merge_pick() is not None:
            return True
        if self.unsaved_graph_slots() >= max(GRAPH_SAVE_MIN_SLOTS, c.state.vectors.slots // 4) \
                and c._indexer.tail_slots() == 0:
            return True  # once, when the indexer has caught up: see unsaved_graph_slots
        data_bytes = c.state.vectors.slots * (c.config.dim * 4 + 64)
        threshold = max(c.tuning.checkpoint_min_bytes, c.tuning.checkpoint_ratio * data_bytes)
        return c._wal.size_bytes > threshold

    def unsaved_graph_slots(self) -> int:
        """Slots of the generation on disk that the graph covers now but its saved graph did not.

        The background indexer goes on after a checkpoint: a bulk load checkpointed (by log
        size) while its graph covered 7k of 100k slots, with no write after it, left the log
        empty, so no later checkpoint was due, and every restart indexed the other 93k
        slots again, their queries scanning them exactly meanwhile. ``needs_checkpoint``
        saves such a graph once the indexer has caught up, when it is at least a quarter of
        the slots and ``GRAPH_SAVE_MIN_SLOTS`` (fewer cost a restart less than a rewrite of
        the generation); any checkpoint, close included, saves it too.
        """
        c = self._host
        index = c.state.index
        if c.path is None or index is None:
            return 0
        slots = c._manifest.get("slots", 0)
        saved = c._manifest.get("index") or {}
        # a MANIFEST from before ``covered`` was recorded: its graph covered its slots
        covered = saved.get("covered", slots) if saved else 0
        # only the generation's own slots: those written since are in the log, and the next
        # checkpoint by log size saves them with their graph (a restart replays and indexes
        # them either way); counting them made a bulk load checkpoint after every pause
        return max(0, min(index.covered, slots) - covered)

    def checkpoint(self, force: bool = False, compact: bool = False) -> bool:
        """Writes a new generation and truncates the log; returns whether it wrote one.

        With ``compact``, every deleted slot is compacted away now (not only past the
        compaction threshold), writing a generation if there was any.

        Once a close is under way (``Collection.stop_upkeep``), nothing is sealed, merged or
        compacted: those rebuild graphs, minutes for a large collection (a 1M x 384 ingest
        stopped at once sealed and merged for 15 minutes before its server exited, past any
        service manager's stop timeout), and the next start's background maintenance does
        them as well; the final checkpoint only writes what the log holds, so that the next
        start need not replay it.

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
                self._upkeep(compact)
            return False
        started = time.monotonic()
        with c._checkpoint_mutex:
            changed, compacted = self._upkeep(compact)
            with c._writers:
                return self._write_checkpoint(force or changed, compact, compacted, started)

    def _upkeep(self, compact: bool) -> tuple[bool, int]:
        """Seals, merges and compacts what is due, none of it once a close is under way
        (``Collection.stop_upkeep``; a seal or merge in flight finishes). Returns whether
        the segment list changed and the slots compacted away (the caller holds the
        checkpoint mutex)."""
        changed = self._seal_and_merge(compact)
        compacted = 0 if self._host._upkeep_stopped.is_set() else self._compact_beside(force=compact)
        self.compacted_slots_total += compacted
        return changed, compacted

    # ------------------------------------------------------------------ segments (docs/segments.md)
    def seal_due(self) -> bool:
        c = self._host
        rows = c.tuning.seal_rows_for(c.config.dim)
        bound = c.tuning.max_segment_rows_for(c.config.dim)
        live = len(c.state.records)
        # A tail far past the segment bound (a collection written before segments: 1M x 384 is
        # 6x it) stays one state, as it was: sealing it would rebuild its whole graph at once,
        # hours on 2 cores. A burst between two checkpoints never comes near 4x.
        return bool(rows) and rows <= live and not (bound and live > SEAL_HEADROOM * bound)

    def merge_pick(self, compact: bool = False) -> list[int] | None:
        """The sealed segments to merge next (positions), or None: a tier full
        (``tiered_merge``), or one segment past the compaction threshold (compacted alone,
        so that peak memory is one segment's rebuild)."""
        c = self._host
        sealed = list(c.sealed)
        for i, segment in enumerate(sealed):
            if compaction.due(segment.slots, segment.live, segment.state.index is not None,
                              c.tuning.compact_min_dead, c.tuning.compact_ratio, compact):
                return [i]
        max_rows = c.tuning.max_segment_rows_for(c.config.dim)
        pick = tiered_merge(sealed, max(2, c.tuning.merge_factor), max_rows=max_rows)
        if pick is None and len(sealed) > 1 and c._wal is not None and c._wal.last_seq == c._applied_seq \
                and not len(c.state.records):
            # Done ingesting (nothing written since the last checkpoint, an empty tail): one
            # segment (or as few as max_segment_rows allows), so that a query searches one
            # graph (single-query QPS as before segments)
            pick = merge_all(sealed, max_rows)
        return pick

    def _seal_and_merge(self, compact: bool) -> bool:
        """Seals the tail when due, then merges while a merge is due; returns whether the
        segment list changed (the caller holds the checkpoint mutex). Starts no seal or
        merge once a close is under way (``Collection.stop_upkeep``)."""
        changed = False
        stopped = self._host._upkeep_stopped.is_set
        if self.seal_due() and not stopped():
            changed = self.seal()
        made: set[str] = set()  # the segments this checkpoint's merges made
        for _ in range(64):  # each merge lowers the count of segments (a bound, never reached)
            if stopped():
                break
            pick = self.merge_pick(compact)
            if pick is None or (len(pick) == 1 and self._host.sealed[pick[0]].name in made):
                # A segment this checkpoint just compacted is not compacted again by it: under
                # steady upserts and deletes a graph-less segment is due again at once (any dead
                # slot), and chasing them held the checkpoint for seconds; the next one compacts it.
                break
            before = {segment.name for segment in self._host.sealed}
            if not self.merge(pick):
                break
            made |= {segment.name for segment in self._host.sealed} - before
            changed = True
        return changed

    def seal(self) -> bool:
        """Seals the tail into a new segment: the tail is frozen (writes wait for that short
        step), the segment built and written under no lock, then swapped in under the write
        lock with an empty tail, the writes made meanwhile applied again to the new list
        (as a compaction's). Returns whether it sealed. The MANIFEST lists the segment from
        the checkpoint that follows (until then recovery replays the log into the tail)."""
        c = self._host
        with c._checkpoint_mutex:
            with c._writers:
                c._check_writable()
                if not len(c.state.records):
                    return False
                frozen = compaction.freeze(c.state)
                frozen_slots = c.state.vectors.slots
                seq = c._wal.last_seq
                c._delta = []
            try:
                # the vectors go to a file beside (mapped), not to memory: compaction.build
                built = compaction.build(frozen, c.config, c.tuning, c.fs, c.path, nice=c.tuning.maintenance_nice,
                                         child=graph_child_of(c.tuning))
                segment = Segment.build(built.vectors, built.records, c.config, c.tuning, built.index,
                                        built.fulltext, built.meta_index, graph_file=built.graph_file)
                if c.path is not None:
                    segment.write(c.fs, c.path, seq)
            except BaseException as exc:
                with c._writers:
                    c._delta = None
                if isinstance(exc, OSError):
                    raise storage_error(exc, f"collection {c.config.name!r}: seal") from exc
                raise
            del frozen, built
            with c._writers, c._lock.write():
                delta, c._delta = c._delta, None
                if c._closed or c._failed is not None:
                    return False  # its directory is removed at the next start (never listed)
                old_state, old_sealed = c.state, c.sealed
                c.state, c.sealed = c._empty_state(), old_sealed + (segment,)
                try:
                    for record in delta:
                        c._apply(record)
                except BaseException:
                    log.exception("collection %r: a seal could not apply the writes made during it; "
                                  "keeping the tail", c.config.name)
                    c.state, c.sealed = old_state, old_sealed
                    return False
            c._wake_indexer()
            del old_state  # freed outside the lock
            # the tail's deleted slots are not sealed: compacted away, as `vectord compact` reports
            self.compacted_slots_total += frozen_slots - segment.slots
            log.info("collection %r: sealed %d records into %s (%d writes applied again)",
                     c.config.name, segment.live, segment.name, len(delta))
            return True

    def merge(self, positions: list[int]) -> bool:
        """Merges the sealed segments at ``positions`` (one: compacts it) into one new
        segment, built under no lock from their live records as of one moment; the swap
        marks deleted in it what was deleted from them meanwhile. Returns whether it merged."""
        c = self._host
        with c._checkpoint_mutex:
            with c._writers:
                c._check_writable() if c.path is not None else c._check_open()
                sources = [c.sealed[i] for i in positions]
                frozen = [compaction.freeze(segment.state) for segment in sources]
                seq = c._wal.last_seq
            try:
                merged = merge_build(frozen, c.config, c.tuning, c.fs, c.path)
                if c.path is not None:
                    merged.write(c.fs, c.path, seq)
            except OSError as exc:
                raise storage_error(exc, f"collection {c.config.name!r}: merge") from exc
            with c._writers, c._lock.write():
                if c._closed or c._failed is not None or any(s not in c.sealed for s in sources):
                    return False
                offset = 0
                for source, view in zip(sources, frozen):
                    gone = np.setdiff1d(view.labels, source.records.live(), assume_unique=True)
                    merged.delete((offset + np.searchsorted(view.labels, gone)).tolist())
                    offset += len(view.labels)
                first = min(c.sealed.index(s) for s in sources)
                kept = [s for s in c.sealed if s not in sources]
                kept.insert(first, merged)
                old, c.sealed = sources, tuple(kept)
            # the slots deleted when the sources were frozen are not in the merged segment
            self.compacted_slots_total += sum(s.slots for s in sources) - merged.slots
            del old, frozen
            log.info("collection %r: merged %d segment(s) into %s (%d records)", c.config.name,
                     len(sources), merged.name, merged.live)
            return True

    def _write_checkpoint(self, force: bool, compact: bool, compacted: int, started: float) -> bool:
        """The checkpoint proper; the caller holds the checkpoint and writers' mutexes."""
        c = self._host
        with c._lock.write():
            c._check_writable()
            seq = c._wal.last_seq
            dead = c.state.vectors.slots - len(c.state.records)
            if seq == c._applied_seq and not force and not compacted and not (compact and dead) \
                    and not self.unsaved_graph_slots():
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
        try:  # the sealed segments' delete bitmaps, as of seq (the writers' mutex is held)
            for segment in c.sealed:
                segment.write_deletes(c.fs, c.path, seq)
        except OSError as exc:
            raise storage_error(exc, f"collection {c.config.name!r}: checkpoint") from exc
        with c._lock.read(), c._indexer.busy:  # the graph saved with its ``covered`` (storage/indexer.py)
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
        if c.sealed or c._manifest.get("segments"):
            manifest["segments"] = [segment.entry() for segment in c.sealed]
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
        disk.remove_unlisted_segments(c.fs, c.path, manifest)  # merged away, or old bitmaps
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
        slots = c.state.vectors.slots + sum(segment.slots for segment in c.sealed)
        return {"records": c._live_count(), "slots": slots, "segments": len(c.sealed),
                "deleted_slots": slots - c._live_count(),
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
        files, the listed segments' files and delete bitmaps, and the MANIFEST. Seals and
        merges run inside checkpoints, so the mutex also keeps the segment list and its files
        as the MANIFEST names them. Returns the manifest that was captured."""
        c = self._host
        with c._checkpoint_mutex:
            self.checkpoint(force=c._manifest["generation"] is None)
            with c._lock.read():
                c._check_open()
                manifest = c._manifest
                link(c.path, manifest)
                return manifest
