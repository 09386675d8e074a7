from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Vectors(_message.Message):
    __slots__ = ("dim", "count", "data_f32le")
    DIM_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    DATA_F32LE_FIELD_NUMBER: _ClassVar[int]
    dim: int
    count: int
    data_f32le: bytes
    def __init__(self, dim: _Optional[int] = ..., count: _Optional[int] = ..., data_f32le: _Optional[bytes] = ...) -> None: ...

class Value(_message.Message):
    __slots__ = ("null_value", "string_value", "int_value", "double_value", "bool_value", "list_value", "map_value")
    NULL_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    LIST_VALUE_FIELD_NUMBER: _ClassVar[int]
    MAP_VALUE_FIELD_NUMBER: _ClassVar[int]
    null_value: _struct_pb2.NullValue
    string_value: str
    int_value: int
    double_value: float
    bool_value: bool
    list_value: ListValue
    map_value: Metadata
    def __init__(self, null_value: _Optional[_Union[_struct_pb2.NullValue, str]] = ..., string_value: _Optional[str] = ..., int_value: _Optional[int] = ..., double_value: _Optional[float] = ..., bool_value: _Optional[bool] = ..., list_value: _Optional[_Union[ListValue, _Mapping]] = ..., map_value: _Optional[_Union[Metadata, _Mapping]] = ...) -> None: ...

class ListValue(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, values: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class Metadata(_message.Message):
    __slots__ = ("fields",)
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.MessageMap[str, Value]
    def __init__(self, fields: _Optional[_Mapping[str, Value]] = ...) -> None: ...

class Filter(_message.Message):
    __slots__ = ("field", "all_of", "any_of", "negation", "document")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    ALL_OF_FIELD_NUMBER: _ClassVar[int]
    ANY_OF_FIELD_NUMBER: _ClassVar[int]
    NEGATION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    field: FieldCondition
    all_of: FilterList
    any_of: FilterList
    negation: Filter
    document: DocumentCondition
    def __init__(self, field: _Optional[_Union[FieldCondition, _Mapping]] = ..., all_of: _Optional[_Union[FilterList, _Mapping]] = ..., any_of: _Optional[_Union[FilterList, _Mapping]] = ..., negation: _Optional[_Union[Filter, _Mapping]] = ..., document: _Optional[_Union[DocumentCondition, _Mapping]] = ...) -> None: ...

class FilterList(_message.Message):
    __slots__ = ("filters",)
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    filters: _containers.RepeatedCompositeFieldContainer[Filter]
    def __init__(self, filters: _Optional[_Iterable[_Union[Filter, _Mapping]]] = ...) -> None: ...

class FieldCondition(_message.Message):
    __slots__ = ("path", "op", "value")
    class Op(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OP_UNSPECIFIED: _ClassVar[FieldCondition.Op]
        EQ: _ClassVar[FieldCondition.Op]
        NE: _ClassVar[FieldCondition.Op]
        GT: _ClassVar[FieldCondition.Op]
        GTE: _ClassVar[FieldCondition.Op]
        LT: _ClassVar[FieldCondition.Op]
        LTE: _ClassVar[FieldCondition.Op]
        IN: _ClassVar[FieldCondition.Op]
        NIN: _ClassVar[FieldCondition.Op]
        EXISTS: _ClassVar[FieldCondition.Op]
        CONTAINS: _ClassVar[FieldCondition.Op]
        NOT_CONTAINS: _ClassVar[FieldCondition.Op]
    OP_UNSPECIFIED: FieldCondition.Op
    EQ: FieldCondition.Op
    NE: FieldCondition.Op
    GT: FieldCondition.Op
    GTE: FieldCondition.Op
    LT: FieldCondition.Op
    LTE: FieldCondition.Op
    IN: FieldCondition.Op
    NIN: FieldCondition.Op
    EXISTS: FieldCondition.Op
    CONTAINS: FieldCondition.Op
    NOT_CONTAINS: FieldCondition.Op
    PATH_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    path: str
    op: FieldCondition.Op
    value: Value
    def __init__(self, path: _Optional[str] = ..., op: _Optional[_Union[FieldCondition.Op, str]] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...

class DocumentCondition(_message.Message):
    __slots__ = ("op", "text")
    class Op(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OP_UNSPECIFIED: _ClassVar[DocumentCondition.Op]
        CONTAINS: _ClassVar[DocumentCondition.Op]
        NOT_CONTAINS: _ClassVar[DocumentCondition.Op]
    OP_UNSPECIFIED: DocumentCondition.Op
    CONTAINS: DocumentCondition.Op
    NOT_CONTAINS: DocumentCondition.Op
    OP_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    op: DocumentCondition.Op
    text: str
    def __init__(self, op: _Optional[_Union[DocumentCondition.Op, str]] = ..., text: _Optional[str] = ...) -> None: ...

class OptionalString(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: str
    def __init__(self, value: _Optional[str] = ...) -> None: ...

class Include(_message.Message):
    __slots__ = ("embeddings", "documents", "metadatas", "distances")
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    METADATAS_FIELD_NUMBER: _ClassVar[int]
    DISTANCES_FIELD_NUMBER: _ClassVar[int]
    embeddings: bool
    documents: bool
    metadatas: bool
    distances: bool
    def __init__(self, embeddings: _Optional[bool] = ..., documents: _Optional[bool] = ..., metadatas: _Optional[bool] = ..., distances: _Optional[bool] = ...) -> None: ...

class WriteResult(_message.Message):
    __slots__ = ("inserted", "updated", "unchanged", "deleted", "seq", "truncated_texts")
    INSERTED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_TEXTS_FIELD_NUMBER: _ClassVar[int]
    inserted: int
    updated: int
    unchanged: int
    deleted: int
    seq: int
    truncated_texts: int
    def __init__(self, inserted: _Optional[int] = ..., updated: _Optional[int] = ..., unchanged: _Optional[int] = ..., deleted: _Optional[int] = ..., seq: _Optional[int] = ..., truncated_texts: _Optional[int] = ...) -> None: ...
