"""storage/graph_file.py reads hnswlib's saved graphs into the same index ``load_index`` makes,
and refuses a file that is not a consistent graph rather than handing it to hnswlib."""

from __future__ import annotations

import struct

import hnswlib
import numpy as np
import pytest

from vectord.storage.graph_file import HEADER, load_graph
from vectord.storage.index import SEED, HnswIndex


def saved_graph(tmp_path, space="cosine", n=3000, dim=12, m=8, deleted=(3, 500, 2999), name="g.bin"):
    rng = np.random.default_rng(7)
    index = hnswlib.Index(space=space, dim=dim)
    index.init_index(max_elements=n + 10, M=m, ef_construction=40, random_seed=SEED)
    index.add_items(rng.standard_normal((n, dim)).astype(np.float32), np.arange(n) * 5 + 11)
    for label in deleted:
        index.mark_deleted(label * 5 + 11)
    path = tmp_path / name
    index.save_index(str(path))
    return path


def state(index: hnswlib.Index) -> dict:
    params = index.__getstate__()[0]
    params.pop("seed")  # load_index leaves it unset: not part of the graph
    return params


@pytest.mark.parametrize("space", ["cosine", "l2", "ip"])
def test_the_same_index_as_load_index(tmp_path, space):
    path = saved_graph(tmp_path, space)
    expected = hnswlib.Index(space=space, dim=12)
    expected.load_index(str(path), max_elements=4000)
    loaded = load_graph(path, space, 12, 4000, SEED)

    want, got = state(expected), state(loaded)
    assert want.keys() == got.keys()
    for key, value in want.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, got[key]), key
        else:
            assert value == got[key], key
    assert got["has_deletions"] and got["max_level"] >= 1  # the walk over upper layers ran

    queries = np.random.default_rng(1).standard_normal((50, 12)).astype(np.float32)
    for index in (expected, loaded):
        index.set_ef(60)
    assert np.array_equal(expected.knn_query(queries, k=5)[0], loaded.knn_query(queries, k=5)[0])
    assert 3 * 5 + 11 not in set(loaded.knn_query(queries, k=5)[0].ravel().tolist())  # deleted stays deleted


def test_the_loaded_graph_takes_more_elements(tmp_path):
    path = saved_graph(tmp_path, n=500, deleted=())
    loaded = load_graph(path, "cosine", 12, 600, SEED)
    assert (loaded.get_current_count(), loaded.get_max_elements()) == (500, 600)
    extra = np.random.default_rng(2).standard_normal((100, 12)).astype(np.float32)
    loaded.add_items(extra, np.arange(100) + 10**6)
    loaded.set_ef(50)
    assert loaded.knn_query(extra[:1], k=1)[0][0][0] == 10**6
    # a capacity below the count is raised to the count, as load_index does
    assert load_graph(path, "cosine", 12, 10, SEED).get_max_elements() == 500


def test_an_empty_graph(tmp_path):
    index = hnswlib.Index(space="l2", dim=4)
    index.init_index(max_elements=10, M=8, ef_construction=20, random_seed=SEED)
    index.save_index(str(tmp_path / "empty.bin"))
    loaded = load_graph(tmp_path / "empty.bin", "l2", 4, 16, SEED)
    assert loaded.get_current_count() == 0
    expected = hnswlib.Index(space="l2", dim=4)
    expected.load_index(str(tmp_path / "empty.bin"), max_elements=16)
    assert {k: v for k, v in state(loaded).items() if not isinstance(v, np.ndarray)} == \
        {k: v for k, v in state(expected).items() if not isinstance(v, np.ndarray)}
    loaded.add_items(np.ones((1, 4), np.float32), [9])
    assert loaded.knn_query(np.ones((1, 4), np.float32), k=1)[0][0][0] == 9


def test_hnsw_index_load_reads_through_it(tmp_path):
    path = saved_graph(tmp_path, n=400, deleted=(1,))
    index = HnswIndex.load(path, "cosine", 12, m=8, ef_construction=40, ef_search=50, capacity=450, deleted=1)
    assert (index.count, index.capacity, index.live) == (400, 450, 399)


def damage(path, edit) -> None:
    data = bytearray(path.read_bytes())
    edit(data)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.__delitem__(slice(len(d) - 30, None)), "upper layers"),  # cut short
    (lambda d: d.extend(b"\x00\x00\x00\x07"), "after the last element"),  # a word too many
    (lambda d: d.__delitem__(slice(40, None)), "shorter than hnswlib's header"),
], ids=["cut short", "a word too many", "no whole header"])
def test_a_file_of_the_wrong_length_is_refused(tmp_path, edit, message):
    path = saved_graph(tmp_path)
    damage(path, edit)
    with pytest.raises(ValueError, match=message):
        load_graph(path, "cosine", 12, 4000, SEED)


def test_a_graph_of_another_dimension_is_refused(tmp_path):
    path = saved_graph(tmp_path)
    with pytest.raises(ValueError, match="does not describe a graph of 13 floats"):
        load_graph(path, "cosine", 13, 4000, SEED)


def test_a_neighbour_outside_the_graph_is_refused(tmp_path):
    path = saved_graph(tmp_path, n=300, deleted=())
    damage(path, lambda d: struct.pack_into("<I", d, HEADER.size + 4, 305))  # element 0's first id
    with pytest.raises(ValueError, match="neighbour on level 0 is outside the 300 elements"):
        load_graph(path, "cosine", 12, 400, SEED)


def test_an_overfull_list_and_a_bad_entry_point_are_refused(tmp_path):
    path = saved_graph(tmp_path, n=300, deleted=())
    damage(path, lambda d: struct.pack_into("<H", d, HEADER.size, 999))  # element 0's link count
    with pytest.raises(ValueError, match="holds 999 neighbours, over its cap"):
        load_graph(path, "cosine", 12, 400, SEED)

    path = saved_graph(tmp_path, n=300, deleted=(), name="entry.bin")
    damage(path, lambda d: struct.pack_into("<I", d, struct.calcsize("<QQQQQQi"), 300))
    with pytest.raises(ValueError, match="entry point 300 outside"):
        load_graph(path, "cosine", 12, 400, SEED)


def test_upper_layers_of_a_size_no_list_has_are_refused(tmp_path):
    path = saved_graph(tmp_path, n=300, deleted=())
    fields = HEADER.unpack_from(path.read_bytes(), 0)
    start = HEADER.size + fields[2] * fields[3]
    data = path.read_bytes()
    # the first element with upper layers: its size is the first non-zero word after level 0
    at = start + 4 * int(np.flatnonzero(np.frombuffer(data, np.uint32, (len(data) - start) // 4, start))[0])
    damage(path, lambda d: struct.pack_into("<I", d, at, struct.unpack_from("<I", d, at)[0] + 4))
    with pytest.raises(ValueError, match="are not whole lists"):
        load_graph(path, "cosine", 12, 400, SEED)


def test_a_collection_reopens_with_the_same_answers(tmp_path):
    import vectord

    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((3000, 16)).astype(np.float32)
    client = vectord.Client(path=str(tmp_path / "db"))
    col = client.create_collection("c", dim=16, metric="cosine")
    col.add(ids=[str(i) for i in range(3000)], embeddings=vectors)
    client.checkpoint("c")
    before = col.query(query_embeddings=vectors[:20], n_results=5, include=[])["ids"]
    client.close()

    client = vectord.Client(path=str(tmp_path / "db"))
    assert client.get_collection("c").query(query_embeddings=vectors[:20], n_results=5, include=[])["ids"] == before
    client.close()
