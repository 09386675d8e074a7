"""How the SDK reaches the servicers: over gRPC, or in-process for embedded use.

Both transports take the same request messages and return the same response messages, so
the SDK above them has one code path. Both raise ``vectord.errors`` classes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import grpc

from vectord import limits
from vectord.errors import BY_STATUS, InternalError, InvalidArgumentError, UnavailableError, VectordError
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


def error_from_rpc(exc: grpc.RpcError, address: str | None = None) -> VectordError:
    """The ``vectord.errors`` class for a failed call's status code.

    gRPC's words for "nothing listens there" ("failed to connect to all addresses; last
    error: UNKNOWN: ipv4:...: Connection refused") become a sentence that says what to check.
    """
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    cls = BY_STATUS.get(code.name, InternalError if code != grpc.StatusCode.UNAVAILABLE else UnavailableError)
    if code == grpc.StatusCode.UNAVAILABLE and address and details:
        details = unreachable_message(address, details)
    return cls(details or code.name)


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


class GrpcTransport:
    def __init__(self, address: str, api_key: str | None = None,
                 credentials: grpc.ChannelCredentials | None = None) -> None:
        self.address = address
        self._channel = (grpc.secure_channel(address, credentials, options=CHANNEL_OPTIONS) if credentials
                         else grpc.insecure_channel(address, options=CHANNEL_OPTIONS))
        self._stubs = {name: stub(self._channel) for name, stub in _STUBS.items()}
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else None

    def call(self, service: str, method: str, request: Any, timeout_s: float | None) -> Any:
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
