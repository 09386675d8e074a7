"""The gateway: a gRPC server with the same services as `vectord serve`, over a cluster.

It runs the server's own servicers (request validation, conversion, reply budgets, error
mapping) on a ``ClusterDatabase`` instead of a ``storage.Database``; what differs is here:
``GetServerInfo`` says it is a cluster (version "<version>+cluster"), and the RPCs the
cluster does not support yet answer UNIMPLEMENTED, naming themselves.
"""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from vectord.server.app import SERVER_OPTIONS, SERVICE_NAMES, RunningServer, _server_credentials
from vectord.server.auth import AuthInterceptor, load_api_keys
from vectord.server.interceptors import ErrorInterceptor
from vectord.server.servicers import AdminServicer, CollectionsServicer, EncoderServicer, RecordsServicer
from vectord.server.settings import Settings
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

from vectord.errors import InvalidArgumentError, UnimplementedError

from .engine import unimplemented, vectors_embedded_by
from .ingest import IMPORT_MODEL_HEADER

log = logging.getLogger(__name__)

#: ServerInfo.version of a gateway: the version with a PEP 440 local label, so that a client
#: tells a cluster from one server by `info` alone, through the unchanged API.
CLUSTER_LABEL = "+cluster"


#: The rpcs the gateway answers, by service; every other rpc of the service (downloading
#: snapshots, re-embedding, and any rpc added to the .proto later) answers UNIMPLEMENTED,
#: naming itself, instead of reaching a servicer method that expects a storage.Database.
SUPPORTED = {
    "Collections": {"CreateCollection", "GetCollection", "ListCollections", "DeleteCollection", "ModifyCollection"},
    "Records": {"Add", "Upsert", "Update", "Delete", "Get", "Query", "QueryStream", "Count", "Classify"},
    "Admin": {"GetServerInfo", "Reset", "CreateSnapshot", "ListSnapshots", "RestoreSnapshot", "Checkpoint"},
    "Encoder": {"Embed", "ListModels"},
}
_PROTO = {"Collections": collections_pb2, "Records": records_pb2, "Admin": admin_pb2, "Encoder": encoder_pb2}


def _refusing(service: str, method: str):
    def refuse(self, request, context):
        raise unimplemented(f"{service}.{method}")

    refuse.__name__ = method
    return refuse


def gateway_servicer(base: type, service: str) -> type:
    """``base`` (a vectord.server servicer) with its unsupported rpcs answering UNIMPLEMENTED."""
    methods = _PROTO[service].DESCRIPTOR.services_by_name[service].methods_by_name
    refusals = {name: _refusing(service, name) for name in methods if name not in SUPPORTED[service]}
    return type(f"Cluster{base.__name__}", (base,), refusals)


class ClusterAdminServicer(gateway_servicer(AdminServicer, "Admin")):  # type: ignore[misc]
    def GetServerInfo(self, request, context):
        info = super().GetServerInfo(request, context)
        info.version += CLUSTER_LABEL
        return info

    def DownloadSnapshot(self, request, context):
        raise UnimplementedError(
            "Admin.DownloadSnapshot is not supported by the vectord cluster gateway: a cluster snapshot is "
            "one copy per shard, each on its shard's nodes; restore it by name (Admin.RestoreSnapshot). "
            "See docs/cluster.md, 'Snapshots'")

    def RestoreSnapshot(self, request_iterator, context) -> admin_pb2.RestoreSnapshotResponse:
        """A cluster snapshot restored by name; an upload (files in the stream) is refused."""
        first = next(iter(request_iterator), None)
        if first is None:
            raise InvalidArgumentError("RestoreSnapshot: the stream is empty")
        if not first.snapshot:
            raise UnimplementedError(
                "Admin.RestoreSnapshot is not supported by the vectord cluster gateway for uploaded files: restore "
                "a cluster snapshot by its name (see docs/cluster.md, 'Snapshots')")
        if first.HasField("chunk"):
            raise InvalidArgumentError("RestoreSnapshot: give a snapshot name or upload files, not both")
        collection = self.db.restore_snapshot(first.snapshot, first.collection or None, first.replace)
        return admin_pb2.RestoreSnapshotResponse(collection=collection.name, record_count=collection.info().count)


class ClusterCollectionsServicer(gateway_servicer(CollectionsServicer, "Collections")):  # type: ignore[misc]
    def _layout(self, request):
        """The request's shards and replicas, for the ClusterDatabase (absent ones: its
        defaults, or the old clients' "vectord:shards"/"vectord:replicas" metadata keys)."""
        return {field: getattr(request, field) for field in ("shards", "replicas") if request.HasField(field)}


class ClusterRecordsServicer(gateway_servicer(RecordsServicer, "Records")):  # type: ignore[misc]
    """Writes of `vectord cluster import` carry the sha256 of the model that embedded their
    vectors (cluster/ingest.py); the collection accepts them when it is its own model's."""

    def _imported(self, name: str, request, context):
        sha = dict(context.invocation_metadata() or ()).get(IMPORT_MODEL_HEADER)
        with vectors_embedded_by(sha):
            return getattr(super(), name)(request, context)

    def Add(self, request, context):
        return self._imported("Add", request, context)

    def Upsert(self, request, context):
        return self._imported("Upsert", request, context)


def create_gateway(settings: Settings, database) -> RunningServer:
    """Starts the gateway on ``settings.host:settings.port`` over ``database`` (a ClusterDatabase)."""
    keys = load_api_keys(settings)
    credentials = _server_credentials(settings)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="vectord-gateway"),
        interceptors=[AuthInterceptor(keys), ErrorInterceptor()], options=SERVER_OPTIONS,
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs)
    collections_pb2_grpc.add_CollectionsServicer_to_server(
        ClusterCollectionsServicer(database), server)
    records = ClusterRecordsServicer(database, settings.query_stream_cap,
                                     settings.query_stream_idle_s)
    records_pb2_grpc.add_RecordsServicer_to_server(records, server)
    admin_pb2_grpc.add_AdminServicer_to_server(ClusterAdminServicer(database, settings.allow_reset), server)
    encoder_pb2_grpc.add_EncoderServicer_to_server(gateway_servicer(EncoderServicer, "Encoder")(database), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ["", *SERVICE_NAMES]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection([*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    address = f"{settings.host}:{settings.port}"
    try:
        port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    server.start()
    return RunningServer(server, port, health_servicer, records.query_streams)
