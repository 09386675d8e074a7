"""kNN text classification: label new texts by the labels of their nearest labelled neighbours.

    python examples/knn_classification.py [--path DIR | --address HOST:PORT] [--vectors]

A collection holds labelled examples (the label in metadata). ``collection.classify`` labels
a text by a vote of its k nearest labelled examples, each weighted by 1 / (distance + 0.001),
and returns every candidate label's share of the vote. Adding examples improves the
classifier at once: no training step.

It works in a collection of its own, ``example-knn-classification`` (``--collection NAME``
to change it), created for the run and deleted at the end. An existing collection of
that name that the example did not create is never touched: the example stops with a
message instead.
"""

from __future__ import annotations

from common import builtin_encoder, describe, example_collection, open_client, parse_args, toy_embed

K = 5

TRAINING = {
    "sports": [
        "The striker scored twice and the team won the football match.",
        "She ran the marathon in under three hours and set a personal best.",
        "The tennis final went to five sets before the champion won.",
        "Our basketball team lost the game in the last second.",
        "The coach picked a new goalkeeper for the next match.",
        "He won a gold medal in swimming at the championship.",
    ],
    "weather": [
        "Heavy rain and strong wind are expected tonight.",
        "The forecast says sunny skies and warm temperatures all week.",
        "Snow fell overnight and the roads are icy this morning.",
        "A thunderstorm warning is in effect until the evening.",
        "Fog will clear by noon, then clouds and light rain.",
        "It was the hottest summer day on record, with temperatures above forty degrees.",
    ],
    "cooking": [
        "Simmer the tomato sauce with garlic and basil for twenty minutes.",
        "Knead the bread dough and let it rise before baking.",
        "Whisk the eggs with sugar, then fold in the flour for the cake.",
        "Roast the chicken in the oven with lemon and thyme.",
        "Chop the onions finely and fry them in butter until golden.",
        "Season the soup with salt and pepper before serving.",
    ],
    "technology": [
        "The new phone has a faster processor and a better camera.",
        "Update your laptop software to fix the security bug.",
        "The app crashes when the network connection drops.",
        "Cloud servers store the backup of the database every night.",
        "The company released an open source library for machine learning.",
        "Restart the router if the wifi connection is slow.",
    ],
}

TESTS = [
    ("The goalkeeper saved a penalty and the team won the match.", "sports"),
    ("She won the swimming race at the championship.", "sports"),
    ("Expect rain and wind with a chance of thunderstorm tonight.", "weather"),
    ("Sunny and warm temperatures are in the forecast for the weekend.", "weather"),
    ("Bake the cake in the oven after you whisk the eggs and sugar.", "cooking"),
    ("Fry the garlic in butter and add it to the tomato sauce.", "cooking"),
    ("The laptop crashes after the software update.", "technology"),
    ("The phone lost its wifi connection to the network.", "technology"),
]


def main() -> None:
    args = parse_args(__doc__, collection="example-knn-classification")
    with open_client(args) as client:
        model = builtin_encoder(client, args)
        print(describe(model))
        ids, texts, metadatas = [], [], []
        for label, examples in TRAINING.items():
            for i, text in enumerate(examples):
                ids.append(f"{label}-{i}")
                texts.append(text)
                metadatas.append({"label": label})
        create = {} if model else {"dim": toy_embed(["x"]).shape[1]}  # no dim: the built-in encoder
        with example_collection(client, args, "examples/knn_classification.py", **create) as labelled:
            if model:
                labelled.add(ids=ids, documents=texts, metadatas=metadatas)
            else:
                labelled.add(ids=ids, embeddings=toy_embed(texts), documents=texts, metadatas=metadatas)
            per_label = {label: labelled.count(where={"label": label}) for label in TRAINING}
            print(f"labelled examples: {per_label}")

            queries = [text for text, _ in TESTS]
            if model:
                results = labelled.classify(texts=queries, label_key="label", k=K)
            else:
                results = labelled.classify(embeddings=toy_embed(queries), label_key="label", k=K)
            correct = 0
            for (text, expected), result in zip(TESTS, results):
                predicted = result["label"]
                correct += predicted == expected
                mark = "ok" if predicted == expected else f"WRONG, expected {expected}"
                print(f"{predicted:<10} <- {text}  ({mark})")
                print("           scores: " + ", ".join(f"{label} {score:.2f}" for label, score in result["scores"].items()))
            print(f"accuracy: {correct}/{len(TESTS)}")


if __name__ == "__main__":
    main()
