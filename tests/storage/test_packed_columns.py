"""The packed id and metadata columns against a plain list: offsets narrow (uint32) and
widened past the limit (storage/offsets.py), a metadata column without arrays while every
value is empty, and values shared once in the buffer (``PackedBytes.share``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vectord.storage import offsets
from vectord.storage.id_index import IdColumn
from vectord.storage.records import PackedBytes

_VALUE = st.none() | st.binary(max_size=5)
_OPS = st.lists(st.tuples(st.sampled_from(["append", "set", "share"]), st.integers(0, 60), _VALUE), max_size=60)


@pytest.fixture(params=[offsets.MAX32, 12], ids=["uint32", "widened-at-12"])
def limit(request, monkeypatch):
    """The real limit, and one low enough that the columns widen to int64 in a test."""
    monkeypatch.setattr(offsets, "MAX32", request.param)
    return request.param


def _check_bytes(column: PackedBytes, model: list) -> None:
    assert len(column) == len(model) and list(column) == [value or None for value in model]
    for slot in range(len(model)):
        assert column[slot] == (model[slot] or None)
    with pytest.raises(IndexError):
        column[len(model)]
    with pytest.raises(IndexError):
        column[-1]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(initial=st.lists(_VALUE, max_size=20), ops=_OPS, packed=st.booleans())
def test_packed_bytes_behave_as_a_list(limit, initial, ops, packed):
    if packed:
        values = [value or b"" for value in initial]
        column = PackedBytes.from_packed(b"".join(values), np.fromiter(map(len, values), np.int64, len(values)))
    else:
        column = PackedBytes(initial)
    model = list(initial)
    for op, slot, value in ops:
        if op == "append":
            column.append(value)
            model.append(value)
        elif op == "set" and model:
            column[slot % len(model)] = value
            model[slot % len(model)] = value
        elif op == "share":  # the groups of every non-empty slot, as an open computes them
            column.share(column.groups(np.arange(len(model))))
        _check_bytes(column, model)
    groups = {value: slots.tolist() for value, slots in column.groups(np.arange(len(model)))}
    expected: dict = {}
    for slot, value in enumerate(model):
        if value:
            expected.setdefault(value, []).append(slot)
    assert groups == expected


def test_a_column_of_empty_values_holds_no_arrays_until_a_value_comes():
    column = PackedBytes([None, b"", None])
    assert column._lens is None and column.groups(np.arange(3)) == []
    column.append(None)
    column[1] = None
    assert column._lens is None and list(column) == [None] * 4
    column[2] = b"x"
    assert list(column) == [None, None, b"x", None] and column._lens is not None


def test_shared_values_are_kept_once_and_setting_a_slot_leaves_the_others():
    values = [b"abc", b"de", b"abc", None, b"de", b"abc"]
    column = PackedBytes(values)
    column.share(column.groups(np.arange(6)))
    assert len(column._data) == 5 and list(column) == values
    column[0] = b"zz"
    assert list(column) == [b"zz"] + values[1:]
    partial = PackedBytes(values)
    partial.share(partial.groups(np.arange(3)))  # slots 4 and 5 not grouped: nothing changes
    assert len(partial._data) == 13 and list(partial) == values


def test_offsets_stay_4_bytes_below_the_limit():
    column = IdColumn(["a", "bb"])
    column.extend(["ccc"])
    column.append("d")
    assert column._offsets.typecode == "I"
    assert PackedBytes([b"x", b"yy"])._starts.typecode == "I"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.text(max_size=4), max_size=5), max_size=8), st.booleans())
def test_id_column_behaves_as_a_list(limit, batches, packed):
    first = batches[0] if batches else []
    if packed:
        encoded = [i.encode() for i in first]
        column = IdColumn.from_packed(b"".join(encoded), np.fromiter(map(len, encoded), np.int64, len(encoded)))
    else:
        column = IdColumn(first)
    model = list(first)
    for i, batch in enumerate(batches[1:]):
        if i % 2:
            column.extend(batch)
        else:
            for id_ in batch:
                column.append(id_)
        model += batch
        assert len(column) == len(model) and list(column) == model
    assert [column[label] for label in range(len(model))] == model
    if model:
        labels = np.arange(len(model), dtype=np.int64)[::-1].copy()
        assert column.take(labels.tolist()) == model[::-1]
        assert column.equal_many(labels, model[::-1]).all()
        assert not column.equal_many(labels, [m + "x" for m in model[::-1]]).any()
    if limit == 12 and len("".join(model).encode()) > 12:
        assert column._offsets.typecode == "q"
