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

from vectord import limits
from vectord.errors import InvalidArgumentError
from vectord.v1 import types_pb2 as pb
from vectord.wire import value_to_proto

from .checks import text

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


def _check_depth(depth: int, field: str) -> None:
    """The server's rule (server/convert.py), checked before encoding: every node of the
    Filter message counts, and one dict of several conditions is an all_of node above them.
    Deeper filters would otherwise end in a RecursionError or protobuf's DecodeError."""
    if depth > limits.MAX_FILTER_DEPTH:
        raise InvalidArgumentError(f"{field}: filter nested deeper than {limits.MAX_FILTER_DEPTH} levels")


def _key(key: Any, field: str) -> str:
    if not isinstance(key, str):
        raise InvalidArgumentError(f"{field}: key {key!r} is not a string")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentError(f"{field}: key {key!r} is not valid Unicode text") from None
    return key


def where_to_proto(where: Mapping[str, Any], field: str = "where", depth: int = 1) -> pb.Filter:
    if not isinstance(where, Mapping) or not where:
        raise InvalidArgumentError(f"{field}: expected a non-empty dict, got {where!r:.200}")
    inner = depth + 1 if len(where) > 1 else depth  # several conditions: an all_of above them
    _check_depth(inner, field)
    parts = []
    for key, value in where.items():
        key = _key(key, field)
        if key in ("$and", "$or"):
            items = _list(value, key, field)
            subs = [where_to_proto(v, field, inner + 1 if len(items) > 1 else inner) for v in items]
            parts.append(_combine("all_of" if key == "$and" else "any_of", subs) if len(subs) > 1
                         else subs[0])
        elif key == "$not":
            parts.append(pb.Filter(negation=where_to_proto(value, field, inner + 1)))
        elif key.startswith("$"):
            raise InvalidArgumentError(f"{field}: unknown operator {key!r}")
        elif isinstance(value, Mapping):
            if len(value) != 1:
                raise InvalidArgumentError(
                    f"{field}: condition on {key!r} must have exactly one operator, got {list(value)}")
            (op, operand), = value.items()
            if not isinstance(op, str) or op not in _FIELD_OPS:
                raise InvalidArgumentError(f"{field}: unknown operator {op!r} on {key!r}; "
                                           f"use one of {', '.join(_FIELD_OPS)}")
            parts.append(pb.Filter(field=pb.FieldCondition(
                path=key, op=_FIELD_OPS[op], value=value_to_proto(operand, f"{field}.{key}.{op}"))))
        else:
            parts.append(pb.Filter(field=pb.FieldCondition(
                path=key, op=pb.FieldCondition.EQ, value=value_to_proto(value, f"{field}.{key}"))))
    return _combine("all_of", parts)


def where_document_to_proto(where: Mapping[str, Any], field: str = "where_document",
                            depth: int = 1) -> pb.Filter:
    if not isinstance(where, Mapping) or len(where) != 1:
        raise InvalidArgumentError(f"{field}: expected a dict with one operator, got {where!r:.200}")
    _check_depth(depth, field)
    (op, value), = where.items()
    op = _key(op, field)
    if op in ("$and", "$or"):
        items = _list(value, op, field)
        subs = [where_document_to_proto(v, field, depth + 1 if len(items) > 1 else depth) for v in items]
        return _combine("all_of" if op == "$and" else "any_of", subs)
    if op == "$not":
        return pb.Filter(negation=where_document_to_proto(value, field, depth + 1))
    if op not in _DOC_OPS:
        raise InvalidArgumentError(f"{field}: unknown operator {op!r}; use $contains or $not_contains")
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{field}: {op} needs a string, got {value!r:.200}")
    return pb.Filter(document=pb.DocumentCondition(op=_DOC_OPS[op], text=text(value, f"{field}.{op}")))


def _given(value: Any) -> bool:
    """None and {} mean no filter (as in Chroma); anything else is checked as a filter."""
    return value is not None and not (isinstance(value, Mapping) and not value)


def filter_to_proto(where: Mapping[str, Any] | None, where_document: Mapping[str, Any] | None) -> pb.Filter | None:
    """Both filters as one message (they must both hold), or None when neither is given."""
    parts = []
    base = 2 if _given(where) and _given(where_document) else 1  # both: an all_of above them
    if where is not None and _given(where):
        parts.append(where_to_proto(where, depth=base))
    if where_document is not None and _given(where_document):
        parts.append(where_document_to_proto(where_document, depth=base))
    if not parts:
        return None
    return _combine("all_of", parts)
