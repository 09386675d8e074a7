"""Chroma-style filter dicts -> the v1 ``Filter`` message.

    {"year": 2020}                                  equality
    {"year": {"$gte": 2000}}                        $eq $ne $gt $gte $lt $lte $in $nin $exists
    {"$and": [{...}, {...}]}, {"$or": [...]}        combinations
    {"$not": {...}}                                 negation
    {"tags": {"$contains": "red"}}                  a list field holds the value (also $not_contains)
    {"author.name": "Ann"}                          dotted paths into nested metadata
    where_document={"$contains": "text"}            also $not_contains, $and, $or

Structure is checked here (unknown operators are errors, never empty results); operand
types are checked by the server, so every language gets the same rules.
"""

from __future__ import annotations

from typing import Any, Mapping

from vectord.errors import InvalidArgumentError
from vectord.v1 import types_pb2 as pb
from vectord.wire import value_to_proto

_FIELD_OPS = {
    "$eq": pb.FieldCondition.EQ, "$ne": pb.FieldCondition.NE, "$gt": pb.FieldCondition.GT,
    "$gte": pb.FieldCondition.GTE, "$lt": pb.FieldCondition.LT, "$lte": pb.FieldCondition.LTE,
    "$in": pb.FieldCondition.IN, "$nin": pb.FieldCondition.NIN, "$exists": pb.FieldCondition.EXISTS,
    "$contains": pb.FieldCondition.CONTAINS, "$not_contains": pb.FieldCondition.NOT_CONTAINS,
}
_DOC_OPS = {"$contains": pb.DocumentCondition.CONTAINS, "$not_contains": pb.DocumentCondition.NOT_CONTAINS}


def _combine(kind: str, parts: list[pb.Filter]) -> pb.Filter:
    if len(parts) == 1:
        return parts[0]
    msg = pb.Filter()
    getattr(msg, kind).filters.extend(parts)
    return msg


def _list(value: Any, op: str, field: str) -> list:
    if not isinstance(value, list) or not value:
        raise InvalidArgumentError(f"{field}: {op} needs a non-empty list of filters, got {value!r}")
    return value


def where_to_proto(where: Mapping[str, Any], field: str = "where") -> pb.Filter:
    if not isinstance(where, Mapping) or not where:
        raise InvalidArgumentError(f"{field}: expected a non-empty dict, got {where!r}")
    parts = []
    for key, value in where.items():
        if key in ("$and", "$or"):
            subs = [where_to_proto(v, field) for v in _list(value, key, field)]
            parts.append(_combine("all_of" if key == "$and" else "any_of", subs) if len(subs) > 1
                         else subs[0])
        elif key == "$not":
            parts.append(pb.Filter(negation=where_to_proto(value, field)))
        elif key.startswith("$"):
            raise InvalidArgumentError(f"{field}: unknown operator {key!r}")
        elif isinstance(value, Mapping):
            if len(value) != 1:
                raise InvalidArgumentError(
                    f"{field}: condition on {key!r} must have exactly one operator, got {list(value)}")
            (op, operand), = value.items()
            if op not in _FIELD_OPS:
                raise InvalidArgumentError(f"{field}: unknown operator {op!r} on {key!r}; "
                                           f"use one of {', '.join(_FIELD_OPS)}")
            parts.append(pb.Filter(field=pb.FieldCondition(
                path=key, op=_FIELD_OPS[op], value=value_to_proto(operand, f"{field}.{key}.{op}"))))
        else:
            parts.append(pb.Filter(field=pb.FieldCondition(
                path=key, op=pb.FieldCondition.EQ, value=value_to_proto(value, f"{field}.{key}"))))
    return _combine("all_of", parts)


def where_document_to_proto(where: Mapping[str, Any], field: str = "where_document") -> pb.Filter:
    if not isinstance(where, Mapping) or len(where) != 1:
        raise InvalidArgumentError(f"{field}: expected a dict with one operator, got {where!r}")
    (op, value), = where.items()
    if op in ("$and", "$or"):
        subs = [where_document_to_proto(v, field) for v in _list(value, op, field)]
        return _combine("all_of" if op == "$and" else "any_of", subs)
    if op == "$not":
        return pb.Filter(negation=where_document_to_proto(value, field))
    if op not in _DOC_OPS:
        raise InvalidArgumentError(f"{field}: unknown operator {op!r}; use $contains or $not_contains")
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{field}: {op} needs a string, got {value!r}")
    return pb.Filter(document=pb.DocumentCondition(op=_DOC_OPS[op], text=value))


def filter_to_proto(where: Mapping[str, Any] | None, where_document: Mapping[str, Any] | None) -> pb.Filter | None:
    """Both filters as one message (they must both hold), or None when neither is given."""
    parts = []
    if where:
        parts.append(where_to_proto(where))
    if where_document:
        parts.append(where_document_to_proto(where_document))
    if not parts:
        return None
    return _combine("all_of", parts)
