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


def test_a_resumed_run_continues_from_the_checkpoint_step_and_its_weights(tmp_path):
    # CPU training split over sessions (gpu_job --resume): the second run starts from the
    # first one's weights at its step, and runs only the rest of the schedule
    from encoder.training.train_twin import Ragged, train

    rng = np.random.default_rng(0)
    ids = Ragged([rng.integers(1, 300, rng.integers(3, 9)) for _ in range(64)])
    teacher = rng.normal(size=(64, 16)).astype(np.float32)
    teacher /= np.linalg.norm(teacher, axis=1, keepdims=True)
    pairs = np.zeros((0, 2), np.int64)
    cfg = dict(emb=12, hidden=8, dim=16, vocab_size=300, batch=16, pair_batch=4, warmup=2)
    first = TrainConfig(**cfg, steps=3)
    model = train(ids, teacher, pairs, np.arange(48), np.arange(48, 64), first, log=lambda *_: None)
    assert first.steps == 3
    state = state_to_numpy(model)
    seen = []
    second = TrainConfig(**cfg, steps=5)
    resumed = train(ids, teacher, pairs, np.arange(48), np.arange(48, 64), second, log=seen.append,
                    init_state=state, start_step=3)
    assert second.steps == 5  # two more steps, not five
    after = state_to_numpy(resumed)
    assert any(not np.array_equal(after[k], state[k]) for k in state)  # it trained on from there
    unchanged = TrainConfig(**cfg, steps=3)  # nothing left of the schedule: the weights as given
    same = state_to_numpy(train(ids, teacher, pairs, np.arange(48), np.arange(48, 64), unchanged,
                                log=lambda *_: None, init_state=state, start_step=3))
    assert all(np.array_equal(same[k], state[k]) for k in state)


def test_the_twin_starts_where_the_keras_student_starts():
    """PyTorch's default init (an N(0, 1) embedding) trained short texts far worse (twin.keras_init)."""
    torch.manual_seed(0)
    state = state_to_numpy(build_twin(300, 12, 8, 16))
    assert np.abs(state["embedding.weight"]).max() <= 0.05
    for name in ("gru_fwd", "gru_bwd"):
        assert not state[f"{name}.bias_ih_l0"].any() and not state[f"{name}.bias_hh_l0"].any()
        whh = state[f"{name}.weight_hh_l0"]  # (3H, H): Keras's orthogonal (H, 3H) draw, transposed
        np.testing.assert_allclose(whh.T @ whh, np.eye(8), atol=1e-5)
        limit = np.sqrt(6 / (12 + 3 * 8))  # Glorot: fan_in + fan_out of Keras's (emb, 3H) kernel
        assert np.abs(state[f"{name}.weight_ih_l0"]).max() <= limit
    assert not state["projection.bias"].any()
