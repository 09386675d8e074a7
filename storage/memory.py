"""What stands in for the write-ahead log in an in-memory database (``Database(None)``).

An in-memory collection applies writes exactly as a persistent one does (the same
``Collection`` code: validation, records, metadata index, HNSW graph), but its "log" only
counts sequence numbers: nothing is encoded, written or fsynced, and it has no checkpoints.
Its data lives as long as the process, as Chroma's ``EphemeralClient``'s does.
"""

from __future__ import annotations

import threading
from typing import Any


class MemoryLog:
    """The part of ``WriteAheadLog``'s interface a collection uses, without a file."""

    #: Never grows, so a checkpoint is never due.
    size_bytes = 0
    #: It cannot fail (there is no disk to fill).
    failed = None

    def __init__(self) -> None:
        self._seq = 0
        self._mutex = threading.Lock()

    @property
    def last_seq(self) -> int:
        return self._seq

    def check_writable(self) -> None:
        pass

    def append(self, record: dict[str, Any]) -> int:
        """Takes the next sequence number; the record is applied by the caller, not kept."""
        with self._mutex:
            self._seq += 1
            return self._seq

    def sync_to(self, seq: int) -> None:
        pass  # nothing to make durable

    def sync(self) -> None:
        pass

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass
