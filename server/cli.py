"""The `vectord` command.

    vectord serve [--config vectord.toml] [--data-dir ./vectord-data] [--host 127.0.0.1] [--port 50051]
    vectord serve --print-config          # the effective settings (secrets masked), then exit
    vectord verify [--data-dir ./vectord-data] [--repair]
    vectord collections|import|export|snapshot|compact|query ...   (server/commands/)

On SIGTERM or SIGINT: health turns NOT_SERVING, in-flight calls get the grace period to
finish, every collection writes a final checkpoint, the data directory is unlocked, and the
process exits 0. A second signal stops without waiting for in-flight calls. SIGUSR1 writes
every thread's Python stack to stderr (faulthandler) and changes nothing: for a server that
seems stuck.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from vectord import __version__
from vectord.errors import VectordError

log = logging.getLogger("vectord")


EXAMPLES = """\
examples:
  vectord serve --data-dir ./vectord-data             run the server on 127.0.0.1:50051
  vectord collections create docs --dim 384           a collection of 384-d vectors
                                                      (without --dim: the built-in text encoder)
  vectord import docs.jsonl -c docs                   load records (.jsonl, or .npy + .jsonl sidecar)
  vectord query "how do I reset my password" -c docs  the nearest records to a text
  vectord collections list                            every collection, its dim and record count

