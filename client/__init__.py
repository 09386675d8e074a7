"""The Python SDK: ``Client`` and ``Collection``, over gRPC or in-process."""

from vectord.grpc_engine import import_grpc

import_grpc()  # before any module here imports grpc: it picks gRPC's I/O engine (vectord/grpc_engine.py)

from .async_client import AsyncClient, AsyncCollection
from .client import Client
from .collection import Collection

__all__ = ["AsyncClient", "AsyncCollection", "Client", "Collection"]
