"""Request budgets: what a read may cost, checked before the work is done.

A reply larger than the message limit (``limits.MAX_MESSAGE_BYTES``) is refused by gRPC only
once it is built: 500 queries x 10,000 results took the server from 79 to 1,288 MiB, and a
``get`` without a limit materialised the whole collection, before RESOURCE_EXHAUSTED. So the
servicers (which embedded mode calls too: one place for both) ask this module first:

- ``check_query_shape``: queries x n_results within ``limits.MAX_QUERY_RESULTS``
  (INVALID_ARGUMENT: the request itself is outside a limit, whatever the data).
- ``check_get`` and ``check_query``: the expected reply, rows x (embedding bytes when
  included + a per-row estimate from a sample of the collection's ids, documents and
  metadata), within the message limit (RESOURCE_EXHAUSTED, the code gRPC itself gives an
  oversized message, so clients see no new code, only an earlier and clearer refusal).

The estimate can be wrong (a sample of small documents, a filter matching only the large
ones): ``ReplySize`` then stops the building of the reply as soon as it passes the limit
(convert.py), so no reply is ever built far past it.
"""

from __future__ import annotations

import time
import weakref
from typing import Iterable

from vectord import limits
from vectord.errors import InvalidArgumentError, ResourceExhaustedError
from vectord.storage.collection import GET_INCLUDE_DEFAULT
from vectord.storage.search import QUERY_INCLUDE_DEFAULT
from vectord.wire import metadata_to_proto

#: Records read to estimate the size of a reply's rows (the first ones in id order: cheap).
SAMPLE_ROWS = 64
#: Replies of at most this many rows are not estimated when their embeddings fit: sampling
#: would cost more than the query (1.5 ms against 0.6 ms measured), and what the rows can
#: hold besides (documents are shared, not copied; metadata at most 64 KiB each) stays
#: bounded until ReplySize stops the building.
SMALL_ROWS = 1024
#: Seconds a collection's per-row estimate is reused (sizes drift slowly; writes are many).
ESTIMATE_TTL_S = 10.0
#: Bytes of framing per row and column in a reply (field tags, lengths, the submessage of an
#: optional document), an upper estimate.
ROW_FRAMING = 6
#: Rows a cursor page has when the request gives no limit (storage's default).
DEFAULT_PAGE_ROWS = 1000
#: The words every refusal for size carries; the SDK recognises them and pages the get itself.
TOO_LARGE = "over the message limit"


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def check_query_shape(n_queries: int, n_results: int) -> None:
    """Refuses queries x n_results past ``limits.MAX_QUERY_RESULTS`` (before any search).
    Counts outside their own limits are left to the engine, whose message names those."""
    total = n_queries * n_results
    if total > limits.MAX_QUERY_RESULTS and n_queries <= limits.MAX_QUERIES and n_results <= limits.MAX_N_RESULTS:
        raise InvalidArgumentError(
            f"n_results: {n_queries} queries x n_results {n_results} = {total:,} results, the limit is "
            f"{limits.MAX_QUERY_RESULTS:,} per call (limits.MAX_QUERY_RESULTS); send fewer queries per "
            f"call or ask for fewer results")


_estimates: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()


def row_bytes(collection, include: Iterable[str], dim: int) -> float:
    """Expected bytes of one row of a reply: the embedding (exact) plus the id, document and
    metadata sizes averaged over a sample of the collection (columns not included cost nothing),
    the sample reused for ``ESTIMATE_TTL_S``."""
    include = frozenset(include)
    size = ROW_FRAMING + (dim * 4 if "embeddings" in include else 0) + (4 if "distances" in include else 0)
    wanted = tuple(name for name in ("documents", "metadatas") if name in include)
    try:
        cache = _estimates.setdefault(collection, {})
    except TypeError:  # not weakly referenceable: no cache
        cache = {}
    now = time.monotonic()
    cached = cache.get(wanted)
    if cached is None or now - cached[0] > ESTIMATE_TTL_S:
        cached = cache[wanted] = (now, _sampled_row_bytes(collection, wanted))
    return size + cached[1]


def _sampled_row_bytes(collection, wanted: tuple[str, ...]) -> float:
    sample = collection.get(after="", limit=SAMPLE_ROWS, include=list(wanted))  # id order: no scan
    n = len(sample.ids)
    if n == 0:
        return 0.0
    total = sum(len(i.encode("utf-8", "surrogatepass")) for i in sample.ids)
    if sample.documents is not None:
        total += sum(len(d.encode("utf-8", "surrogatepass")) + ROW_FRAMING for d in sample.documents if d)
    if sample.metadatas is not None:
        total += sum(metadata_to_proto(m).ByteSize() + ROW_FRAMING for m in sample.metadatas)
    return total / n