`vectord COMMAND --help` describes each command. Errors print one line and exit 1.
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Epilogs as written; help text wrapped without breaking './vectord-data' at its hyphen."""

    def _split_lines(self, text, width):  # argparse's hook for wrapping help strings
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def _setting_help(name: str, text: str | None = None) -> str:
    """A serve flag's help from the setting itself (server/settings.py): its description,
    default and environment variable, so --help cannot drift from what serve does."""
    from .settings import Settings

    field = Settings.model_fields[name]
    default = "unset" if field.default is None else field.default
    if isinstance(default, Path) and not default.is_absolute():
        default = f"./{default}"  # as typed: Path drops the "./"
    return f"{text or field.description} (default {default}; env VECTORD_{name.upper()})"


def environment_variables() -> list[str]:
    """Every VECTORD_* variable `vectord serve` reads: one per setting, plus VECTORD_CONFIG."""
    from .settings import Settings

    return ["VECTORD_CONFIG"] + [f"VECTORD_{name.upper()}" for name in Settings.model_fields]


def _serve_epilog() -> str:
    import textwrap

    names = textwrap.fill(", ".join(environment_variables()), width=76, initial_indent="  ",
                          subsequent_indent="  ")
    return ("environment variables (precedence: defaults < --config file < environment < flags):\n"
            f"{names}\n\nVECTORD_API_KEY and VECTORD_READONLY_API_KEY exist only in the environment\n"
            "(never on the command line).")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vectord", description="vectord: a vector database with a built-in encoder",
                                     epilog=EXAMPLES, formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"vectord {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one of:")
    serve = sub.add_parser("serve", help="run the gRPC server", description="Run the vectord gRPC server.",
                           epilog=_serve_epilog(), formatter_class=_HelpFormatter)
    serve.add_argument("--config", help="TOML settings file (env VECTORD_CONFIG); the environment "
                       "and flags override it")
    serve.add_argument("--print-config", action="store_true",
                       help="print the effective settings (secrets masked) and exit")
    serve.add_argument("--data-dir", help=_setting_help("data_dir", "data directory, created if missing"))
    serve.add_argument("--host", help=_setting_help("host", "listen address"))
    serve.add_argument("--port", type=int, help=_setting_help("port", "listen port, 0 for any free one"))
    serve.add_argument("--max-workers", type=int, help=_setting_help("max_workers"))
    serve.add_argument("--switch-interval-ms", type=float, help=_setting_help("switch_interval_ms"))
    serve.add_argument("--index-threads", type=int, help=_setting_help("index_threads"))
    serve.add_argument("--encoder-threads", type=int, help=_setting_help("encoder_threads"))
    serve.add_argument("--planner-cost-per-ef", type=int, help=_setting_help("planner_cost_per_ef"))
    serve.add_argument("--seal-mib", type=int, help=_setting_help("seal_mib"))
    serve.add_argument("--seal-rows", type=int, help=_setting_help("seal_rows"))
    serve.add_argument("--max-segment-mib", type=int, help=_setting_help("max_segment_mib"))
    serve.add_argument("--max-segment-rows", type=int, help=_setting_help("max_segment_rows"))
    serve.add_argument("--merge-factor", type=int, help=_setting_help("merge_factor"))
    serve.add_argument("--graph-in-child", action=argparse.BooleanOptionalAction, default=None,
                       help=_setting_help("graph_in_child"))
    serve.add_argument("--huge-pages", action=argparse.BooleanOptionalAction, default=None,
                       help=_setting_help("huge_pages"))
    serve.add_argument("--models-dir", help=_setting_help("models_dir"))
    serve.add_argument("--max-concurrent-rpcs", type=int, help=_setting_help("max_concurrent_rpcs"))
    serve.add_argument("--max-query-streams", type=int, help=_setting_help("max_query_streams"))
    serve.add_argument("--query-stream-idle-s", type=float, help=_setting_help("query_stream_idle_s"))
    serve.add_argument("--grace-period-s", type=float, help=_setting_help("grace_period_s"))
    serve.add_argument("--log-level", help=_setting_help("log_level"))
    serve.add_argument("--log-format", choices=["text", "json"], help=_setting_help("log_format"))
    serve.add_argument("--metrics-port", type=int, help=_setting_help("metrics_port"))
    # security (README "Security"); keys themselves only from a file or the environment, never argv
    serve.add_argument("--api-keys-file", help=_setting_help(
        "api_keys_file", "API keys, one 'rw:<key>' or 'ro:<key>' a line (also VECTORD_API_KEY, "
        "VECTORD_READONLY_API_KEY)"))
    serve.add_argument("--tls-cert", help=_setting_help("tls_cert", "PEM server certificate: serve TLS"))
    serve.add_argument("--tls-key", help=_setting_help("tls_key", "PEM private key of --tls-cert"))
    serve.add_argument("--tls-client-ca", help=_setting_help(
        "tls_client_ca", "PEM CA bundle: require client certificates signed by it (mutual TLS)"))
    serve.add_argument("--allow-reset", action="store_true", default=None, help=_setting_help(
        "allow_reset", "let clients delete every collection at once (client.reset(), as Chroma's)"))
    verify = sub.add_parser("verify", help="check a data directory offline (the server must be stopped)")
    verify.add_argument("--data-dir", default="./vectord-data", help="data directory (default ./vectord-data)")
    verify.add_argument("--repair", action="store_true",
                        help="rebuild damaged index files from the stored vectors (new checkpoint)")
    from .commands import register_all

    register_all(sub)
    # `vectord cluster ...` (vectord[cluster]): argparse only here; Ray is imported when it runs
    from vectord.cluster.cli import register as register_cluster

    register_cluster(sub)
    return parser


def _load_encoders(settings):
    """The built-in encoders, with the default model's sha256 checked now, before the server
    accepts calls (its onnxruntime session is made at the first text). None when the encoder
    runtime is not installed."""
    import os

    try:
        from .encoders import BuiltinEncoders
    except ImportError as exc:  # onnxruntime or tokenizers missing
        log.warning("built-in encoder unavailable (%s); collections take vectors only", exc)
        return None
    threads = settings.encoder_threads or min(os.cpu_count() or 1, 4)
    encoders = BuiltinEncoders(threads=threads, models_dir=settings.models_dir)  # verifies the user's models
    for name, folder in encoders.custom.items():
        model = encoders.get(name)
        log.info("encoder %s %s from %s loaded (dim %d, window %d tokens, sha256 %s...)", model.name,
                 model.version, folder, model.dim, model.max_tokens, model.sha256[:12])
    if encoders.default in encoders.names():
        model = encoders.get(encoders.default)  # raises DataLossError on a damaged model file
        log.info("encoder %s %s verified (dim %d, sha256 %s..., %d threads)", model.name, model.version,
                 model.dim, model.sha256[:12], threads)
    return encoders


def _limit_malloc_arenas(arenas: int = 2, mmap_threshold: int = 4 << 20) -> None:
    """glibc gives every thread its own malloc arena; with 16 gRPC workers the memory freed
    after each checkpoint stays scattered over them and resident memory ratchets up (measured
    by tests/faults/test_load.py: +43% in 10 minutes, flat with 2 arenas). Same as
    MALLOC_ARENA_MAX=2, which, when set, wins. Must run before the worker threads start.

    Blocks of ``mmap_threshold`` bytes and more are mapped, and unmapped when freed. glibc's
    default raises that threshold up to 32 MiB as large blocks are freed, after which large
    messages (a page of 5,000 embeddings is 7.5 MiB) come from the arenas and stay resident
    once freed: ~100 MiB after every embedding of a 1M x 384 collection was read back once
    (benchmarks/memory_steady.py --base). 4 MiB, not less: a filtered query's gather (10,000
    x 50-d rows: 2 MB) stays on reused heap pages instead of faulting fresh ones each call.
    The trim threshold is set to twice it, as glibc's dynamic rule would. MALLOC_MMAP_THRESHOLD_,
    when set, wins."""
    import ctypes
    import ctypes.util
    import os

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        if "MALLOC_ARENA_MAX" not in os.environ:
            libc.mallopt(-8, arenas)  # M_ARENA_MAX
        if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
            libc.mallopt(-3, mmap_threshold)  # M_MMAP_THRESHOLD (fixed: no dynamic raise)
            libc.mallopt(-1, 2 * mmap_threshold)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc (musl has no arenas): nothing to do
        pass


def _setting_error(error: dict, args: argparse.Namespace) -> str:
    """One pydantic error as a line naming the setting, its flag and variable, the value given
    and the rule: 'invalid setting merge_factor = 1 (--merge-factor, VECTORD_MERGE_FACTOR):
    Input should be greater than or equal to 2'."""
    msg = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:  # a rule over several settings (a model validator): its message names them
        return f"invalid settings: {msg}"
    name = ".".join(str(p) for p in error["loc"])
    where = [f"--{name.replace('_', '-')}"] if hasattr(args, name) else []  # not every setting has a flag
    where.append(f"VECTORD_{name.upper()}")
    value = "" if error["type"] in ("missing", "extra_forbidden") else f" = {error.get('input')!r}"
    return f"invalid setting {name}{value} ({', '.join(where)}): {msg}"


