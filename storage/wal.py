"""The write-ahead log of one collection, with group commit.

Writers append a record (under the collection's write lock, so records are in ``seq``
order) and then wait for ``sync_to(seq)`` outside the lock. One waiting writer at a time
becomes the leader and fsyncs; everyone whose record was written before that fsync began is
released by it. A write is acknowledged only after its record is durable.

An fsync error is fatal for the log (PostgreSQL's "fsyncgate": the kernel may have dropped
the dirty pages, so retrying proves nothing): the log refuses further appends until the
collection is reopened. The bytes of the writes that failed are still in the page cache,
though, and the next open would replay them: so before any writer is told that its write
failed, the log is cut back (ftruncate + fsync) to the end of the last durable record. A
failed append (ENOSPC, perhaps with half a frame written) is handled the same way.

What cannot be promised: if the cut itself cannot be made durable (its fsync fails too)
and the power is then lost, the disk may still hold the failed bytes; if the cut fails
outright, the next open replays them. Both are logged as errors, naming the seqs.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Iterator

from vectord.errors import FailedPreconditionError, ResourceExhaustedError
from . import framing
from .fsio import NO_SPACE, FileSystem

log = logging.getLogger(__name__)


def _error_class(exc: BaseException):
    return ResourceExhaustedError if getattr(exc, "errno", None) in NO_SPACE else FailedPreconditionError


class WriteAheadLog:
    """An append-only file of framed, checksummed records, each carrying a ``seq``."""

    def __init__(self, fs: FileSystem, path: Path, last_seq: int) -> None:
        self._fs = fs
        self.path = path
        self._fd = fs.open_log(path)
        self._cond = threading.Condition()
        self._written = last_seq  # highest seq appended
        self._durable = last_seq  # highest seq known fsynced
        self.size_bytes = os.fstat(self._fd).st_size
        # Bytes of the log holding records up to ``_durable``: where a failure cuts back to.
        # (What an earlier run left is taken as is: it was recovered, whether or not it had
        # been acknowledged.)
        self._durable_size = self.size_bytes
        self._syncing = False
        # The first error: appends and new fsyncs stop at once ...
        self._failing: BaseException | None = None
        # ... and once the log is cut back, waiting writers are told their write failed.
        self._failed: BaseException | None = None

    @staticmethod
    def read(path: Path, fs: FileSystem) -> Iterator[dict[str, Any]]:
        """Yields every whole record in order, reading one at a time (the log can be half
        the collection); once all are read, cuts a torn tail off the file (logging where).

        Raises:
            DataLossError: damage that is not a torn tail (raised when the reader gets
                there: records yielded before it must not be trusted alone).
        """
        if not path.exists():
            return
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            reader = framing.FrameReader(handle, size, f"log {path}")
            yield from reader
        if reader.torn:
            log.warning(
                "log %s: torn tail of %d bytes after byte %d cut off (a crash interrupted "
                "an unacknowledged write)", path, size - reader.valid_end, reader.valid_end,
            )
            fd = fs.open_log(path)
            try:
                fs.truncate(fd, reader.valid_end)
            finally:
                fs.close(fd)

    @property
    def last_seq(self) -> int:
        return self._written

    @property
    def failed(self) -> BaseException | None:
        """The error that stopped the log, or None while it is writable."""
        return self._failing

    def check_writable(self) -> None:
        failure = self._failing
        if failure is not None:
            raise _error_class(failure)(
                f"log {self.path} failed ({failure}); the collection refuses writes "
                "until the server restarts"
            )

    def append(self, record: dict[str, Any]) -> int:
        """Appends ``record`` with the next seq (caller holds the collection write lock)."""
        self.check_writable()
        seq = self._written + 1  # only the caller appends: the collection write lock
        frame = framing.encode_frame({**record, "seq": seq})
        with self._cond:  # a failure's cut must not race an append
            self.check_writable()
            try:
                self._fs.append(self._fd, frame)
            except OSError as exc:
                # Half a frame may be on disk, and records of writers still waiting for
                # their fsync before it: cut back to the last durable record.
                self._fail(exc)
                if exc.errno in NO_SPACE:
                    raise ResourceExhaustedError(f"log {self.path}: disk full ({exc})") from exc
                raise FailedPreconditionError(f"log {self.path}: write failed ({exc})") from exc
            self._written = seq
            self.size_bytes += len(frame)
        return seq

    def sync_to(self, seq: int) -> None:
        """Returns once every record up to ``seq`` is fsynced (group commit).

        Raises:
            ResourceExhaustedError, FailedPreconditionError: the record is not durable and
                never will be: the log was cut back before this was raised.
        """
        with self._cond:
            while True:
                if self._durable >= seq:
                    return
                if self._failed is not None:
                    self.check_writable()
                if not self._syncing and self._failing is None:
                    break
                self._cond.wait()
            self._syncing = True
            target, target_size = self._written, self.size_bytes
        try:
            self._fs.fsync(self._fd)
        except OSError as exc:
            with self._cond:
                self._syncing = False
                self._fail(exc)
            raise _error_class(exc)(
                f"log {self.path}: fsync failed ({exc}); the write was not made durable and "
                "the collection refuses writes until the server restarts"
            ) from exc
        with self._cond:
            self._durable = max(self._durable, target)
            self._durable_size = max(self._durable_size, target_size)
            self._syncing = False
            self._cond.notify_all()

    def sync(self) -> None:
        self.sync_to(self._written)

    def _fail(self, exc: BaseException) -> None:
        """Stops the log for good and cuts it back to its last durable record (caller holds
        ``_cond``). An fsync already in flight is waited for: it may still acknowledge the
        writers it covers, and the cut must keep their records."""
        if self._failing is None:
            self._failing = exc
        while self._syncing:
            self._cond.wait()
        if self._failed is not None:  # the fsync in flight failed and cut back already
            return
        self._cut_back()
        self._failed = self._failing
        self._cond.notify_all()

    def _cut_back(self) -> None:
        # Always cut, even with no record pending: a failed append may have left half a frame.
        keep, first, last = self._durable_size, self._durable + 1, self._written
        try:
            self._fs.truncate(self._fd, keep)
        except OSError as exc:
            try:
                cut = os.fstat(self._fd).st_size == keep
            except OSError:
                cut = False
            if cut:  # ftruncate worked, its fsync did not: a restart cannot replay them
                log.error("log %s: cut back to byte %d (seq %d) to drop the failed writes "
                          "(seq %d-%d), but that cut could not be made durable (%s): a power "
                          "loss before the kernel writes it may bring them back",
                          self.path, keep, self._durable, first, last, exc)
            else:
                log.error("log %s: cannot cut back to byte %d (seq %d) to drop the failed "
                          "writes (seq %d-%d): %s; the next start may replay them",
                          self.path, keep, self._durable, first, last, exc)
                return
        self.size_bytes = keep
        self._written = self._durable

    def reset(self) -> None:
        """Empties the log after a checkpoint made every record in it redundant."""
        with self._cond:
            self.check_writable()
            while self._syncing:  # not expected (the checkpoint synced), but never race one
                self._cond.wait()
            try:
                self._fs.truncate(self._fd, 0)
            except OSError as exc:  # fsyncgate: the log's state on disk is unknown now
                # Nothing to cut back: every record in the log is in the checkpoint the
                # MANIFEST names, and replaying them again is idempotent.
                self._failing = self._failed = exc
                self._cond.notify_all()
                raise _error_class(exc)(
                    f"log {self.path}: truncation failed ({exc}); the collection refuses "
                    "writes until the server restarts") from exc
            self.size_bytes = self._durable_size = 0
            self._durable = self._written

    def close(self) -> None:
        self._fs.close(self._fd)
