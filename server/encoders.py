"""The server's encoders, as the engine's ``EncoderRegistry``: the models shipped in
``vectord.encoder`` plus, with ``--models-dir`` (``VECTORD_MODELS_DIR``), models of the user's
own, served side by side.

A model of one's own is a folder of ``models_dir`` laid out as the shipped ones:
``model.onnx``, ``tokenizer.json`` and a ``model.json`` naming at least ``name``, ``version``,
``dim``, ``window_tokens``, ``pooling`` and the ``sha256`` of both files (docs/custom-models.md).
Every such model is loaded and verified when the registry is made (at server start): a
malformed model.json, a missing file, a sha256 that does not match or a graph onnxruntime
cannot run is one error line naming the file, and the server refuses to start. Refusing
(rather than skipping the model) is on purpose: a collection pinned to a model that was
silently left out would fail later, one request at a time, far from the cause.

Built-in models are verified (sha256) at start and make their onnxruntime session at the
first text they embed, so a server that is only sent vectors never holds one; the user's
models load whole at start. Either way they are shared: one
onnxruntime session per model for the whole process. Each collection pins its model's
identity (name, sha256, dim) and is always embedded by that model, whatever the default.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from vectord import encoder  # ImportError here means "no built-in encoder": callers check
from vectord.errors import DataLossError, FailedPreconditionError, InvalidArgumentError, NotFoundError


class BuiltinEncoders:
    """The shipped models and those of ``models_dir``, with onnxruntime capped at ``threads``.

    Raises (at construction, with ``models_dir``):
        InvalidArgumentError: ``models_dir`` is not a directory, or two models share a name.
        DataLossError: a model of ``models_dir`` cannot be loaded (the message names the file).
    """

    def __init__(self, threads: int = 1, models_dir: str | os.PathLike | None = None) -> None:
        self._encoder = encoder
        self.threads = threads
        self.default: str = encoder.DEFAULT_MODEL
        self._lock = threading.Lock()
        #: The user's models: name -> folder (all verified and loaded by now).
        self.custom: dict[str, Path] = {}
        if models_dir is not None:
            self._load_models_dir(Path(models_dir))

    def _load_models_dir(self, root: Path) -> None:
        if not root.is_dir():
            raise InvalidArgumentError(f"models_dir: {root} is not a directory")
        builtin = set(self._encoder.available_models())
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            meta_path = folder / "model.json"
            if not meta_path.is_file():
                continue  # not a model folder (a README, a cache...)
            try:
                model = self._encoder.load_dir(folder, threads=self.threads)
            except self._encoder.EncoderError as exc:
                raise DataLossError(f"model in {folder} cannot be served: {exc}") from exc
            if model.name in builtin or model.name in self.custom:
                where = "a built-in model" if model.name in builtin else f"the model in {self.custom[model.name]}"
                raise InvalidArgumentError(f"{meta_path}: name {model.name!r} is already taken by {where}; "
                                           "rename the model (its name is what collections pin)")
            self.custom[model.name] = folder

    def names(self) -> list[str]:
        return sorted(set(self._encoder.available_models()) | set(self.custom))

    def get(self, name: str):
        if not name or name == "default":
            name = self.default
        if name in self.custom:
            return self._encoder.load_dir(self.custom[name], threads=self.threads)
        if name not in self.names():
            raise NotFoundError(f"encoder {name!r} does not exist; available: {', '.join(self.names()) or 'none'}")
        with self._lock:  # one load per model, even when many calls race for it
            try:
                # lazy: the sha256 is checked now, the session made at the first text
                return self._encoder.load(name, threads=self.threads, lazy=True)
            except self._encoder.EncoderError as exc:
                raise DataLossError(f"encoder {name!r} cannot be loaded: {exc}") from exc
            except ImportError as exc:
                raise FailedPreconditionError(
                    f"encoder {name!r} needs onnxruntime and tokenizers, which are not installed ({exc})") from exc
