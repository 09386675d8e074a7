"""Records.QueryStream: queries over one long-lived stream, answered as Query answers them.

Why it exists: a unary call through grpcio's synchronous server costs the server about twice
the CPU of a message on an open stream (per-call setup, the thread-pool hand-off, status
sending; ``benchmarks/remote_cpu.py``), and for a small query that setup is most of the
work. The SDK sends its queries this way and falls back to Query when a stream cannot be had.

What keeps it as safe as Query:

- each message is answered by the same servicer method as Query (same checks, budgets and
  errors); a failed query is answered in-band (``status_code``, ``status_message``) and the
  stream stays open;
- each message carries its own time limit (``timeout_ms``), checked as Query checks its deadline;
- an open stream holds a worker thread of the server's pool, so the streams are capped
  (``max_query_streams``; past it RESOURCE_EXHAUSTED, and the client falls back to Query),
  streams idle for ``query_stream_idle_s`` are cancelled, and so are idle streams when the
  server shuts down (otherwise every graceful stop would wait out its whole grace period).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable, Iterator

import grpc

from vectord.errors import InvalidArgumentError, VectordError
from vectord.v1 import records_pb2 as rpb

log = logging.getLogger(__name__)

METHOD = "/vectord.v1.Records/QueryStream"
#: Defaults of ``vectord serve``'s max_query_streams (half of its 16 workers) and
#: query_stream_idle_s, for servers built without Settings (embedded, tests).
DEFAULT_MAX_STREAMS, DEFAULT_IDLE_S = 8, 30.0
_CODES = {code.name: code.value[0] for code in grpc.StatusCode}


class _MessageContext:
    """What the Query servicer reads of its context, for one message of a stream: the time
    left of the message's own limit and of the stream's deadline, whichever ends first."""

    __slots__ = ("_deadline", "_stream")

    def __init__(self, stream_context, timeout_ms: float) -> None:
        self._stream = stream_context
        self._deadline = time.monotonic() + timeout_ms / 1000 if timeout_ms > 0 else None

    def time_remaining(self) -> float | None:
        stream_left = self._stream.time_remaining()
        if self._deadline is None:
            return stream_left
        left = self._deadline - time.monotonic()
        return left if stream_left is None else min(left, stream_left)


class _OpenStream:
    __slots__ = ("context", "idle_since")

    def __init__(self, context) -> None:
        self.context = context
        self.idle_since: float | None = time.monotonic()  # None while a query runs


class QueryStreams:
    """The open query streams of one server: admission, idle cancellation, shutdown.

    Args:
        query: the Query servicer method, ``query(request, context) -> QueryResponse``.
        max_streams: streams open at once; past it a new stream fails RESOURCE_EXHAUSTED.
        idle_s: a stream with no query for this long is cancelled (its thread freed).
    """

    def __init__(self, query: Callable, max_streams: int, idle_s: float) -> None:
        self._query, self.max_streams, self.idle_s = query, max_streams, idle_s
        self._open: set[_OpenStream] = set()
        self._lock = threading.Lock()
        self._closing = False
        self._reaper: threading.Thread | None = None
        self._wake = threading.Event()

    def serve(self, requests: Iterable[rpb.QueryStreamRequest], context) -> Iterator[rpb.QueryStreamResponse]:
        """The QueryStream rpc's behaviour: one response per request, in order."""
        stream = self._admit(context)
        try:
            for message in requests:
                stream.idle_since = None
                try:
                    yield self._answer(message, context)
                finally:
                    stream.idle_since = time.monotonic()
                if self._closing:
                    return
        except grpc.RpcError:
            return  # cancelled (idle, shutting down, or by the client): nothing left to answer
        finally:
            with self._lock:
                self._open.discard(stream)

    def _admit(self, context) -> _OpenStream:
        with self._lock:
            if self._closing:
                context.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
            if len(self._open) >= self.max_streams:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"QueryStream: {len(self._open)} query streams are open, the server's limit "
                              f"(max_query_streams {self.max_streams}); send Query calls instead")
            stream = _OpenStream(context)
            self._open.add(stream)
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, name="vectord-query-stream-reaper", daemon=True)
                self._reaper.start()
        return stream

    def _answer(self, message: rpb.QueryStreamRequest, context) -> rpb.QueryStreamResponse:
        try:
            if not message.timeout_ms >= 0:  # negative or NaN
                raise InvalidArgumentError(f"QueryStream: timeout_ms must be >= 0 (0: no limit), "
                                           f"got {message.timeout_ms}")
            response = self._query(message.query, _MessageContext(context, message.timeout_ms))
        except VectordError as exc:
            return rpb.QueryStreamResponse(request_id=message.request_id, status_code=_CODES[exc.status],
                                           status_message=exc.message)
        except Exception:
            log.exception("unexpected error in %s", METHOD)
            return rpb.QueryStreamResponse(request_id=message.request_id, status_code=_CODES["INTERNAL"],
                                           status_message=f"internal error in {METHOD} (see server log)")
        return rpb.QueryStreamResponse(request_id=message.request_id, response=response)

    def _reap(self) -> None:
        """Cancels streams idle for longer than ``idle_s``; runs while the server does."""
        while not self._closing:
            self._wake.wait(max(self.idle_s / 4, 0.05))
            now = time.monotonic()
            with self._lock:
                idle = [s for s in self._open if s.idle_since is not None and now - s.idle_since > self.idle_s]
            for stream in idle:
                stream.context.cancel()

    def close(self) -> None:
        """At shutdown: refuses new streams, cancels idle ones; a running query finishes and
        then its stream ends."""
        self._closing = True
        self._wake.set()
        with self._lock:
            idle = [s for s in self._open if s.idle_since is not None]
        for stream in idle:
            stream.context.cancel()
