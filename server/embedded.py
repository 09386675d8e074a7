"""Embedded mode: the same servicers, called in-process by the SDK (no socket, no
serialisation), on the same files and under the same directory lock as the server; or, with
no path, on an in-memory database (``Database(None)``) that writes nothing anywhere."""

from __future__ import annotations

import os
import time
from pathlib import Path

from vectord.storage import Database, Tuning

from .servicers import servicers


class InProcessContext:
    """The little of ``grpc.ServicerContext`` that the servicers use."""

    def __init__(self, timeout_s: float | None) -> None:
        self._deadline = None if timeout_s is None else time.monotonic() + timeout_s

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.monotonic()


class EmbeddedServer:
    """Owns a ``Database`` (in memory when ``path`` is None) and the servicers over it for
    one in-process client."""

    def __init__(self, path: str | Path | None, tuning: Tuning | None = None, allow_reset: bool = False) -> None:
        try:
            from .encoders import BuiltinEncoders

            # the user's own models, as `vectord serve` reads them (VECTORD_MODELS_DIR); shipped ones
            # load on first use
            encoders = BuiltinEncoders(models_dir=os.environ.get("VECTORD_MODELS_DIR") or None)
        except ImportError:  # the encoder runtime is not installed: vectors only
            encoders = None
        self.database = Database(path, tuning=tuning, encoders=encoders)
        self.services = servicers(self.database, allow_reset=allow_reset)

    def call(self, service: str, method: str, request, timeout_s: float | None):
        return getattr(self.services[service], method)(request, InProcessContext(timeout_s))

    def close(self) -> None:
        self.database.close()
