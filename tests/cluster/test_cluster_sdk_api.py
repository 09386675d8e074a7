"""The SDK's API tests (tests/test_api.py) against a cluster gateway: 3 shards x 2 replicas
on a 3-node Ray cluster (ray.cluster_utils, one per module), write level quorum.

The test functions are test_api's own, unchanged; only their fixtures differ here: ``client``
talks to the gateway, and ``docs`` (the four-record collection most of them use) is created
once and refilled before each test, since each collection costs six Ray actors. Left out:
the single server's refusal of shards/replicas above 1 and the embedded client's restart,
which are not about a remote API.
"""

from __future__ import annotations

import os
import sys

import pytest

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no telemetry (docs/cluster.md)
ray = pytest.importorskip("ray")
from test_api import (  # noqa: E402,F401 (collected here, with this module's fixtures)
    DOCS,
    test_add_refuses_existing_or_repeated_ids_and_writes_nothing,
    test_bad_filters_are_errors_not_empty_results,
    test_collection_lifecycle,
    test_delete_by_filter_and_ids,
    test_distance_definitions,
    test_get_by_ids_keeps_order_and_skips_missing,
    test_large_batches_are_split_by_the_sdk,
    test_numpy_and_list_inputs_agree,
    test_pages_by_filter_are_stable,
    test_query_nearest_first_with_distances,
    test_query_with_filter_returns_only_matches_and_clamps_k,
    test_update_keeps_fields_not_given_and_merges_metadata,
    test_upsert_replaces_vector_and_merges_metadata,
    test_where_document,
    test_where_filters,
    test_write_results_report_counts,
)
sys.path.insert(0, os.path.dirname(__file__))  # test_cluster.py's gateway starter (import mode importlib)
from test_cluster import three_node_cluster  # noqa: E402

import vectord  # noqa: E402

pytestmark = pytest.mark.timeout(900)

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with three_node_cluster(tmp_path_factory.mktemp("cluster-sdk")) as cluster:
        yield cluster


@pytest.fixture
def client(cluster, request):
    """The gateway; after each test, every collection but a kept ``docs`` is deleted (and
    ``docs`` too before a test that does not use it: it may list the collections)."""
    c = vectord.Client(cluster.gateway, timeout=120)
    if "docs" not in request.fixturenames:
        for collection in c.list_collections():
            c.delete_collection(collection.name)
    yield c
    for collection in c.list_collections():
        if collection.name != "docs":
            c.delete_collection(collection.name)
    c.close()


@pytest.fixture
def docs(client):
    """test_api's ``docs`` collection: made once (3 x 2 replica actors), refilled each time."""
    names = [c.name for c in client.list_collections()]
    if "docs" in names:
        collection = client.get_collection("docs")
        left = collection.get(include=[])["ids"]
        if left:
            collection.delete(ids=left)
    else:
        collection = client.create_collection("docs", dim=3, metric="cosine", metadata={"owner": "tests"})
    assert (collection.shards, collection.replicas) == (3, 2)
    collection.add(**DOCS)
    return collection
