"""The retrieval step of RAG with LangChain, on vectord's built-in encoder (no API key, no download).

    pip install ".[langchain]"     # from the clone's root
    python examples/langchain_rag.py [--path DIR | --address HOST:PORT]

The same handbook and questions as rag_retrieval.py, through LangChain's own types: documents
go in with ``add_documents``, a retriever fetches the context (limited to one source where the
question says so, with a vectord ``where`` filter), and a ``PromptTemplate`` builds the prompt
you would send to a model.

It works in a collection of its own, ``example-langchain-rag`` (``--collection NAME`` to change it),
created for the run and deleted at the end; an existing collection of that name that the
example did not create is never touched (the example stops with a message instead).
"""

from __future__ import annotations

import argparse
import tempfile

from langchain_core.documents import Document
from langchain_core.prompts import PromptTemplate
from common import example_collection
from rag_retrieval import HANDBOOK, PROMPT, QUESTIONS, chunks

import vectord
from vectord.integrations.langchain import VectordVectorStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", help="embedded mode: the data directory (default: a new temporary one)")
    parser.add_argument("--address", help="talk to a running `vectord serve` at host:port instead")
    parser.add_argument("--collection", default="example-langchain-rag", help="the collection it creates and deletes")
    args = parser.parse_args()
    client = vectord.Client(args.address) if args.address else vectord.Client(path=args.path or tempfile.mkdtemp())
    # The collection is created without dim: it embeds texts on the server with the built-in
    # model, and the store (no embedding= given) sends texts.
    with client, example_collection(client, args, "examples/langchain_rag.py"):
        run(VectordVectorStore(args.collection, client=client))


def run(store: VectordVectorStore) -> None:
    """Indexes the handbook, then retrieves context and builds a prompt for each question."""
    docs = [Document(id=f"{source}#{n}", page_content=chunk, metadata={"source": source, "chunk": n})
            for source, text in HANDBOOK.items() for n, chunk in enumerate(chunks(text))]
    store.add_documents(docs)
    print(f"indexed {len(docs)} chunks from {len(HANDBOOK)} documents")

    prompt = PromptTemplate.from_template(PROMPT)
    for question, sources in QUESTIONS:
        search_kwargs: dict = {"k": 3}
        if sources:
            search_kwargs["filter"] = {"source": {"$in": sources}}
        hits = store.as_retriever(search_kwargs=search_kwargs).invoke(question)
        context = "\n".join(f"[{doc.id}] {doc.page_content}" for doc in hits)
        print("\n" + "=" * 72)
        print(f"retrieved: {', '.join(doc.id or '' for doc in hits)}")
        print(prompt.format(context=context, question=question))

    # Diverse context: maximal marginal relevance over the 6 nearest chunks.
    diverse = store.max_marginal_relevance_search("travel rules", k=3, fetch_k=6)
    print("\nmmr: " + ", ".join(doc.id or "" for doc in diverse))
    store.close()


if __name__ == "__main__":
    main()
