"""The LangChain vector store (vectord.integrations.langchain) against a real server.

LangChain's own conformance suite (``VectorStoreIntegrationTests`` from langchain-tests,
with its deterministic fake embeddings) runs twice: with a ``vectord.Client`` (async methods
then run in a thread) and with ``address=`` (async methods on grpc.aio). One server for the
module, one collection per test.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytest.importorskip("langchain_core")
langchain_tests = pytest.importorskip("langchain_tests.integration_tests.vectorstores")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import Embeddings  # noqa: E402

import vectord  # noqa: E402
from vectord.integrations.langchain import VectordEmbeddings, VectordVectorStore  # noqa: E402

VectorStoreIntegrationTests = langchain_tests.VectorStoreIntegrationTests

# The standard async tests carry no asyncio mark (langchain-tests expects asyncio_mode=auto);
# mark them in place (the functions stay the same objects, which the suite checks) rather than
# switching the whole repository's pytest to auto mode.
for _name, _func in vars(VectorStoreIntegrationTests).items():
    if _name.startswith("test_") and inspect.iscoroutinefunction(_func):
        pytest.mark.asyncio(_func)


@pytest.fixture(scope="module")
def vclient(server):
    client = vectord.Client(server.address, timeout=30)
    yield client
    client.close()


def _name() -> str:
    return f"lc-{uuid.uuid4().hex[:12]}"


def _drop(client: vectord.Client, name: str) -> None:
    try:
        client.delete_collection(name)
    except vectord.NotFoundError:
        pass  # the test wrote nothing, so nothing was created


class TestVectordStandard(VectorStoreIntegrationTests):
    """The standard suite on a store given a sync client."""

    @pytest.fixture()
    def vectorstore(self, vclient):
        name = _name()
        store = VectordVectorStore(name, self.get_embeddings(), client=vclient)
        yield store
        _drop(vclient, name)


class TestVectordStandardNativeAsync(VectorStoreIntegrationTests):
    """The standard suite on a store that opens its own clients (grpc.aio for async)."""

    @pytest.fixture()
    def vectorstore(self, server, vclient):
        name = _name()
        store = VectordVectorStore(name, self.get_embeddings(), address=server.address)
        yield store
        store.close()
        _drop(vclient, name)


class KeyedEmbeddings(Embeddings):
    """Chosen vectors for chosen texts: makes MMR's choice predictable."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.vectors[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.vectors[text]


PASSAGES = {
    "cook": "Simmer the tomato sauce with garlic and basil, then pour it over the fresh pasta.",
    "astro": "The telescope captured a distant galaxy and the faint light of ancient stars.",
    "money": "The central bank raised interest rates to slow inflation and cool the economy.",
    "code": "The Python function parses the JSON file and raises an error on invalid input.",
}
YEARS = {"cook": 2019, "astro": 2021, "money": 2022, "code": 2023}


@pytest.fixture()
def builtin_store(vclient):
    name = _name()
    store = VectordVectorStore(name, client=vclient)  # no embedding: the built-in encoder
    store.add_texts(list(PASSAGES.values()), [{"topic": k, "year": YEARS[k]} for k in PASSAGES],
                    ids=list(PASSAGES))
    yield store
    _drop(vclient, name)


def test_builtin_encoder_answers_a_semantic_query(builtin_store, vclient):
    collection = vclient.get_collection(builtin_store.collection_name)
    assert collection.encoder and collection.dim == vclient.list_models()[0]["dim"]  # made without dim
    queries = {"what is a good recipe for dinner?": "cook", "planets and outer space": "astro",
               "why are prices going up?": "money", "a bug in my program": "code"}
    for query, expected in queries.items():
        assert builtin_store.similarity_search(query, k=1)[0].id == expected, query
    doc, distance = builtin_store.similarity_search_with_score("stars in the night sky", k=1)[0]
    assert doc == Document(id="astro", page_content=PASSAGES["astro"], metadata={"topic": "astro", "year": 2021})
    assert 0 <= distance < 1
    assert isinstance(builtin_store.embeddings, VectordEmbeddings)
    vector = builtin_store.embeddings.embed_query("stars in the night sky")
    assert builtin_store.similarity_search_by_vector(vector, k=1)[0].id == "astro"
    scored = builtin_store.similarity_search_with_relevance_scores("stars in the night sky", k=2)
    assert scored[0][0].id == "astro" and 0 <= scored[1][1] < scored[0][1] <= 1


def test_builtin_encoder_filters_pass_through_as_where(builtin_store):
    hits = builtin_store.similarity_search("food", k=4, filter={"year": {"$gte": 2022}})
    assert {d.id for d in hits} == {"money", "code"}
    hits = builtin_store.similarity_search("food", k=4, filter={"$or": [{"topic": "cook"}, {"topic": "code"}]},
                                           where_document={"$contains": "Python"})
    assert [d.id for d in hits] == ["code"]
    mmr = builtin_store.max_marginal_relevance_search("food", k=2, fetch_k=4, filter={"topic": {"$ne": "cook"}})
    assert len(mmr) == 2 and "cook" not in {d.id for d in mmr}
    retriever = builtin_store.as_retriever(search_kwargs={"k": 1, "filter": {"topic": "astro"}})
    assert [d.id for d in retriever.invoke("pasta")] == ["astro"]


