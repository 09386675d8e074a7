"""`vectord classify`: label texts by a kNN vote over a collection's labelled records."""

from __future__ import annotations

import argparse
import json

from .common import add_connection_args, command, connect, parse_json, print_table


def register(sub) -> None:
    p = sub.add_parser("classify", help="label texts by a distance-weighted vote of their k nearest labelled records")
    p.add_argument("texts", nargs="+", metavar="TEXT", help="the texts to classify")
    p.add_argument("-c", "--collection", required=True, help="the collection of labelled records")
    p.add_argument("--label-key", default="label",
                   help="metadata path of each record's label (default label); records without it do not vote")
    p.add_argument("-k", type=int, default=10, help="neighbours that vote, 1..1000 (default 10)")
    p.add_argument("--where", help="only records matching this metadata filter (JSON) vote")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    add_connection_args(p)
    p.set_defaults(func=classify_command)


@command
def classify_command(args: argparse.Namespace) -> int:
    where = parse_json(args.where, "--where")
    with connect(args) as client:
        collection = client.get_collection(args.collection)
        results = collection.classify(texts=args.texts, label_key=args.label_key, k=args.k, where=where)
    if args.json:
        print(json.dumps([{"text": text, "label": r["label"],
                           "scores": [{"label": label, "score": score, "votes": r["votes"][label]}
                                      for label, score in r["scores"].items()]}
                          for text, r in zip(args.texts, results)], ensure_ascii=False, indent=1))
        return 0
    rows = []
    for text, r in zip(args.texts, results):
        scores = list(r["scores"].items())
        score = f"{scores[0][1]:.3f}" if scores else ""
        others = ", ".join(f"{json.dumps(label)} {s:.3f}" for label, s in scores[1:4])
        rows.append((json.dumps(r["label"]) if r["label"] is not None else "(no labelled neighbour)", score,
                     others, text if len(text) <= 50 else text[:49] + "…"))
    print_table(["label", "score", "runners-up", "text"], rows)
    return 0
