"""How the SDK reaches the servicers: over gRPC, or in-process for embedded use.

Both transports take the same request messages and return the same response messages, so
the SDK above them has one code path. Both raise ``vectord.errors`` classes.
"""

from __future__ import annotations

from typing import Any

import grpc

from vectord import limits
from vectord.errors import BY_STATUS, InternalError, UnavailableError, VectordError
from vectord.v1 import admin_pb2_grpc, collections_pb2_grpc, encoder_pb2_grpc, records_pb2_grpc

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


def error_from_rpc(exc: grpc.RpcError) -> VectordError:
    """The ``vectord.errors`` class for a failed call's status code."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    cls = BY_STATUS.get(code.name, InternalError if code != grpc.StatusCode.UNAVAILABLE else UnavailableError)
    return cls(details or code.name)


class GrpcTransport:
    def __init__(self, address: str, api_key: str | None = None) -> None:
        self.address = address
        self._channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stubs = {name: stub(self._channel) for name, stub in _STUBS.items()}
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else None

    def call(self, service: str, method: str, request: Any, timeout_s: float | None) -> Any:
        rpc = getattr(self._stubs[service], method)
        try:
            return rpc(request, timeout=timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    def close(self) -> None:
        self._channel.close()


class InProcessTransport:
    """Calls the server's servicers directly; imports the engine only when used."""

    def __init__(self, path: str) -> None:
        from vectord.server.embedded import EmbeddedServer  # lazy: hnswlib only for embedded use

        self._server = EmbeddedServer(path)

    def call(self, service: str, method: str, request: Any, timeout_s: float | None) -> Any:
        try:
            return self._server.call(service, method, request, timeout_s)
        except VectordError:
            raise
        except Exception as exc:  # a bug: surface it as the remote path would
            raise InternalError(f"internal error in {service}.{method}: {exc!r}") from exc

    def close(self) -> None:
        self._server.close()
