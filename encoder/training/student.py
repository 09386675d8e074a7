"""The student network (TensorFlow/Keras) and the shared tokenizer set-up.

    ids (batch, time) int32, 0 = [PAD] (right padding)
      -> embedding table (vocab x EMB)
      -> bidirectional GRU (HIDDEN per direction), masked: the forward GRU runs over the padded batch
         (padding comes after the text, so it never reaches a real position); the backward GRU runs
         over each row reversed *within its length* (tf.reverse_sequence), so padding never
         reaches it either
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


def build_model(cfg: StudentConfig, seed: int = 0):
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)

    class BiGRUPool(keras.layers.Layer):
        def __init__(self, hidden, **kw):
            super().__init__(**kw)
            self.fwd = keras.layers.GRU(hidden, return_sequences=True, name="gru_fwd")
            self.bwd = keras.layers.GRU(hidden, return_sequences=True, name="gru_bwd")

        def call(self, x, ids):
            notpad = tf.not_equal(ids, 0)
            lens = tf.reduce_sum(tf.cast(notpad, tf.int32), axis=1)
            m = tf.cast(notpad, x.dtype)[:, :, None]
            hf = self.fwd(x)
            hb = tf.reverse_sequence(self.bwd(tf.reverse_sequence(x, lens, seq_axis=1, batch_axis=0)),
                                     lens, seq_axis=1, batch_axis=0)
            denom = tf.maximum(tf.reduce_sum(m, axis=1), 1.0)
            h = tf.concat([hf, hb], axis=-1)
            return tf.concat([tf.reduce_sum(h * m, axis=1) / denom, tf.reduce_sum(x * m, axis=1) / denom], -1)

    ids = keras.Input((None,), dtype="int32", name="input_ids")
    x = keras.layers.Embedding(cfg.vocab_size, cfg.emb, name="embedding")(ids)
    p = BiGRUPool(cfg.hidden, name="bigru_pool")(x, ids)
    y = keras.layers.Dense(cfg.dim, name="projection")(p)
    y = keras.layers.UnitNormalization(name="l2norm")(y)
    return keras.Model(ids, y, name="vectord_gru")
