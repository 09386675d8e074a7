"""The one error hierarchy of vectord, shared by the engine, the server and the SDK.

Storage raises these classes; the server's error interceptor turns each into the gRPC
status named by its ``status`` attribute; the SDK turns the status back into the same
class. This module imports nothing heavy so that every layer can use it.
"""

from __future__ import annotations


class VectordError(Exception):
    """Root of every error vectord raises on purpose.

    Attributes:
        status: name of the gRPC status code this error travels as.
        retryable: whether repeating the same call later may succeed.
    """

    status = "UNKNOWN"
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgumentError(VectordError, ValueError):
    """A request field is malformed or outside its limits; nothing was written."""

    status = "INVALID_ARGUMENT"


class NotFoundError(VectordError, KeyError):
    """A named collection (or, for update, a record) does not exist."""

    status = "NOT_FOUND"

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


class AlreadyExistsError(VectordError):
    """A collection name or record id is already taken."""

    status = "ALREADY_EXISTS"


class FailedPreconditionError(VectordError):
    """The system is not in a state that allows the call (e.g. a collection that
    refuses writes after an fsync error, or a data directory owned by another process)."""

    status = "FAILED_PRECONDITION"


class DataDirectoryLockedError(FailedPreconditionError):
    """Another process owns the data directory."""


class DataLossError(VectordError):
    """Stored data failed its checksum or could not be read back."""

    status = "DATA_LOSS"


class ResourceExhaustedError(VectordError):
    """A size or capacity limit was hit (disk full, too many collections, overload)."""

    status = "RESOURCE_EXHAUSTED"
    retryable = True


class UnavailableError(VectordError):
    """The server cannot be reached or is shutting down; safe to retry idempotent calls."""

    status = "UNAVAILABLE"
    retryable = True


class DeadlineExceededError(VectordError):
    """The call's deadline passed before it finished."""

    status = "DEADLINE_EXCEEDED"
    retryable = True


class PermissionDeniedError(VectordError):
    """The credentials are valid but may not do this."""

    status = "PERMISSION_DENIED"


class UnauthenticatedError(VectordError):
    """No valid credentials were presented."""

    status = "UNAUTHENTICATED"


class UnimplementedError(VectordError):
    """A call this server does not offer (e.g. a cluster gateway, for an rpc it does not support yet)."""

    status = "UNIMPLEMENTED"


class InternalError(VectordError):
    """A bug: an unexpected failure inside vectord."""

    status = "INTERNAL"


#: The error class for each status name; used by the SDK to raise the same classes again.
BY_STATUS: dict[str, type[VectordError]] = {
    cls.status: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        AlreadyExistsError,
        FailedPreconditionError,
        DataLossError,
        ResourceExhaustedError,
        UnavailableError,
        DeadlineExceededError,
        PermissionDeniedError,
        UnauthenticatedError,
        UnimplementedError,
        InternalError,
    )
}
