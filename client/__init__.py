"""The Python SDK: ``Client`` and ``Collection``, over gRPC or in-process."""

from .async_client import AsyncClient, AsyncCollection
from .client import Client
from .collection import Collection

__all__ = ["AsyncClient", "AsyncCollection", "Client", "Collection"]
