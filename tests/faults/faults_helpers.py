"""Shared helpers of the fault tests."""

from __future__ import annotations

import os

import grpc

from vectord.server.app import CHANNEL_OPTIONS
from vectord.v1 import admin_pb2_grpc, collections_pb2_grpc, records_pb2_grpc


class Stubs:
    """Raw gRPC stubs over one channel (what a client in another language sees)."""

    def __init__(self, address: str, options=CHANNEL_OPTIONS) -> None:
        self.channel = grpc.insecure_channel(address, options=options)
        self.records = records_pb2_grpc.RecordsStub(self.channel)
        self.collections = collections_pb2_grpc.CollectionsStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)

    def close(self) -> None:
        self.channel.close()


def code_of(call, *args, **kwargs):
    """Runs a stub call; returns (status code, details)."""
    try:
        call(*args, **kwargs)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def healthy(address: str) -> bool:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def close_without_checkpoint(db) -> None:
    """Closes a Database the way a crash would leave it: the log keeps its records."""
    for col in list(db._collections.values()):
        col.close(checkpoint=False)
    db._collections.clear()
    db.close()


#: Long mode: ``VECTORD_LONG=1`` (tests marked ``slow`` also run with ``-m slow``).
LONG = os.environ.get("VECTORD_LONG", "") not in ("", "0")
