"""The retrieval step of RAG with LlamaIndex, on vectord's built-in encoder (no API key, no download).

    pip install ".[llamaindex]"    # from the clone's root
    python examples/llamaindex_rag.py [--path DIR | --address HOST:PORT]

The same handbook and questions as rag_retrieval.py, through LlamaIndex: a ``VectorStoreIndex``
over a vectord collection, a retriever per question (limited to one source where the question
says so, with ``MetadataFilters``), and the prompt you would send to a model.

It works in a collection of its own, ``example-llamaindex-rag`` (``--collection NAME`` to change it),
created for the run and deleted at the end; an existing collection of that name that the
example did not create is never touched (the example stops with a message instead).
"""

from __future__ import annotations

import argparse
import tempfile

from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.vector_stores import FilterOperator, MetadataFilter, MetadataFilters
from common import example_collection
from rag_retrieval import HANDBOOK, PROMPT, QUESTIONS

import vectord
from vectord.integrations.llamaindex import VectordEmbedding, VectordVectorStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", help="embedded mode: the data directory (default: a new temporary one)")
    parser.add_argument("--address", help="talk to a running `vectord serve` at host:port instead")
    parser.add_argument("--collection", default="example-llamaindex-rag", help="the collection it creates and deletes")
    args = parser.parse_args()
    client = vectord.Client(args.address) if args.address else vectord.Client(path=args.path or tempfile.mkdtemp())
    # The collection is created without dim: it embeds texts on the server with the built-in
    # model, and retrievers send the question as text. VectordEmbedding is that model for LlamaIndex.
    with client, example_collection(client, args, "examples/llamaindex_rag.py"):
        run(VectordVectorStore(args.collection, client=client))


def run(store: VectordVectorStore) -> None:
    """Indexes the handbook, then retrieves context and builds a prompt for each question."""
    documents = [Document(text=text, doc_id=source, metadata={"source": source},  # filterable, not embedded
                          excluded_embed_metadata_keys=["source"], excluded_llm_metadata_keys=["source"])
                 for source, text in HANDBOOK.items()]
    index = VectorStoreIndex.from_documents(
        documents, storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=VectordEmbedding(store.client), transformations=[SentenceSplitter(chunk_size=50, chunk_overlap=10)])
    print(f"indexed {store.client.get_collection(store.collection_name).count()} chunks "
          f"from {len(documents)} documents")

    for question, sources in QUESTIONS:
        filters = MetadataFilters(filters=[MetadataFilter(key="source", value=sources, operator=FilterOperator.IN)]
                                  ) if sources else None
        hits = index.as_retriever(similarity_top_k=3, filters=filters).retrieve(question)
        context = "\n".join(f"[{hit.node.ref_doc_id}] {hit.node.get_content()}" for hit in hits)
        print("\n" + "=" * 72)
        print(f"retrieved: {', '.join(f'{hit.node.ref_doc_id} ({hit.score:.2f})' for hit in hits)}")
        print(PROMPT.format(context=context, question=question))
    store.close()


if __name__ == "__main__":
    main()
