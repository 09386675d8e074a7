"""AsyncClient: the same surface and semantics as Client, over grpc.aio or in-process."""

from __future__ import annotations

import asyncio
import inspect

import numpy as np
import pytest

import vectord


@pytest.fixture(params=["remote", "embedded"])
def make_client(request, tmp_path):
    if request.param == "remote":
        address = request.getfixturevalue("server").address
        return lambda: vectord.AsyncClient(address)
    return lambda: vectord.AsyncClient(path=str(tmp_path / "embedded"))


def test_async_surface_matches_the_sync_one():
    for sync_cls, async_cls in ((vectord.Client, vectord.AsyncClient),
                                (vectord.Collection, vectord.AsyncCollection)):
        public = {n for n in dir(sync_cls) if not n.startswith("_") and callable(getattr(sync_cls, n))}
        missing = {n for n in public if not hasattr(async_cls, n)}
        assert not missing, missing
        for name in public & set(dir(async_cls)):
            sync_params = list(inspect.signature(getattr(sync_cls, name)).parameters)
            async_params = list(inspect.signature(getattr(async_cls, name)).parameters)
            assert sync_params == async_params, name


def test_async_round_trip(make_client):
    async def scenario():
        async with make_client() as client:
            col = await client.create_collection("aio", dim=3)
            await col.add(ids=["a", "b", "c"], embeddings=np.eye(3), metadatas=[{"n": i} for i in range(3)])
            with pytest.raises(vectord.AlreadyExistsError):
                await col.add(ids=["a"], embeddings=[[1, 1, 1]])
            hits = await col.query(query_embeddings=[[1, 0.1, 0]], n_results=2, explain=True)
            assert hits["ids"] == [["a", "b"]] and hits["plan"]["strategy"] == "exact"
            assert await col.count(where={"n": {"$gte": 1}}) == 2
            pages = [page["ids"] async for page in col.pages(page_size=2)]
            assert pages == [["a", "b"], ["c"]]
            assert await col.delete(ids=["a"]) == 1
            assert (await col.get())["ids"] == ["b", "c"]
            results = await asyncio.gather(*(col.count() for _ in range(20)))
            assert results == [2] * 20
            assert [c.name for c in await client.list_collections()] == ["aio"]
            await client.delete_collection("aio")
            with pytest.raises(vectord.NotFoundError):
                await client.get_collection("aio")

    asyncio.run(scenario())


def test_async_create_collection_takes_the_layout(make_client):
    """shards/replicas reach the server: one server is one shard in one replica."""
    async def scenario():
        async with make_client() as client:
            col = await client.get_or_create_collection("aio-layout", dim=2, shards=1, replicas=1)
            assert (col.shards, col.replicas) == (1, 1)
            with pytest.raises(vectord.InvalidArgumentError, match="shards: got 2"):
                await client.create_collection("aio-many", dim=2, shards=2)
            with pytest.raises(vectord.InvalidArgumentError, match="replicas: got 3"):
                await client.get_or_create_collection("aio-layout", replicas=3)
            assert [c.name for c in await client.list_collections()] == ["aio-layout"]
            await client.delete_collection("aio-layout")

    asyncio.run(scenario())


def test_an_in_memory_async_client_writes_nothing(tmp_path, monkeypatch):
    """``AsyncClient()`` with no address and no path is in memory, as ``Client()`` is."""
    monkeypatch.chdir(tmp_path)

    async def scenario():
        async with vectord.AsyncClient() as client:
            docs = await client.get_or_create_collection("docs", dim=2)
            await docs.add(ids=["a", "b"], embeddings=[[1, 0], [0, 1]])
            hits = await docs.query(query_embeddings=[[1, 0]], n_results=1)
            assert hits["ids"] == [["a"]]
            assert await client.reset() == 1          # allowed by default in memory
        async with vectord.AsyncClient() as fresh:  # each in-memory client is its own database
            assert await fresh.list_collections() == []

    asyncio.run(scenario())
    assert list(tmp_path.iterdir()) == []
