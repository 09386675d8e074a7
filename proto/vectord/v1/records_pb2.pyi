from vectord.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WriteRequest(_message.Message):
    __slots__ = ("collection", "ids", "embeddings", "documents", "metadatas", "chunking")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    METADATAS_FIELD_NUMBER: _ClassVar[int]
    CHUNKING_FIELD_NUMBER: _ClassVar[int]
    collection: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    embeddings: _types_pb2.Vectors
    documents: DocumentList
    metadatas: MetadataList
    chunking: Chunking
    def __init__(self, collection: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., embeddings: _Optional[_Union[_types_pb2.Vectors, _Mapping]] = ..., documents: _Optional[_Union[DocumentList, _Mapping]] = ..., metadatas: _Optional[_Union[MetadataList, _Mapping]] = ..., chunking: _Optional[_Union[Chunking, _Mapping]] = ...) -> None: ...

class Chunking(_message.Message):
    __slots__ = ("tokens", "overlap")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_FIELD_NUMBER: _ClassVar[int]
    tokens: int
    overlap: int
    def __init__(self, tokens: _Optional[int] = ..., overlap: _Optional[int] = ...) -> None: ...

class DocumentList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[_types_pb2.OptionalString]
    def __init__(self, values: _Optional[_Iterable[_Union[_types_pb2.OptionalString, _Mapping]]] = ...) -> None: ...

