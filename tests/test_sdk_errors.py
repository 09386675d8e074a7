"""The SDK's error contract: every failure a caller can cause is a ``vectord.VectordError``.

(a) A property test (hypothesis): the public methods of ``Client`` and ``Collection`` called
    with arbitrary argument values (None, wrong types, huge and negative numbers, NaN, lone
    surrogates, nested junk, wrong lengths) raise nothing but ``VectordError`` subclasses
    (and never InternalError), embedded, in memory, against a real server, and through
    ``AsyncClient``. ``VECTORD_SDK_EXAMPLES=5000`` hunts longer with a random seed.
(b) Each escape it found, frozen as a named regression test (both modes).
"""

from __future__ import annotations

import asyncio
import math
import os

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vectord
from vectord import limits
from vectord.v1 import records_pb2 as rpb

#: Examples per mode; VECTORD_SDK_EXAMPLES=5000 hunts longer, with a random seed.
EXAMPLES = int(os.environ.get("VECTORD_SDK_EXAMPLES", "150"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, derandomize="VECTORD_SDK_EXAMPLES" not in os.environ,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


def nested(depth: int, leaf=1) -> dict:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


# ---------------------------------------------------------------- (a) the property
odd_text = st.sampled_from(["", " ", "\udc80", "a\ud800b", "é" * 3, "$and", "a.b", "x" * 600, "../x"])
scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=6) | odd_text
           | st.binary(max_size=4) | st.just(object()) | st.just(1j) | st.just(np.int64(3)) | st.just(np.nan))
junk = st.recursive(
    scalars,
    lambda children: (st.lists(children, max_size=3) | st.tuples(children, children)
                      | st.dictionaries(st.text(max_size=4) | st.integers(-2, 2) | odd_text, children, max_size=3)
                      | st.builds(np.asarray, st.lists(st.floats(width=32), max_size=4))),
    max_leaves=8,
) | st.builds(nested, st.sampled_from([9, 20, 50, 200]))

ids = st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=3) | st.sampled_from(["a", "b"])
vectors = st.integers(0, 3).flatmap(lambda n: st.lists(
    st.lists(st.floats(-2, 2, allow_nan=False) | st.just(math.nan), min_size=3, max_size=3), min_size=n, max_size=n))
documents = st.lists(st.none() | st.text(max_size=8) | odd_text, max_size=3)
metadata = st.dictionaries(st.sampled_from(["k", "n", "$x", ""]), st.integers(-5, 5) | st.text(max_size=4)
                           | st.builds(nested, st.integers(1, 12)), max_size=2)
metadatas = st.lists(st.none() | metadata, max_size=3)
where = st.sampled_from([{"k": 1}, {"n": {"$gte": 0}}, {"$and": [{"k": 1}, {"n": 2}]}, {"k": {"$bad": 1}},
                         {"$or": []}, {}]) | st.builds(lambda d: {"$not": d}, st.just({"k": 1}))
where_document = st.sampled_from([{"$contains": "a"}, {"$not_contains": ""}, {"$contains": 1}, {}])
include = st.lists(st.sampled_from(["embeddings", "documents", "metadatas", "distances", "uris"]), max_size=3)
names = st.sampled_from(["p", "q", "r-1", "", ".x", "a/b", "x" * 129])


def arg(valid):
    """A plausible value most of the time, junk otherwise."""
    return valid | junk


def kwargs(required=(), **params):
    """Each keyword either left out or given a value from its strategy (the ``required`` ones
    always: leaving out a required argument is a TypeError by Python's rules, not vectord's)."""
    return st.fixed_dictionaries({name: params.pop(name) for name in required}, optional=params)


