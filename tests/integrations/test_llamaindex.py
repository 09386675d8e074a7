"""The LlamaIndex vector store (vectord.integrations.llamaindex) against a real server.

One server for the module, one collection per test.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Document, StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

import vectord  # noqa: E402
from vectord.integrations.llamaindex import VectordEmbedding, VectordVectorStore, filters_to_where  # noqa: E402


@pytest.fixture(scope="module")
def vclient(server):
    client = vectord.Client(server.address, timeout=30)
    yield client
    client.close()


@pytest.fixture()
def name(vclient):
    name = f"li-{uuid.uuid4().hex[:12]}"
    yield name
    try:
        vclient.delete_collection(name)
    except vectord.NotFoundError:
        pass


def _node(id_: str, doc: str, vector: list[float], **metadata) -> TextNode:
    node = TextNode(id_=id_, text=f"text of {id_}", embedding=vector, metadata=metadata)
    node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc)
    return node


NODES = [
    _node("a1", "doc-a", [1.0, 0.0, 0.0], year=2020, tags=["red", "blue"]),
    _node("a2", "doc-a", [0.9, 0.1, 0.0], year=2021, tags=["green"]),
    _node("b1", "doc-b", [0.0, 1.0, 0.0], year=2022, tags=["red"]),
    _node("c1", "doc-c", [0.0, 0.0, 1.0], year=2023),
]


def _ids(result) -> list[str]:
    return [n.node_id for n in result.nodes]


def test_round_trip_with_own_embeddings(vclient, name):
    store = VectordVectorStore(name, client=vclient, dim=3)
    assert store.is_embedding_query  # your vectors: retrievers embed the query
    assert store.add(NODES) == ["a1", "a2", "b1", "c1"]
    assert vclient.get_collection(name).dim == 3

    result = store.query(VectorStoreQuery(query_embedding=[1.0, 0.05, 0.0], similarity_top_k=2))
    assert _ids(result) == ["a1", "a2"] == result.ids
    assert result.similarities[0] > result.similarities[1] and result.similarities[0] == pytest.approx(1, abs=0.01)
    node = result.nodes[0]
    assert node.get_content() == "text of a1" and node.metadata == {"year": 2020, "tags": ["red", "blue"]}
    assert node.ref_doc_id == "doc-a"

    store.delete("doc-a")
    result = store.query(VectorStoreQuery(query_embedding=[1.0, 0.05, 0.0], similarity_top_k=2))
    assert _ids(result) == ["b1", "c1"] or _ids(result) == ["c1", "b1"]
    assert vclient.get_collection(name).count() == 2


def test_metadata_filters_become_where(vclient, name):
    store = VectordVectorStore(name, client=vclient, dim=3)
    store.add(NODES)
    query = [1.0, 0.0, 0.0]

    def ids(filters, **kw) -> set[str]:
        return set(_ids(store.query(VectorStoreQuery(query_embedding=query, similarity_top_k=4, filters=filters,
                                                     **kw))))

    gte = MetadataFilter(key="year", value=2021, operator=FilterOperator.GTE)
    assert ids(MetadataFilters(filters=[gte])) == {"a2", "b1", "c1"}
    lt = MetadataFilter(key="year", value=2023, operator=FilterOperator.LT)
    assert ids(MetadataFilters(filters=[gte, lt])) == {"a2", "b1"}
    eq = MetadataFilter(key="year", value=2020)
    assert ids(MetadataFilters(filters=[eq, MetadataFilter(key="year", value=2023)],
                               condition=FilterCondition.OR)) == {"a1", "c1"}
    assert ids(MetadataFilters(filters=[MetadataFilter(key="year", value=[2020, 2022], operator="in")])) \
        == {"a1", "b1"}
    assert ids(MetadataFilters(filters=[eq], condition=FilterCondition.NOT)) == {"a2", "b1", "c1"}
    assert ids(MetadataFilters(filters=[MetadataFilter(key="tags", value=None, operator="is_empty")])) == {"c1"}
    assert ids(None, doc_ids=["doc-b", "doc-c"]) == {"b1", "c1"}
    assert ids(MetadataFilters(filters=[MetadataFilter(key="tags", value="red", operator="contains")])) == {"a1", "b1"}
    assert ids(MetadataFilters(filters=[MetadataFilter(key="tags", value=["green", "red"], operator="any")])) \
        == {"a1", "a2", "b1"}
    assert ids(MetadataFilters(filters=[MetadataFilter(key="tags", value=["red", "blue"], operator="all")])) == {"a1"}
    nested = MetadataFilters(filters=[gte, MetadataFilters(filters=[eq, lt], condition=FilterCondition.AND)],
                             condition=FilterCondition.OR)
    assert ids(nested) == {"a1", "a2", "b1", "c1"}

    store.delete_nodes(filters=MetadataFilters(filters=[gte]))
    assert {n.node_id for n in store.get_nodes()} == {"a1"}


def test_filters_to_where_translation():
    f = MetadataFilters(filters=[
        MetadataFilter(key="tags", value="red", operator=FilterOperator.CONTAINS),
        MetadataFilter(key="tags", value=["a", "b"], operator=FilterOperator.ANY),
        MetadataFilter(key="tags", value=["a", "b"], operator=FilterOperator.ALL),
        MetadataFilter(key="n", value=3, operator=FilterOperator.NE),
    ])
    assert filters_to_where(f) == {"$and": [
        {"tags": {"$contains": "red"}},
        {"$or": [{"tags": {"$contains": "a"}}, {"tags": {"$contains": "b"}}]},
        {"$and": [{"tags": {"$contains": "a"}}, {"tags": {"$contains": "b"}}]},
        {"n": {"$ne": 3}},
    ]}
    assert filters_to_where(MetadataFilters(filters=[])) is None
    with pytest.raises(vectord.InvalidArgumentError, match="operator 'text_match' on 'body' is not supported"):
        filters_to_where(MetadataFilters(filters=[MetadataFilter(key="body", value="x", operator="text_match")]))


def test_readding_a_node_replaces_it(vclient, name):
    store = VectordVectorStore(name, client=vclient, dim=3)
    store.add([TextNode(id_="n", text="old", embedding=[1.0, 0.0, 0.0], metadata={"old": 1, "kept": "a"})])
    store.add([TextNode(id_="n", text="new", embedding=[0.0, 1.0, 0.0], metadata={"kept": "b"})])
    (node,) = store.get_nodes(["n"])
    assert node.get_content() == "new" and node.metadata == {"kept": "b"}
    result = store.query(VectorStoreQuery(query_embedding=[0.0, 1.0, 0.0], similarity_top_k=1))
    assert result.ids == ["n"] and result.similarities[0] == pytest.approx(1, abs=0.01)


def test_builtin_encoder_text_only_queries(vclient, name):
    """No dim: the server embeds the nodes and the query text (no embed model runs here)."""
    store = VectordVectorStore(name, client=vclient)
    assert not store.is_embedding_query
    store.add([TextNode(id_="cook", text="Simmer the tomato sauce with garlic and basil for the pasta."),
               TextNode(id_="astro", text="The telescope captured a distant galaxy and ancient stars."),
               TextNode(id_="money", text="The central bank raised interest rates to slow inflation.")])
    assert vclient.get_collection(name).encoder
    hits = store.query(VectorStoreQuery(query_str="what should I cook for dinner?", similarity_top_k=1))
    assert hits.ids == ["cook"]
    hits = store.query(VectorStoreQuery(query_str="planets and outer space", similarity_top_k=3,
                                        mode=VectorStoreQueryMode.MMR, mmr_threshold=0.5))
    assert hits.ids[0] == "astro" and len(hits.ids) == 3
    assert asyncio.run(store.aquery(VectorStoreQuery(query_str="prices go up", similarity_top_k=1))).ids == ["money"]


def test_builtin_encoder_through_vector_store_index(vclient, name):
    """The usual LlamaIndex flow: VectorStoreIndex + retriever, embedded by vectord's model."""
    store = VectordVectorStore(name, client=vclient)
    docs = [Document(text="Vacation requests go to your manager two weeks ahead.", doc_id="hr",
                     metadata={"team": "hr"}),
            Document(text="Hotel costs are reimbursed up to 150 euros per night.", doc_id="travel",
                     metadata={"team": "finance"})]
    index = VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=store),
                                            embed_model=VectordEmbedding(vclient))
    retriever = index.as_retriever(similarity_top_k=1)
    (hit,) = retriever.retrieve("who approves my holidays?")
    assert hit.node.ref_doc_id == "hr" and "manager" in hit.node.get_content()
    filtered = index.as_retriever(similarity_top_k=1, filters=MetadataFilters(
        filters=[MetadataFilter(key="team", value="finance")]))
    assert filtered.retrieve("who approves my holidays?")[0].node.ref_doc_id == "travel"
    index.delete_ref_doc("hr")
    assert [h.node.ref_doc_id for h in retriever.retrieve("who approves my holidays?")] == ["travel"]


def test_a_store_needs_exactly_one_connection():
    with pytest.raises(vectord.InvalidArgumentError, match="exactly one of client=, address= or path="):
        VectordVectorStore("x")


def test_example_llamaindex_rag_runs(tmp_path):
    root = Path(__file__).resolve().parents[2]
    script = root / "examples" / "llamaindex_rag.py"
    out = subprocess.run([sys.executable, str(script), "--path", str(tmp_path / "data")],
                         cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert re.search(r"indexed \d+ chunks from 3 documents", out.stdout)
    sections = out.stdout.split("=" * 72)[1:]
    assert len(sections) == 3
    assert "New employees get 25 vacation days" in sections[0].split("Question:")[0]
    assert "150 euros per night" in sections[1].split("Question:")[0]
    context = sections[2].split("Context:\n", 1)[1].split("\n\nQuestion:")[0]
    assert "Report a lost laptop" in context
    assert all(line.startswith("[security.md]") for line in context.splitlines() if line.startswith("["))
