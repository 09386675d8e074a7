"""The built-in encoders, as the engine's ``EncoderRegistry``.

Models load on first use (or at server start, to check their sha256 before serving) and
are shared: one onnxruntime session per model for the whole process.
"""

from __future__ import annotations

import threading

from vectord import encoder  # ImportError here means "no built-in encoder": callers check
from vectord.errors import DataLossError, FailedPreconditionError, NotFoundError


class BuiltinEncoders:
    """The models shipped in ``vectord.encoder``, with onnxruntime capped at ``threads``."""

    def __init__(self, threads: int = 1) -> None:
        self._encoder = encoder
        self.threads = threads
        self.default: str = encoder.DEFAULT_MODEL
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return self._encoder.available_models()

    def get(self, name: str):
        if not name or name == "default":
            name = self.default
        if name not in self.names():
            raise NotFoundError(f"encoder {name!r} does not exist; available: {', '.join(self.names()) or 'none'}")
        with self._lock:  # one load per model, even when many calls race for it
            try:
                return self._encoder.load(name, threads=self.threads)
            except self._encoder.EncoderError as exc:
                raise DataLossError(f"encoder {name!r} cannot be loaded: {exc}") from exc
            except ImportError as exc:
                raise FailedPreconditionError(
                    f"encoder {name!r} needs onnxruntime and tokenizers, which are not installed ({exc})") from exc
