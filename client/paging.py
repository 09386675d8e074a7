"""A get too large for one reply, read in pages and returned as one result.

The server refuses a read whose reply would pass the message limit (server/budgets.py)
before doing the work, as gRPC itself refuses an oversized message; the SDK then asks again
in pages that fit and merges them, as it splits large writes (requests._split). Pages follow
the order one call would have: chunks of the ids asked; ``offset`` steps over a filter's
(label-ordered) matches; cursor pages (``page_token``) follow their tokens. Like a split
write, a paged get is not one snapshot: a write between two pages may show in one of them.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Generator

from vectord import limits
from vectord.errors import ResourceExhaustedError
from vectord.v1 import records_pb2 as rpb
from vectord.v1 import types_pb2 as pb

#: What the server's refusal for size says (budgets.TOO_LARGE), and what gRPC says of a
#: message past the limit (a server that builds first, or the client's own receive limit).
_TOO_LARGE = ("over the message limit", "larger than max")
#: Rows a cursor page has when the request gives no limit (the server's default).
CURSOR_PAGE_ROWS = 1000


def reply_too_large(exc: Exception) -> bool:
    """Whether a call failed because its reply would not fit one message (not overload,
    which is RESOURCE_EXHAUSTED too)."""
    return isinstance(exc, ResourceExhaustedError) and any(words in exc.message for words in _TOO_LARGE)


def first_page_rows(include: pb.Include, dim: int) -> int:
    """A first guess of the rows that fill half a message; pages halve if it is wrong."""
    row = 512 + (dim * 4 if include.embeddings else 0)
    return max(1, min(limits.MAX_BATCH_RECORDS, limits.MAX_MESSAGE_BYTES // 2 // row))


def get_in_pages(call: Callable[[rpb.GetRequest], rpb.GetResponse], request: rpb.GetRequest,
                 page_rows: int) -> rpb.GetResponse:
    """The response ``request`` would have had, read with calls of at most ``page_rows`` rows
    (halved whenever a page is still too large).

    Raises:
        ResourceExhaustedError: a single record does not fit a reply.
    """
    steps = _pages(request, page_rows)
    sub = next(steps)
    while True:
        try:
            answer: rpb.GetResponse | ResourceExhaustedError = call(sub)
        except ResourceExhaustedError as exc:
            answer = exc
        try:
            sub = steps.send(answer)
        except StopIteration as done:
            return done.value


async def get_in_pages_async(call: Callable[[rpb.GetRequest], Awaitable[rpb.GetResponse]],
                             request: rpb.GetRequest, page_rows: int) -> rpb.GetResponse:
    """``get_in_pages`` for the asyncio SDK."""
    steps = _pages(request, page_rows)
    sub = next(steps)
    while True:
        try:
            answer: rpb.GetResponse | ResourceExhaustedError = await call(sub)
        except ResourceExhaustedError as exc:
            answer = exc
        try:
            sub = steps.send(answer)
        except StopIteration as done:
            return done.value


def _pages(request: rpb.GetRequest, page_rows: int) -> Generator[rpb.GetRequest, Any, rpb.GetResponse]:
    """The paging itself, without I/O: yields each page's request, is sent its response (or
    the ResourceExhaustedError it failed with), returns the merged response."""
    pages: list[rpb.GetResponse] = []

    def fetch(sub: rpb.GetRequest):
        nonlocal page_rows
        answer = yield sub
        if isinstance(answer, ResourceExhaustedError):
            if not reply_too_large(answer) or page_rows == 1:
                raise answer
            page_rows //= 2
            return None
        pages.append(answer)
        return answer

    cursor = request.HasField("page_token")
    if request.ids and not (request.limit or request.offset or cursor):
        ids, lo = list(request.ids), 0
        while lo < len(ids):
            sub = _copy(request)
            del sub.ids[:]
            sub.ids.extend(ids[lo:lo + page_rows])
            if (yield from fetch(sub)) is not None:
                lo += len(sub.ids)
        return merge(pages)
    wanted = request.limit or (CURSOR_PAGE_ROWS if cursor else None)  # None: every match
    got, token = 0, request.page_token
    while wanted is None or got < wanted:
        rows = page_rows if wanted is None else min(page_rows, wanted - got)
        sub = _copy(request)
        sub.limit = rows
        if cursor:
            sub.page_token, sub.offset = token, request.offset if not pages else 0
        else:
            sub.offset = request.offset + got
        response = yield from fetch(sub)
        if response is None:
            continue
        got += len(response.ids)
        if cursor:
            token = response.next_page_token
            if not token:
                break
        elif len(response.ids) < rows:
            break
    merged = merge(pages)
    if cursor:
        merged.next_page_token = token
    return merged


def _copy(request: rpb.GetRequest) -> rpb.GetRequest:
    sub = rpb.GetRequest()
    sub.CopyFrom(request)
    return sub


def merge(pages: list[rpb.GetResponse]) -> rpb.GetResponse:
    """One GetResponse holding the pages' records in order."""
    out = rpb.GetResponse()
    vectors = [p.embeddings for p in pages if p.HasField("embeddings")]
    for page in pages:
        out.ids.extend(page.ids)
        out.documents.extend(page.documents)
        out.metadatas.extend(page.metadatas)
    if vectors:
        out.embeddings.CopyFrom(pb.Vectors(dim=vectors[0].dim, count=sum(v.count for v in vectors),
                                           data_f32le=b"".join(v.data_f32le for v in vectors)))
    return out
