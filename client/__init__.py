"""The Python SDK: ``Client`` and ``Collection``, over gRPC or in-process."""

from .client import Client
from .collection import Collection

__all__ = ["Client", "Collection"]