CLIENT_CALLS = {
    "create_collection": kwargs(dim=arg(st.integers(1, 8)), metric=arg(st.sampled_from(["cosine", "l2", "ip"])),
                                hnsw=arg(st.dictionaries(st.sampled_from(["m", "ef_search", "bogus"]),
                                                         st.integers(-1, 2**33), max_size=2)),
                                metadata=arg(metadata), encoder=arg(st.sampled_from(["default", "nope"])),
                                get_or_create=arg(st.booleans())),
    "get_or_create_collection": kwargs(dim=arg(st.integers(1, 8)), metric=arg(st.sampled_from(["l2", "ip"])),
                                       metadata=arg(metadata)),
    "get_collection": kwargs(),
    "delete_collection": kwargs(),
    "embed": kwargs(model=arg(st.sampled_from(["default", "nope"]))),
    "checkpoint": kwargs(),
}
COLLECTION_CALLS = {
    "add": kwargs(("ids",), ids=arg(ids), embeddings=arg(vectors), documents=arg(documents), metadatas=arg(metadatas)),
    "upsert": kwargs(("ids",), ids=arg(ids), embeddings=arg(vectors), documents=arg(documents), metadatas=arg(metadatas)),
    "update": kwargs(("ids",), ids=arg(ids), embeddings=arg(vectors), documents=arg(documents), metadatas=arg(metadatas)),
    "delete": kwargs(ids=arg(ids), where=arg(where), where_document=arg(where_document)),
    "get": kwargs(ids=arg(ids), where=arg(where), where_document=arg(where_document),
                  limit=arg(st.integers(0, 5)), offset=arg(st.integers(0, 5)), include=arg(include),
                  page_token=arg(st.sampled_from(["", "YQ==", "!!"]))),
    "query": kwargs(query_embeddings=arg(vectors), n_results=arg(st.integers(1, 5)), where=arg(where),
                    where_document=arg(where_document), include=arg(include),
                    query_texts=arg(st.lists(st.text(max_size=8), max_size=2)), explain=arg(st.booleans())),
    "count": kwargs(where=arg(where), where_document=arg(where_document)),
    "peek": kwargs(limit=arg(st.integers(0, 5))),
    "pages": kwargs(where=arg(where), page_size=arg(st.integers(1, 3)), include=arg(include)),
    "modify": kwargs(name=arg(st.sampled_from(["p2", "p"])), metadata=arg(metadata)),
}
# the first positional argument of the client calls that take one
FIRST = {"create_collection": arg(names), "get_or_create_collection": arg(names), "get_collection": arg(names),
         "delete_collection": arg(names), "embed": arg(st.lists(st.text(max_size=8), max_size=2) | odd_text),
         "checkpoint": arg(names)}

calls = (st.sampled_from(sorted(CLIENT_CALLS)).flatmap(
    lambda m: st.tuples(st.just("client"), st.just(m), st.tuples(FIRST[m]) if m in FIRST else st.just(()),
                        CLIENT_CALLS[m]))
         | st.sampled_from(sorted(COLLECTION_CALLS)).flatmap(
    lambda m: st.tuples(st.just("collection"), st.just(m), st.just(()), COLLECTION_CALLS[m])))

SEEN: dict[str, int] = {}


def _call(client, target: str, method: str, args: tuple, kw: dict):
    if target == "client":
        if method == "delete_collection" and isinstance(args[0], str) and args[0] == "p":
            return None  # keep the shared collection: deleting it is legal, and checked elsewhere
        fn = getattr(client, method)
    else:
        collection = client.get_or_create_collection("p", dim=3, metric="l2")
        fn = getattr(collection, method)
    result = fn(*args, **kw)
    if method == "pages":
        result = list(result)
    return result


def _contract(client, call) -> None:
    target, method, args, kw = call
    try:
        _call(client, target, method, args, kw)
        SEEN["ok"] = SEEN.get("ok", 0) + 1
    except vectord.VectordError as exc:
        assert not isinstance(exc, vectord.InternalError), f"{method}{args}{kw}: a bug, not the caller's error: {exc}"
        SEEN[type(exc).__name__] = SEEN.get(type(exc).__name__, 0) + 1
    except Exception as exc:  # the contract is broken: say with what
        pytest.fail(f"{target}.{method}(*{args!r:.300}, **{kw!r:.500}) raised {type(exc).__name__}: {exc}")


