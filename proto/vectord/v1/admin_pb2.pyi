from vectord.v1 import encoder_pb2 as _encoder_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReembedCollectionRequest(_message.Message):
    __slots__ = ("collection", "model", "batch", "cancel")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    collection: str
    model: str
    batch: int
    cancel: bool
    def __init__(self, collection: _Optional[str] = ..., model: _Optional[str] = ..., batch: _Optional[int] = ..., cancel: _Optional[bool] = ...) -> None: ...

class ReembedCollectionResponse(_message.Message):
    __slots__ = ("collection", "model", "done", "total", "switched", "truncated_texts")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    SWITCHED_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_TEXTS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    model: _encoder_pb2.ModelInfo
    done: int
    total: int
    switched: bool
    truncated_texts: int
    def __init__(self, collection: _Optional[str] = ..., model: _Optional[_Union[_encoder_pb2.ModelInfo, _Mapping]] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., switched: _Optional[bool] = ..., truncated_texts: _Optional[int] = ...) -> None: ...

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerInfo(_message.Message):
    __slots__ = ("version", "uptime_seconds", "max_message_bytes", "max_batch_records", "collection_count", "server_time_unix_ns", "allow_reset")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_RECORDS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    SERVER_TIME_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_RESET_FIELD_NUMBER: _ClassVar[int]
    version: str
    uptime_seconds: float
    max_message_bytes: int
    max_batch_records: int
    collection_count: int
    server_time_unix_ns: int
    allow_reset: bool
    def __init__(self, version: _Optional[str] = ..., uptime_seconds: _Optional[float] = ..., max_message_bytes: _Optional[int] = ..., max_batch_records: _Optional[int] = ..., collection_count: _Optional[int] = ..., server_time_unix_ns: _Optional[int] = ..., allow_reset: _Optional[bool] = ...) -> None: ...

class CheckpointRequest(_message.Message):
    __slots__ = ("collection", "compact")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    COMPACT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    compact: bool
    def __init__(self, collection: _Optional[str] = ..., compact: _Optional[bool] = ...) -> None: ...

class CheckpointResponse(_message.Message):
    __slots__ = ("checkpointed", "compacted_slots")
    CHECKPOINTED_FIELD_NUMBER: _ClassVar[int]
    COMPACTED_SLOTS_FIELD_NUMBER: _ClassVar[int]
    checkpointed: int
    compacted_slots: int
    def __init__(self, checkpointed: _Optional[int] = ..., compacted_slots: _Optional[int] = ...) -> None: ...

class CreateSnapshotRequest(_message.Message):
    __slots__ = ("collection", "name")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    collection: str
    name: str
    def __init__(self, collection: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class SnapshotInfo(_message.Message):
    __slots__ = ("name", "collection", "created_at_ms", "record_count", "seq", "size_bytes", "dim")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    name: str
    collection: str
    created_at_ms: int
    record_count: int
    seq: int
    size_bytes: int
    dim: int
    def __init__(self, name: _Optional[str] = ..., collection: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., record_count: _Optional[int] = ..., seq: _Optional[int] = ..., size_bytes: _Optional[int] = ..., dim: _Optional[int] = ...) -> None: ...

class ListSnapshotsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSnapshotsResponse(_message.Message):
    __slots__ = ("snapshots",)
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    snapshots: _containers.RepeatedCompositeFieldContainer[SnapshotInfo]
    def __init__(self, snapshots: _Optional[_Iterable[_Union[SnapshotInfo, _Mapping]]] = ...) -> None: ...

class DownloadSnapshotRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class SnapshotChunk(_message.Message):
    __slots__ = ("path", "offset_bytes", "data", "file_size_bytes")
    PATH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    FILE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    path: str
    offset_bytes: int
    data: bytes
    file_size_bytes: int
    def __init__(self, path: _Optional[str] = ..., offset_bytes: _Optional[int] = ..., data: _Optional[bytes] = ..., file_size_bytes: _Optional[int] = ...) -> None: ...

class RestoreSnapshotRequest(_message.Message):
    __slots__ = ("snapshot", "collection", "replace", "chunk")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    snapshot: str
    collection: str
    replace: bool
    chunk: SnapshotChunk
    def __init__(self, snapshot: _Optional[str] = ..., collection: _Optional[str] = ..., replace: _Optional[bool] = ..., chunk: _Optional[_Union[SnapshotChunk, _Mapping]] = ...) -> None: ...

class RestoreSnapshotResponse(_message.Message):
    __slots__ = ("collection", "record_count")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    record_count: int
    def __init__(self, collection: _Optional[str] = ..., record_count: _Optional[int] = ...) -> None: ...

class ResetRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResetResponse(_message.Message):
    __slots__ = ("deleted_collections",)
    DELETED_COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    deleted_collections: int
    def __init__(self, deleted_collections: _Optional[int] = ...) -> None: ...
