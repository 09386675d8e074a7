"""One BLAS thread for small matrix products (exact search over a few thousand candidates).

numpy's OpenBLAS splits even a (1 x 50) @ (50 x 10,000) product over every core. On a small
or busy machine waking those threads costs more than the product: measured on 2 shared
cores (issue 13), one query over 10,000 GloVe candidates took 3 ms with OpenBLAS's threads
and 0.4 ms with one. ``single_threaded(work)`` sets OpenBLAS to one thread while a product of
fewer than ``SMALL_PRODUCT`` multiply-adds runs and puts the count back after; large batched
products keep every thread.

The thread count is process-wide: while one small product runs, a large one started in
another thread also runs on one thread (slower, never wrong); the count is restored when
the last small product ends. Without OpenBLAS (another BLAS, or none found) this does
nothing.
"""

from __future__ import annotations

import ctypes
import threading
from contextlib import contextmanager, nullcontext
from typing import Iterator

#: Multiply-adds below which one thread is faster than OpenBLAS's pool (a query against
#: 100,000 x 50 candidates is 5 M).
SMALL_PRODUCT = 1 << 24

_lock = threading.Lock()
_active = 0
_saved = 0


def _find_openblas():
    """(set_num_threads, get_num_threads) of the OpenBLAS numpy loaded, or None."""
    try:
        import numpy  # noqa: F401 - loads its BLAS

        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", "64_"), ("openblas", ""),
                               ("scipy_openblas", "")):
            setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            if setter is not None and getter is not None:
                setter.argtypes, setter.restype, getter.restype = [ctypes.c_int], None, ctypes.c_int
                return setter, getter
    return None


_OPENBLAS = _find_openblas()


@contextmanager
def _one_thread() -> Iterator[None]:
    global _active, _saved
    setter, getter = _OPENBLAS
    with _lock:
        if _active == 0:
            _saved = getter()
            if _saved > 1:
                setter(1)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _saved > 1:
                setter(_saved)


def single_threaded(work: int):
    """A context in which a product of ``work`` multiply-adds runs: one BLAS thread when it
    is small (see the module docstring), OpenBLAS's usual threads otherwise.

    Example:
        >>> with single_threaded(len(queries) * len(vectors) * dim):
        ...     dots = queries @ vectors.T
    """
    if _OPENBLAS is None or work >= SMALL_PRODUCT:
        return nullcontext()
    return _one_thread()
