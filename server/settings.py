"""Server settings: defaults < config file (TOML) < environment (``VECTORD_*``) < flags.

The config file is named by ``--config`` or ``VECTORD_CONFIG``; its keys are the field
names below, at the top level (or under a ``[vectord]`` table)::

    data_dir = "/var/lib/vectord"
    port = 50051
    log_format = "json"
    metrics_port = 9464
"""

from __future__ import annotations

import contextvars
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from vectord.errors import InvalidArgumentError

#: The config file that Settings.load reads (a context variable, so loads do not race).
_CONFIG_FILE: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("vectord_config", default=None)


class Settings(BaseSettings):
    """Every knob of ``vectord serve``. ``VECTORD_PORT=6000`` sets ``port``, and so on."""

    model_config = SettingsConfigDict(env_prefix="VECTORD_", extra="forbid")

    data_dir: Path = Field(Path("./vectord-data"), description="directory holding the collections")
    host: str = Field("127.0.0.1", description="address to listen on (loopback by default)")
    port: int = Field(50051, ge=0, le=65535, description="TCP port; 0 picks a free one")
    max_workers: int = Field(16, ge=1, le=1024, description="gRPC worker threads")
    # 1 ms, not Python's 5: a query through the server takes the GIL several times (gRPC,
    # each segment's search), and each time may wait a whole interval behind a compaction's
    # Python work. Through a real server (200k x 384, 4 segments, 40% deleted, compacting),
    # the longest query fell from 60 to 42 ms and the p99 ratio from 1.34 to 1.12
    # (benchmarks/results/segments-compaction-quiet-2026-11-30.md).
    switch_interval_ms: float = Field(
        1.0, gt=0, le=100, description="how long a Python thread may hold the GIL while another waits for it "
                                        "(sys.setswitchinterval, in ms; Python's default is 5): lower, queries "
                                        "wait less behind background maintenance")
    max_concurrent_rpcs: int = Field(
        256, ge=1, description="calls in flight before new ones get RESOURCE_EXHAUSTED")
    max_query_streams: int = Field(
        0, ge=0, description="Records.QueryStream streams open at once (each holds a worker thread while open; the "
                             "SDK sends its queries over one per client thread and falls back to Query calls past "
                             "the limit); 0 = half of max_workers")
    query_stream_idle_s: float = Field(
        30.0, gt=0, description="a query stream with no query for this many seconds is cancelled, freeing its "
                                "worker thread (the SDK opens a new one when it next queries)")
    grace_period_s: float = Field(10.0, ge=0, description="time in-flight calls get at shutdown")
    index_threads: int = Field(0, ge=0, description="hnswlib threads for builds and batched queries; 0 = all cores")
    encoder_threads: int = Field(0, ge=0, description="onnxruntime threads of the built-in encoder; 0 = min(cores, 4)")
    planner_cost_per_ef: int = Field(
        0, ge=0, description="the query planner's cost of one unit of graph-search ef, in exact vector comparisons, "
                             "as measured on this machine (python benchmarks/planner_curve.py prints it); 0 = the "
                             "built-in default (storage/planner.py)")
    seal_mib: int = Field(
        64, ge=0, description="seal a collection's mutable tail into an immutable segment once its records' vectors "
                              "hold this many MiB (docs/segments.md); 0 = never, unless seal_rows is set")
    seal_rows: int = Field(
        0, ge=0, description="seal at this many live records instead of by size (seal_mib); 0 = by size")
    max_segment_mib: int = Field(
        256, ge=0, description="no merge of sealed segments makes one of more MiB of vectors than this, so that "
                               "compacting one segment (the peak of memory upkeep) stays bounded; 0 = no bound, "
                               "unless max_segment_rows is set")
    max_segment_rows: int = Field(
        0, ge=0, description="the same bound in live records instead of by size (max_segment_mib); at least "
                             "seal_rows when both are set; 0 = by size (docs/segments.md)")
    merge_factor: int = Field(
        4, ge=2, description="merge this many sealed segments of one size tier into one (docs/segments.md); "
                             "at least 2")
    graph_in_child: bool = Field(
        True, description="save a large segment's graph from a child process that builds it again, so that no "
                          "query waits behind hnswlib's save, which holds the GIL; costs a second graph build "
                          "per segment (docs/segments.md); --no-graph-in-child: saved by the server")
    huge_pages: bool = Field(
        True, description="back large allocations (hnswlib's vectors and graph) with transparent huge pages: the "
                          "server runs itself again once at start with glibc.malloc.hugetlb=1 (Linux, glibc 2.35+, "
                          "THP not 'never'; docs/running-as-a-service.md); --no-huge-pages: as allocated")
    models_dir: Path | None = Field(
        None, description="folder of your own ONNX sentence encoders (one subfolder each: model.onnx, tokenizer.json, "
                          "model.json), served beside the built-in model; a bad one stops the start "
                          "(docs/custom-models.md)")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: Literal["text", "json"] = Field("text", description="'text' lines, or 'json' (one object a line)")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Prometheus /metrics HTTP port on the same host; unset = off, 0 = any free one")
    # security (server/auth.py, README "Security"); no keys configured = open (loopback use)
    api_keys_file: Path | None = Field(None, description="file of API keys, one 'rw:<key>' or 'ro:<key>' a line")
    api_key: SecretStr | None = Field(None, description="one read-write API key (env VECTORD_API_KEY only)")
    readonly_api_key: SecretStr | None = Field(
        None, description="one read-only API key (env VECTORD_READONLY_API_KEY only)")
    tls_cert: Path | None = Field(None, description="PEM server certificate (chain); enables TLS with tls_key")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert")
    tls_client_ca: Path | None = Field(
        None, description="PEM CA bundle: require client certificates signed by it (mutual TLS)")
    allow_reset: bool = Field(
        False, description="allow the Reset rpc (the SDK's client.reset()) to delete every collection")

    @property
    def query_stream_cap(self) -> int:
        """``max_query_streams``, or its default: half of the worker threads (at least 1)."""
        return self.max_query_streams or max(1, self.max_workers // 2)

    @model_validator(mode="after")
    def _segment_bound_holds_a_seal(self) -> "Settings":
        # a sealed segment already holds seal_rows records: a smaller bound would stop every merge
        if self.max_segment_rows and self.seal_rows and self.max_segment_rows < self.seal_rows:
            raise ValueError(f"max_segment_rows (--max-segment-rows) is {self.max_segment_rows}, below seal_rows "
                             f"(--seal-rows) {self.seal_rows}: it must be at least seal_rows, or 0 (no bound)")
        return self

    @model_validator(mode="after")
    def _tls_paths_go_together(self) -> "Settings":
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both tls_cert and tls_key (--tls-cert, --tls-key)")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_client_ca (mutual TLS) needs tls_cert and tls_key too")
        return self

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource):
        """Flags (init) > environment > config file > defaults."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        values = _CONFIG_FILE.get()
        if values:
            sources.append(InitSettingsSource(settings_cls, init_kwargs=values))
        return tuple(sources)

    @classmethod
    def load(cls, config: str | os.PathLike | None = None, **flags) -> "Settings":
        """Builds settings from the config file (``config``, else ``VECTORD_CONFIG``), the
        environment, and the flags that were given, each overriding the one before.

        Raises:
            InvalidArgumentError: the config file cannot be read or is not valid TOML.
            pydantic.ValidationError: a bad or unknown setting (named in the error).
        """
        path = config or os.environ.get("VECTORD_CONFIG") or None
        values = read_config_file(path) if path else None
        token = _CONFIG_FILE.set(values)
        try:
            return cls(**{key: value for key, value in flags.items() if value is not None})
        finally:
            _CONFIG_FILE.reset(token)

    def effective(self) -> dict[str, Any]:
        """Every setting's effective value, secrets masked, paths as strings (for --print-config)."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "**********"
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The settings in a TOML file: top-level keys, or those of a ``[vectord]`` table."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgumentError(f"config file {path} is not valid TOML: {exc}") from None
    if isinstance(data.get("vectord"), dict) and len(data) == 1:
        data = data["vectord"]
    return data
