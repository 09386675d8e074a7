"""vectord: a single-node vector database with a built-in text encoder.

    >>> import vectord
    >>> client = vectord.Client(path="./data")            # embedded, in-process
    >>> client = vectord.Client("localhost:50051")        # a running `vectord serve`

Importing this package loads only its errors; the SDK (grpcio, protobuf, numpy) loads on
first use of ``Client``, ``AsyncClient`` and the collections (about 0.2 s, which the
``vectord`` command, ``vectord serve`` included, need not pay before it knows what it runs).
Never hnswlib, onnxruntime or TensorFlow.
"""

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from vectord.client import AsyncClient, AsyncCollection, Client, Collection

_SDK = frozenset({"AsyncClient", "AsyncCollection", "Client", "Collection"})


def __getattr__(name: str):
    if name in _SDK:  # the SDK, imported on first use (PEP 562)
        from vectord import client

        value = getattr(client, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vectord' has no attribute {name!r}")


def __dir__() -> list[str]:  # tab completion lists the SDK before its first use
    return sorted(set(globals()) | _SDK)

__all__ = [
    "AlreadyExistsError", "AsyncClient", "AsyncCollection", "Client", "Collection", "DataDirectoryLockedError", "DataLossError",
    "DeadlineExceededError", "FailedPreconditionError", "InternalError", "InvalidArgumentError",
    "NotFoundError", "PermissionDeniedError", "ResourceExhaustedError", "UnauthenticatedError",
    "UnavailableError", "UnimplementedError", "VectordError", "__version__",
]