def engine_tuning(settings):
    """The engine's Tuning from the server's settings: the storage defaults, with what was set."""
    from vectord.storage import Tuning

    tuning = Tuning(merge_factor=settings.merge_factor, max_segment_rows=settings.max_segment_rows,
                    seal_bytes=settings.seal_mib << 20, max_segment_bytes=settings.max_segment_mib << 20)
    if settings.index_threads:
        tuning.index_threads = settings.index_threads
    if settings.planner_cost_per_ef:
        tuning.graph_cost_per_ef = settings.planner_cost_per_ef
    if settings.seal_rows:
        tuning.seal_rows = settings.seal_rows
    tuning.graph_in_child = settings.graph_in_child
    return tuning


def serve(args: argparse.Namespace, own_process: bool = False) -> int:
    _limit_malloc_arenas()
    from .settings import Settings

    from pydantic import ValidationError

    try:
        settings = Settings.load(config=args.config, data_dir=args.data_dir, host=args.host, port=args.port,
                                 max_workers=args.max_workers, grace_period_s=args.grace_period_s,
                                 switch_interval_ms=args.switch_interval_ms,
                                 max_concurrent_rpcs=args.max_concurrent_rpcs,
                                 max_query_streams=args.max_query_streams,
                                 query_stream_idle_s=args.query_stream_idle_s,
                                 index_threads=args.index_threads, encoder_threads=args.encoder_threads,
                                 planner_cost_per_ef=args.planner_cost_per_ef, seal_rows=args.seal_rows,
                                 seal_mib=args.seal_mib, max_segment_mib=args.max_segment_mib,
                                 max_segment_rows=args.max_segment_rows, merge_factor=args.merge_factor,
                                 graph_in_child=args.graph_in_child, huge_pages=args.huge_pages,
                                 models_dir=args.models_dir,
                                 log_level=args.log_level, log_format=args.log_format,
                                 metrics_port=args.metrics_port, api_keys_file=args.api_keys_file,
                                 tls_cert=args.tls_cert, tls_key=args.tls_key, tls_client_ca=args.tls_client_ca,
                                 allow_reset=args.allow_reset)
    except ValidationError as exc:  # one line per bad setting, naming it; no traceback
        for error in exc.errors():
            print(f"vectord: {_setting_error(error, args)}", file=sys.stderr)
        return 2
    except VectordError as exc:  # an unreadable or malformed config file
        print(f"vectord: {exc.message}", file=sys.stderr)
        return 2
    if args.print_config:
        from .commands.common import print_settings

        print_settings(settings.effective())
        return 0
    if own_process:  # before anything starts (logging, threads, files) or is imported
        from . import huge_pages

        huge_pages.settle(settings.huge_pages)
    from .grpc_engine import import_grpc

    import_grpc()  # first: it picks gRPC's I/O engine for this process (server/grpc_engine.py)
    from vectord.storage import Database

    from .app import create_server
    from . import logs

    logs.configure(settings.log_level, settings.log_format)
    sys.setswitchinterval(settings.switch_interval_ms / 1000)
    tuning = engine_tuning(settings)
    metrics = None
    if settings.metrics_port is not None:
        from .metrics import Metrics

        metrics = Metrics()
    try:
        encoders = _load_encoders(settings)
        if encoders is not None and metrics is not None:
            from .metrics import MeteredEncoders

            encoders = MeteredEncoders(encoders, metrics)
        database = Database(settings.data_dir, tuning=tuning, encoders=encoders)
    except VectordError as exc:
        log.error("%s", exc.message)
        return 1
    except OSError as exc:  # cannot create or write the data directory: one line, no traceback
        log.error("cannot use data directory %s: %s", settings.data_dir, _os_reason(exc, settings.data_dir))
        return 1
    try:
        metrics_port = None
        if metrics is not None:
            from .metrics import EngineCollector

            metrics.registry.register(EngineCollector(database))
            metrics_port = metrics.serve(settings.host, settings.metrics_port)
        running = create_server(settings, database, metrics=metrics)
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
    if own_process:  # a library caller's process keeps its own SIGUSR1
        import faulthandler

        faulthandler.register(signal.SIGUSR1, all_threads=True)
    collections = database.list_collections()
    log.info("recovered %s (%s) from %s", plural(len(collections), "collection"),
             plural(sum(c.info().count for c in collections), "record"), database.path)
    for name, why in database.damaged_collections().items():
        log.error("collection %r is not served: %s", name, why)
    # One machine-readable line on stdout, so scripts and tests learn the bound port.
    if metrics_port is not None:
        log.info("Prometheus metrics on http://%s:%d/metrics", settings.host, metrics_port)
        print(f"vectord metrics on {settings.host}:{metrics_port}", flush=True)
    print(f"vectord listening on {settings.host}:{running.port}", flush=True)
    log.info("vectord %s listening on %s:%d (data dir %s)", __version__, settings.host, running.port, database.path)
    while not stop.wait(0.5):
        pass
    log.info("shutting down: health NOT_SERVING, %.1f s grace for in-flight calls", settings.grace_period_s)
    running.stop(settings.grace_period_s)
    database.close()
    log.info("stopped cleanly")
    return 0


