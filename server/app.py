"""Builds the gRPC server: servicers, health, reflection, limits and the error interceptor."""

from __future__ import annotations

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

from .interceptors import ErrorInterceptor
from .servicers import servicers
from .settings import Settings

log = logging.getLogger(__name__)

#: Channel options for both ends: the same explicit message-size limit (REFERENCE.md).
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", limits.MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", limits.MAX_MESSAGE_BYTES),
]

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

    def stop(self, grace_s: float | None) -> None:
        """Health NOT_SERVING first, then let in-flight calls finish within ``grace_s``."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()


def create_server(settings: Settings, database: Database) -> RunningServer:
    """Starts a server on ``settings.host:settings.port`` (port 0 picks a free one)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="vectord-rpc"),
        interceptors=[ErrorInterceptor()],
        options=CHANNEL_OPTIONS,
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    services = servicers(database)
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
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    if port == 0:
        raise OSError(f"cannot listen on {settings.host}:{settings.port}")
    server.start()
    return RunningServer(server, port, health_servicer)
