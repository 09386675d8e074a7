"""Single queries from many threads at once, sent as batches (the SDK's remote transport).

Why: a single query costs the server far more in gRPC's per-message work than in its search
(benchmarks/remote_cpu.py: about 450 us of server CPU a query, of which the hnswlib search is
about 50). When threads of one client query the same collection at the same time, the queries
that arrive while ``MAX_IN_FLIGHT`` calls of this client are already out wait, and when a call
ends, the queries that have waited longest (of one kind, up to ``MAX_BATCH``) go as one Query of
several vectors; each thread gets its own row of the answer. A thread never waits for a batch
unless that many calls are in flight, so a single-threaded client sends every query at once, as
before, and pays only a lock for it.

Only plain vector queries are joined, and only with queries identical in every field but the
vector (collection, n_results, include, filters, ranking options): the server answers a batch
of them exactly as it answers each one (one plan for the shared filter; hnswlib searches each
vector on its own). A batch the server refuses as a whole for its size or for one bad vector
(INVALID_ARGUMENT, RESOURCE_EXHAUSTED) is sent again one query at a time, so that each query
gets its own answer or its own error.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from vectord.errors import (
    DeadlineExceededError,
    InternalError,
    InvalidArgumentError,
    ResourceExhaustedError,
    VectordError,
)
from vectord.v1 import records_pb2 as rpb

#: Calls out at once before more single queries wait to be batched.
MAX_IN_FLIGHT = 2
#: The most queries one batch carries.
MAX_BATCH = 16

Send = Callable[[rpb.QueryRequest, "float | None"], rpb.QueryResponse]


class _Waiter:
    __slots__ = ("request", "done", "response", "error", "batch")

    def __init__(self, request: rpb.QueryRequest) -> None:
        self.request = request
        self.done = threading.Event()
        self.response: rpb.QueryResponse | None = None
        self.error: VectordError | None = None
        self.batch: list[_Waiter] | None = None  # set when this waiter is to send the batch


def joinable(request: rpb.QueryRequest) -> bool:
    """A plain query of one vector (no texts to embed, no plan to report)."""
    return request.HasField("queries") and request.queries.count == 1 and not request.query_texts \
        and not request.explain


class QueryCoalescer:
    """Sends single queries through ``send``, batching those that queue up behind it."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._in_flight = 0
        # queries waiting, by kind (the request without its vector), oldest kind first
        self._waiting: dict[bytes, list[_Waiter]] = {}

    def query(self, request: rpb.QueryRequest, timeout_s: float | None) -> rpb.QueryResponse:
        with self._lock:
            alone = self._in_flight < MAX_IN_FLIGHT or not joinable(request)
            if alone:
                self._in_flight += 1
        if alone:  # the common case, and every query of a single-threaded client
            try:
                return self._send(request, timeout_s)
            finally:
                self._next()
        vector = request.queries.data_f32le  # its kind: the request without its vector
        request.queries.data_f32le = b""
        key = request.SerializeToString(deterministic=True)
        request.queries.data_f32le = vector
        me = _Waiter(request)
        with self._lock:
            if self._in_flight < MAX_IN_FLIGHT:  # a call ended meanwhile
                self._in_flight += 1
                me.batch = [me]
            else:
                self._waiting.setdefault(key, []).append(me)
        queued_at = time.monotonic()
        if me.batch is None:
            self._wait(me, key, timeout_s)
        if me.batch is not None:  # this thread sends the queries that queued up, in its time left
            left = None if timeout_s is None else max(timeout_s - (time.monotonic() - queued_at), 0.001)
            try:
                self._send_batch(me.batch, left)
            finally:
                self._next()
        if me.error is not None:
            raise me.error
        assert me.response is not None
        return me.response

    def _wait(self, me: _Waiter, key: bytes, timeout_s: float | None) -> None:
        """Until this query is answered or is to lead a batch; past its deadline while still
        queued, DeadlineExceededError (once taken into a batch it waits for that batch)."""
        if me.done.wait(timeout_s):
            return
        with self._lock:
            queued = self._waiting.get(key, [])
            if me in queued:
                queued.remove(me)
                if not queued:
                    del self._waiting[key]
                raise DeadlineExceededError(f"Query: no answer within the deadline ({timeout_s} s)")
        me.done.wait()

    def _send_batch(self, batch: list[_Waiter], timeout_s: float | None) -> None:
        """Sends the batch as one Query and gives each waiter its row (or the error); a
        refusal of the whole batch sends its queries one by one."""
        if len(batch) == 1:
            self._answer_alone(batch[0], timeout_s)
            return
        request = rpb.QueryRequest()
        request.CopyFrom(batch[0].request)
        request.queries.count = len(batch)
        request.queries.data_f32le = b"".join(w.request.queries.data_f32le for w in batch)
        started = time.monotonic()
        try:
            try:
                response = self._send(request, timeout_s)
            except (InvalidArgumentError, ResourceExhaustedError):
                for waiter in batch:
                    left = None if timeout_s is None else max(timeout_s - (time.monotonic() - started), 0.001)
                    self._answer_alone(waiter, left)
                return
            except VectordError as exc:
                for waiter in batch:
                    waiter.error = exc
                return
            for waiter, result in zip(batch, response.results):
                waiter.response = rpb.QueryResponse(results=[result])
        finally:  # whatever happened, no thread of the batch is left waiting
            for waiter in batch:
                if waiter.response is None and waiter.error is None:
                    waiter.error = InternalError(f"Query: no answer for this query in a batch of {len(batch)}")
                waiter.done.set()

    def _answer_alone(self, waiter: _Waiter, timeout_s: float | None) -> None:
        try:
            waiter.response = self._send(waiter.request, timeout_s)
        except VectordError as exc:
            waiter.error = exc
        finally:
            waiter.done.set()

    def _next(self) -> None:
        """After a call: the queries of the kind that has waited longest go as the next batch,
        led by the first of them (this thread returns to its caller at once)."""
        with self._lock:
            if not self._waiting:
                self._in_flight -= 1
                return
            key = next(iter(self._waiting))
            queued = self._waiting[key]
            batch = queued[:MAX_BATCH]
            if len(queued) > MAX_BATCH:
                self._waiting[key] = queued[MAX_BATCH:]
            else:
                del self._waiting[key]
            batch[0].batch = batch
        batch[0].done.set()
