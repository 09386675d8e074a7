"""The metadata index and the record-by-record predicate share one equality
(``storage.filters.equality_key``, issue 12 item 4): on numeric edge values (1 and 1.0, True
and 1, -0.0 and 0, ints past 2**53, infinities, NaN as a value and as an operand) and on dotted keys written by older
versions, the index's answer equals the predicate's for every generated filter."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from vectord.storage import And, Field, Not, Or
from vectord.storage.filters import compile_filter, equality_key
from vectord.storage.metadata_index import MetadataIndex

edge = st.sampled_from([0, 1, -1, 0.0, -0.0, 1.0, True, False, 2**53, 2**53 + 1, float(2**53), math.inf,
                        -math.inf, math.nan, "1", "", "a.b"])
value = st.one_of(edge, st.none(), st.lists(edge, max_size=3), st.fixed_dictionaries({}, optional={"b": edge}))
metadata = st.dictionaries(st.sampled_from(["a", "a.b", "c"]), value, max_size=3)
operand = edge  # NaN included: it equals nothing and no range holds it, in the index as in the predicate
path = st.sampled_from(["a", "a.b", "c", "missing"])
field = st.one_of(
    st.builds(Field, path, st.sampled_from(["eq", "ne", "contains", "not_contains"]), operand),
    st.builds(Field, path, st.sampled_from(["in", "nin"]), st.lists(operand, min_size=1, max_size=3)),
    st.builds(Field, path, st.sampled_from(["gt", "gte", "lt", "lte"]),
              operand.filter(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))),
    st.builds(Field, path, st.just("exists"), st.booleans()),
)
where = st.recursive(field, lambda inner: st.one_of(
    st.builds(lambda fs: And(tuple(fs)), st.lists(inner, max_size=3)),
    st.builds(lambda fs: Or(tuple(fs)), st.lists(inner, max_size=3)),
    st.builds(Not, inner)), max_leaves=5)


@settings(max_examples=400, deadline=None)
@given(records=st.lists(metadata, max_size=20), where=where)
def test_index_and_predicate_agree_on_edge_values(records, where):
    index = MetadataIndex.build(enumerate(records))
    live = list(range(len(records)))
    predicate = compile_filter(where)
    assert index.resolve(where, live).tolist() == [label for label in live if predicate(records[label], None)]


def test_the_equality_itself():
    assert equality_key(1) == equality_key(1.0) == equality_key(True is True and 1)
    assert equality_key(True) != equality_key(1) and equality_key(False) != equality_key(0)
    assert equality_key(0) == equality_key(-0.0)
    assert equality_key("1") != equality_key(1)
    assert equality_key(2**53 + 1) != equality_key(float(2**53))
    assert equality_key(math.nan) is None  # equal to nothing, itself included
    assert equality_key(None) is None and equality_key([1]) is None and equality_key({"a": 1}) is None
