"""What the client subcommands share: connection flags, error handling, tables."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from typing import Any, Callable, Sequence

from pathlib import Path

from vectord.errors import (FailedPreconditionError, NotFoundError, UnauthenticatedError, UnavailableError,
                            VectordError)

DEFAULT_ADDRESS = "127.0.0.1:50051"


def add_connection_args(parser: argparse.ArgumentParser, data_dir: bool = True) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument("--address", default=None,
                       help=f"server host:port (default {DEFAULT_ADDRESS}; env VECTORD_ADDRESS)")
    group.add_argument("--api-key", default=None, help="API key (default env VECTORD_API_KEY)")
    group.add_argument("--tls-ca", help="PEM CA that signed the server's certificate (enables TLS)")
    group.add_argument("--tls-cert", help="PEM client certificate, for mutual TLS")
    group.add_argument("--tls-key", help="PEM private key of --tls-cert")
    group.add_argument("--tls", action="store_true", help="TLS with the system's root certificates")
    group.add_argument("--timeout", type=float, default=60.0, help="deadline of each call, in seconds")
    if data_dir:
        group.add_argument("--data-dir", help="work on this data directory in-process instead of a server "
                           "(the server must be stopped: one process owns a directory)")


def connect(args: argparse.Namespace, create: bool = False, announce: bool = True):
    """A ``vectord.Client``: embedded on ``--data-dir``, else connected to ``--address``.

    Only commands that write (``create=True``: import, collections create, snapshot restore)
    may create a missing data directory, and they say so on stderr; the others refuse it,
    so a mistyped ``--data-dir`` fails instead of showing an empty new directory.
    ``announce=False`` leaves saying so to the caller (import says it once it writes).
    """
    import vectord

    if getattr(args, "data_dir", None):
        check_data_dir(args.data_dir, create, f"vectord {command_name(args)}" if announce else None)
        return vectord.Client(path=args.data_dir, timeout=args.timeout)
    address = args.address or os.environ.get("VECTORD_ADDRESS") or DEFAULT_ADDRESS
    api_key = args.api_key or os.environ.get("VECTORD_API_KEY") or None
    return vectord.Client(address, api_key=api_key, timeout=args.timeout, tls=args.tls,
                          tls_ca=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key)


def command_name(args: argparse.Namespace) -> str:
    """'collections list', 'import', ...: the words the user typed."""
    return " ".join(w for w in (args.command, getattr(args, "action", None)) if w)


def check_data_dir(path: str | os.PathLike, create: bool, who: str | None) -> None:
    """Refuses a missing (or non-data) directory unless ``create``; then ``who`` (unless
    None) says on stderr that it creates one."""
    path = Path(path)
    if (path / "collections").is_dir():
        return
    if path.exists() and not path.is_dir():
        raise FailedPreconditionError(f"data directory {path} is not a directory")
    if not create:
        if not path.exists():
            raise NotFoundError(f"no such data directory: {path} (check the path; only `vectord serve` and "
                                "the commands that write, import, collections create and snapshot restore "
                                "--from, create one)")
        if any(path.iterdir()):
            raise FailedPreconditionError(f"{path} is not a vectord data directory (no collections/ in it)")
        return  # an empty directory: an empty data directory
    if not path.exists() and who:
        print(f"{who}: creating data directory {path}", file=sys.stderr)


def hint(exc: VectordError) -> str:
    """What a command-line user can do about an error, beyond the error's own message."""
    if isinstance(exc, UnauthenticatedError):
        return " (vectord CLI: give the key with --api-key KEY or the VECTORD_API_KEY environment variable)"
    if isinstance(exc, UnavailableError):
        return (f" (vectord CLI: --address HOST:PORT or VECTORD_ADDRESS picks the server, default "
                f"{DEFAULT_ADDRESS}; --data-dir DIR works on a data directory without one)")
    return ""


def command(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turns vectord errors into one line on stderr and exit status 1."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        import logging

        logging.basicConfig(level="WARNING", stream=sys.stderr)
        try:
            return func(args)
        except VectordError as exc:
            # one line: the error's own message (the SDK's), then what the CLI user can do
            print(f"vectord {command_name(args)}: {type(exc).__name__}: {exc.message}{hint(exc)}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"vectord {command_name(args)}: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"vectord {command_name(args)}: interrupted", file=sys.stderr)
            return 130

    return run


def call(client, service: str, method: str, request, timeout: float | None = None):
    """Calls an rpc through the client's transport (remote or embedded), mapping gRPC
    errors raised while a response stream is read to vectord errors."""
    import grpc

    from vectord.client.transport import error_from_rpc

    try:
        return client._call(service, method, request, timeout)
    except grpc.RpcError as exc:
        raise error_from_rpc(exc) from None


def stream(responses):
    """Iterates a response stream, mapping gRPC errors to vectord errors."""
    import grpc

    from vectord.client.transport import error_from_rpc

    try:
        yield from responses
    except grpc.RpcError as exc:
        raise error_from_rpc(exc) from None


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out=None) -> None:
    """A plain, aligned text table."""
    out = out or sys.stdout
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip(), file=out)
        if n == 0:
            print("  ".join("-" * width for width in widths), file=out)


def print_settings(values: dict[str, Any]) -> None:
    """Settings as TOML lines (``key = value``; unset ones commented out)."""
    for key, value in values.items():
        if value is None:
            print(f"# {key} = (unset)")
        else:
            print(f"{key} = {json.dumps(value)}")


def parse_json(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SystemExit(f"vectord: {what} is not valid JSON: {exc}") from None
