"""Builds the gRPC server: servicers, health, reflection, limits, TLS, and the auth and error interceptors."""

from __future__ import annotations

import ipaddress
import logging
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from vectord import limits
from vectord.storage import Database
from vectord.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    collections_pb2,
    collections_pb2_grpc,
    encoder_pb2,
    encoder_pb2_grpc,
    records_pb2,
    records_pb2_grpc,
)

from .auth import AuthInterceptor, load_api_keys, warn_if_exposed
from .interceptors import ErrorInterceptor
from .query_stream import QueryStreams
from .servicers import servicers
from .settings import Settings

log = logging.getLogger(__name__)

#: How long past the grace period a stop waits for gRPC's own shutdown to finish.
STOP_SLACK_S = 5.0

#: Channel options for both ends: the same explicit message-size limit (grpcio's default
#: receive limit is 4 MiB, and the two ends must agree).
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", limits.MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", limits.MAX_MESSAGE_BYTES),
]
#: The server's options: those, and no SO_REUSEPORT. gRPC sets it by default, so a second
#: server on a port that one already holds would start, and the kernel would spread clients
#: over both data directories at random. Refused, the second one fails to bind instead.
SERVER_OPTIONS = [*CHANNEL_OPTIONS, ("grpc.so_reuseport", 0)]
IN_USE = "the port is in use (another vectord, or another program, listens there)"

SERVICE_NAMES = [
    collections_pb2.DESCRIPTOR.services_by_name["Collections"].full_name,
    records_pb2.DESCRIPTOR.services_by_name["Records"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
    encoder_pb2.DESCRIPTOR.services_by_name["Encoder"].full_name,
]


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    #: Records.QueryStream's open streams (server/query_stream.py), ended idle at stop.
    query_streams: QueryStreams | None = None

    def stop(self, grace_s: float | None) -> None:
        """Health NOT_SERVING first, then let in-flight calls finish within ``grace_s``.

        Idle query streams are cancelled at once: they are open calls, and gRPC would
        otherwise wait the whole grace period for them.
        """
        self.health.enter_graceful_shutdown()
        stopped = self.server.stop(grace_s)
        if self.query_streams is not None:
            self.query_streams.close()
        # gRPC cancels what is left when the grace ends; its shutdown event should follow at
        # once. Should it not (gRPC has been seen to hang there), the caller still closes the
        # database and exits rather than wait forever.
        if not stopped.wait((grace_s or 0) + STOP_SLACK_S):
            log.warning("gRPC did not report its shutdown %.0f s after the grace period ended; going on",
                        STOP_SLACK_S)


def create_server(settings: Settings, database: Database, metrics=None) -> RunningServer:
    """Starts a server on ``settings.host:settings.port`` (port 0 picks a free one).

    With ``metrics`` (a ``server.metrics.Metrics``), its interceptor goes outermost, so it
    sees the final status of every call, auth refusals included.
    """
    keys = load_api_keys(settings)  # before anything listens: a bad keys file stops the start
    credentials = _server_credentials(settings)
    interceptors = [AuthInterceptor(keys), ErrorInterceptor()]  # auth first: no key, no work
    if metrics is not None:
        from .metrics import MetricsInterceptor

        interceptors.insert(0, MetricsInterceptor(metrics))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="vectord-rpc"),
        interceptors=interceptors,
        options=SERVER_OPTIONS,
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    services = servicers(database, allow_reset=settings.allow_reset,
                         max_query_streams=settings.query_stream_cap,
                         query_stream_idle_s=settings.query_stream_idle_s)
    collections_pb2_grpc.add_CollectionsServicer_to_server(services["Collections"], server)
    records_pb2_grpc.add_RecordsServicer_to_server(services["Records"], server)
    admin_pb2_grpc.add_AdminServicer_to_server(services["Admin"], server)
    encoder_pb2_grpc.add_EncoderServicer_to_server(services["Encoder"], server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ["", *SERVICE_NAMES]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    address = f"{settings.host}:{settings.port}"
    if settings.port and _port_in_use(settings.host, settings.port):
        # asked of the kernel first: gRPC's own refusal comes with a C-core log line of its own
        raise OSError(f"cannot listen on {address}: {IN_USE}")
    try:
        port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    except RuntimeError:  # grpcio >= 1.5x raises "Failed to bind to address ..." instead of returning 0
        port = 0
    if port == 0:
        why = IN_USE if _port_in_use(settings.host, settings.port) else \
            "gRPC could not bind it (GRPC_VERBOSITY=debug says why)"
        raise OSError(f"cannot listen on {address}: {why}")
    server.start()
    log.info("API keys: %s; TLS: %s", f"{len(keys)} configured" if keys else "none (open)",
             "mutual (client certificates required)" if settings.tls_client_ca else
             "on" if credentials else "off")
    warn_if_exposed(settings.host, keys, tls=credentials is not None)
    return RunningServer(server, port, health_servicer, services["Records"].query_streams)


def _port_in_use(host: str, port: int) -> bool:
    """Whether a listening TCP socket already holds ``host:port`` (or the port on a wildcard
    address), read from the kernel's tables (Linux; elsewhere False, and gRPC's own refusal
    stands). Read, not probed with a bind: the served code opens no socket of its own."""
    try:
        ours = ipaddress.ip_address(host.strip("[]"))
    except ValueError:  # a name: "localhost" means loopback; other names match any listener
        ours = ipaddress.ip_address("127.0.0.1") if host == "localhost" else None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows, None)  # the header
                listening = [row.split()[1] for row in rows if row.split()[3] == "0A"]
        except OSError:
            continue
        for local in listening:
            hex_address, hex_port = local.split(":")
            if int(hex_port, 16) != port:
                continue
            raw = bytes.fromhex(hex_address)  # 32-bit words, each in host (little-endian) order
            theirs = ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)))
            if isinstance(theirs, ipaddress.IPv6Address) and theirs.ipv4_mapped:
                theirs = theirs.ipv4_mapped
            if ours is None or ours.is_unspecified or theirs.is_unspecified or theirs == ours \
                    or (host == "localhost" and theirs.is_loopback):
                return True
    return False


def _read_pem(path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise OSError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


def _server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials from ``tls_cert``/``tls_key`` (mutual TLS with ``tls_client_ca``), or None."""
    if settings.tls_cert is None:
        return None
    pair = (_read_pem(settings.tls_key, "TLS key"), _read_pem(settings.tls_cert, "TLS certificate"))
    client_ca = _read_pem(settings.tls_client_ca, "TLS client CA") if settings.tls_client_ca else None
    return grpc.ssl_server_credentials([pair], root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)
