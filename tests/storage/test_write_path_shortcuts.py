"""The write path's shortcuts decide exactly as the long ways they skip (issue 13, ingest):

- ``validation._plain`` passes only maps the full metadata checks pass;
- ``framing.pack`` (a Packer per thread) encodes as ``msgpack.packb``, after a failure too;
- a batch of new ids (``_apply_put`` without lookups) leaves the same records as upserts
  that look every id up, and a restart replays it to the same state.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import threading

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vectord.errors import InvalidArgumentError
from vectord.storage import Database, Field, framing, validation

keys = st.one_of(st.sampled_from(["a", "b.c", "$x", "", "k" * 300, "é\ud800"]), st.text(max_size=6))
values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3), st.just("s" * 300), st.just("x\udc80"),
    st.lists(st.integers(0, 3), max_size=2), st.fixed_dictionaries({"n": st.integers(0, 3)}),
)


def _full_check(value: dict, records: bool) -> None:
    """The checks ``metadatas`` runs on a map that is not plain (recursion and trial encoding)."""
    validation._check_value(value, "metadatas[0]", 1, dotted_keys=not records)
    if len(msgpack.packb(value, use_bin_type=True)) > validation.limits.MAX_METADATA_BYTES:
        raise InvalidArgumentError("too big")


@settings(max_examples=400, deadline=None)
@given(value=st.dictionaries(keys, values, max_size=20), records=st.booleans())
def test_a_plain_map_passes_the_full_checks(value, records):
    if validation._plain(value, records):
        _full_check(value, records)  # raises if the shortcut let a bad map through
    # and metadatas() agrees with the full checks either way
    try:
        _full_check(value, records)
        full_ok = True
    except InvalidArgumentError:
        full_ok = False
    try:
        validation.metadatas([value], 1, records=records)
        ok = True
    except InvalidArgumentError:
        ok = False
    assert ok == full_ok


@pytest.mark.parametrize("bad", [
    {"a.b": 1}, {"$a": 1}, {"": 1}, {"a": math.nan}, {"a": math.inf}, {"a": 2**63}, {"a": -(2**63) - 1},
    {"a": object()}, {"a": np.float32(1.0)},
])
def test_bad_flat_maps_are_not_plain(bad):
    assert not validation._plain(bad, records=True)


def test_the_largest_plain_map_is_within_the_size_limit():
    value = {f"{i:02d}" + "k" * (validation._PLAIN_STR - 2): "\U0001F600" * validation._PLAIN_STR
             for i in range(validation._PLAIN_KEYS)}
    assert validation._plain(value, records=True)
    assert len(msgpack.packb(value, use_bin_type=True)) <= validation.limits.MAX_METADATA_BYTES


def test_pack_matches_packb_on_every_thread_and_after_a_failure():
    objects = [{"a": 1, "b": [1.5, "x", None, True]}, b"\x00bytes", "text", 2**62, {"n": {"m": {}}}]
    with pytest.raises(TypeError):
        framing.pack({"a": object()})
    assert [framing.pack(o) for o in objects] == [msgpack.packb(o, use_bin_type=True) for o in objects]
    seen: list[list[bytes]] = []

    def work() -> None:
        seen.append([framing.pack(o) for o in objects * 200])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(s == [msgpack.packb(o, use_bin_type=True) for o in objects * 200] for s in seen)


def _records(col, ids):
    got = col.get(ids=ids, include=["embeddings", "metadatas", "documents"])
    return {i: (e.tolist(), m, d) for i, e, m, d in zip(got.ids, got.embeddings, got.metadatas, got.documents)}


#: Writes the same records two ways, then ends without closing (os._exit: no checkpoint,
#: no atexit hook), so that reopening replays every write from the log.
WRITER = textwrap.dedent("""
    import os, sys
    import numpy as np
    from vectord.storage import Database, Field
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((300, 8)).astype(np.float32)
    ids = [f"id{i}" for i in range(300)]
    metas = [{"b": i % 7, "s": f"v{i}", "none": None} if i % 3 else {} for i in range(300)]
    docs = [f"doc {i}" if i % 2 else None for i in range(300)]
    db = Database(sys.argv[1])
    fast = db.create_collection("fast", dim=8)
    slow = db.create_collection("slow", dim=8)
    fast.add(ids, vectors, docs, metas)  # every id new: the shortcut
    slow.add(ids[:1], vectors[:1], docs[:1], metas[:1])
    slow.upsert(ids, vectors, docs, metas)  # one id existing: every record looked up
    for col in (fast, slow):  # then upserts, deletes and re-adds over the first batch
        col.upsert(ids[:50], vectors[:50] * 2, None, [{"b": 100}] * 50)
        col.delete(ids[50:60])
        col.add(ids[50:60], vectors[50:60], None, None)
    print(fast.count(), slow.count(), fast.count(where=Field("b", "eq", 100)), flush=True)
    os._exit(0)
""")


def test_a_batch_of_new_ids_stores_what_upserts_store_and_replays_the_same(tmp_path):
    done = subprocess.run([sys.executable, "-c", WRITER, str(tmp_path / "db")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["300", "300", "50"]
    ids = [f"id{i}" for i in range(300)]
    with Database(tmp_path / "db") as db:  # the log replayed (lookups on)
        fast, slow = db.get_collection("fast"), db.get_collection("slow")
        assert _records(fast, ids) == _records(slow, ids)
        assert fast.count() == slow.count() == 300
        assert fast.count(where=Field("b", "eq", 100)) == slow.count(where=Field("b", "eq", 100)) == 50
        assert fast.count(where=Field("b", "eq", 3)) == slow.count(where=Field("b", "eq", 3)) > 0
        assert _records(fast, ids[:1])["id0"][1] == {"b": 100}
        assert _records(fast, ids[299:])["id299"][1] == {"b": 299 % 7, "s": "v299"}


@pytest.mark.parametrize("write", [
    dict(ids=["a\ud800"]), dict(ids=["a"], documents=["x\ud800"]), dict(ids=["a"], metadatas=[{"k": "v\ud800"}]),
    dict(ids=["a"], metadatas=[{"k\ud800": 1}]), dict(ids=["a"], metadatas=[{"k": ["\udc00"]}]),
])
def test_a_lone_surrogate_is_refused_by_name_and_nothing_is_written(tmp_path, write):
    """Regression: the storage API let a lone surrogate reach the log, whose msgpack raised a bare
    UnicodeEncodeError (the gRPC API and the SDK refuse such strings before)."""
    with Database(tmp_path / "db") as db:
        col = db.create_collection("c", dim=2)
        with pytest.raises(InvalidArgumentError, match="lone surrogate"):
            col.add(write["ids"], np.ones((1, 2), np.float32), write.get("documents"), write.get("metadatas"))
        assert col.count() == 0
        col.add(["é"], np.ones((1, 2), np.float32), ["ü"], [{"ä": "ö"}])  # other non-ASCII text is fine
        assert col.get(ids=["é"], include=["metadatas", "documents"]).metadatas == [{"ä": "ö"}]
