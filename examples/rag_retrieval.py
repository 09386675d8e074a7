"""The retrieval step of RAG: chunk documents, index the chunks, fetch context for a question.

    python examples/rag_retrieval.py [--path DIR | --address HOST:PORT] [--vectors]

The generation step (sending the prompt to a language model) is yours to add; this example
prints the prompt it would send. Chunks keep their source and position in metadata, so the
answer can cite them and a question can be limited to some sources.

It works in a collection of its own, ``example-rag-retrieval`` (``--collection NAME``
to change it), created for the run and deleted at the end. An existing collection of
that name that the example did not create is never touched: the example stops with a
message instead.
"""

from __future__ import annotations

import re

from common import builtin_encoder, describe, example_collection, open_client, parse_args, toy_embed

HANDBOOK = {
    "vacation.md": (
        "New employees get 25 vacation days per year, and one more day for every two years of service. "
        "Vacation requests go to your manager at least two weeks ahead. "
        "Unused vacation days carry over to the next year, up to ten days. "
        "Public holidays are not counted as vacation days."
    ),
    "expenses.md": (
        "Submit expense reports within 30 days of the purchase, with a photo of every receipt. "
        "Travel by train is preferred to flights for trips under four hours. "
        "Hotel costs are reimbursed up to 150 euros per night in most cities. "
        "Meals during business travel are covered up to 40 euros per day."
    ),
    "security.md": (
        "Lock your laptop screen whenever you leave your desk. "
        "Passwords must be at least 14 characters long and never shared by email. "
        "Report a lost laptop or phone to the security team within one hour. "
        "Two-factor authentication is required for every company account."
    ),
}

QUESTIONS = [
    ("How many vacation days do new employees get?", None),
    ("What is the hotel limit per night when I travel?", None),
    ("What should I do if I lose my laptop?", ["security.md"]),  # only search this source
]

PROMPT = """Answer the question using only the context below. Cite the sources in brackets.

Context:
{context}

Question: {question}
Answer:"""


def chunks(text: str, size: int = 2, overlap: int = 1) -> list[str]:
    """Windows of ``size`` sentences, each sharing ``overlap`` sentences with the one before."""
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    step = max(size - overlap, 1)
    return [" ".join(sentences[i:i + size]) for i in range(0, max(len(sentences) - overlap, 1), step)]


def main() -> None:
    args = parse_args(__doc__, collection="example-rag-retrieval")
    with open_client(args) as client:
        model = builtin_encoder(client, args)
        print(describe(model))
        ids, texts, metadatas = [], [], []
        for source, text in HANDBOOK.items():
            for position, chunk in enumerate(chunks(text)):
                ids.append(f"{source}#{position}")
                texts.append(chunk)
                metadatas.append({"source": source, "chunk": position})
        create = {} if model else {"dim": toy_embed(["x"]).shape[1]}  # no dim: the built-in encoder
        with example_collection(client, args, "examples/rag_retrieval.py", **create) as handbook:
            if model:
                handbook.add(ids=ids, documents=texts, metadatas=metadatas)
            else:
                handbook.add(ids=ids, embeddings=toy_embed(texts), documents=texts, metadatas=metadatas)
            print(f"indexed {handbook.count()} chunks from {len(HANDBOOK)} documents")

            for question, sources in QUESTIONS:
                where = {"source": {"$in": sources}} if sources else None
                if model:
                    hits = handbook.query(query_texts=[question], n_results=3, where=where)
                else:
                    hits = handbook.query(query_embeddings=toy_embed([question]), n_results=3, where=where)
                context = "\n".join(f"[{id_}] {doc}" for id_, doc in zip(hits["ids"][0], hits["documents"][0]))
                print("\n" + "=" * 72)
                print(f"retrieved: {', '.join(hits['ids'][0])}")
                print(PROMPT.format(context=context, question=question))


if __name__ == "__main__":
    main()
