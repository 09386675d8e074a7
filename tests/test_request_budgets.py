"""Request budgets (issue 11) and the SDK's paging of large gets (issue 15).

A read whose reply cannot fit one message is refused before the server does the work (it
used to build every row first: 500 queries x 10,000 results took it from 79 to 1,288 MiB),
and the SDK reads such a get in pages, returning one result as one call would. Every test
runs against a real server and in-process (the same servicers).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

import vectord
from serverproc import start_server
from vectord import limits
from vectord.v1 import records_pb2 as rpb
from vectord.v1 import types_pb2 as pb

DIM = 8192  # 2,200 records x 32 KiB: 72 MB of embeddings, past the 64 MiB message limit
N = 2200


def _big(client, name="big"):
    """A collection whose embeddings alone need two replies (no HNSW graph: under 4,096)."""
    col = client.create_collection(name, dim=DIM, metric="l2")
    vectors = np.random.default_rng(7).standard_normal((N, DIM), dtype=np.float32)
    ids = [f"r{i:05d}" for i in range(N)][::-1]  # label order is not id order
    col.add(ids=ids, embeddings=vectors, documents=[f"doc {i}" for i in range(N)],
            metadatas=[{"i": i, "even": i % 2 == 0} for i in range(N)])
    return col, ids, vectors


def _raw_get(client, request: rpb.GetRequest):
    """One Get call, without the SDK's paging."""
    return client._call("Records", "Get", request)


# ---------------------------------------------------------------------- refusals
def test_queries_times_n_results_has_a_named_limit(client):
    col = client.create_collection("shape", dim=2)
    col.add(ids=["a"], embeddings=[[1, 0]])
    started = time.monotonic()
    with pytest.raises(vectord.InvalidArgumentError) as err:
        col.query(query_embeddings=np.ones((500, 2), np.float32), n_results=10_000)
    assert time.monotonic() - started < 5
    message = str(err.value)
    assert "n_results" in message and "500 queries" in message and f"{limits.MAX_QUERY_RESULTS:,}" in message
    # at the limit it is served
    assert len(col.query(query_embeddings=np.ones((25, 2), np.float32), n_results=10_000)["ids"]) == 25


def test_the_building_of_a_reply_stops_at_the_limit_when_the_estimate_is_wrong(client):
    """The size estimate samples the first ids; here they are small and the rest are 1 MiB."""
    col = client.create_collection("skewed", dim=2)
    col.add(ids=[f"a{i:03d}" for i in range(100)], embeddings=np.ones((100, 2)), documents=["x"] * 100)
    big = "y" * limits.MAX_DOCUMENT_BYTES
    for lo in range(0, 70, 10):
        col.add(ids=[f"b{i:03d}" for i in range(lo, lo + 10)], embeddings=np.ones((10, 2)), documents=[big] * 10)
    with pytest.raises(vectord.ResourceExhaustedError, match="while it was built"):
        _raw_get(client, rpb.GetRequest(collection="skewed", include=pb.Include(documents=True)))
    # and the SDK pages it all the same
    got = col.get(include=["documents"])
    assert len(got["ids"]) == 170 and got["documents"][-1] == big and got["documents"][0] == "x"


