from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerInfo(_message.Message):
    __slots__ = ("version", "uptime_seconds", "max_message_bytes", "max_batch_records", "collection_count")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_RECORDS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    version: str
    uptime_seconds: float
    max_message_bytes: int
    max_batch_records: int
    collection_count: int
    def __init__(self, version: _Optional[str] = ..., uptime_seconds: _Optional[float] = ..., max_message_bytes: _Optional[int] = ..., max_batch_records: _Optional[int] = ..., collection_count: _Optional[int] = ...) -> None: ...

class CheckpointRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class CheckpointResponse(_message.Message):
    __slots__ = ("checkpointed",)
    CHECKPOINTED_FIELD_NUMBER: _ClassVar[int]
    checkpointed: int
    def __init__(self, checkpointed: _Optional[int] = ...) -> None: ...
