"""The data steps of the GPU job: sentence extraction, validation hold-out, packing to a budget."""
import numpy as np

from encoder.training.gpu_job import load_data, sentences_of
from encoder.training.pack_job import select


def test_sentences_of_a_passage_are_its_long_enough_sentences():
    p = ("Git keeps every version of every file. Short one. The index is a staging area between the "
         "working tree and the repository! Is it fast? Yes, because objects are addressed by their hash.")
    got = sentences_of(p)
    assert got == ["Git keeps every version of every file.",
                   "The index is a staging area between the working tree and the repository!",
                   "Yes, because objects are addressed by their hash."]


def test_validation_texts_are_outside_every_pair_and_add_no_sentences(tmp_path):
    long = "This sentence has more than six words in it. " * 6
    texts = [f"{i} {long}" for i in range(40)]
    (tmp_path / "texts.txt").write_text("".join(t + "\n" for t in texts))
    (tmp_path / "pairs.tsv").write_text("0\t1\tfaq\n38\t39\tfaq\n")
    all_texts, pairs, val, n = load_data(tmp_path)
    assert n == 40 and not set(val.tolist()) & {0, 1, 38, 39}
    assert len(val) == 36 // 10 and all_texts[:40] == texts  # a tenth of the unpaired texts, at most 4,096
    assert "This sentence has more than six words in it." in all_texts[40:]


def test_pack_selection_keeps_pairs_first_and_caps_general_text():
    texts = ["pair a", "pair b"] + ["g" * 99] * 10 + ["t" * 99] * 10
    domains = ["perl", "perl"] + ["wordnet"] * 10 + ["man"] * 10
    kept = select(texts, np.array([[0, 1]]), domains, raw_budget=1000)
    assert {0, 1} <= set(kept.tolist())
    general = [i for i in kept if domains[i] == "wordnet"]
    assert len(general) * 100 <= 0.2 * 1000
    assert sum(len(texts[i]) + 1 for i in kept) <= 1000


def test_pair_weights_follow_each_pairs_source_and_survive_filtering(tmp_path):
    from encoder.training.gpu_job import pair_probabilities

    (tmp_path / "pairs.tsv").write_text("0\t1\tfaq\n2\t3\theading\n4\t5\theading\n6\t7\tman\n")
    pairs = np.array([[0, 1], [2, 3], [4, 5], [6, 7]])
    assert pair_probabilities(tmp_path, pairs, {}) is None  # no weights: every pair once a pass
    p = pair_probabilities(tmp_path, pairs, {"faq": 4.0})
    assert np.allclose(p, np.array([4, 1, 1, 1]) / 7)
    kept = pairs[[0, 3]]  # as --max-texts or --labelled-only leave them
    assert np.allclose(pair_probabilities(tmp_path, kept, {"faq": 4.0, "man": 2.0}), [4 / 6, 2 / 6])


def test_pair_batches_draw_by_weight_or_cover_every_pair_once_a_pass():
    from encoder.training.train_twin import pair_batches

    rng = np.random.default_rng(0)
    plain = pair_batches(10, 5, rng)
    assert sorted(np.concatenate([next(plain), next(plain)]).tolist()) == list(range(10))
    p = np.full(100, 1.0)
    p[:10] = 9.0  # ten pairs of a scarce source, weighted 9: half of all draws
    p /= p.sum()
    weighted = pair_batches(100, 20, rng, p)
    drawn = [next(weighted) for _ in range(500)]
    assert all(len(set(b.tolist())) == 20 for b in drawn)  # distinct pairs within a batch
    share = np.mean(np.concatenate(drawn) < 10)
    assert 0.35 < share < 0.55, share  # without weights: 0.10
    assert next(pair_batches(3, 5, rng)) is None  # fewer pairs than a batch: no pair term
