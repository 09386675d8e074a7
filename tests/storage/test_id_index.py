"""Ids without Python objects per record (storage/id_index.py): the packed column, the hash
index and the id order, checked against a dict and ``sorted`` under random writes."""

from __future__ import annotations

import random

import numpy as np
import pytest

from vectord.storage import id_index
from vectord.storage.id_index import IdColumn, IdIndex
from vectord.storage.records import RecordStore

UNICODE = ["é", "日本語", "🙂", "a\x00b", "\ud800", "\udfff", "\uffff", "𐀀", "Z", "a" * 512]


@pytest.fixture
def colliding(monkeypatch):
    """Every id hashes to one of 4 values: long probe runs, hash-equal but different ids."""
    monkeypatch.setattr(id_index, "_hash", lambda id_: len(id_) % 4)
    monkeypatch.setattr(id_index, "_hashes",
                        lambda ids: np.fromiter((len(i) % 4 for i in ids), np.int64, len(ids)))


def _check(store: RecordStore, model: dict[str, int], absent: list[str]) -> None:
    assert len(store) == len(model)
    asked = list(model) + absent
    want = [model.get(i, -1) for i in asked]
    assert store.find(asked).tolist() == want  # batch path (numpy probing)
    for part in (asked[:5], asked):  # a few ids: one by one; many: the batch
        assert store.lookup(part) == [model.get(i) for i in part]
        assert store.live_labels(part) == [model[i] for i in part if i in model]
    for id_ in asked[:30]:  # scalar path
        assert store.labels.get(id_) == model.get(id_)
        assert (id_ in store.labels) == (id_ in model)
    for id_, label in list(model.items())[:200]:
        assert store.ids[label] == id_
    assert sorted(store.live().tolist()) == sorted(model.values())
    assert [store.ids[label] for label in store.ids_after("")] == sorted(model)


def _random_ops(store: RecordStore, rng: random.Random, steps: int) -> dict[str, int]:
    model: dict[str, int] = {}
    pool = [f"id-{i}" for i in range(300)] + UNICODE
    gone: list[str] = []
    for step in range(steps):
        op = rng.random()
        if op < 0.5:
            batch = [i for i in dict.fromkeys(rng.sample(pool, rng.randint(1, 60))) if i not in model]
            labels = store.append_many(batch, [None] * len(batch), [{"s": step}] * len(batch))
            model.update(zip(batch, labels.tolist()))
        elif op < 0.8 and model:
            for id_ in rng.sample(sorted(model), min(len(model), rng.randint(1, 40))):
                assert store.drop(model.pop(id_))[0] == id_
                gone.append(id_)
        elif model:  # an id read after a page was taken: the order merges the new labels
            after = rng.choice(sorted(model))
            assert [store.ids[label] for label in store.ids_after(after)] == [i for i in sorted(model) if i > after]
    _check(store, model, gone[-50:] + ["never", "id-"])
    return model


@pytest.mark.parametrize("seed", [0, 1])
def test_ids_match_a_dict_under_adds_drops_and_readds(seed):
    store = RecordStore()
    _random_ops(store, random.Random(seed), 300)


def test_forced_hash_collisions_still_find_exactly_the_right_ids(colliding):
    store = RecordStore()
    model = _random_ops(store, random.Random(2), 200)
    # ids of equal hash and equal length differ only in bytes: the byte comparison decides
    assert store.find(["id-1", "id-9", "id-x"]).tolist() == [model.get("id-1", -1), model.get("id-9", -1), -1]
    again = store.compacted()
    _check(again, {id_: rank for rank, id_ in enumerate(sorted(model, key=model.get))}, ["id-"])


def test_unicode_ids_round_trip_through_columns_and_order():
    store = RecordStore()
    store.append_many(UNICODE, [None] * len(UNICODE), [{}] * len(UNICODE))
    assert list(store.ids) == UNICODE and store.ids.take([4, 2]) == ["\ud800", "🙂"]
    columns = store.to_columns()
    assert columns["ids"] == UNICODE
    again = RecordStore.from_columns(list(range(len(UNICODE))), columns["ids"], columns["documents"],
                                     columns["metadatas"], slots=len(UNICODE))
    _check(again, {id_: label for label, id_ in enumerate(UNICODE)}, ["e", "日本"])
    assert [again.ids[label] for label in again.ids_after("Z")] == sorted(i for i in UNICODE if i > "Z")


def test_growth_keeps_every_id_and_the_table_at_most_60_percent_full():
    store = RecordStore()
    ids = [str(i) for i in range(50_000)]
    for start in range(0, len(ids), 1000):
        store.append_many(ids[start:start + 1000], [None] * 1000, [{}] * 1000)
    store.append("single", None, {})
    for label in range(0, 50_000, 7):
        store.drop(label)
    model = {id_: label for label, id_ in enumerate(ids) if label % 7}
    model["single"] = 50_000
    _check(store, model, ["0", "7", "50000"])
    table = store.labels._table
    assert np.count_nonzero(table != -1) <= 0.6 * len(table)
    assert table.dtype == np.int32  # 4 bytes a table slot


def test_repeated_ids_in_checkpoint_columns_are_refused():
    with pytest.raises(ValueError, match="repeat the id 'b'"):
        RecordStore.from_columns([0, 1, 2], ["a", "b", "b"], [None] * 3, [None] * 3, slots=3)


def test_repeats_are_found_among_forced_collisions(colliding):
    RecordStore.from_columns([0, 1], ["ab", "cd"], [None] * 2, [None] * 2, slots=2)  # equal hash, distinct
    with pytest.raises(ValueError, match="repeat"):
        RecordStore.from_columns([0, 1, 2], ["ab", "cd", "ab"], [None] * 3, [None] * 3, slots=3)


def test_dropped_labels_keep_their_id_and_a_checkpoint_gap_reads_empty():
    store = RecordStore.from_columns([1, 3], ["x", "y"], [None, "doc"], [None, None], slots=4)
    assert store.ids[0] == "" and store.ids[1] == "x" and store.documents[3] == "doc"
    store.drop(1)
    assert store.ids[1] == "x" and "x" not in store.labels
    with pytest.raises(KeyError):
        store.drop(1)
    with pytest.raises(IndexError):
        store.ids[4]


def test_column_equal_many_compares_bytes_in_numpy():
    column = IdColumn(["abc", "abd", "é", "a" * 100] * 10)
    labels = np.arange(40)
    asked = ["abc", "abc", "é", "a" * 100] * 10
    assert column.equal_many(labels, asked).tolist() == [True, False, True, True] * 10
    ascii_column = IdColumn(["abc", "x", "longer-id", "q"] * 10)
    asked = ["abc", "xy", "longer-ie", "q"] * 10  # equal, longer, same length but different, equal
    assert ascii_column.equal_many(labels, asked).tolist() == [True, False, False, True] * 10
    asked = ["abc", "é", "longer-id", ""] * 10  # not ASCII: the per-id encoding path
    assert ascii_column.equal_many(labels, asked).tolist() == [True, False, True, False] * 10
    index = IdIndex.build(column, ["abc", "abd", "é", "a" * 100], np.arange(4))
    assert index.find(["é", "abd", "zz"] * 10).tolist() == [2, 1, -1] * 10
