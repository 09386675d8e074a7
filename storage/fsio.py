"""The one seam through which the engine touches files.

Every write, fsync, rename and delete of the storage engine goes through a ``FileSystem``
object, so that tests can substitute one that fails (ENOSPC, EIO) or forgets unsynced data
(simulated power loss) at any step.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import BinaryIO


class FileSystem:
    """Real files with real fsync. Subclass and override to inject faults."""

    # -- files written once (checkpoint files, manifests) -------------------------------
    def create(self, path: Path) -> BinaryIO:
        """Opens a new file for writing; the caller writes, then calls ``finish``."""
        return open(path, "xb")

    def finish(self, handle: BinaryIO) -> None:
        """Flushes, fsyncs and closes a file opened by ``create``."""
        try:
            handle.flush()
            self.fsync(handle.fileno())
        finally:
            handle.close()

    def write_file(self, path: Path, data: bytes) -> None:
        """Creates ``path`` holding ``data``, durably (fsync before return)."""
        handle = self.create(path)
        try:
            handle.write(data)
        except BaseException:
            handle.close()
            raise
        self.finish(handle)

    def fsync_path(self, path: Path) -> None:
        """fsyncs a file written by someone else (hnswlib's save_index)."""
        fd = os.open(path, os.O_RDONLY)
        try:
            self.fsync(fd)
        finally:
            os.close(fd)

    # -- the log: an append-only file ---------------------------------------------------
    def open_log(self, path: Path) -> int:
        """Opens (creating if needed) a log file for appending; returns its descriptor."""
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)

    def append(self, fd: int, data: bytes) -> None:
        """Appends all of ``data`` (no fsync)."""
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            if written == 0:  # pragma: no cover - os.write raises instead in practice
                raise OSError(errno.EIO, "short write")
            view = view[written:]

    def truncate(self, fd: int, size: int) -> None:
        """Cuts a log back to ``size`` bytes and makes that durable."""
        os.ftruncate(fd, size)
        self.fsync(fd)

    def fsync(self, fd: int) -> None:
        """Forces a file's data to stable storage."""
        os.fsync(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    # -- directories --------------------------------------------------------------------
    def mkdir(self, path: Path) -> None:
        path.mkdir(parents=False, exist_ok=False)

    def rename(self, src: Path, dst: Path) -> None:
        """Atomically renames ``src`` over ``dst`` (call ``fsync_dir`` after)."""
        os.replace(src, dst)

    def fsync_dir(self, path: Path) -> None:
        """Makes a directory's entries (creations, renames, removals) durable."""
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            self.fsync(fd)
        finally:
            os.close(fd)

    def remove_tree(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=False)

    def remove(self, path: Path) -> None:
        os.remove(path)


#: The file system used unless a test passes another.
REAL = FileSystem()

#: errno values that mean "no space left": the disk or the quota is full.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def storage_error(exc: OSError, what: str):
    """The typed error for a failed file operation: RESOURCE_EXHAUSTED when the disk (or
    quota) is full, FAILED_PRECONDITION for any other I/O error."""
    from vectord.errors import FailedPreconditionError, ResourceExhaustedError

    if exc.errno in NO_SPACE:
        return ResourceExhaustedError(f"{what}: disk full ({exc}); free space, then retry")
    return FailedPreconditionError(f"{what}: I/O error ({exc})")


def replace_atomically(fs: FileSystem, path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` so that a crash leaves either the old or the new file:
    temp file in the same directory, fsync, rename, fsync the directory."""
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        fs.remove(tmp)
    fs.write_file(tmp, data)
    fs.rename(tmp, path)
    fs.fsync_dir(path.parent)
