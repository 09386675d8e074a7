"""The `vectord` command.

    vectord serve [--data-dir ./vectord-data] [--host 127.0.0.1] [--port 50051]

On SIGTERM or SIGINT: health turns NOT_SERVING, in-flight calls get the grace period to
finish, every collection writes a final checkpoint, the data directory is unlocked, and the
process exits 0. A second signal stops without waiting for in-flight calls.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from vectord import __version__
from vectord.errors import VectordError

log = logging.getLogger("vectord")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vectord", description="vectord: a vector database with a built-in encoder")
    parser.add_argument("--version", action="version", version=f"vectord {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gRPC server")
    serve.add_argument("--data-dir", help="data directory (default ./vectord-data; env VECTORD_DATA_DIR)")
    serve.add_argument("--host", help="listen address (default 127.0.0.1; env VECTORD_HOST)")
    serve.add_argument("--port", type=int, help="listen port, 0 for any free one (default 50051; env VECTORD_PORT)")
    serve.add_argument("--max-workers", type=int, help="gRPC worker threads (env VECTORD_MAX_WORKERS)")
    serve.add_argument("--grace-period-s", type=float, help="shutdown grace for in-flight calls (env VECTORD_GRACE_PERIOD_S)")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (env VECTORD_LOG_LEVEL)")
    return parser


def _load_encoders(settings):
    """The built-in encoders, with the default model loaded (and its sha256 checked) now,
    before the server accepts calls. None when the encoder runtime is not installed."""
    import os

    try:
        from .encoders import BuiltinEncoders
    except ImportError as exc:  # onnxruntime or tokenizers missing
        log.warning("built-in encoder unavailable (%s); collections take vectors only", exc)
        return None
    threads = settings.encoder_threads or min(os.cpu_count() or 1, 4)
    encoders = BuiltinEncoders(threads=threads)
    if encoders.default in encoders.names():
        model = encoders.get(encoders.default)  # raises DataLossError on a damaged model file
        log.info("encoder %s %s loaded (dim %d, sha256 %s..., %d threads)", model.name, model.version,
                 model.dim, model.sha256[:12], threads)
    return encoders


def serve(args: argparse.Namespace) -> int:
    from vectord.storage import Database, Tuning

    from .app import create_server
    from .settings import Settings

    settings = Settings.load(data_dir=args.data_dir, host=args.host, port=args.port,
                             max_workers=args.max_workers, grace_period_s=args.grace_period_s,
                             log_level=args.log_level)
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tuning = Tuning()
    if settings.index_threads:
        tuning.index_threads = settings.index_threads
    try:
        encoders = _load_encoders(settings)
        database = Database(settings.data_dir, tuning=tuning, encoders=encoders)
    except VectordError as exc:
        log.error("%s", exc.message)
        return 1
    try:
        running = create_server(settings, database)
    except Exception as exc:
        log.error("cannot start the server: %s", exc)
        database.close()
        return 1
    stop = threading.Event()
    signals = {"count": 0}

    def on_signal(signum, frame):
        signals["count"] += 1
        if signals["count"] > 1:
            log.warning("second signal: stopping without waiting for in-flight calls")
            running.server.stop(None)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    collections = database.list_collections()
    log.info("recovered %d collections (%d records) from %s", len(collections),
             sum(c.info().count for c in collections), database.path)
    for name, why in database.damaged_collections().items():
        log.error("collection %r is not served: %s", name, why)
    # One machine-readable line on stdout, so scripts and tests learn the bound port.
    print(f"vectord listening on {settings.host}:{running.port}", flush=True)
    log.info("vectord %s listening on %s:%d (data dir %s)", __version__, settings.host, running.port, database.path)
    while not stop.wait(0.5):
        pass
    log.info("shutting down: health NOT_SERVING, %.1f s grace for in-flight calls", settings.grace_period_s)
    running.stop(settings.grace_period_s)
    database.close()
    log.info("stopped cleanly")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2  # pragma: no cover - argparse enforces a command


if __name__ == "__main__":
    raise SystemExit(main())
