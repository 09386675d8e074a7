"""The one place where engine errors become gRPC status codes.

Each ``VectordError`` subclass names its status (``vectord.errors``); anything else is a
bug and becomes INTERNAL with the traceback logged.
"""

from __future__ import annotations

import logging

import grpc

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
            return _Undecodable(exc)

    return deserialize


class ErrorInterceptor(grpc.ServerInterceptor):
    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # streaming rpcs (reflection) handle their own errors
        inner = handler.unary_unary
        method = handler_call_details.method

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
