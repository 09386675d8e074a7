"""`vectord serve` asks glibc for transparent huge pages under its large allocations.

Why: hnswlib keeps every vector and its level-0 links in one malloc'd block (34 MB for
GloVe 100k x 50, ~1.6 GB for 1M x 384), and a search reads it at random. With 4 KiB pages
nearly every hop of a search misses the TLB; with 2 MiB pages the same block takes a few
dozen entries. Measured (benchmarks/huge_pages_ab.py, results/huge-pages-2026-12-01.md), as
time with / without: a remote single query on GloVe 100k x 50 0.97 x (a batch of 100: 0.99 x,
within the noise); raw hnswlib on 300k x 128 (a 190 MB block) 0.93 x for single queries and
0.87 x for a batch of 1,000. The larger the graph, the more it helps. Memory: +0.5 MiB RSS.

The block is allocated inside hnswlib, so vectord cannot madvise it itself, and on most
distributions the kernel's THP mode is ``madvise`` (only regions that ask get huge pages).
glibc's ``glibc.malloc.hugetlb=1`` tunable (glibc 2.35+) makes malloc ask for every region
it maps, but glibc reads tunables only at process start: so ``vectord serve`` runs itself
again, once, with the tunable added to ``GLIBC_TUNABLES``, before it has started anything
(same process id, same arguments, same open files). Numpy asks for huge pages for its own
large arrays already.

It does nothing off Linux, with another libc or a glibc before 2.35, with THP set to
``never``, or when ``GLIBC_TUNABLES`` already names the tunable (the user's choice wins);
the ``huge_pages`` setting (``--no-huge-pages``, ``VECTORD_HUGE_PAGES=0``) turns it off.

When: the settings (flag, environment, TOML file) are read with pydantic, whose import alone
costs ~0.25 s, and a re-run after them paid that twice. So ``vectord serve`` re-runs first,
before its parser (``early``), unless the flag or the variable already says no; once the
settings are read, ``settle`` re-runs again in the rare case they disagree (a TOML file with
``huge_pages = false``: back to the environment as it was; ``--huge-pages`` over
``VECTORD_HUGE_PAGES=0``: with the tunable).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

TUNABLE = "glibc.malloc.hugetlb"
#: Set by the re-run to what GLIBC_TUNABLES was before it (not VECTORD_: no setting of its own).
BEFORE = "_VECTORD_GLIBC_TUNABLES_BEFORE"
#: Set when ``settle`` took the tunable back out, so that the run after it does not add it again.
DECLINED = "_VECTORD_HUGE_PAGES_DECLINED"
#: How pydantic reads a false bool (VECTORD_HUGE_PAGES).
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def wanted(environ=os.environ) -> bool:
    """Whether this process should run itself again with the tunable."""
    if not sys.platform.startswith("linux"):
        return False
    if TUNABLE in environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        # the C library this process runs on ("glibc 2.36"; musl has no such name), not the
        # one platform.libc_ver() guesses from the interpreter's file
        libc, _, version = (os.confstr("CS_GNU_LIBC_VERSION") or "").partition(" ")
        if libc != "glibc" or tuple(int(part) for part in version.split(".")[:2]) < (2, 35):
            return False
        return "[never]" not in THP_MODE.read_text()
    except (OSError, ValueError):
        return False


def tunables_with_huge_pages(current: str) -> str:
    """``GLIBC_TUNABLES`` with the tunable added to what is there (colon-separated)."""
    return f"{current}:{TUNABLE}=1" if current else f"{TUNABLE}=1"


def _run_again() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    # orig_argv: the interpreter's own flags and `-m vectord` or the script, as first run
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def reexec_with_huge_pages() -> None:
    """Replaces this process with itself run again with the tunable, when ``wanted()``;
    returns only when it is not. Call before any thread, file or server is opened."""
    if not wanted():
        return
    before = os.environ.get("GLIBC_TUNABLES", "")
    os.environ[BEFORE] = before
    os.environ["GLIBC_TUNABLES"] = tunables_with_huge_pages(before)
    _run_again()


def early(argv: list[str]) -> None:
    """``vectord serve``'s first step: the re-run, unless ``--no-huge-pages`` or a false
    ``VECTORD_HUGE_PAGES`` already says no (``settle`` has the last word)."""
    if "--no-huge-pages" in argv or os.environ.get("VECTORD_HUGE_PAGES", "").strip().lower() in _FALSE \
            or DECLINED in os.environ:
        return
    reexec_with_huge_pages()


def settle(enabled: bool) -> None:
    """Once the settings are read: runs again if the process does not run as they say
    (rare: see the module's docstring); returns when it does."""
    if enabled:
        reexec_with_huge_pages()
    elif BEFORE in os.environ:  # the early re-run added the tunable, and the settings say no
        before = os.environ.pop(BEFORE)
        if before:
            os.environ["GLIBC_TUNABLES"] = before
        else:
            del os.environ["GLIBC_TUNABLES"]
        os.environ[DECLINED] = "1"
        _run_again()
