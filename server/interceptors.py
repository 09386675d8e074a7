"""The one place where engine errors become gRPC status codes.

Each ``VectordError`` subclass names its status (``vectord.errors``); anything else is a
bug and becomes INTERNAL with the traceback logged.
"""

from __future__ import annotations

import logging

import grpc

from vectord import limits
from vectord.errors import VectordError

log = logging.getLogger(__name__)


class _Undecodable:
    """Stands for request bytes that are not a valid message (grpc itself would answer
    INTERNAL, "Exception deserializing request!", to a client's bad bytes)."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _tolerant(deserializer):
    if deserializer is None:
        return None

    def deserialize(data: bytes):
        try:
            return deserializer(data)
        except Exception as exc:  # protobuf DecodeError and friends
            return _Undecodable(_readable(exc))

    return deserialize


def _readable(exc: Exception) -> Exception | str:
    """protobuf's "Exceeded upb_DecodeOptions_MaxDepth" in terms of vectord's own limits:
    metadata (or a filter) nested so deep that the message cannot even be decoded."""
    if "MaxDepth" in str(exc) or "recursion" in str(exc).lower():
        return (f"it nests messages deeper than protobuf decodes (100 levels); metadata may nest at most "
                f"{limits.MAX_METADATA_DEPTH} levels and filters {limits.MAX_FILTER_DEPTH}")
    return exc


class ErrorInterceptor(grpc.ServerInterceptor):
    """Maps vectord's errors to status codes. Each method's handler is wrapped once and the
    wrapper reused (gRPC asks the interceptors for a handler on every call). Streaming
    handlers other than vectord's own are passed through untouched: wrapped in a generator,
    a non-blocking one (``Health.Watch``) would hold a worker thread while it is open."""

    def __init__(self) -> None:
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
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        if handler.unary_stream is not None and method.startswith("/vectord."):
            return _unary_stream(handler, method)
        if handler.stream_unary is not None and method.startswith("/vectord."):
            return _stream_unary(handler, method)
        if handler.stream_stream is not None and method.startswith("/vectord."):
            return _stream_stream(handler, method)
        if handler.unary_unary is None:
            return handler  # other streaming rpcs (reflection, health) handle their own errors
        inner = handler.unary_unary

        def call(request, context):
            if isinstance(request, _Undecodable):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"{method}: the request is not a valid protobuf message ({request.error})")
            try:
                return inner(request, context)
            except VectordError as exc:
                context.abort(grpc.StatusCode[exc.status], exc.message)
            except Exception:
                log.exception("unexpected error in %s", method)
                context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method} (see server log)")

        return grpc.unary_unary_rpc_method_handler(
            call, request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer)


def _abort_for(exc: Exception, method: str, context) -> None:
    """Ends a streaming call with ``exc``'s status: a VectordError's own, anything else
    INTERNAL; nothing when ``exc`` is the call's own abort (its status is set already)."""
    if not isinstance(exc, VectordError) and context.code() is not None:
        return
    if isinstance(exc, VectordError):
        context.abort(grpc.StatusCode[exc.status], exc.message)
    log.error("unexpected error in %s", method, exc_info=exc)
    context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method} (see server log)")


def _unary_stream(handler, method: str) -> grpc.RpcMethodHandler:
    """vectord's server-streaming rpcs (Admin.DownloadSnapshot): errors raised before or
    while streaming become their status codes, as for unary rpcs."""
    inner = handler.unary_stream

    def call(request, context):
        if isinstance(request, _Undecodable):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"{method}: the request is not a valid protobuf message ({request.error})")
        try:
            yield from inner(request, context)
        except Exception as exc:
            _abort_for(exc, method, context)
            raise

    return grpc.unary_stream_rpc_method_handler(
        call, request_deserializer=_tolerant(handler.request_deserializer),
        response_serializer=handler.response_serializer)


def _checked(request_iterator, context, method: str):
    """The stream's messages; one that is not a valid protobuf message ends the call
    INVALID_ARGUMENT (its bytes say nothing to answer in-band)."""
    for request in request_iterator:
        if isinstance(request, _Undecodable):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"{method}: a message is not a valid protobuf message ({request.error})")
        yield request


def _stream_unary(handler, method: str) -> grpc.RpcMethodHandler:
    """vectord's client-streaming rpcs (Admin.RestoreSnapshot), mapped like unary ones."""
    inner = handler.stream_unary

    def call(request_iterator, context):
        try:
            return inner(_checked(request_iterator, context, method), context)
        except Exception as exc:
            _abort_for(exc, method, context)
            raise

    return grpc.stream_unary_rpc_method_handler(
        call, request_deserializer=_tolerant(handler.request_deserializer),
        response_serializer=handler.response_serializer)


def _stream_stream(handler, method: str) -> grpc.RpcMethodHandler:
    """vectord's bidirectional rpcs (Records.QueryStream, which answers a failed query
    in-band): errors raised outside a message's answer end the call with their status."""
    inner = handler.stream_stream

    def call(request_iterator, context):
        try:
            yield from inner(_checked(request_iterator, context, method), context)
        except Exception as exc:
            _abort_for(exc, method, context)
            raise

    return grpc.stream_stream_rpc_method_handler(
        call, request_deserializer=_tolerant(handler.request_deserializer),
        response_serializer=handler.response_serializer)
