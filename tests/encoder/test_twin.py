"""The PyTorch twin (GPU training) and the Keras graph (tf2onnx export) are one function.

gpu_job.py trains encoder/training/twin.py; export.py maps its weights into student.build_model and
exports that. If the mapping of gate order or bias layout were wrong, the shipped model would be a
different network from the one trained: these tests catch it on random weights and random ids.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the `teacher` extra; CI runs the ONNX parity tests instead
pytest.importorskip("tf_keras")

from encoder.training.student import StudentConfig, build_model  # noqa: E402
from encoder.training.train_twin import TrainConfig, load_twin_state, save_twin  # noqa: E402
from encoder.training.twin import build_twin, load_into_keras, state_to_numpy  # noqa: E402


@pytest.mark.parametrize("hidden", [8, 24])
def test_keras_with_mapped_weights_equals_the_twin(hidden):
    torch.manual_seed(hidden)
    twin = build_twin(300, 12, hidden, 16).eval()
    keras_model = build_model(StudentConfig(vocab_size=300, emb=12, hidden=hidden, dim=16))
    load_into_keras(keras_model, state_to_numpy(twin), hidden)
    ids = np.random.default_rng(hidden).integers(1, 300, (5, 9)).astype(np.int32)
    ids[1, 4:] = 0  # right padding: the backward direction must reverse within each row's length
    ids[3, 1:] = 0
    got = keras_model(ids, training=False).numpy()
    with torch.no_grad():
        want = twin(torch.from_numpy(ids.astype(np.int64))).numpy()
    assert np.abs(got - want).max() < 1e-5


def test_padding_does_not_change_a_rows_vector():
    torch.manual_seed(0)
    twin = build_twin(300, 12, 8, 16).eval()
    row = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[5, 6, 7, 0, 0], [9, 9, 9, 9, 9]])
    with torch.no_grad():
        assert torch.allclose(twin(row)[0], twin(padded)[0], atol=1e-6)


def test_saved_weights_round_trip(tmp_path):
    torch.manual_seed(1)
    twin = build_twin(300, 12, 8, 16)
    save_twin(twin, TrainConfig(emb=12, hidden=8, dim=16, vocab_size=300), tmp_path / "student.npz")
    back = load_twin_state(tmp_path / "student.npz")
    for k, v in state_to_numpy(twin).items():
        assert np.array_equal(back[k], v), k
