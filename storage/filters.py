"""Filters over records: a small tree of conditions, checked once and compiled into a
predicate ``(metadata, document) -> bool``.

Semantics (documented in the README and the proto):
- ``eq``/``in`` compare ints and doubles by numeric value; bools only equal bools.
- ``gt gte lt lte`` need a number operand and match only numeric fields.
- ``ne``/``nin`` are the negation of ``eq``/``in``: a record without the field matches.
- ``exists`` takes a bool; a dotted path descends into nested maps.
- ``contains``/``not_contains`` on a field take a scalar and test membership in a list
  value (with ``eq``'s equality); ``not_contains`` is the negation (a record without the
  field, or whose field is not a list, matches it). On a non-list value ``contains`` is
  false: it is not a substring test.
- A metadata key holding a ``.`` (refused on writes; it may exist in data written before
  that rule) is never reached by a path: ``"a.b"`` always means key ``b`` inside map ``a``.
  The metadata index follows the same rule, so the index and the predicate agree.
- ``contains``/``not_contains`` on a ``Document`` test the document text (case-sensitive substring).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Union

from vectord import limits
from vectord.errors import InvalidArgumentError

FIELD_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "exists", "contains", "not_contains")
DOCUMENT_OPS = ("contains", "not_contains")
_MISSING = object()


@dataclass(frozen=True)
class Field:
    """A condition on a metadata field; ``path`` is dotted for nested maps."""

    path: str
    op: str
    value: Any


@dataclass(frozen=True)
class Document:
    """A condition on the document text."""

    op: str
    text: str


@dataclass(frozen=True)
class And:
    filters: tuple["Filter", ...]


@dataclass(frozen=True)
class Or:
    filters: tuple["Filter", ...]


@dataclass(frozen=True)
class Not:
    filter: "Filter"


Filter = Union[Field, Document, And, Or, Not]
Predicate = Callable[[dict[str, Any], "str | None"], bool]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def equality_key(value: Any) -> tuple | None:
    """The one equality of filters, as a hashable key: two values are equal when their keys
    are. Ints and doubles compare by numeric value (1 == 1.0: Python hashes them alike),
    bools only equal bools (True != 1), strings only strings; null, lists and maps have no key
    and equal nothing, nor does NaN (which no range holds either). The predicates below and the metadata index (storage/metadata_index.py,
    which files labels under these keys) both use it, so they cannot disagree on equality."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value) if value == value else None  # NaN equals nothing, not even NaN
    if isinstance(value, str):
        return ("s", value)
    return None


def _lookup(metadata: dict[str, Any], parts: tuple[str, ...]) -> Any:
    value: Any = metadata
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def compile_filter(node: Filter | None, depth: int = 1) -> Predicate | None:
    """Checks ``node`` and returns its predicate (None when there is no filter).

    Raises:
        InvalidArgumentError: unknown operator, ill-typed operand, or too deep.
    """
    if node is None:
        return None
    if depth > limits.MAX_FILTER_DEPTH:
        raise InvalidArgumentError(f"where: filter nested deeper than {limits.MAX_FILTER_DEPTH} levels")
    if isinstance(node, Field):
        return _compile_field(node)
    if isinstance(node, Document):
        if node.op not in DOCUMENT_OPS:
            raise InvalidArgumentError(f"where_document: unknown operator {node.op!r}")
        if not isinstance(node.text, str) or not node.text:
            raise InvalidArgumentError(f"where_document: ${node.op} needs a non-empty string")
        text = node.text
        if node.op == "contains":
            return lambda m, d: d is not None and text in d
        return lambda m, d: d is None or text not in d
    if isinstance(node, (And, Or)):
        parts = [compile_filter(f, depth + 1) for f in node.filters]
        if isinstance(node, And):
            return lambda m, d: all(p(m, d) for p in parts)
        return lambda m, d: any(p(m, d) for p in parts)
    if isinstance(node, Not):
        inner = compile_filter(node.filter, depth + 1)
        return lambda m, d: not inner(m, d)
    raise InvalidArgumentError(f"where: not a filter: {node!r}")


def _compile_field(node: Field) -> Predicate:
    path, op, operand = node.path, node.op, node.value
    if not isinstance(path, str) or not path or path.startswith("$") or "" in path.split("."):
        raise InvalidArgumentError(f"where: field path {path!r} is empty or malformed")
    parts = tuple(path.split("."))
    where = f"where: {path!r} ${op}"
    if op not in FIELD_OPS:
        raise InvalidArgumentError(f"where: unknown operator ${op} on {path!r}")
    if op in ("eq", "ne"):
        if not _is_scalar(operand):
            raise InvalidArgumentError(f"{where} needs a string, number or bool, got {operand!r}")
        key = equality_key(operand)
        eq = lambda m, d: key is not None and equality_key(_lookup(m, parts)) == key  # noqa: E731
        return eq if op == "eq" else (lambda m, d: not eq(m, d))
    if op in ("gt", "gte", "lt", "lte"):
        if not _is_number(operand):
            raise InvalidArgumentError(f"{where} needs a number, got {operand!r}")
        compare = {
            "gt": lambda v: v > operand,
            "gte": lambda v: v >= operand,
            "lt": lambda v: v < operand,
            "lte": lambda v: v <= operand,
        }[op]
        return lambda m, d: _is_number(v := _lookup(m, parts)) and compare(v)
    if op in ("in", "nin"):
        if not isinstance(operand, list) or not operand or not all(_is_scalar(x) for x in operand):
            raise InvalidArgumentError(f"{where} needs a non-empty list of scalars, got {operand!r}")
        options = {equality_key(x) for x in operand} - {None}
        member = lambda m, d: equality_key(_lookup(m, parts)) in options  # noqa: E731
        return member if op == "in" else (lambda m, d: not member(m, d))
    if op in ("contains", "not_contains"):
        if not _is_scalar(operand):
            raise InvalidArgumentError(f"{where} needs a string, number or bool (an element of a "
                                       f"list field), got {operand!r}")
        key = equality_key(operand)
        has = lambda m, d: key is not None and isinstance(v := _lookup(m, parts), list) and any(  # noqa: E731
            equality_key(x) == key for x in v)
        return has if op == "contains" else (lambda m, d: not has(m, d))
    # exists
    if not isinstance(operand, bool):
        raise InvalidArgumentError(f"{where} needs true or false, got {operand!r}")
    return lambda m, d: (_lookup(m, parts) is not _MISSING) == operand
