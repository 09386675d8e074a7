"""Server settings: defaults < environment (``VECTORD_*``) < command-line flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of ``vectord serve``. ``VECTORD_PORT=6000`` sets ``port``, and so on."""

    model_config = SettingsConfigDict(env_prefix="VECTORD_", extra="forbid")

    data_dir: Path = Field(Path("./vectord-data"), description="directory holding the collections")
    host: str = Field("127.0.0.1", description="address to listen on (loopback by default)")
    port: int = Field(50051, ge=0, le=65535, description="TCP port; 0 picks a free one")
    max_workers: int = Field(16, ge=1, le=1024, description="gRPC worker threads")
    max_concurrent_rpcs: int = Field(
        256, ge=1, description="calls in flight before new ones get RESOURCE_EXHAUSTED")
    grace_period_s: float = Field(10.0, ge=0, description="time in-flight calls get at shutdown")
    index_threads: int = Field(0, ge=0, description="hnswlib threads for builds and batched queries; 0 = all cores")
    encoder_threads: int = Field(0, ge=0, description="onnxruntime threads of the built-in encoder; 0 = min(cores, 4)")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    # security (server/auth.py, README "Security"); no keys configured = open (loopback use)
    api_keys_file: Path | None = Field(None, description="file of API keys, one 'rw:<key>' or 'ro:<key>' a line")
    api_key: SecretStr | None = Field(None, description="one read-write API key (env VECTORD_API_KEY only)")
    readonly_api_key: SecretStr | None = Field(
        None, description="one read-only API key (env VECTORD_READONLY_API_KEY only)")
    tls_cert: Path | None = Field(None, description="PEM server certificate (chain); enables TLS with tls_key")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert")
    tls_client_ca: Path | None = Field(
        None, description="PEM CA bundle: require client certificates signed by it (mutual TLS)")

    @model_validator(mode="after")
    def _tls_paths_go_together(self) -> "Settings":
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both tls_cert and tls_key (--tls-cert, --tls-key)")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_client_ca (mutual TLS) needs tls_cert and tls_key too")
        return self

    @classmethod
    def load(cls, **flags) -> "Settings":
        """Builds settings from the environment, overridden by the flags that were given."""
        return cls(**{key: value for key, value in flags.items() if value is not None})
