"""The one place where engine errors become gRPC status codes.

Each ``VectordError`` subclass names its status (``vectord.errors``); anything else is a
bug and becomes INTERNAL with the traceback logged.
"""

from __future__ import annotations

import logging

import grpc

from vectord.errors import VectordError

log = logging.getLogger(__name__)


class ErrorInterceptor(grpc.ServerInterceptor):
    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # streaming rpcs (reflection) handle their own errors
        inner = handler.unary_unary
        method = handler_call_details.method

        def call(request, context):
            try:
                return inner(request, context)
            except VectordError as exc:
                context.abort(grpc.StatusCode[exc.status], exc.message)
            except Exception:
                log.exception("unexpected error in %s", method)
                context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method} (see server log)")

        return grpc.unary_unary_rpc_method_handler(
            call, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