@pytest.fixture(scope="module")
def remote(server):
    with vectord.Client(server.address, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    with vectord.Client(path=str(tmp_path_factory.mktemp("sdk-errors") / "data")) as client:
        yield client


@PROPERTY
@given(call=calls)
def test_only_vectord_errors_embedded(embedded, call):
    _contract(embedded, call)


@PROPERTY
@given(call=calls)
def test_only_vectord_errors_remote(remote, call):
    _contract(remote, call)


@pytest.fixture(scope="module")
def memory():
    with vectord.Client() as client:
        yield client


@PROPERTY
@given(call=calls)
def test_only_vectord_errors_in_memory(memory, call):
    _contract(memory, call)


@pytest.fixture(scope="module")
def async_embedded(tmp_path_factory):
    client = vectord.AsyncClient(path=str(tmp_path_factory.mktemp("sdk-errors-async") / "data"))
    yield client
    asyncio.run(client.close())


async def _acall(client, target: str, method: str, args: tuple, kw: dict):
    if target == "client":
        if method == "delete_collection" and isinstance(args[0], str) and args[0] == "p":
            return None
        return await getattr(client, method)(*args, **kw)
    collection = await client.get_or_create_collection("p", dim=3, metric="l2")
    if method == "pages":
        return [page async for page in collection.pages(**kw)]
    return await getattr(collection, method)(*args, **kw)


@PROPERTY
@given(call=calls)
def test_only_vectord_errors_async(async_embedded, call):
    """AsyncClient builds requests with the same functions; its own code paths (embed,
    pages, the event loop hand-off) are what this covers."""
    target, method, args, kw = call
    try:
        asyncio.run(_acall(async_embedded, target, method, args, kw))
    except vectord.VectordError as exc:
        assert not isinstance(exc, vectord.InternalError), f"{method}{args}{kw}: {exc}"
    except Exception as exc:
        pytest.fail(f"async {target}.{method}(*{args!r:.300}, **{kw!r:.500}) raised {type(exc).__name__}: {exc}")


def test_client_constructor_arguments(tmp_path):
    for kwargs in [dict(address=5), dict(address="127.0.0.1:1", timeout="x"), dict(address="127.0.0.1:1", timeout=-1),
                   dict(address="127.0.0.1:1", timeout=math.nan), dict(path=5), dict(path=str(tmp_path), api_key=1),
                   dict(address="127.0.0.1:1", api_key="é"), dict(address="127.0.0.1:1", tls="yes"),
                   dict(address="127.0.0.1:1", tls_ca=5), dict(address="127.0.0.1:1", allow_reset=True),
                   dict(path=str(tmp_path), allow_reset="yes"), dict(address="\udc80")]:
        with pytest.raises(vectord.InvalidArgumentError):
            vectord.Client(**kwargs)
        with pytest.raises(vectord.InvalidArgumentError):
            vectord.AsyncClient(**kwargs)


# ---------------------------------------------------------------- (b) the escapes it found, frozen
@pytest.fixture
def col(client):
    return client.create_collection("e", dim=3, metric="l2")


def test_deep_metadata_names_the_depth_limit(col):
    """Was protobuf's DecodeError ("Exceeded upb_DecodeOptions_MaxDepth") at ~50 levels."""
    for depth in (9, 50, 1000):
        with pytest.raises(vectord.InvalidArgumentError, match=f"nested deeper than {limits.MAX_METADATA_DEPTH} levels"):
            col.add(ids=["a"], embeddings=[[1, 2, 3]], metadatas=[nested(depth)])
    looped: dict = {}
    looped["self"] = looped  # was a RecursionError
    with pytest.raises(vectord.InvalidArgumentError, match="nested deeper"):
        col.add(ids=["a"], embeddings=[[1, 2, 3]], metadatas=[looped])
    with pytest.raises(vectord.InvalidArgumentError, match="nested deeper"):
        col.get(where={"k": {"$in": [nested(50)]}})
    col.add(ids=["ok"], embeddings=[[1, 2, 3]], metadatas=[nested(7)])  # within the limit
    assert col.count() == 1


def test_deep_filters_name_the_depth_limit(col):
    """Was a RecursionError (or DecodeError remotely) for filters nested far past 16."""
    deep: dict = {"k": 1}
    for _ in range(2000):
        deep = {"$not": deep}
    with pytest.raises(vectord.InvalidArgumentError, match=f"deeper than {limits.MAX_FILTER_DEPTH} levels"):
        col.get(where=deep)
    doc: dict = {"$contains": "a"}
    for _ in range(40):
        doc = {"$not": doc}
    with pytest.raises(vectord.InvalidArgumentError, match=f"deeper than {limits.MAX_FILTER_DEPTH} levels"):
        col.count(where_document=doc)


def _nested_metadata_request(collection: str, depth: int) -> rpb.WriteRequest:
    """An Add of one record whose metadata nests ``depth`` maps deep."""
    request = rpb.WriteRequest(collection=collection, ids=["a"])
    cursor = request.metadatas.values.add()
    for _ in range(depth):
        cursor = cursor.fields["a"].map_value
    cursor.fields["z"].int_value = 1
    return request


def _refused_raw_add(address: str, request: rpb.WriteRequest):
    """Sends ``request`` as raw bytes (no SDK checks) and returns the refusal's ExceptionInfo."""
    with grpc.insecure_channel(address) as channel:
        add = channel.unary_unary("/vectord.v1.Records/Add", request_serializer=lambda b: b,
                                  response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as info:
            add(request.SerializeToString(), timeout=30)
    return info


def test_server_names_the_depth_limit_of_undecodable_messages(server):
    """Other languages' clients: a message nested too deep to decode is INVALID_ARGUMENT
    naming vectord's limits, not protobuf's internals."""
    request = _nested_metadata_request("e", 50)
    info = _refused_raw_add(server.address, request)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"metadata may nest at most {limits.MAX_METADATA_DEPTH} levels" in info.value.details()


def test_server_checks_metadata_depth_itself(server):
    """The SDK checks first, but the server does not rely on it: a decodable message with
    metadata past the limit (any language's client) is refused by the engine's own check."""
    with vectord.Client(server.address) as client:
        client.create_collection("deep", dim=2)
    request = _nested_metadata_request("deep", 12)
    request.embeddings.dim, request.embeddings.count = 2, 1
    request.embeddings.data_f32le = np.ones(2, "<f4").tobytes()
    info = _refused_raw_add(server.address, request)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"nested deeper than {limits.MAX_METADATA_DEPTH} levels" in info.value.details()
    with vectord.Client(server.address) as client:
        assert client.get_collection("deep").count() == 0
        client.delete_collection("deep")


@pytest.mark.parametrize("dim", [-1, 0, limits.MAX_DIM + 1, 2**40, 2.5, "3", True])
def test_bad_dim_names_dim_the_value_and_the_range(client, dim):
    """dim=-1 was a bare ValueError ("Value out of range"), dim=0 said "got None"."""
    with pytest.raises(vectord.InvalidArgumentError, match=rf"dim must be an integer in 1\.\.{limits.MAX_DIM}, got "
                                                           rf"{repr(dim).replace('.', '[.]')}"):
        client.create_collection("d", dim=dim)
    assert client.list_collections() == []


@pytest.mark.parametrize("texts, match", [([None], r"texts\[0\]: expected a string, got None"),
                                          ([1], r"texts\[0\]"), (None, "texts: must not be None"),
                                          (["\udc80"], "not valid Unicode"), (5, "texts: expected a list")])
def test_embed_with_non_texts(client, texts, match):
    """client.embed([None]) was a bare TypeError."""
    with pytest.raises(vectord.InvalidArgumentError, match=match):
        client.embed(texts)


@pytest.mark.parametrize("call, match", [
    (lambda c: c.get_collection(1), "name: expected a string, got 1"),
    (lambda c: c.get_collection(None), "name: expected a string, got None"),
    (lambda c: c.delete_collection(["x"]), "name: expected a string"),
    (lambda c: c.create_collection("\udc80", dim=3), "name: .* not valid Unicode"),
    (lambda c: c.create_collection("h", dim=3, hnsw="abc"), "hnsw: expected a dict"),
    (lambda c: c.create_collection("h", dim=3, hnsw={"m": "x"}), r"hnsw\.m must be an integer"),
    (lambda c: c.create_collection("h", dim=3, hnsw={"m": -1}), r"hnsw\.m must be an integer .* got -1"),
    (lambda c: c.create_collection("h", dim=3, metric=[]), "metric must be one of"),
    (lambda c: c.create_collection("h", dim=3, metadata="x"), "metadata: expected a dict"),
    (lambda c: c.create_collection("h", dim=3, encoder=5), "encoder: expected a string"),
    (lambda c: c.create_collection("h", dim=3, get_or_create="yes"), "get_or_create must be True or False"),
    (lambda c: c.embed(["a"], model=5), "model: expected a string"),
    (lambda c: c.checkpoint(5), "name: expected a string"),
])
def test_client_arguments_of_the_wrong_type(client, call, match):
    """Each was a bare TypeError or ValueError from protobuf."""
    with pytest.raises(vectord.InvalidArgumentError, match=match):
        call(client)
    assert [c.name for c in client.list_collections()] == []


@pytest.mark.parametrize("call, match", [
    (lambda c: c.add(ids=1, embeddings=[[1, 2, 3]]), "ids: expected a list"),
    (lambda c: c.add(ids=[1], embeddings=[[1, 2, 3]]), r"ids\[0\]: expected a string, got 1"),
    (lambda c: c.add(ids=[b"x"], embeddings=[[1, 2, 3]]), r"ids\[0\]: expected a string"),
    (lambda c: c.add(ids=["\udc80"], embeddings=[[1, 2, 3]]), r"ids\[0\]: .* not valid Unicode"),
    (lambda c: c.add(ids=["a"], embeddings="abc"), "embeddings: expected a list of vectors"),
    (lambda c: c.add(ids=["a", "b"], embeddings=[[1, 2, 3], [1]]), "embeddings: expected a list of vectors"),
    (lambda c: c.add(ids=["a"], embeddings=[[1j, 2, 3]]), "embeddings: expected a list of vectors"),
    (lambda c: c.add(ids=["a"], embeddings=[[object(), 2, 3]]), "embeddings: expected a list of vectors"),
    (lambda c: c.add(ids=["a"], embeddings=[[1e300, 2, 3]]), "NaN or infinite"),
    (lambda c: c.add(ids=["a"], embeddings=[[1, 2, 3]], documents=[5]), r"documents\[0\]: expected a string"),
    (lambda c: c.add(ids=["a"], embeddings=[[1, 2, 3]], documents=["\udc80"]), r"documents\[0\]: .* Unicode"),
    (lambda c: c.add(ids=["a"], embeddings=[[1, 2, 3]], metadatas=["x"]), r"metadatas\[0\]: expected a dict"),
    (lambda c: c.add(ids=["a"], embeddings=[[1, 2, 3]], metadatas=[{"k": "\udc80"}]), r"metadatas\[0\].*Unicode"),
    (lambda c: c.add(ids=["a"], embeddings=[[1, 2, 3]], metadatas=[{"\udc80": 1}]), r"metadatas\[0\].*Unicode"),
    (lambda c: c.get(limit="a"), "limit must be an integer in 0..4294967295, got 'a'"),
    (lambda c: c.get(limit=2**70), "limit must be an integer"),
    (lambda c: c.get(offset=2**65), "offset must be an integer"),
    (lambda c: c.get(include=5), "include: expected a list"),
    (lambda c: c.get(include=[5]), "include: unknown field 5"),
    (lambda c: c.get(page_token=5), "page_token: expected a string"),
    (lambda c: c.get(where={1: 2}), "where: key 1 is not a string"),
    (lambda c: c.get(where={"k": {1: 2}}), "unknown operator 1"),
    (lambda c: c.get(where_document={"$contains": "\udc80"}), "not valid Unicode"),
    (lambda c: c.peek("a"), "limit must be an integer"),
    (lambda c: c.query(query_texts=[1]), r"query_texts\[0\]: expected a string"),
    (lambda c: c.query(query_embeddings=[[1, 2, 3]], explain="yes"), "explain must be True or False"),
    (lambda c: c.query(query_embeddings=[[1, 2, 3]], n_results=np.int64(0)), "n_results must be an integer"),
    (lambda c: c.delete(ids=[None]), r"ids\[0\]: expected a string"),
    (lambda c: c.modify(name=5), "name: expected a string"),
    (lambda c: c.modify(metadata=[1]), "metadata: expected a dict"),
])
def test_collection_arguments_of_the_wrong_type(col, call, match):
    """Each was a bare TypeError, ValueError, AttributeError or UnicodeEncodeError."""
    with pytest.raises(vectord.InvalidArgumentError, match=match):
        call(col)
    assert col.count() == 0


def test_async_client_arguments_of_the_wrong_type(tmp_path):
    async def main():
        async with vectord.AsyncClient(path=str(tmp_path / "data")) as client:
            with pytest.raises(vectord.InvalidArgumentError, match="texts"):
                await client.embed([None])
            with pytest.raises(vectord.InvalidArgumentError, match="dim must be an integer"):
                await client.create_collection("a", dim=-1)
            col = await client.create_collection("a", dim=3)
            with pytest.raises(vectord.InvalidArgumentError, match="nested deeper"):
                await col.add(ids=["a"], embeddings=[[1, 2, 3]], metadatas=[nested(50)])
            with pytest.raises(vectord.InvalidArgumentError, match="limit"):
                await col.get(limit="a")

    asyncio.run(main())


def test_unimplemented_is_its_own_error_class():
    """UNIMPLEMENTED (an rpc a cluster gateway does not offer yet) comes back as
    ``vectord.UnimplementedError``, not as an InternalError that reads like a bug."""
    import grpc

    from vectord.client.transport import error_from_rpc

    class Refused(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.UNIMPLEMENTED

        def details(self):
            return "Admin.Checkpoint is not supported by the vectord cluster gateway yet"

    error = error_from_rpc(Refused())
    assert type(error) is vectord.UnimplementedError and not error.retryable
    assert "Admin.Checkpoint" in str(error)
