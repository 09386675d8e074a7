"""Prometheus metrics on a separate HTTP port (``--metrics-port``), for ``vectord serve``.

Three parts, none of which reaches into storage code:

- :class:`MetricsInterceptor`, the outermost gRPC interceptor, so it sees every call's final
  status, including the auth interceptor's refusals and the error interceptor's mappings:
  ``vectord_requests_total`` and ``vectord_request_duration_seconds`` by method and code.
- :class:`EngineCollector`, which reads the engine's state at scrape time
  (``Collection.stats()``): records, slots, bytes on disk, log (WAL) size, checkpoint and
  recovery durations, per collection.
- :class:`MeteredEncoders`, a wrapper of the encoder registry that observes the size of
  every batch the built-in encoder embeds (``vectord_encoder_batch_size``).

Metrics live in their own registry (not the process-global one), so several servers in one
process (tests) do not collide.
"""

from __future__ import annotations

import errno
import logging
import time
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

log = logging.getLogger(__name__)

#: Latency buckets, in seconds: 0.5 ms to 30 s.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: Encoder batch-size buckets, in texts.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)


class Metrics:
    """The server's metrics: one registry, its request and encoder instruments."""

    def __init__(self, database=None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("vectord_requests", "gRPC calls finished (for QueryStream: queries answered), by method and status code",
                                ["method", "code"], registry=self.registry)
        self.latency = Histogram("vectord_request_duration_seconds",
                                 "gRPC call duration (until the last response message), by method and status code",
                                 ["method", "code"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.encoder_batch = Histogram("vectord_encoder_batch_size", "texts per built-in encoder call",
                                       ["model"], buckets=BATCH_BUCKETS, registry=self.registry)
        if database is not None:
            self.registry.register(EngineCollector(database))

    def observe(self, method: str, code: str, seconds: float) -> None:
        self.requests.labels(method, code).inc()
        self.latency.labels(method, code).observe(seconds)

    def serve(self, host: str, port: int) -> int:
        """Serves ``/metrics`` on ``host:port`` (0 = a free port) in a daemon thread; returns the port.

        Raises:
            OSError: the port cannot be bound; the message names ``--metrics-port`` and the
                port (the bare "[Errno 98] Address already in use" named neither).
        """
        try:
            server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            why = ("the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc))
            raise OSError(f"cannot serve metrics on {host}:{port} (--metrics-port {port}): {why}") from None
        return server.server_address[1]


def _code(context, default: str) -> str:
    try:
        code = context.code()
    except Exception:  # not a grpc server context
        code = None
    if code is None:
        return default
    return code.name if hasattr(code, "name") else str(code)


class MetricsInterceptor(grpc.ServerInterceptor):
    """Counts and times every call by method and final status. Put it first (outermost).

    A handler is wrapped once (cached per method, as long as the inner interceptors return
    the same handler object), not on every call. Streaming handlers keep their kind: one
    that gRPC runs without a thread of its own (``experimental_non_blocking``, as
    ``Health.Watch``) stays so, and is timed by a termination callback. Wrapped in a
    generator it would hold a worker thread for as long as the stream is open, and health
    needs no API key: 16 open Watch streams stalled a server with 16 workers.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)  # an auth refusal's handler just replaces it
        return wrapped

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        observe = self.metrics.observe

        def finish(started: float, context, failed: bool) -> None:
            observe(method, _code(context, "UNKNOWN" if failed else "OK"), time.perf_counter() - started)

        def unary(inner):
            def call(request_or_iterator, context):
                started, failed = time.perf_counter(), True
                try:
                    response = inner(request_or_iterator, context)
                    failed = False
                    return response
                finally:
                    finish(started, context, failed)
            return call

        def streaming(inner):
            if getattr(inner, "experimental_non_blocking", False):
                return _non_blocking(inner, method, observe)

            def call(request_or_iterator, context):  # runs in a worker thread anyway
                started, failed = time.perf_counter(), True
                try:
                    yield from inner(request_or_iterator, context)
                    failed = False
                except GeneratorExit:  # the client went away mid-stream
                    if context.code() is None:
                        observe(method, "CANCELLED", time.perf_counter() - started)
                        failed = None
                    raise
                finally:
                    if failed is not None:
                        finish(started, context, failed)
            return call

        kwargs = {"request_deserializer": handler.request_deserializer,
                  "response_serializer": handler.response_serializer}
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **kwargs)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **kwargs)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **kwargs)
        if method.startswith("/vectord."):  # Records.QueryStream: a call per answer
            return grpc.stream_stream_rpc_method_handler(_per_answer(handler.stream_stream, method, observe),
                                                         **kwargs)
        return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **kwargs)


_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def _per_answer(inner, method: str, observe):
    """vectord's request-response streams (Records.QueryStream, server/query_stream.py):
    each answer is counted and timed as a call of its own, from its request's arrival, by
    its in-band status; the stream itself only when it ends in a failure of its own (a
    refused key, the stream cap), so that the counts mean queries, as Query's do."""

    def call(request_iterator, context):
        started = [time.perf_counter()]

        def timed(requests):
            for request in requests:
                started[0] = time.perf_counter()
                yield request

        try:
            for response in inner(timed(request_iterator), context):
                code = getattr(response, "status_code", 0)
                observe(method, _CODE_NAMES.get(code, str(code)), time.perf_counter() - started[0])
                yield response
        except Exception:
            code = _code(context, "UNKNOWN")
            if code not in ("OK", "CANCELLED"):
                observe(method, code, time.perf_counter() - started[0])
            raise

    return call


def _non_blocking(inner, method: str, observe):
    """A non-blocking streaming behaviour (it answers through ``send_response_callback``
    and returns at once), timed from the call to the rpc's termination."""

    def call(request_or_iterator, context, send_response_callback=None):
        started = time.perf_counter()
        ended = []  # the handler closed the stream itself (a final None)

        def send(response):
            if response is None:
                ended.append(True)
            send_response_callback(response)

        def terminated():
            code = _code(context, "")
            observe(method, code or ("OK" if ended else "CANCELLED"), time.perf_counter() - started)

        if not context.add_callback(terminated):  # already over
            terminated()
        return inner(request_or_iterator, context, send_response_callback=send)

    call.experimental_non_blocking = True
    return call


class EngineCollector:
    """Reads each collection's ``stats()`` at scrape time (storage knows nothing of Prometheus)."""

    def __init__(self, database) -> None:
        self.db = database

    def describe(self):
        return []  # collected at scrape time only; keeps registration cheap

    def collect(self):
        gauges = {
            "records": GaugeMetricFamily("vectord_collection_records", "live records", labels=["collection"]),
            "slots": GaugeMetricFamily("vectord_collection_slots",
                                       "record slots, live and deleted (deleted ones go at compaction)",
                                       labels=["collection"]),
            "deleted_slots": GaugeMetricFamily("vectord_collection_deleted_slots",
                                               "slots of deleted or replaced records not yet compacted away",
                                               labels=["collection"]),
            "disk_bytes": GaugeMetricFamily("vectord_collection_bytes",
                                            "bytes on disk: checkpoint generation, MANIFEST and log",
                                            labels=["collection"]),
            "wal_bytes": GaugeMetricFamily("vectord_collection_wal_bytes", "size of the write-ahead log",
                                           labels=["collection"]),
            "seq": GaugeMetricFamily("vectord_collection_seq", "last log sequence number", labels=["collection"]),
            "recovery_seconds": GaugeMetricFamily("vectord_collection_recovery_seconds",
                                                  "time to open (recover) the collection at start",
                                                  labels=["collection"]),
        }
        checkpoints = SummaryMetricFamily("vectord_checkpoint_duration_seconds",
                                          "checkpoints written (count) and their total duration (sum)",
                                          labels=["collection"])
        compacted = CounterMetricFamily("vectord_compacted_slots", "deleted slots compacted away",
                                        labels=["collection"])
        try:
            collections = self.db.list_collections()
        except Exception:  # closing
            collections = []
        for collection in collections:
            try:
                stats: dict[str, Any] = collection.stats()
            except Exception:  # deleted while scraping
                continue
            for key, family in gauges.items():
                family.add_metric([collection.name], float(stats[key]))
            checkpoints.add_metric([collection.name], stats["checkpoints"], stats["checkpoint_seconds_total"])
            compacted.add_metric([collection.name], stats["compacted_slots_total"])
        yield from gauges.values()
        yield checkpoints
        yield compacted
        yield GaugeMetricFamily("vectord_collections", "collections served", value=len(collections))
        yield GaugeMetricFamily("vectord_recovery_seconds", "time to open the data directory at start",
                                value=getattr(self.db, "recovery_seconds", 0.0))


class _MeteredModel:
    def __init__(self, model, histogram) -> None:
        self._model, self._histogram = model, histogram

    def embed(self, texts, **kwargs):  # kwargs: truncated= (encoder/runtime.py)
        self._histogram.labels(self._model.name).observe(len(texts))
        return self._model.embed(texts, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._model, name)


class MeteredEncoders:
    """An encoder registry (``server/encoders.py``) whose models report their batch sizes."""

    def __init__(self, encoders, metrics: Metrics) -> None:
        self._encoders, self._histogram = encoders, metrics.encoder_batch
        self.default = encoders.default

    def names(self) -> list[str]:
        return self._encoders.names()

    def get(self, name: str):
        return _MeteredModel(self._encoders.get(name), self._histogram)

    def __getattr__(self, name: str):
        return getattr(self._encoders, name)
