"""The write-ahead log of one collection, with group commit.

Writers append a record (under the collection's write lock, so records are in ``seq``
order) and then wait for ``sync_to(seq)`` outside the lock. One waiting writer at a time
becomes the leader and fsyncs; everyone whose record was written before that fsync began is
released by it. A write is acknowledged only after its record is durable.

An fsync error is fatal for the log (PostgreSQL's "fsyncgate": the kernel may have dropped
the dirty pages, so retrying proves nothing): the log refuses further appends until the
collection is reopened.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from vectord.errors import FailedPreconditionError, ResourceExhaustedError
from . import framing
from .fsio import NO_SPACE, FileSystem

log = logging.getLogger(__name__)


class WriteAheadLog:
    """An append-only file of framed, checksummed records, each carrying a ``seq``."""

    def __init__(self, fs: FileSystem, path: Path, last_seq: int) -> None:
        self._fs = fs
        self.path = path
        self._fd = fs.open_log(path)
        self._cond = threading.Condition()
        self._written = last_seq  # highest seq appended
        self._durable = last_seq  # highest seq known fsynced
        self._syncing = False
        self._failed: BaseException | None = None
        self.size_bytes = path.stat().st_size

    @staticmethod
    def read(path: Path, fs: FileSystem) -> list[dict[str, Any]]:
        """Reads every whole record; cuts a torn tail off the file (logging where).

        Raises:
            DataLossError: damage that is not a torn tail.
        """
        if not path.exists():
            return []
        data = path.read_bytes()
        scan = framing.scan_frames(data, f"log {path}")
        if scan.torn:
            log.warning(
                "log %s: torn tail of %d bytes after byte %d cut off (a crash interrupted "
                "an unacknowledged write)", path, len(data) - scan.valid_end, scan.valid_end,
            )
            fd = fs.open_log(path)
            try:
                fs.truncate(fd, scan.valid_end)
            finally:
                fs.close(fd)
        return scan.records

    @property
    def last_seq(self) -> int:
        return self._written

    def check_writable(self) -> None:
        if self._failed is not None:
            error = ResourceExhaustedError if getattr(self._failed, "errno", None) in NO_SPACE \
                else FailedPreconditionError
            raise error(
                f"log {self.path} failed ({self._failed}); the collection refuses writes "
                "until the server restarts"
            )

    def append(self, record: dict[str, Any]) -> int:
        """Appends ``record`` with the next seq (caller holds the collection write lock)."""
        self.check_writable()
        seq = self._written + 1
        frame = framing.encode_frame({**record, "seq": seq})
        try:
            self._fs.append(self._fd, frame)
        except OSError as exc:
            # A partial frame may be on disk: it is a torn tail that the next open cuts off,
            # but appending after it would bury it mid-log, so refuse further writes.
            self._failed = exc
            if exc.errno in NO_SPACE:
                raise ResourceExhaustedError(f"log {self.path}: disk full ({exc})") from exc
            raise FailedPreconditionError(f"log {self.path}: write failed ({exc})") from exc
        self._written = seq
        self.size_bytes += len(frame)
        return seq

    def sync_to(self, seq: int) -> None:
        """Returns once every record up to ``seq`` is fsynced (group commit)."""
        with self._cond:
            while True:
                if self._durable >= seq:
                    return
                if self._failed is not None:
                    self.check_writable()
                if not self._syncing:
                    break
                self._cond.wait()
            self._syncing = True
            target = self._written
        try:
            self._fs.fsync(self._fd)
        except OSError as exc:
            with self._cond:
                self._failed = exc
                self._syncing = False
                self._cond.notify_all()
            error = ResourceExhaustedError if exc.errno in NO_SPACE else FailedPreconditionError
            raise error(
                f"log {self.path}: fsync failed ({exc}); the collection refuses writes until "
                "the server restarts"
            ) from exc
        with self._cond:
            self._durable = max(self._durable, target)
            self._syncing = False
            self._cond.notify_all()

    def sync(self) -> None:
        self.sync_to(self._written)

    def reset(self) -> None:
        """Empties the log after a checkpoint made every record in it redundant."""
        self.check_writable()
        try:
            self._fs.truncate(self._fd, 0)
        except OSError as exc:  # fsyncgate: the log's state on disk is unknown now
            self._failed = exc
            error = ResourceExhaustedError if exc.errno in NO_SPACE else FailedPreconditionError
            raise error(f"log {self.path}: truncation failed ({exc}); the collection refuses "
                        "writes until the server restarts") from exc
        self.size_bytes = 0
        with self._cond:
            self._durable = self._written

    def close(self) -> None:
        self._fs.close(self._fd)
