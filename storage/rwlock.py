"""A writer-preferring read/write lock.

hnswlib's ``add_items`` and ``knn_query`` both release the GIL and must never overlap
(nmslib/hnswlib#29, #205), so every collection guards its state with one of these:
queries and reads share it, writes and checkpoints take it alone. Writers are preferred so
that a steady stream of queries cannot starve a write.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator


class RWLock:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        #: Readers waiting for the lock: a writer that takes it again and again (the
        #: background indexer, storage/indexer.py) pauses between steps while there are any.
        self.readers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            if self._writer or self._writers_waiting:
                self.readers_waiting += 1
                try:
                    while self._writer or self._writers_waiting:
                        self._cond.wait()
                finally:
                    self.readers_waiting -= 1
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()
