"""The student network (TensorFlow/Keras) and the shared tokenizer set-up.

    ids (batch, time) int32, 0 = [PAD] (right padding)
      -> embedding table (vocab x EMB)
      -> bidirectional GRU (HIDDEN per direction), masked: the forward GRU runs over the padded batch
         (padding comes after the text, so it never reaches a real position); the backward GRU runs
         over each row reversed *within its length* (a gather), so padding never reaches it either
      -> masked mean pooling of [forward; backward] states, concatenated with the masked mean of the
         token embeddings
      -> dense projection to 384 -> L2 normalisation

Padding does not change a row's vector (up to float rounding), so length-bucketed batching at run
time is deterministic.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .common import DIM, MAX_TOKENS


@dataclass
class StudentConfig:
    vocab_size: int = 30522
    emb: int = 128
    hidden: int = 256
    dim: int = DIM
    max_tokens: int = MAX_TOKENS

    def to_dict(self) -> dict:
        return asdict(self)


def make_tokenizer(path, max_tokens: int = MAX_TOKENS):
    """WordPiece tokenizer from a tokenizer.json (lower-cases); keeps the first max_tokens tokens
    ([CLS] ... [SEP] included, i.e. the first max_tokens-2 word pieces of the text)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_length=max_tokens, strategy="longest_first", direction="right")
    return tok


def encode_ids(tok, texts: list[str]) -> list[np.ndarray]:
    return [np.asarray(e.ids, dtype=np.int32) for e in tok.encode_batch(list(texts))]


def pad(seqs: list[np.ndarray]) -> np.ndarray:
    n = max(1, max(len(s) for s in seqs))
    out = np.zeros((len(seqs), n), dtype=np.int32)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out


def _reverse_within_length(args):
    """Reverse each row's first `len` steps, leave the padding where it is (gather-based, so that
    tf2onnx keeps two plain unidirectional ONNX GRU ops instead of fusing them)."""
    import tensorflow as tf

    x, lens = args
    t = tf.shape(x)[1]
    idx = tf.range(t)[None, :]
    r = lens[:, None] - 1 - idx
    r = tf.where(r >= 0, r, idx)
    return tf.gather(x, r, batch_dims=1)


def _lengths_and_mask(ids):
    import tensorflow as tf

    notpad = tf.not_equal(ids, 0)
    return tf.reduce_sum(tf.cast(notpad, tf.int32), axis=1), tf.cast(notpad, tf.float32)[:, :, None]


def _masked_mean(args):
    import tensorflow as tf

    h, m = args
    return tf.reduce_sum(h * m, axis=1) / tf.maximum(tf.reduce_sum(m, axis=1), 1.0)


def build_model(cfg: StudentConfig, seed: int = 0):
    """Keras 2 (tf_keras) functional model; tf2onnx turns its GRU layers into ONNX GRU ops."""
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    L = keras.layers
    ids = keras.Input((None,), dtype="int32", name="input_ids")
    x = L.Embedding(cfg.vocab_size, cfg.emb, name="embedding")(ids)
    lens = L.Lambda(lambda i: _lengths_and_mask(i)[0], name="lengths")(ids)
    mask = L.Lambda(lambda i: _lengths_and_mask(i)[1], name="mask")(ids)
    hf = L.GRU(cfg.hidden, return_sequences=True, name="gru_fwd")(x)
    xr = L.Lambda(_reverse_within_length, name="reverse_in")([x, lens])
    hb = L.GRU(cfg.hidden, return_sequences=True, name="gru_bwd")(xr)
    hb = L.Lambda(_reverse_within_length, name="reverse_out")([hb, lens])
    h = L.Concatenate(name="states")([hf, hb])
    pooled = L.Concatenate(name="pooled")([L.Lambda(_masked_mean, name="mean_states")([h, mask]),
                                           L.Lambda(_masked_mean, name="mean_emb")([x, mask])])
    y = L.Dense(cfg.dim, name="projection")(pooled)
    y = L.UnitNormalization(name="l2norm")(y)
    del tf
    return keras.Model(ids, y, name="vectord_gru")
