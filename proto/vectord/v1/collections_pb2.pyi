from vectord.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Metric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRIC_UNSPECIFIED: _ClassVar[Metric]
    COSINE: _ClassVar[Metric]
    L2: _ClassVar[Metric]
    IP: _ClassVar[Metric]
METRIC_UNSPECIFIED: Metric
COSINE: Metric
L2: Metric
IP: Metric

class HnswParams(_message.Message):
    __slots__ = ("m", "ef_construction", "ef_search")
    M_FIELD_NUMBER: _ClassVar[int]
    EF_CONSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    EF_SEARCH_FIELD_NUMBER: _ClassVar[int]
    m: int
    ef_construction: int
    ef_search: int
    def __init__(self, m: _Optional[int] = ..., ef_construction: _Optional[int] = ..., ef_search: _Optional[int] = ...) -> None: ...

class CreateCollectionRequest(_message.Message):
    __slots__ = ("name", "dim", "metric", "hnsw", "metadata", "get_or_create", "encoder", "fulltext", "shards", "replicas")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    HNSW_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    GET_OR_CREATE_FIELD_NUMBER: _ClassVar[int]
    ENCODER_FIELD_NUMBER: _ClassVar[int]
    FULLTEXT_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    name: str
    dim: int
    metric: Metric
    hnsw: HnswParams
    metadata: _types_pb2.Metadata
    get_or_create: bool
    encoder: str
    fulltext: FullTextConfig
    shards: int
    replicas: int
    def __init__(self, name: _Optional[str] = ..., dim: _Optional[int] = ..., metric: _Optional[_Union[Metric, str]] = ..., hnsw: _Optional[_Union[HnswParams, _Mapping]] = ..., metadata: _Optional[_Union[_types_pb2.Metadata, _Mapping]] = ..., get_or_create: _Optional[bool] = ..., encoder: _Optional[str] = ..., fulltext: _Optional[_Union[FullTextConfig, _Mapping]] = ..., shards: _Optional[int] = ..., replicas: _Optional[int] = ...) -> None: ...

class FullTextConfig(_message.Message):
    __slots__ = ("analyzer", "stemming", "stop_words")
    ANALYZER_FIELD_NUMBER: _ClassVar[int]
    STEMMING_FIELD_NUMBER: _ClassVar[int]
    STOP_WORDS_FIELD_NUMBER: _ClassVar[int]
    analyzer: str
    stemming: bool
    stop_words: bool
    def __init__(self, analyzer: _Optional[str] = ..., stemming: _Optional[bool] = ..., stop_words: _Optional[bool] = ...) -> None: ...

class GetCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CollectionInfo(_message.Message):
    __slots__ = ("name", "id", "dim", "metric", "hnsw", "metadata", "count", "created_at_unix_ms", "encoder", "seq", "encoder_sha256", "fulltext", "shards", "replicas")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    HNSW_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ENCODER_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ENCODER_SHA256_FIELD_NUMBER: _ClassVar[int]
    FULLTEXT_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    dim: int
    metric: Metric
    hnsw: HnswParams
    metadata: _types_pb2.Metadata
    count: int
    created_at_unix_ms: int
    encoder: str
    seq: int
    encoder_sha256: str
    fulltext: FullTextConfig
    shards: int
    replicas: int
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., dim: _Optional[int] = ..., metric: _Optional[_Union[Metric, str]] = ..., hnsw: _Optional[_Union[HnswParams, _Mapping]] = ..., metadata: _Optional[_Union[_types_pb2.Metadata, _Mapping]] = ..., count: _Optional[int] = ..., created_at_unix_ms: _Optional[int] = ..., encoder: _Optional[str] = ..., seq: _Optional[int] = ..., encoder_sha256: _Optional[str] = ..., fulltext: _Optional[_Union[FullTextConfig, _Mapping]] = ..., shards: _Optional[int] = ..., replicas: _Optional[int] = ...) -> None: ...

class ListCollectionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[CollectionInfo]
    def __init__(self, collections: _Optional[_Iterable[_Union[CollectionInfo, _Mapping]]] = ...) -> None: ...

class DeleteCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteCollectionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModifyCollectionRequest(_message.Message):
    __slots__ = ("name", "new_name", "metadata")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NEW_NAME_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    name: str
    new_name: str
    metadata: _types_pb2.Metadata
    def __init__(self, name: _Optional[str] = ..., new_name: _Optional[str] = ..., metadata: _Optional[_Union[_types_pb2.Metadata, _Mapping]] = ...) -> None: ...
