"""A tiny ONNX sentence encoder laid out as vectord's models are (model.onnx, tokenizer.json,
model.json), built by the tests themselves: no download.

The graph is an embedding lookup masked by attention_mask, output per token
(batch, time, dim); model.json asks the run time for mean pooling, as an exported
sentence-transformers model does. The tokenizer is a WordPiece one made with the
``tokenizers`` library over a small vocabulary.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

WORDS = ("cat dog bird fish car bus train plane apple pear bread milk red blue green river "
         "mountain city music book paper stone tree house water light game food").split()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(folder: Path, *, name: str = "tiny-test", dim: int = 8, window: int = 16, seed: int = 0,
          version: str = "1.0.0") -> Path:
    """Writes the model into ``folder`` (created) and returns it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {tok: i for i, tok in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tokenizer.save(str(folder / "tokenizer.json"))

    table = np.random.RandomState(seed).standard_normal((len(vocab), dim)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["tokens"]),
         helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),
         helper.make_node("Unsqueeze", ["mask", "axis2"], ["mask3"]),
         helper.make_node("Mul", ["tokens", "mask3"], ["last_hidden_state"])],
        "tiny",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "time"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "time"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "time", dim])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.array([2], np.int64), "axis2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "model.onnx"))

    meta = {"name": name, "version": version, "dim": dim, "window_tokens": window, "pooling": "mean",
            "sha256": {"model.onnx": _sha(folder / "model.onnx"), "tokenizer.json": _sha(folder / "tokenizer.json")}}
    (folder / "model.json").write_text(json.dumps(meta, indent=1))
    return folder
