"""vectord: a single-node vector database with a built-in text encoder.

    >>> import vectord
    >>> client = vectord.Client(path="./data")            # embedded, in-process
    >>> client = vectord.Client("localhost:50051")        # a running `vectord serve`

Importing this package loads only the SDK (grpcio, protobuf, numpy): never hnswlib,
onnxruntime or TensorFlow.
"""

__version__ = "0.1.0"

from vectord.errors import (  # noqa: E402
    AlreadyExistsError,
    DataDirectoryLockedError,
    DataLossError,
    DeadlineExceededError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    VectordError,
)
from vectord.client import AsyncClient, AsyncCollection, Client, Collection  # noqa: E402

__all__ = [
    "AlreadyExistsError", "AsyncClient", "AsyncCollection", "Client", "Collection", "DataDirectoryLockedError", "DataLossError",
    "DeadlineExceededError", "FailedPreconditionError", "InternalError", "InvalidArgumentError",
    "NotFoundError", "PermissionDeniedError", "ResourceExhaustedError", "UnauthenticatedError",
    "UnavailableError", "UnimplementedError", "VectordError", "__version__",
]
