"""How the SDK reaches the servicers: over gRPC, or in-process for embedded use.

Both transports take the same request messages and return the same response messages, so
the SDK above them has one code path. Both raise ``vectord.errors`` classes.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Iterator

import grpc

from vectord import limits
from vectord.errors import (
    BY_STATUS,
    DeadlineExceededError,
    InternalError,
    InvalidArgumentError,
    UnavailableError,
    VectordError,
)
from vectord.v1 import admin_pb2_grpc, collections_pb2_grpc, encoder_pb2_grpc, records_pb2, records_pb2_grpc

from .coalesce import QueryCoalescer

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", limits.MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", limits.MAX_MESSAGE_BYTES),
]

_STUBS = {
    "Collections": collections_pb2_grpc.CollectionsStub,
    "Records": records_pb2_grpc.RecordsStub,
    "Admin": admin_pb2_grpc.AdminStub,
    "Encoder": encoder_pb2_grpc.EncoderStub,
}


def error_from_rpc(exc: grpc.RpcError, address: str | None = None) -> VectordError:
    """The ``vectord.errors`` class for a failed call's status code.

    gRPC's words for "nothing listens there" ("failed to connect to all addresses; last
    error: UNKNOWN: ipv4:...: Connection refused") become a sentence that says what to check.
    """
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    if code == grpc.StatusCode.UNAVAILABLE and address and details:
        details = unreachable_message(address, details)
    return error_for(code.name, details)


def error_for(status: str, details: str | None) -> VectordError:
    """The ``vectord.errors`` instance for a status name (``"NOT_FOUND"``) and its message."""
    return BY_STATUS.get(status, InternalError)(details or status)


def unreachable_message(address: str, details: str) -> str:
    """What an UNAVAILABLE failure to connect means, in terms of ``vectord serve``."""
    if "Connection refused" in details or "No such file or directory" in details:
        return f"no vectord server at {address} (is `vectord serve` running there?)"
    if "DNS resolution failed" in details or "name resolution" in details.lower():
        return f"cannot resolve the host of {address} (a typo in the address?): {details}"
    if "failed to connect" in details:
        return f"cannot connect to a vectord server at {address}: {details}"
    return details


def _pem(value: str | os.PathLike | bytes | None, what: str) -> bytes | None:
    """PEM bytes as given, or read from a path."""
    if value is None or isinstance(value, bytes):
        return value
    try:
        return Path(value).read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read the TLS {what} {value}: {exc.strerror or exc}") from None


def tls_credentials(tls: bool = False, ca: str | os.PathLike | bytes | None = None,
                    cert: str | os.PathLike | bytes | None = None,
                    key: str | os.PathLike | bytes | None = None) -> grpc.ChannelCredentials | None:
    """Channel credentials for TLS (any argument set), or None for plaintext.

    Args:
        tls: use TLS, trusting the system's root certificates unless ``ca`` is given.
        ca: PEM CA certificate(s) that signed the server's certificate (path or bytes).
        cert: PEM client certificate for mutual TLS (path or bytes); needs ``key``.
        key: PEM private key of ``cert`` (path or bytes).

    Raises:
        InvalidArgumentError: only one of ``cert`` and ``key``, or an unreadable file.
    """
    if (cert is None) != (key is None):
        raise InvalidArgumentError("mutual TLS needs both tls_cert and tls_key (the client certificate and its key)")
    if not (tls or ca is not None or cert is not None):
        return None
    return grpc.ssl_channel_credentials(root_certificates=_pem(ca, "CA certificate"),
                                        private_key=_pem(key, "client key"),
                                        certificate_chain=_pem(cert, "client certificate"))


#: Calls that are safe to repeat: reads, and writes that set records to given values.
#: Add and CreateCollection are not (a repeat of one that succeeded fails: ALREADY_EXISTS),
#: nor ModifyCollection (a repeated rename finds no collection of the old name).
IDEMPOTENT = frozenset({
    "Get", "Query", "Count", "GetCollection", "ListCollections", "GetServerInfo", "Embed",
    "ListModels", "Upsert", "Update", "Delete", "Checkpoint", "DeleteCollection", "Reset",
})
#: Retries of an idempotent call that failed with UNAVAILABLE, and the first backoff (s),
#: doubled after each try.
RETRIES, BACKOFF_S = 4, 0.1


#: How long the SDK sends its queries as Query calls after the server refused a stream
#: (RESOURCE_EXHAUSTED: its stream cap), before it tries to open one again (s).
STREAM_RETRY_AFTER_S = 1.0
#: How often the watchdog looks for stream queries past their deadline (s): a query's
#: timeout is enforced to within this.
WATCHDOG_PERIOD_S = 0.05
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def _until_none(requests: queue.SimpleQueue) -> Iterator[Any]:
    while (request := requests.get()) is not None:
        yield request


class _QueryStream:
    """One open Records.QueryStream, used by one thread: one query at a time, in order."""

    def __init__(self, open_stream, metadata) -> None:
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._answers = open_stream(_until_none(self._requests), metadata=metadata)
        self.deadline: float | None = None  # of the query in flight (time.monotonic()), for the watchdog
        self.expired = False  # the watchdog cancelled the stream: that query's deadline passed

    def ask(self, request, timeout_s: float | None) -> records_pb2.QueryStreamResponse:
        """Sends one query and waits for its answer; raises grpc.RpcError or StopIteration
        when the stream fails or ends."""
        self.expired = False  # a cancel that came after the last answer is no verdict on this query
        if timeout_s is not None:
            self.deadline = time.monotonic() + timeout_s
        self._requests.put(records_pb2.QueryStreamRequest(query=request, timeout_ms=(timeout_s or 0) * 1000))
        try:
            return next(self._answers)
        finally:
            self.deadline = None

    def cancel(self) -> None:
        self._answers.cancel()

    def close(self) -> None:
        self._requests.put(None)  # ends the request stream: the server's handler returns

    def __del__(self) -> None:  # its thread ended: free the server's worker thread now
        self.close()


def _end_streams(streams: weakref.WeakSet, lock: threading.Lock, closed: threading.Event) -> None:
    """Ends every open query stream (its request stream closed, its call cancelled) and the
    watchdog."""
    closed.set()
    with lock:
        open_streams = list(streams)
    for stream in open_streams:
        stream.close()
        stream.cancel()


def _watch(streams: weakref.WeakSet, lock: threading.Lock, closed: threading.Event) -> None:
    """Cancels a stream whose query is past its deadline (``next()`` on a stream has no
    timeout of its own); the waiting thread then raises DeadlineExceededError. It holds no
    reference to the transport, so a client dropped without close() is still collected."""
    while not closed.wait(WATCHDOG_PERIOD_S):
        now = time.monotonic()
        with lock:
            late = [s for s in streams if s.deadline is not None and s.deadline < now]
        for stream in late:
            stream.expired = True
            stream.cancel()


class GrpcTransport:
    """Calls the servicers over one gRPC channel.

    Queries go over Records.QueryStream, one stream per calling thread (it costs the server
    about half of a Query call; server/query_stream.py), and fall back to Query calls when a
    stream cannot be had (an older server, the server's stream cap) or breaks. A query is a
    read, so sending it again after a broken stream is safe. ``stream_queries=False`` sends
    every query as a Query call.

    Single queries that threads send at the same time go as batches when calls are already
    out (client/coalesce.py); ``coalesce_queries=False`` sends each on its own.
    """

    def __init__(self, address: str, api_key: str | None = None,
                 credentials: grpc.ChannelCredentials | None = None, stream_queries: bool = True,
                 coalesce_queries: bool = True) -> None:
        self.address = address
        self._channel = (grpc.secure_channel(address, credentials, options=CHANNEL_OPTIONS) if credentials
                         else grpc.insecure_channel(address, options=CHANNEL_OPTIONS))
        self._stubs = {name: stub(self._channel) for name, stub in _STUBS.items()}
        self._records: records_pb2_grpc.RecordsStub = self._stubs["Records"]  # type: ignore[assignment]
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else None
        self.stream_queries = stream_queries
        self.coalesce_queries = coalesce_queries
        self._coalescer = QueryCoalescer(self._send_query)
        self._local = threading.local()
        self._streams: weakref.WeakSet[_QueryStream] = weakref.WeakSet()
        self._streams_lock = threading.Lock()
        self._no_streams_until = 0.0
        self._watchdog: threading.Thread | None = None
        self._closed = threading.Event()
        # when the client is dropped, and at interpreter exit (a client never closed): gRPC's
        # request-consuming threads are daemons, and one frozen by the exit while it holds a
        # call's lock would hang the collection of that call
        self._end_streams = weakref.finalize(self, _end_streams, self._streams, self._streams_lock, self._closed)

    def call(self, service: str, method: str, request: Any, timeout_s: float | None) -> Any:
        if method == "Query":
            return self._coalescer.query(request, timeout_s) if self.coalesce_queries \
                else self._send_query(request, timeout_s)
        return self._unary(service, method, request, timeout_s)

    def _send_query(self, request, timeout_s: float | None):
        if self.stream_queries:
            return self._stream_query(request, timeout_s)
        return self._unary("Records", "Query", request, timeout_s)

    def _stream_query(self, request, timeout_s: float | None):
        stream = getattr(self._local, "stream", None) or self._open_stream()
        if stream is None:
            return self._unary("Records", "Query", request, timeout_s)
        started = time.monotonic()
        try:
            answer = stream.ask(request, timeout_s)
        except (grpc.RpcError, StopIteration) as exc:
            self._local.stream = None
            if stream.expired:
                raise DeadlineExceededError(f"Query: no answer within the deadline ({timeout_s} s)") from None
            stream.cancel()
            code = exc.code() if isinstance(exc, grpc.RpcError) else None
            if code in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNIMPLEMENTED):
                # the stream cap, or a server without streams: Query calls for a while
                forever = code == grpc.StatusCode.UNIMPLEMENTED
                self._no_streams_until = float("inf") if forever else time.monotonic() + STREAM_RETRY_AFTER_S
            left = None if timeout_s is None else timeout_s - (time.monotonic() - started)
            if left is not None and left <= 0:
                raise DeadlineExceededError(f"Query: no answer within the deadline ({timeout_s} s)") from None
            return self._unary("Records", "Query", request, left)  # the same query once more, as a call
        if answer.status_code:
            raise error_for(_CODE_NAMES.get(answer.status_code, "UNKNOWN"), answer.status_message)
        return answer.response

    def _open_stream(self) -> _QueryStream | None:
        if time.monotonic() < self._no_streams_until or self._closed.is_set():
            return None
        stream = _QueryStream(self._records.QueryStream, self._metadata)
        self._local.stream = stream
        with self._streams_lock:
            self._streams.add(stream)
            if self._watchdog is None:
                self._watchdog = threading.Thread(target=_watch, args=(self._streams, self._streams_lock, self._closed),
                                                  name="vectord-query-watchdog", daemon=True)
                self._watchdog.start()
        return stream

    def _unary(self, service: str, method: str, request: Any, timeout_s: float | None) -> Any:
        rpc = getattr(self._stubs[service], method)
        tries = RETRIES + 1 if method in IDEMPOTENT else 1
        for attempt in range(tries):
            try:
                return rpc(request, timeout=timeout_s, metadata=self._metadata)
            except grpc.RpcError as exc:
                error = error_from_rpc(exc, self.address)
                if not isinstance(error, UnavailableError) or attempt == tries - 1:
                    raise error from None
            time.sleep(BACKOFF_S * 2**attempt)

    def close(self) -> None:
        self._end_streams()
        self._channel.close()


class InProcessTransport:
    """Calls the server's servicers directly; imports the engine only when used."""

    def __init__(self, path: str | None, allow_reset: bool = False) -> None:
        """Runs on the data directory ``path``, or on an in-memory database when None."""
        from vectord.server.embedded import EmbeddedServer  # lazy: hnswlib only for embedded use

        self._server = EmbeddedServer(path, allow_reset=allow_reset)

    def call(self, service: str, method: str, request: Any, timeout_s: float | None) -> Any:
        try:
            return self._server.call(service, method, request, timeout_s)
        except VectordError:
            raise
        except Exception as exc:  # a bug: surface it as the remote path would
            raise InternalError(f"internal error in {service}.{method}: {exc!r}") from exc

    def close(self) -> None:
        self._server.close()
