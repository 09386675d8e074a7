"""vectord's built-in text encoder (run time: numpy + onnxruntime + tokenizers; no TensorFlow, no torch).

    from vectord import encoder
    enc = encoder.load()                 # encoder.DEFAULT_MODEL, sha256-checked, cached and shared
    vecs = enc.embed(["a text", "another"])   # float32 (2, enc.dim), unit norm
    enc.identity()                       # {"name", "version", "sha256", "dim"}
    encoder.load_dir("/models/my-model")  # a model of your own, same layout (docs/custom-models.md)

See runtime.py for the text contract (the window: a text is cut to its first ``max_tokens`` tokens, read from model.json; any Unicode,
empty string) and encoder/models/<name>/MODEL_CARD.md for the model itself. The training pipeline
lives in ``encoder.training`` (TensorFlow; an optional extra) and is never imported from here.
"""
from .runtime import DEFAULT_MODEL, EncoderError, TextEncoder, available_models, load, load_dir

__all__ = ["DEFAULT_MODEL", "EncoderError", "TextEncoder", "available_models", "load", "load_dir"]
