"""Routing and the controller's table store, without Ray: stable across processes and hash
seeds, and tables durable on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from vectord.cluster import routing
from vectord.cluster.controller import TableStore
from vectord.errors import InvalidArgumentError

IDS = [f"doc-{i}" for i in range(200)] + ["", "é", "日本語", "a" * 300]
SCRIPT = ("import json, sys; from vectord.cluster.routing import bucket_of; "
          "print(json.dumps([bucket_of(i) for i in json.loads(sys.stdin.read())]))")


def test_buckets_are_identical_across_processes_and_hash_seeds():
    expected = [routing.bucket_of(i) for i in IDS]
    for seed in ("0", "1", "12345", "random"):
        out = subprocess.run([sys.executable, "-c", SCRIPT], input=json.dumps(IDS), capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout
        assert json.loads(out) == expected, seed


def test_bucket_values_are_pinned():
    # blake2b(8 bytes) mod 1024: if these change, every existing cluster's routing breaks
    assert [routing.bucket_of(i) for i in ("a", "doc-1", "日本語")] == \
        [int.from_bytes(__import__("hashlib").blake2b(i.encode(), digest_size=8).digest(), "big") % 1024
         for i in ("a", "doc-1", "日本語")]


def test_table_spreads_buckets_and_places_replicas_on_distinct_nodes():
    table = routing.RoutingTable.new("docs", {"id": "abc"}, shards=3, replicas=2, nodes=["n3", "n1", "n2"])
    assert sorted(set(table.bucket_shard)) == [0, 1, 2]
    assert all(len(set(nodes)) == 2 for nodes in table.placement)
    shards = [table.shard_of(i) for i in IDS]
    assert min(shards.count(s) for s in range(3)) > len(IDS) / 6  # roughly even
    assert routing.RoutingTable.from_dict(json.loads(json.dumps(table.to_dict()))) == table


@pytest.mark.parametrize("shards, replicas, nodes, field", [(0, 1, 3, "shards"), (3, 0, 3, "replicas"),
                                                            (3, 3, 2, "replicas"), (True, 1, 3, "shards")])
def test_bad_layouts_are_refused_naming_the_field(shards, replicas, nodes, field):
    with pytest.raises(InvalidArgumentError, match=field):
        routing.check_layout(shards, replicas, nodes)


def test_table_store_is_durable_and_ignores_torn_writes(tmp_path):
    store = TableStore(tmp_path)
    table = routing.RoutingTable.new("docs", {"id": "abc123"}, 2, 1, ["n1"]).to_dict()
    store.put(table)
    (tmp_path / "tables" / "def456.json.tmp").write_text("{torn")  # a crash before the rename
    again = TableStore(tmp_path)
    assert again.all() == [table]
    again.delete("abc123")
    assert TableStore(tmp_path).all() == []
    with pytest.raises(ValueError):
        store.put({**table, "config": {"id": "../x"}})


def test_chunk_ids_route_with_their_source_in_collections_with_an_encoder():
    """A chunked write's records f"{source}#{j}" land on the source's shard (so replacing a
    source's chunks is one shard's write); collections without an encoder, and tables made
    before this rule, route every id whole."""
    assert routing.route_key("doc#12") == "doc" and routing.route_key("doc#1#0") == "doc"
    assert routing.route_key("a#b") == "a#b" and routing.route_key("x#") == "x#"
    table = routing.RoutingTable.new("docs", {"id": "abc", "encoder": {"name": "m"}}, 3, 1, ["n1"])
    assert table.by_source
    for source in IDS:
        assert {table.shard_of(f"{source}#{j}") for j in range(20)} == {table.shard_of(source)}
    assert routing.RoutingTable.from_dict(json.loads(json.dumps(table.to_dict()))).by_source
    plain = routing.RoutingTable.new("vecs", {"id": "def"}, 3, 1, ["n1"])
    assert not plain.by_source
    assert len({plain.shard_of(f"user#{j}") for j in range(50)}) == 3  # spread by the whole id
    old = table.to_dict()
    old["extra"] = {}
    assert not routing.RoutingTable.from_dict(old).by_source