class MetadataList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[_types_pb2.Metadata]
    def __init__(self, values: _Optional[_Iterable[_Union[_types_pb2.Metadata, _Mapping]]] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("collection", "ids", "where")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    where: _types_pb2.Filter
    def __init__(self, collection: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., where: _Optional[_Union[_types_pb2.Filter, _Mapping]] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("collection", "ids", "where", "limit", "offset", "include", "page_token")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    collection: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    where: _types_pb2.Filter
    limit: int
    offset: int
    include: _types_pb2.Include
    page_token: str
    def __init__(self, collection: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., where: _Optional[_Union[_types_pb2.Filter, _Mapping]] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ..., include: _Optional[_Union[_types_pb2.Include, _Mapping]] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("ids", "embeddings", "documents", "metadatas", "next_page_token")
    IDS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    METADATAS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    embeddings: _types_pb2.Vectors
    documents: _containers.RepeatedCompositeFieldContainer[_types_pb2.OptionalString]
    metadatas: _containers.RepeatedCompositeFieldContainer[_types_pb2.Metadata]
    next_page_token: str
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., embeddings: _Optional[_Union[_types_pb2.Vectors, _Mapping]] = ..., documents: _Optional[_Iterable[_Union[_types_pb2.OptionalString, _Mapping]]] = ..., metadatas: _Optional[_Iterable[_Union[_types_pb2.Metadata, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("collection", "queries", "n_results", "where", "include", "query_texts", "explain", "rank", "fusion", "hybrid_alpha", "max_distance", "group_by", "group_size", "packed_results", "packed_columns")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    N_RESULTS_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FIELD_NUMBER: _ClassVar[int]
    QUERY_TEXTS_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    HYBRID_ALPHA_FIELD_NUMBER: _ClassVar[int]
    MAX_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    GROUP_SIZE_FIELD_NUMBER: _ClassVar[int]
    PACKED_RESULTS_FIELD_NUMBER: _ClassVar[int]
    PACKED_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    queries: _types_pb2.Vectors
    n_results: int
    where: _types_pb2.Filter
    include: _types_pb2.Include
    query_texts: _containers.RepeatedScalarFieldContainer[str]
    explain: bool
    rank: str
    fusion: str
    hybrid_alpha: float
    max_distance: float
    group_by: str
    group_size: int
    packed_results: bool
    packed_columns: bool
    def __init__(self, collection: _Optional[str] = ..., queries: _Optional[_Union[_types_pb2.Vectors, _Mapping]] = ..., n_results: _Optional[int] = ..., where: _Optional[_Union[_types_pb2.Filter, _Mapping]] = ..., include: _Optional[_Union[_types_pb2.Include, _Mapping]] = ..., query_texts: _Optional[_Iterable[str]] = ..., explain: _Optional[bool] = ..., rank: _Optional[str] = ..., fusion: _Optional[str] = ..., hybrid_alpha: _Optional[float] = ..., max_distance: _Optional[float] = ..., group_by: _Optional[str] = ..., group_size: _Optional[int] = ..., packed_results: _Optional[bool] = ..., packed_columns: _Optional[bool] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("results", "plan", "packed")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    PACKED_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[QueryResult]
    plan: QueryPlan
    packed: PackedHits
    def __init__(self, results: _Optional[_Iterable[_Union[QueryResult, _Mapping]]] = ..., plan: _Optional[_Union[QueryPlan, _Mapping]] = ..., packed: _Optional[_Union[PackedHits, _Mapping]] = ...) -> None: ...

class PackedHits(_message.Message):
    __slots__ = ("counts", "ids", "distances", "ids_joined", "distances_f32le")
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    DISTANCES_FIELD_NUMBER: _ClassVar[int]
    IDS_JOINED_FIELD_NUMBER: _ClassVar[int]
    DISTANCES_F32LE_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedScalarFieldContainer[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    distances: _containers.RepeatedScalarFieldContainer[float]
    ids_joined: bytes
    distances_f32le: bytes
    def __init__(self, counts: _Optional[_Iterable[int]] = ..., ids: _Optional[_Iterable[str]] = ..., distances: _Optional[_Iterable[float]] = ..., ids_joined: _Optional[bytes] = ..., distances_f32le: _Optional[bytes] = ...) -> None: ...

class QueryStreamRequest(_message.Message):
    __slots__ = ("request_id", "timeout_ms", "query")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    timeout_ms: float
    query: QueryRequest
    def __init__(self, request_id: _Optional[int] = ..., timeout_ms: _Optional[float] = ..., query: _Optional[_Union[QueryRequest, _Mapping]] = ...) -> None: ...

class QueryStreamResponse(_message.Message):
    __slots__ = ("request_id", "status_code", "status_message", "response")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    status_code: int
    status_message: str
    response: QueryResponse
    def __init__(self, request_id: _Optional[int] = ..., status_code: _Optional[int] = ..., status_message: _Optional[str] = ..., response: _Optional[_Union[QueryResponse, _Mapping]] = ...) -> None: ...

class QueryPlan(_message.Message):
    __slots__ = ("strategy", "candidates", "ef", "filter_path", "elapsed_ms", "rank", "postings", "fusion", "tail", "segments")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    EF_FIELD_NUMBER: _ClassVar[int]
    FILTER_PATH_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    POSTINGS_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    strategy: str
    candidates: int
    ef: int
    filter_path: str
    elapsed_ms: float
    rank: str
    postings: int
    fusion: str
    tail: int
    segments: _containers.RepeatedCompositeFieldContainer[SegmentPlan]
    def __init__(self, strategy: _Optional[str] = ..., candidates: _Optional[int] = ..., ef: _Optional[int] = ..., filter_path: _Optional[str] = ..., elapsed_ms: _Optional[float] = ..., rank: _Optional[str] = ..., postings: _Optional[int] = ..., fusion: _Optional[str] = ..., tail: _Optional[int] = ..., segments: _Optional[_Iterable[_Union[SegmentPlan, _Mapping]]] = ...) -> None: ...

class SegmentPlan(_message.Message):
    __slots__ = ("segment", "strategy", "candidates", "ef")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    EF_FIELD_NUMBER: _ClassVar[int]
    segment: str
    strategy: str
    candidates: int
    ef: int
    def __init__(self, segment: _Optional[str] = ..., strategy: _Optional[str] = ..., candidates: _Optional[int] = ..., ef: _Optional[int] = ...) -> None: ...

class QueryResult(_message.Message):
    __slots__ = ("ids", "distances", "embeddings", "documents", "metadatas", "scores", "groups")
    IDS_FIELD_NUMBER: _ClassVar[int]
    DISTANCES_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    METADATAS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    distances: _containers.RepeatedScalarFieldContainer[float]
    embeddings: _types_pb2.Vectors
    documents: _containers.RepeatedCompositeFieldContainer[_types_pb2.OptionalString]
    metadatas: _containers.RepeatedCompositeFieldContainer[_types_pb2.Metadata]
    scores: _containers.RepeatedScalarFieldContainer[float]
    groups: _containers.RepeatedCompositeFieldContainer[_types_pb2.Value]
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., distances: _Optional[_Iterable[float]] = ..., embeddings: _Optional[_Union[_types_pb2.Vectors, _Mapping]] = ..., documents: _Optional[_Iterable[_Union[_types_pb2.OptionalString, _Mapping]]] = ..., metadatas: _Optional[_Iterable[_Union[_types_pb2.Metadata, _Mapping]]] = ..., scores: _Optional[_Iterable[float]] = ..., groups: _Optional[_Iterable[_Union[_types_pb2.Value, _Mapping]]] = ...) -> None: ...

class CountRequest(_message.Message):
    __slots__ = ("collection", "where")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    where: _types_pb2.Filter
    def __init__(self, collection: _Optional[str] = ..., where: _Optional[_Union[_types_pb2.Filter, _Mapping]] = ...) -> None: ...

class CountResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class ClassifyRequest(_message.Message):
    __slots__ = ("collection", "vectors", "texts", "label_key", "k", "where")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    LABEL_KEY_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    vectors: _types_pb2.Vectors
    texts: _containers.RepeatedScalarFieldContainer[str]
    label_key: str
    k: int
    where: _types_pb2.Filter
    def __init__(self, collection: _Optional[str] = ..., vectors: _Optional[_Union[_types_pb2.Vectors, _Mapping]] = ..., texts: _Optional[_Iterable[str]] = ..., label_key: _Optional[str] = ..., k: _Optional[int] = ..., where: _Optional[_Union[_types_pb2.Filter, _Mapping]] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[Classification]
    def __init__(self, results: _Optional[_Iterable[_Union[Classification, _Mapping]]] = ...) -> None: ...

class Classification(_message.Message):
    __slots__ = ("label", "scores")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    label: _types_pb2.Value
    scores: _containers.RepeatedCompositeFieldContainer[LabelScore]
    def __init__(self, label: _Optional[_Union[_types_pb2.Value, _Mapping]] = ..., scores: _Optional[_Iterable[_Union[LabelScore, _Mapping]]] = ...) -> None: ...

class LabelScore(_message.Message):
    __slots__ = ("label", "score", "votes")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    label: _types_pb2.Value
    score: float
    votes: int
    def __init__(self, label: _Optional[_Union[_types_pb2.Value, _Mapping]] = ..., score: _Optional[float] = ..., votes: _Optional[int] = ...) -> None: ...
