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
