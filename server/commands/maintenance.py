"""`vectord compact` and `vectord query`."""

from __future__ import annotations

import argparse
import json

from vectord.v1 import admin_pb2

from .common import add_connection_args, call, command, connect, parse_json, print_table


def register(sub) -> None:
    p = sub.add_parser("compact", help="checkpoint and compact deleted records away (one collection or all)")
    p.add_argument("-c", "--collection", help="one collection (default: all)")
    add_connection_args(p)
    p.set_defaults(func=compact_command)
    p = sub.add_parser("query", help="nearest records to a text (embedded by the collection's encoder) or a "
                                     "vector; --rank bm25|hybrid for keyword or hybrid search")
    p.add_argument("text", nargs="?", help="the query text")
    p.add_argument("-c", "--collection", required=True, help="the collection to search")
    p.add_argument("--vector", help="a query vector as a JSON list, instead of a text (with --rank hybrid, "
                   "or bm25 and --max-distance, beside the TEXT: for a collection without an encoder)")
    p.add_argument("-n", "--n-results", type=int, default=10, help="how many records (default 10)")
    p.add_argument("--where", help='metadata filter as JSON, e.g. \'{"year": {"$gte": 2000}}\'')
    p.add_argument("--max-distance", type=float, help="only hits at most this far (fewer results then)")
    p.add_argument("--group-by", metavar="PATH", help="one group per distinct value of this metadata path "
                   "(e.g. source_id: the best chunk of each document); -n counts groups")
    p.add_argument("--group-size", type=int, help="hits per group with --group-by (default 1)")
    p.add_argument("--rank", choices=("vector", "bm25", "hybrid"), default="vector",
                   help="vector (nearest vectors, default), bm25 (keyword search of the TEXT) or hybrid "
                        "(both, fused); bm25 and hybrid need a TEXT")
    p.add_argument("--fusion", choices=("rrf", "weighted"), default="rrf",
                   help="hybrid: reciprocal rank fusion (default) or a weighted sum (see --alpha)")
    p.add_argument("--alpha", type=float, default=0.5,
                   help="hybrid with --fusion weighted: the vector ranking's weight, 0..1 (default 0.5)")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.add_argument("--width", type=int, default=60, help="characters of each document shown (default 60)")
    add_connection_args(p)
    p.set_defaults(func=query_command)


@command
def compact_command(args: argparse.Namespace) -> int:
    with connect(args) as client:
        response = call(client, "Admin", "Checkpoint",
                        admin_pb2.CheckpointRequest(collection=args.collection or "", compact=True))
    print(f"checkpointed {response.checkpointed} collection(s), compacted {response.compacted_slots} deleted slot(s)")
    return 0


def _short(text, width: int) -> str:
    if text is None:
        return ""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


@command
def query_command(args: argparse.Namespace) -> int:
    if args.rank == "vector" and (args.text is None) == (args.vector is None):
        raise SystemExit("vectord query: give a TEXT or --vector JSON (not both)")
    vector = parse_json(args.vector, "--vector")
    where = parse_json(args.where, "--where")
    with connect(args) as client:
        collection = client.get_collection(args.collection)
        if args.rank != "vector" and args.text is None:
            raise SystemExit(f"vectord query: --rank {args.rank} needs a TEXT (and --vector only beside it)")
        rank = {"rank": args.rank, "fusion": args.fusion, "hybrid_alpha": args.alpha}
        cut = {"max_distance": args.max_distance, "group_by": args.group_by, "group_size": args.group_size}
        if args.rank == "vector" and vector is not None:
            result = collection.query(query_embeddings=[vector], n_results=args.n_results, where=where, **cut)
        else:  # a --vector beside the TEXT is the query vector of hybrid, or of bm25's --max-distance
            result = collection.query(query_texts=[args.text], n_results=args.n_results, where=where, **rank,
                                      **cut, **({} if vector is None else {"query_embeddings": [vector]}))
    scores = result["scores"][0] if "scores" in result else [None] * len(result["ids"][0])
    rows = [(i, None if d != d else d, s, doc, m)  # NaN (bm25: no vector distance) -> none
            for i, d, s, doc, m in zip(result["ids"][0], result["distances"][0], scores, result["documents"][0],
                                       result["metadatas"][0])]
    if "groups" in result and not args.json:  # --group-by: the table shows each hit's group beside its id
        rows = [(f"{i} [{json.dumps(g, ensure_ascii=False)}]", *rest)
                for g, (i, *rest) in zip(result["groups"][0], rows)]
    if args.json:
        groups = result["groups"][0] if "groups" in result else None
        print(json.dumps([{"id": i, "distance": d, **({} if s is None else {"score": s}),
                           **({} if groups is None else {"group": groups[n]}), "document": doc, "metadata": m}
                          for n, (i, d, s, doc, m) in enumerate(rows)], ensure_ascii=False, indent=1))
        return 0
    ranked = args.rank != "vector"
    print_table(["#", "id", *(["score"] if ranked else []), "distance", "document", "metadata"],
                [(n, i, *([f"{s:.4f}"] if ranked else []), "" if d is None else f"{d:.4f}", _short(doc, args.width),
                  _short(json.dumps(m, ensure_ascii=False), 40))
                 for n, (i, d, s, doc, m) in enumerate(rows, start=1)])
    return 0
