"""Semantic search: find the passages that answer a question, optionally within a filter.

    python examples/semantic_search.py                      # embedded, a temporary data dir
    python examples/semantic_search.py --path ./embedded-data   # not the server's directory
    python examples/semantic_search.py --address localhost:50051

With the built-in encoder, vectord embeds the documents and the queries itself; without it,
the example brings its own vectors (see common.py).

It works in a collection of its own, ``example-semantic-search`` (``--collection NAME``
to change it), created for the run and deleted at the end. An existing collection of
that name that the example did not create is never touched: the example stops with a
message instead.
"""

from __future__ import annotations

from common import builtin_encoder, describe, example_collection, open_client, parse_args, toy_embed

DOCS = [
    ("cook-1", "cooking", 2019, "Let the bread dough rise for about two hours in a warm kitchen before baking it."),
    ("cook-2", "cooking", 2021, "Sear the steak in a very hot cast iron pan, then rest the meat for five minutes."),
    ("cook-3", "cooking", 2023, "A pinch of salt in caramel sauce makes the sweetness taste deeper."),
    ("astro-1", "astronomy", 2018, "Jupiter is the largest planet in the solar system and has dozens of moons."),
    ("astro-2", "astronomy", 2022, "A total solar eclipse happens when the moon covers the whole disc of the sun."),
    ("astro-3", "astronomy", 2024, "Telescopes in orbit see infrared light that the atmosphere blocks."),
    ("money-1", "finance", 2020, "Saving a fixed share of every paycheck for retirement lets compound interest work."),
    ("money-2", "finance", 2021, "An index fund spreads your money across hundreds of companies at low cost."),
    ("money-3", "finance", 2023, "Pay off the credit card with the highest interest rate first."),
    ("code-1", "programming", 2020, "Write a failing test before you fix a bug in your code."),
    ("code-2", "programming", 2022, "A hash map finds a value by its key in constant time on average."),
    ("code-3", "programming", 2024, "Profile the program before optimising code that only looks slow."),
    ("garden-1", "gardening", 2019, "Water tomato plants deeply at the roots in the morning, not on the leaves."),
    ("garden-2", "gardening", 2021, "Compost turns kitchen scraps and leaves into rich soil for the garden."),
]

QUERIES = [
    ("how long should bread dough rise before baking", {}),
    ("which planet is the largest and has many moons", {}),
    ("saving money from each paycheck for retirement", {}),
    # A filter narrows the search: only programming passages.
    ("how do I fix a bug", {"where": {"topic": "programming"}}),
    # Filters combine: newer passages that are not about cooking.
    ("what should I do first", {"where": {"$and": [{"year": {"$gte": 2022}}, {"topic": {"$ne": "cooking"}}]}}),
]


def main() -> None:
    args = parse_args(__doc__, collection="example-semantic-search")
    with open_client(args) as client:
        model = builtin_encoder(client, args)
        print(describe(model))
        ids = [d[0] for d in DOCS]
        texts = [d[3] for d in DOCS]
        metadatas = [{"topic": d[1], "year": d[2]} for d in DOCS]
        # The built-in encoder: no dim, documents in, vectors made by vectord. Otherwise bring
        # your own vectors, of a fixed dim.
        create = {} if model else {"dim": toy_embed(["x"]).shape[1]}
        with example_collection(client, args, "examples/semantic_search.py", **create) as passages:
            if model:
                passages.add(ids=ids, documents=texts, metadatas=metadatas)
            else:
                passages.add(ids=ids, embeddings=toy_embed(texts), documents=texts, metadatas=metadatas)
            print(f"indexed {passages.count()} passages")
            search(passages, model)


def search(passages, model) -> None:
    """Asks each question of QUERIES and prints the 3 nearest passages."""
    for question, options in QUERIES:
        if model:
            hits = passages.query(query_texts=[question], n_results=3, **options)
        else:
            hits = passages.query(query_embeddings=toy_embed([question]), n_results=3, **options)
        label = f"  where {options['where']}" if options else ""
        print(f"\nquery: {question}{label}")
        for rank, (id_, distance, doc, meta) in enumerate(zip(
                hits["ids"][0], hits["distances"][0], hits["documents"][0], hits["metadatas"][0]), 1):
            print(f"  {rank}. {id_:<9} {distance:.3f}  [{meta['topic']}, {meta['year']}] {doc}")


if __name__ == "__main__":
    main()