def _small(rows: int, dim: int, include: frozenset[str]) -> bool:
    """Too few rows to be worth an estimate (ReplySize still guards the building)."""
    return rows <= SMALL_ROWS and rows * (ROW_FRAMING + (dim * 4 if "embeddings" in include else 0)) \
        <= limits.MAX_MESSAGE_BYTES / 2


def _refuse(what: str, rows: int, per_row: float, advice: str) -> ResourceExhaustedError:
    fit = max(0, int(limits.MAX_MESSAGE_BYTES // per_row))
    return ResourceExhaustedError(
        f"{what}: the reply would be about {mib(rows * per_row)} ({rows:,} records of ~{per_row:,.0f} bytes), "
        f"{TOO_LARGE} of {mib(limits.MAX_MESSAGE_BYTES)}; about {fit:,} records fit in one reply. {advice}")


GET_ADVICE = ("Pass a smaller limit, or read in pages: Collection.pages() in the Python SDK (whose get "
              "also pages by itself), or page_token and limit.")
QUERY_ADVICE = "Send fewer queries per call, ask for a smaller n_results, or include fewer fields."


def check_get(collection, *, ids: list[str] | None, where, limit: int, offset: int, cursor: bool,
              include: Iterable[str] | None) -> None:
    """Refuses a get whose reply would not fit the message limit, before any record is read.

    The rows are bounded from above by the ids asked (or the collection's count), less the
    offset, capped by the limit. A bound over the limit is made exact before refusing: the
    ids that exist and pass the filter (looked up, no column read), or the filter's count.
    """
    n_ids = len(ids) if ids else None
    include = GET_INCLUDE_DEFAULT if include is None else frozenset(include)
    info = collection.info()
    dim = info.config.dim

    def rows_within(count: int) -> int:
        rows = max(0, count - offset)
        page = limit or (DEFAULT_PAGE_ROWS if cursor else 0)
        return min(rows, page) if page else rows

    rows = rows_within(n_ids if n_ids is not None else info.count)
    if _small(rows, dim, include):
        return
    per_row = row_bytes(collection, include, dim)
    if rows * per_row <= limits.MAX_MESSAGE_BYTES:
        return
    if n_ids is not None:
        rows = rows_within(len(collection.get(ids=ids, where=where, include=[]).ids))
    elif where is not None:
        rows = rows_within(collection.count(where=where))
    if rows * per_row <= limits.MAX_MESSAGE_BYTES:
        return
    raise _refuse("Get", rows, per_row, GET_ADVICE)


def check_query(collection, *, n_queries: int, n_results: int, where, include: Iterable[str] | None) -> None:
    """Refuses a query whose reply would not fit the message limit, before searching."""
    if n_queries > limits.MAX_QUERIES or not 0 < n_results <= limits.MAX_N_RESULTS:
        return  # the engine refuses these, naming the field
    include = QUERY_INCLUDE_DEFAULT if include is None else frozenset(include)
    if _small(n_queries * n_results, collection.config.dim, include):
        return  # small whatever the count: no info() (6 of this check's 10 us in issue 13's profile)
    info = collection.info()
    dim = info.config.dim
    rows = n_queries * min(n_results, info.count)
    if _small(rows, dim, include):
        return
    per_row = row_bytes(collection, include, dim)
    if rows * per_row <= limits.MAX_MESSAGE_BYTES:
        return
    if where is not None:
        rows = n_queries * min(n_results, collection.count(where=where))
        if rows * per_row <= limits.MAX_MESSAGE_BYTES:
            return
    raise _refuse("Query", rows, per_row, QUERY_ADVICE)


class ReplySize:
    """Counts the bytes of a reply while it is built; raises as soon as they pass the limit."""

    def __init__(self, what: str, advice: str, limit: int | None = None) -> None:
        self.what, self.advice = what, advice
        self.limit = limits.MAX_MESSAGE_BYTES if limit is None else limit
        self.bytes = 0

    def add(self, n: int, rows: int) -> None:
        self.bytes += n
        if self.bytes > self.limit:
            raise ResourceExhaustedError(
                f"{self.what}: the reply passed {mib(self.limit)} while it was built ({rows:,} records so far), "
                f"{TOO_LARGE} of {mib(self.limit)}. {self.advice}")
