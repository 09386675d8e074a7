"""The storage engine: collections of (id, vector, document, metadata) records in a data
directory, durable through a write-ahead log and checkpoints. Knows nothing of gRPC."""

from .collection import Collection
from .database import Database
from .filters import And, Document, Field, Not, Or
from .types import CollectionConfig, CollectionInfo, HitColumns, Records, Tuning, WriteResult

__all__ = ["And", "Collection", "CollectionConfig", "CollectionInfo", "Database", "Document",
           "Field", "Not", "Or", "Records", "Tuning", "WriteResult"]