def test_delete_by_filter_and_delete_all(builtin_store):
    builtin_store.delete(filter={"year": {"$lt": 2022}})
    assert {d.id for d in builtin_store.similarity_search("anything", k=4)} == {"money", "code"}
    builtin_store.delete()
    assert builtin_store.similarity_search("anything", k=4) == []
    builtin_store.add_texts(["still usable"], ids=["again"])  # the collection kept its settings
    assert [d.id for d in builtin_store.similarity_search("usable", k=4)] == ["again"]


def test_readding_an_id_replaces_its_metadata(vclient):
    """vectord's upsert merges metadata by key; LangChain's add replaces the document."""
    name = _name()
    store = VectordVectorStore(name, KeyedEmbeddings({"x": [1.0, 0.0], "y": [0.0, 1.0]}), client=vclient)
    try:
        store.add_texts(["x"], [{"old": 1, "kept": "a", "nested": {"p": 1}}], ids=["1"])
        store.add_texts(["y"], [{"kept": "b", "nested": {"q": 2}}], ids=["1"])
        assert store.get_by_ids(["1"]) == [Document(id="1", page_content="y",
                                                    metadata={"kept": "b", "nested": {"q": 2}})]
        assert vclient.get_collection(name).count() == 1
    finally:
        _drop(vclient, name)


def test_mmr_uses_stored_embeddings_to_diversify(vclient):
    vectors = {"q": [1.0, 0.0, 0.0], "a": [1.0, 0.05, 0.0], "a-twin": [1.0, 0.06, 0.0], "b": [0.8, 0.0, 0.6]}
    name = _name()
    store = VectordVectorStore.from_texts(["a", "a-twin", "b"], KeyedEmbeddings(vectors), ids=["a", "a-twin", "b"],
                                          collection_name=name, client=vclient)
    try:
        assert [d.id for d in store.similarity_search("q", k=2)] == ["a", "a-twin"]
        assert [d.id for d in store.max_marginal_relevance_search("q", k=2, fetch_k=3, lambda_mult=0.5)] == ["a", "b"]
        assert vclient.get_collection(name).dim == 3
    finally:
        _drop(vclient, name)


def test_native_async_with_builtin_encoder(server, vclient):
    name = _name()
    store = VectordVectorStore(name, address=server.address)

    async def scenario():
        ids = await store.aadd_texts(list(PASSAGES.values()), [{"topic": k} for k in PASSAGES], ids=list(PASSAGES))
        assert ids == list(PASSAGES)
        hits = await store.asimilarity_search("galaxies and telescopes", k=1)
        filtered = await store.asimilarity_search("galaxies and telescopes", k=1, filter={"topic": "money"})
        mmr = await store.amax_marginal_relevance_search("galaxies", k=2, fetch_k=4)
        await store.adelete(["astro"])
        left = await store.aget_by_ids(["astro", "cook"])
        assert store._async is not None and store._async.loop is asyncio.get_running_loop()  # ran on grpc.aio
        await store.aclose()
        assert store._async is None
        return hits, filtered, mmr, left

    try:
        hits, filtered, mmr, left = asyncio.run(scenario())
        assert [d.id for d in hits] == ["astro"] and [d.id for d in filtered] == ["money"]
        assert mmr[0].id == "astro" and len(mmr) == 2
        assert [d.id for d in left] == ["cook"]
    finally:
        _drop(vclient, name)


def test_a_store_needs_exactly_one_connection():
    with pytest.raises(vectord.InvalidArgumentError, match="exactly one of client=, address= or path="):
        VectordVectorStore("x")


def test_a_collection_without_encoder_needs_embeddings(vclient):
    name = _name()
    vclient.create_collection(name, dim=3)
    try:
        with pytest.raises(vectord.InvalidArgumentError, match="has no built-in encoder"):
            VectordVectorStore(name, client=vclient).similarity_search("anything")
    finally:
        _drop(vclient, name)


def test_importing_vectord_does_not_import_the_frameworks():
    code = ("import sys, vectord; vectord.Client; "
            "print(sorted(m for m in sys.modules\n"
            "             if m.startswith(('langchain', 'llama_index', 'vectord.integrations'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_example_langchain_rag_runs(tmp_path):
    root = Path(__file__).resolve().parents[2]
    script = root / "examples" / "langchain_rag.py"
    out = subprocess.run([sys.executable, str(script), "--path", str(tmp_path / "data")],
                         cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "indexed 9 chunks from 3 documents" in out.stdout
    sections = out.stdout.split("=" * 72)[1:]
    retrieved = [re.search(r"retrieved: (.+)", s).group(1).split(", ") for s in sections]
    assert "vacation.md#0" in retrieved[0] and "New employees get 25 vacation days" in sections[0]
    assert {"expenses.md#1", "expenses.md#2"} & set(retrieved[1]) and "150 euros per night" in sections[1]
    assert all(r.startswith("security.md#") for r in retrieved[2]) and "Report a lost laptop" in sections[2]
    assert re.search(r"^mmr: \S+, \S+, \S+$", out.stdout, re.M)
