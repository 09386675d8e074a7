"""`vectord collections list|create|info|reembed|delete`."""

from __future__ import annotations

import argparse
import json

from .common import add_connection_args, command, connect, parse_json, print_table


def register(sub) -> None:
    parser = sub.add_parser("collections", help="list, create, describe or delete collections")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION", help="one of:")
    p = actions.add_parser("list", help="every collection: name, dim, metric, records, encoder")
    add_connection_args(p)
    p.set_defaults(func=list_command)
    p = actions.add_parser("create", help="create a collection (without --dim: one with the built-in encoder)")
    p.add_argument("name", help="the new collection's name: 1-128 characters of [A-Za-z0-9._-]")
    p.add_argument("--dim", type=int, help="vector dimension; omit it for an encoder collection (the model's)")
    # no default here: with --get-or-create an unset metric accepts the existing collection's
    p.add_argument("--metric", choices=["cosine", "l2", "ip"],
                   help="distance (default cosine; with --get-or-create, the existing collection's)")
    p.add_argument("--encoder", help="built-in model that embeds documents and query texts "
                   "(default: the default model when --dim is omitted)")
    p.add_argument("--hnsw", help='index parameters as JSON, e.g. \'{"m": 16, "ef_search": 64}\'')
    p.add_argument("--metadata", help="the collection's own metadata, as a JSON object")
    p.add_argument("--get-or-create", action="store_true", help="succeed if it exists with the same settings")
    # no defaults: unset takes the cluster gateway's layout (one server holds one shard)
    p.add_argument("--shards", type=int, help="on a vectord cluster, shards to spread the records over "
                   "(default: the gateway's; one server accepts only 1)")
    p.add_argument("--replicas", type=int, help="on a vectord cluster, copies of each shard on distinct nodes "
                   "(default: the gateway's; one server accepts only 1)")
    add_connection_args(p)
    p.set_defaults(func=create_command)
    p = actions.add_parser("info", help="one collection's settings and record count, as JSON")
    p.add_argument("name", help="the collection")
    add_connection_args(p)
    p.set_defaults(func=info_command)
    p = actions.add_parser("reembed", help="re-embed a collection's documents with another model, online "
                           "(resumable), then switch the collection to it")
    p.add_argument("name", help="the collection")
    p.add_argument("--encoder", required=True, help="the target model, by name (the SDK's client.list_models()); "
                   "'default' for the server's default model")
    p.add_argument("--batch", type=int, default=0, help="records embedded per call (default 1000)")
    p.add_argument("--cancel", action="store_true", help="discard the stored progress instead of re-embedding")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_connection_args(p)
    p.set_defaults(func=reembed_command)
    p = actions.add_parser("delete", help="delete a collection and its files")
    p.add_argument("name", help="the collection")
    add_connection_args(p)
    p.set_defaults(func=delete_command)


def describe(collection) -> dict:
    return {"name": collection.name, "dim": collection.dim, "metric": collection.metric,
            "count": collection.count(), "metadata": collection.metadata,
            "encoder": collection.encoder or None, "hnsw": collection.hnsw,
            "shards": collection.shards, "replicas": collection.replicas}


@command
def list_command(args: argparse.Namespace) -> int:
    with connect(args) as client:
        rows = [(d["name"], d["dim"], d["metric"], d["count"], d["encoder"] or "-")
                for d in (describe(c) for c in client.list_collections())]
    print_table(["name", "dim", "metric", "records", "encoder"], rows)
    return 0


@command
def create_command(args: argparse.Namespace) -> int:
    with connect(args, create=True) as client:
        collection = client.create_collection(
            args.name, dim=args.dim, metric=args.metric, encoder=args.encoder,
            hnsw=parse_json(args.hnsw, "--hnsw"), metadata=parse_json(args.metadata, "--metadata"),
            get_or_create=args.get_or_create, shards=args.shards, replicas=args.replicas)
        encoder = f", encoder {collection.encoder!r}" if collection.encoder else ""
        layout = (f", {collection.shards} shard(s) x {collection.replicas} replica(s)"
                  if (collection.shards, collection.replicas) != (1, 1) else "")
        print(f"collection {collection.name!r}: dim {collection.dim}, metric {collection.metric}{encoder}{layout}")
    return 0


@command
def info_command(args: argparse.Namespace) -> int:
    with connect(args) as client:
        print(json.dumps(describe(client.get_collection(args.name)), indent=2, sort_keys=True))
    return 0


@command
def reembed_command(args: argparse.Namespace) -> int:
    """Calls Admin.ReembedCollection until the switch, with a progress bar (stderr). The server
    keeps the progress: after an interruption the same command continues where it stopped."""
    import sys

    from tqdm import tqdm

    model = "" if args.encoder == "default" else args.encoder
    with connect(args) as client:
        if args.cancel:
            client.reembed_step(args.name, model, cancel=True)
            print(f"collection {args.name!r}: re-embed progress discarded")
            return 0
        bar = None
        truncated = 0
        try:
            while True:
                progress = client.reembed_step(args.name, model, batch=args.batch)
                truncated += progress["truncated"]
                if bar is None:
                    bar = tqdm(total=progress["total"], desc=f"reembed {args.name}", unit="rec", unit_scale=True,
                               dynamic_ncols=True, disable=args.no_progress, file=sys.stderr, mininterval=0.5)
                bar.total = progress["total"]  # writes meanwhile change it
                bar.update(progress["done"] - bar.n)
                if progress["switched"]:
                    break
        finally:
            if bar is not None:
                bar.close()
    target = progress["model"]
    print(f"collection {args.name!r} now embeds with {target['name']} {target['version']} "
          f"(dim {target['dim']}, sha256 {target['sha256'][:12]}...): {progress['total']} records")
    if truncated:
        print(f"truncated {truncated} document(s): longer than the model's {target['max_tokens']}-token window, "
              "embedded from their first tokens only")
    return 0


@command
def delete_command(args: argparse.Namespace) -> int:
    with connect(args) as client:
        client.delete_collection(args.name)
    print(f"collection {args.name!r} deleted")
    return 0
