"""A writer-preferring read/write lock.

Every collection guards its state with one of these: queries and reads share it, writes
and checkpoints take it alone. (hnswlib's ``add_items`` and ``knn_query`` both release the
GIL and must never overlap, nmslib/hnswlib#29, #205: the graph's own gate keeps them apart,
storage/index.py, so that the background indexer adds beside the writes.) Writers are preferred so
that a steady stream of queries cannot starve a write.
"""

from __future__ import annotations

import threading


class RWLock:
    def __init__(self) -> None:
        # taken directly on the fast paths (a C-level ``with``; the Condition's own
        # __enter__ is a Python call), and through the Condition only to wait or notify
        self._mutex = threading.Lock()
        self._cond = threading.Condition(self._mutex)
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        #: Readers waiting for the lock (for tests and diagnostics).
        self.readers_waiting = 0
        self._shared, self._exclusive = _Shared(self), _Exclusive(self)

    def read(self) -> "_Shared":
        """``with lock.read():`` holds the lock shared (with other readers)."""
        return self._shared

    def checked_read(self, check) -> "_Shared":
        """A reusable ``with`` guard that holds the lock shared and then calls ``check()``
        (a collection's "is it open?"); if ``check`` raises, the lock is released again."""
        return _Shared(self, check)

    def write(self) -> "_Exclusive":
        """``with lock.write():`` holds the lock alone."""
        return self._exclusive

    def _acquire_read(self) -> None:
        with self._mutex:
            if self._writer or self._writers_waiting:  # rare: a writer holds it or waits
                self.readers_waiting += 1
                try:
                    while self._writer or self._writers_waiting:
                        self._cond.wait()
                finally:
                    self.readers_waiting -= 1
            self._readers += 1

    def _release_read(self) -> None:
        with self._mutex:
            self._readers -= 1
            # only a writer waits for the readers to leave (a waiting reader waits for a
            # writer, and is woken when that writer releases): no notify on every query
            if self._readers == 0 and self._writers_waiting:
                self._cond.notify_all()

    def _acquire_write(self) -> None:
        with self._mutex:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True

    def _release_write(self) -> None:
        with self._mutex:
            self._writer = False
            self._cond.notify_all()


# The guards are classes, not @contextmanager generators: a query takes the read lock once
# or twice, and a generator-based one cost it ~1.5 us each (storage/rwlock.py's callers are
# on every query's path; issue 13). They hold no state, so one of each serves every thread.
class _Shared:
    __slots__ = ("_lock", "_check")

    def __init__(self, lock: RWLock, check=None) -> None:
        self._lock, self._check = lock, check

    def __enter__(self) -> None:
        self._lock._acquire_read()
        if self._check is not None:
            try:
                self._check()
            except BaseException:
                self._lock._release_read()
                raise

    def __exit__(self, *exc) -> None:
        self._lock._release_read()


class _Exclusive:
    __slots__ = ("_lock",)

    def __init__(self, lock: RWLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock._acquire_write()

    def __exit__(self, *exc) -> None:
        self._lock._release_write()