def plural(count: int, noun: str) -> str:
    """'1 collection', '2 collections'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _os_reason(exc: OSError, data_dir) -> str:
    """'Permission denied', naming the file when it is not the data directory itself."""
    import os

    if os.path.exists(data_dir) and not os.path.isdir(data_dir):
        return "it is a file, not a directory"
    reason = exc.strerror or str(exc)
    if exc.filename and os.path.abspath(exc.filename) != os.path.abspath(data_dir):
        reason += f" ({exc.filename})"
    return reason


VERIFY_ADVICE = {
    "DAMAGED": "a DAMAGED collection cannot be served (the server answers DATA_LOSS for it and serves the "
               "others): restore it from a snapshot (`vectord snapshot restore NAME -c COLLECTION --replace`, "
               "or `--from DIR` for a downloaded one) or from a backup of the data directory",
    "INDEX_DAMAGED": "an INDEX_DAMAGED collection is still served (its index is rebuilt in memory at each "
                     "start): `vectord verify --repair` rewrites the index from the stored vectors",
}


def verify_command(args: argparse.Namespace) -> int:
    """Prints one line per collection; exit 0 if all are OK (or repaired), 1 otherwise."""
    from vectord.storage.verify import verify

    logging.basicConfig(level="ERROR", stream=sys.stderr)
    try:
        reports = verify(args.data_dir, repair=args.repair)
    except (VectordError, OSError) as exc:
        print(f"vectord verify: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    for report in reports:
        print(report.line())
    bad = sum(not r.ok for r in reports)
    print(f"{plural(len(reports), 'collection')}, {len(reports) - bad} OK, {bad} not OK")
    for status in sorted({r.status for r in reports if not r.ok}):
        advice = VERIFY_ADVICE.get(status)
        if advice and not (args.repair and status == "INDEX_DAMAGED"):
            print(f"vectord verify: {advice}", file=sys.stderr)
    return 0 if bad == 0 else 1


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["serve"] and not {"-h", "--help", "--print-config"} & set(sys.argv):
        from . import huge_pages  # first, before the parser's imports (server/huge_pages.py)

        huge_pages.early(sys.argv)
    args = _parser().parse_args(argv)
    if getattr(args, "func", None) is not None:  # the client commands (server/commands/)
        return args.func(args)
    if args.command == "serve":
        # only as the process's own command may it run itself again (huge pages): never
        # main(["serve", ...]) called from Python
        return serve(args, own_process=argv is None)
    if args.command == "verify":
        return verify_command(args)
    return 2  # pragma: no cover - argparse enforces a command


if __name__ == "__main__":
    raise SystemExit(main())
