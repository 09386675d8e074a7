"""`vectord snapshot create|list|download|restore`, over the Admin service's snapshot rpcs.

Snapshots live in the server's data directory (``<data dir>/snapshots/<name>/``);
``download`` streams one's files to a local directory, and ``restore --from DIR`` streams
such a directory back (to the same server or another one).
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path
from typing import Iterator

from vectord.errors import InvalidArgumentError
from vectord.v1 import admin_pb2

from .common import add_connection_args, call, command, connect, print_table, stream

CHUNK_BYTES = 1 << 20


def register(sub) -> None:
    parser = sub.add_parser("snapshot", help="online, point-in-time snapshots of collections")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION", help="one of:")
    p = actions.add_parser("create", help="snapshot a collection (online, consistent)")
    p.add_argument("-c", "--collection", required=True, help="the collection to snapshot")
    p.add_argument("--name", help="snapshot name (default <collection>-<UTC time>)")
    add_connection_args(p)
    p.set_defaults(func=create_command)
    p = actions.add_parser("list", help="the snapshots in the data directory")
    add_connection_args(p)
    p.set_defaults(func=list_command)
    p = actions.add_parser("download", help="copy a snapshot's files from the server into a local directory")
    p.add_argument("name", help="the snapshot (see `vectord snapshot list`)")
    p.add_argument("--out", required=True, help="directory to create")
    add_connection_args(p)
    p.set_defaults(func=download_command)
    p = actions.add_parser("restore", help="restore a snapshot as a collection")
    p.add_argument("name", nargs="?", help="a snapshot in the server's data directory")
    p.add_argument("--from", dest="source", help="instead: upload a downloaded snapshot directory")
    p.add_argument("-c", "--collection", help="target collection (default: the snapshot's own)")
    p.add_argument("--replace", action="store_true", help="replace an existing collection of that name")
    add_connection_args(p)
    p.set_defaults(func=restore_command)


def _row(info) -> tuple:
    when = datetime.datetime.fromtimestamp(info.created_at_ms / 1000, datetime.timezone.utc)
    return (info.name, info.collection, info.record_count, info.dim, info.seq,
            f"{info.size_bytes / 1e6:.2f} MB", when.strftime("%Y-%m-%d %H:%M:%SZ"))


HEADERS = ["name", "collection", "records", "dim", "seq", "size", "created"]


@command
def create_command(args: argparse.Namespace) -> int:
    with connect(args) as client:
        info = call(client, "Admin", "CreateSnapshot",
                    admin_pb2.CreateSnapshotRequest(collection=args.collection, name=args.name or ""))
    print_table(HEADERS, [_row(info)])
    return 0


@command
def list_command(args: argparse.Namespace) -> int:
    with connect(args) as client:
        response = call(client, "Admin", "ListSnapshots", admin_pb2.ListSnapshotsRequest())
    print_table(HEADERS, [_row(info) for info in response.snapshots])
    return 0


def _safe(out: Path, relative: str) -> Path:
    target = (out / relative).resolve()
    if out.resolve() not in target.parents:
        raise InvalidArgumentError(f"snapshot file {relative!r} would leave {out}")
    return target


@command
def download_command(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists():
        raise InvalidArgumentError(f"{out} exists; give a new directory")
    files, total = set(), 0
    with connect(args) as client:
        chunks = call(client, "Admin", "DownloadSnapshot", admin_pb2.DownloadSnapshotRequest(name=args.name),
                      timeout=24 * 3600)
        for chunk in stream(chunks):
            out.mkdir(parents=True, exist_ok=True)  # on the first chunk: nothing is left on an error
            target = _safe(out, chunk.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "r+b" if chunk.offset_bytes else "wb") as handle:
                handle.seek(chunk.offset_bytes)
                handle.write(chunk.data)
            files.add(chunk.path)
            total += len(chunk.data)
    print(f"downloaded snapshot {args.name!r}: {len(files)} files, {total} bytes, to {out}")
    return 0


def _upload(source: Path, first: admin_pb2.RestoreSnapshotRequest) -> Iterator[admin_pb2.RestoreSnapshotRequest]:
    yield first
    # index.hnsw is not sent: the server never loads an uploaded graph, it rebuilds it
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.name != "index.hnsw")
    for path in files:
        relative = path.relative_to(source).as_posix()
        size = path.stat().st_size
        with open(path, "rb") as handle:
            offset = 0
            while True:
                data = handle.read(CHUNK_BYTES)
                if not data and offset:
                    break
                yield admin_pb2.RestoreSnapshotRequest(chunk=admin_pb2.SnapshotChunk(
                    path=relative, offset_bytes=offset, data=data, file_size_bytes=size))
                offset += len(data)
                if not data:
                    break


@command
def restore_command(args: argparse.Namespace) -> int:
    if (args.name is None) == (args.source is None):
        raise InvalidArgumentError("snapshot restore: give a snapshot NAME or --from DIR")
    first = admin_pb2.RestoreSnapshotRequest(snapshot=args.name or "", collection=args.collection or "",
                                             replace=args.replace)
    with connect(args, create=bool(args.source)) as client:  # --from may seed a new data directory
        messages = iter([first]) if args.name else _upload(Path(args.source), first)
        response = call(client, "Admin", "RestoreSnapshot", messages, timeout=24 * 3600)
    print(f"restored collection {response.collection!r} ({response.record_count} records)")
    return 0
