"""Server settings: defaults < environment (``VECTORD_*``) < command-line flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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

    @classmethod
    def load(cls, **flags) -> "Settings":
        """Builds settings from the environment, overridden by the flags that were given."""
        return cls(**{key: value for key, value in flags.items() if value is not None})
