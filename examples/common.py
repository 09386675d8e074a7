"""What the worked examples share: where to connect, and vectors for when there is no encoder.

Each example runs embedded (``vectord.Client(path=...)``, no server) by default, or against
a server with ``--address host:port``. With the built-in encoder installed it sends text and
lets vectord embed it; without it (or with ``--vectors``) it brings its own vectors, made by
``toy_embed`` below, the way you would plug in any embedding model of your own.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import re
import sys
import tempfile
from typing import Iterator

import numpy as np

import vectord

#: Dimension of the toy vectors.
TOY_DIM = 256
_STOPWORDS = frozenset(
    "a an and are as at be by can do does for from has have how i in is it its my of on or should "
    "the their this to what when where which who why will with you your".split())


#: The key of the collection metadata by which an example knows a collection it created.
OWNER_KEY = "created_by"


def parse_args(description: str, collection: str) -> argparse.Namespace:
    """The examples' flags; ``collection`` is the example's own collection name (``--collection``)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", default=collection,
                        help=f"the collection this example creates, fills and deletes (default: {collection}); "
                             "an existing collection of that name that the example did not create is left alone")
    parser.add_argument("--path", help="embedded mode: the data directory (default: a new temporary one)")
    parser.add_argument("--address", help="talk to a running `vectord serve` at host:port instead")
    parser.add_argument("--api-key", help="the server's API key, if it has keys")
    parser.add_argument("--vectors", action="store_true",
                        help="bring your own vectors even when the built-in encoder is installed")
    return parser.parse_args()


def open_client(args: argparse.Namespace) -> vectord.Client:
    if args.address:
        return vectord.Client(args.address, api_key=args.api_key)
    return vectord.Client(path=args.path or tempfile.mkdtemp(prefix="vectord-example-"))


@contextlib.contextmanager
def example_collection(client: vectord.Client, args: argparse.Namespace, owner: str,
                       **create: object) -> Iterator[vectord.Collection]:
    """Creates the example's collection, yields it, and deletes it at the end.

    The collection is marked as the example's (``metadata={"created_by": owner}``). An existing
    collection of the same name is deleted first only if it bears that mark (left by an
    earlier run of the same example that was interrupted); any other collection of that name
    belongs to someone else, and the example stops without touching it.
    """
    name = args.collection
    try:
        existing = client.get_collection(name)
    except vectord.NotFoundError:
        existing = None
    if existing is not None:
        if existing.metadata.get(OWNER_KEY) != owner:
            sys.exit(f"collection {name!r} already exists and was not created by {owner}: "
                     f"left untouched; choose another name with --collection")
        client.delete_collection(name)  # our own, from an interrupted earlier run
    collection = client.create_collection(name, metadata={OWNER_KEY: owner}, **create)  # type: ignore[arg-type]
    try:
        yield collection
    finally:
        client.delete_collection(name)


def builtin_encoder(client: vectord.Client, args: argparse.Namespace) -> dict | None:
    """The default built-in model, or None when there is none (or ``--vectors`` was given)."""
    if args.vectors:
        return None
    try:
        models = client.list_models()
    except (vectord.FailedPreconditionError, vectord.NotFoundError):  # no encoder in this install
        return None
    return next((m for m in models if m["is_default"]), None)


def describe(model: dict | None) -> str:
    if model:
        return f"mode: text, built-in encoder {model['name']} (dim {model['dim']})"
    return f"mode: bring-your-own vectors (toy hashing embedder, dim {TOY_DIM})"


def toy_embed(texts: list[str]) -> np.ndarray:
    """A stand-in for your embedding model: hashed words (no meaning, only shared words).

    Replace it with any model's vectors (sentence-transformers, an API...) of a fixed dim.
    """
    out = np.zeros((len(texts), TOY_DIM), np.float32)
    for row, text in enumerate(texts):
        out[row, 0] = 0.05  # never a zero vector: a cosine collection refuses those
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            if word in _STOPWORDS:
                continue
            word = word[:-1] if len(word) > 3 and word.endswith("s") else word  # crude plural folding
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            slot = 1 + int.from_bytes(digest[:4], "little") % (TOY_DIM - 1)
            out[row, slot] += 1.0 if digest[4] & 1 else -1.0
    return out / np.linalg.norm(out, axis=1, keepdims=True)
