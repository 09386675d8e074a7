"""Giving freed heap memory back to the system after a burst of temporary objects.

Why: opening a collection decodes its records file into a Python object per id and per
metadata, builds the packed columns from them (storage/records.py) and frees them. glibc
keeps the freed chunks inside its heap, between blocks still in use, so the resident size
stayed about 30 bytes a record above what the collection holds (GloVe 65k x 50 opened after
a compaction: benchmarks/results/memory-steady-50d-2026-11-30-ids.md). ``malloc_trim(0)`` returns
the whole free pages of every arena to the system (they are faulted back, zeroed, when
reused). Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_trim = None
if sys.platform.startswith("linux"):
    try:
        _trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        _trim.argtypes, _trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        _trim = None


def release_free_heap() -> bool:
    """Returns the heap's free pages to the system; True if anything was released."""
    return bool(_trim(0)) if _trim is not None else False