# ---------------------------------------------------------------------- the SDK pages
def test_large_reads_are_refused_before_the_work_and_the_sdk_pages_gets(client):
    col, ids, vectors = _big(client)
    # the server (or the servicers, embedded) refuses what cannot fit one reply
    request = rpb.GetRequest(collection="big", include=pb.Include(embeddings=True))
    with pytest.raises(vectord.ResourceExhaustedError) as err:
        _raw_get(client, request)
    message = str(err.value)
    assert "limit" in message and "Collection.pages()" in message and "MiB" in message
    request.limit = 1000
    assert len(_raw_get(client, request).ids) == 1000  # what fits is served
    query = rpb.QueryRequest(collection="big", n_results=N, include=pb.Include(embeddings=True),
                             queries=pb.Vectors(dim=DIM, count=2, data_f32le=bytes(2 * DIM * 4)))
    with pytest.raises(vectord.ResourceExhaustedError, match="Send fewer queries"):
        client._call("Records", "Query", query)
    assert len(col.get(where={"i": {"$lt": 10}}, include=["embeddings"])["ids"]) == 10  # a filter narrows it

    # the SDK reads such a get in pages and returns what one call would have
    every = col.get(include=["embeddings", "documents", "metadatas"])  # label (insertion) order
    assert every["ids"] == ids
    assert every["embeddings"].shape == (N, DIM) and np.array_equal(every["embeddings"], vectors)
    assert every["documents"][17] == "doc 17" and every["metadatas"][17] == {"i": 17, "even": False}

    by_id = col.get(ids=ids[::-1] + ["missing"], include=["embeddings"])  # order asked, missing skipped
    assert by_id["ids"] == ids[::-1] and np.array_equal(by_id["embeddings"], vectors[::-1])

    window = col.get(where={"i": {"$gte": 5}}, limit=2000, offset=10, include=["embeddings"])
    assert window["ids"] == ids[15:2015] and np.array_equal(window["embeddings"], vectors[15:2015])

    page = col.get(limit=N - 1, page_token="", include=["embeddings"])  # a cursor page: id order
    order = np.argsort(ids)
    assert page["ids"] == sorted(ids)[: N - 1] and np.array_equal(page["embeddings"], vectors[order][: N - 1])
    rest = col.get(limit=N, page_token=page["next_page_token"], include=["embeddings"])
    assert rest["ids"] == [sorted(ids)[-1]] and rest["next_page_token"] is None

    assert sum(len(p["ids"]) for p in col.pages(page_size=N, include=["embeddings"])) == N


def test_a_refused_get_costs_the_server_no_memory(tmp_path):
    """Before: the server built every row (and its copy in the reply) before gRPC refused it."""
    data = tmp_path / "data"
    proc = start_server(data)
    with vectord.Client(proc.address, timeout=120) as client:
        _big(client)
    assert proc.terminate() == 0, proc.log()
    proc = start_server(data)  # a fresh process: its peak is the baseline
    try:
        before = _peak_rss_mib(proc.proc.pid)
        with vectord.Client(proc.address, timeout=120) as client:
            for _ in range(3):
                with pytest.raises(vectord.ResourceExhaustedError):
                    _raw_get(client, rpb.GetRequest(collection="big", include=pb.Include(embeddings=True)))
                with pytest.raises(vectord.ResourceExhaustedError):
                    client._call("Records", "Query", rpb.QueryRequest(
                        collection="big", n_results=N, include=pb.Include(embeddings=True),
                        queries=pb.Vectors(dim=DIM, count=8, data_f32le=bytes(8 * DIM * 4))))
        grew = _peak_rss_mib(proc.proc.pid) - before
        assert grew < 40, f"the server's peak memory grew by {grew:.0f} MiB"
    finally:
        assert proc.terminate() == 0, proc.log()


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/<pid>/status VmHWM here")


def test_a_get_by_ids_is_sized_by_the_ids_that_exist(client):
    """Ids that do not exist cost nothing: the bound is made exact before refusing."""
    col = client.create_collection("sparse", dim=4096)
    col.add(ids=["a", "b"], embeddings=np.ones((2, 4096)))
    asked = ["a", "b"] + [f"missing-{i}" for i in range(20_000)]  # 20,002 x 16 KiB if all existed
    got = _raw_get(client, rpb.GetRequest(collection="sparse", ids=asked, include=pb.Include(embeddings=True)))
    assert list(got.ids) == ["a", "b"]


@pytest.fixture(params=["remote", "embedded"])
def make_async_client(request, tmp_path):
    if request.param == "remote":
        address = request.getfixturevalue("server").address
        return lambda: vectord.AsyncClient(address, timeout=120)
    return lambda: vectord.AsyncClient(path=str(tmp_path / "embedded"))


def test_the_async_sdk_pages_a_get_too(make_async_client):
    async def scenario():
        async with make_async_client() as client:
            col = await client.create_collection("aio-big", dim=2)
            big = "z" * limits.MAX_DOCUMENT_BYTES
            for lo in range(0, 70, 10):  # 70 MiB of documents: two replies at least
                await col.add(ids=[f"d{i:03d}" for i in range(lo, lo + 10)], embeddings=np.ones((10, 2)),
                              documents=[big] * 10, metadatas=[{"i": i} for i in range(lo, lo + 10)])
            got = await col.get(where={"i": {"$gte": 3}}, include=["documents", "metadatas"])
            assert got["ids"] == [f"d{i:03d}" for i in range(3, 70)] and got["documents"][5] == big
            assert got["metadatas"][0] == {"i": 3}
            await client.delete_collection("aio-big")

    asyncio.run(scenario())
