"""Grouping a packed column's slots by value with numpy (storage/packed_groups.py), as the
metadata index is built when a collection opens: the groups must equal a plain dict's."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vectord.storage import packed_groups
from vectord.storage.metadata_index import MetadataIndex
from vectord.storage.records import PackedBytes, encode_metadata

# short values, empty ones (None), and some past SHORT_BYTES (the dict path)
value = st.one_of(st.none(), st.binary(min_size=1, max_size=20), st.sampled_from([b"a", b"ab", b"a\x00", b"\x00"]),
                  st.binary(min_size=packed_groups.SHORT_BYTES - 2, max_size=packed_groups.SHORT_BYTES + 3))


def by_dict(values, slots):
    groups: dict[bytes, list[int]] = {}
    for slot in slots:
        if values[slot]:
            groups.setdefault(values[slot], []).append(slot)
    return {value: sorted(members) for value, members in groups.items()}


def as_dict(groups):
    result = {value: members.tolist() for value, members in groups}
    assert len(result) == len(groups), "a value was split into two groups"
    return result


@settings(max_examples=300, deadline=None)
@given(values=st.lists(value, max_size=60), data=st.data())
def test_groups_equal_a_dicts(values, data):
    column = PackedBytes(values)
    slots = data.draw(st.lists(st.sampled_from(range(len(values))), unique=True) if values else st.just([]))
    assert as_dict(column.groups(np.asarray(slots, np.int64))) == by_dict(values, slots)


def test_overwritten_slots_group_by_their_new_value():
    column = PackedBytes([b"x", b"y", b"x"])
    column[1] = b"x"  # appended to the buffer; the old bytes stay, unreachable
    column[2] = None
    assert as_dict(column.groups(np.arange(3))) == {b"x": [0, 1]}


def test_a_hash_collision_is_detected_not_merged(monkeypatch):
    # every row hashes alike: the check against each group's first row must catch it
    monkeypatch.setattr(packed_groups, "_MULTIPLIER", np.uint64(0))
    values = [b"a", b"b", b"a", b"cc", None, b"b"]
    assert as_dict(PackedBytes(values).groups(np.arange(6))) == by_dict(values, range(6))


def test_index_from_groups_equals_index_from_rows():
    metadatas = [{"bucket": i % 7, "tags": ["t", str(i % 3)]} if i % 5 else {} for i in range(200)]
    packed = PackedBytes([encode_metadata(m) for m in metadatas])
    grouped = MetadataIndex.build_groups(packed.groups(np.arange(200)))
    rows = MetadataIndex.build(enumerate(metadatas))
    from vectord.storage import Field
    live = np.arange(200)
    for where in (Field("bucket", "eq", 3), Field("bucket", "gte", 5), Field("tags", "contains", "1"),
                  Field("bucket", "exists", True), Field("tags", "exists", False)):
        assert grouped.resolve(where, live).tolist() == rows.resolve(where, live).tolist()


def test_paths_built_from_one_group_do_not_share_label_buffers():
    # {"a": 1, "b": 2} feeds one group's labels to two paths: removing a label from one
    # path's array must leave the other's whole
    metadatas = [{"a": 1, "b": 2}] * 4
    index = MetadataIndex.build_groups(PackedBytes([encode_metadata(m) for m in metadatas]).groups(np.arange(4)))
    index.remove(1, {"a": 1})
    from vectord.storage import Field
    live = np.arange(4)
    assert index.resolve(Field("a", "eq", 1), live).tolist() == [0, 2, 3]
    assert index.resolve(Field("b", "eq", 2), live).tolist() == [0, 1, 2, 3]
