"""A deterministic hashing encoder: fast and model-free, for unit tests of the wiring only.
The real model is tested end to end in tests/test_encoder_e2e.py and tests/encoder/."""

from __future__ import annotations

import hashlib

import numpy as np


class FakeEncoder:
    def __init__(self, name: str = "fake", dim: int = 16, salt: str = "") -> None:
        self.name, self.dim, self.version, self.max_tokens = name, dim, "1", 64
        self.sha256 = hashlib.sha256(f"{name}{dim}{salt}".encode()).hexdigest()
        self.calls = 0

    def identity(self) -> dict:
        return {"name": self.name, "version": self.version, "sha256": self.sha256, "dim": self.dim}

    def embed(self, texts, truncated=None):
        self.calls += 1
        if truncated is not None:  # "too long": more words than the window
            truncated.extend(i for i, text in enumerate(texts) if len(text.split()) > self.max_tokens - 2)
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split() or [""]:
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[i, h % self.dim] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class FakeRegistry:
    def __init__(self, *encoders: FakeEncoder) -> None:
        self.models = {e.name: e for e in encoders}
        self.default = encoders[0].name

    def names(self):
        return sorted(self.models)

    def get(self, name):
        from vectord.errors import NotFoundError

        if name in ("", "default"):
            name = self.default
        if name not in self.models:
            raise NotFoundError(f"encoder {name!r} does not exist")
        return self.models[name]
