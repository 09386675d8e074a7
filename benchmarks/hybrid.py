"""Keyword and hybrid search (issue 14): ranking quality, latency at 100k documents, ingest.

    apt-get update && apt-get install -y perl-doc debian-faq debian-reference-en git-doc manpages
    pip install bm25s            # the reference BM25 ([bench] extra)
    python benchmarks/hybrid.py [--docs 100000] [--queries 200] [--smoke] [--out DIR]

1. Quality, on question -> passage sets built from installed FAQs (benchmarks/hybrid_data.py):
   perlfaq, the Debian FAQ and gitfaq, each question's answer pooled with distractor sections
   of the same documentation. R@10 (the answer in the top 10) and nDCG@10 (one relevant
   passage: 1 / log2(1 + rank)) of vectord's bm25, vector (the built-in encoder) and hybrid
   (rrf, and weighted at alpha 0.5) rankings, and of bm25s (k1 1.2, b 0.75, Lucene idf as
   vectord) with its own tokenizer (regex words of 2+ characters, English stop words,
   PyStemmer) and with vectord's analyzer's terms.
2. Latency at ``--docs`` documents (man page paragraphs): p50 of vector, bm25 and hybrid
   queries, embedded and remote (a `vectord serve` on the same data). Vectors are 384-d
   hashed bags of words (feature hashing, signed): embedding 100k paragraphs with the
   built-in encoder would take the 2-core machine most of an hour. The vector query is by
   vector; the encoder's own time for one query text is measured beside it.
3. Ingest: the same documents and vectors with the full-text index (analyzer "standard")
   and without it (analyzer "none"), embedded, batches of 1,000; open time of each (the
   full-text index is rebuilt at open); and a smaller ingest through the built-in encoder.

Writes benchmarks/results/hybrid-<date>.md and .json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import hybrid_data  # noqa: E402

DIM = 384
_TOKEN = re.compile(r"\w+")


def hashed_vectors(texts: list[str]) -> np.ndarray:
    """Signed feature hashing of lower-cased words into DIM dimensions, L2-normalised."""
    out = np.zeros((len(texts), DIM), np.float32)
    for i, text in enumerate(texts):
        row = out[i]
        for word in _TOKEN.findall(text.lower()):
            h = zlib.crc32(word.encode())
            row[h % DIM] += 1.0 if (h >> 16) & 1 else -1.0
        if not row.any():
            row[0] = 1.0
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{platform.machine()}, {cpu}, {os.cpu_count()} cores (shared with other work), "
            f"Python {platform.python_version()}")


# ---------------------------------------------------------------------- 1. quality
def metrics(ranked: list[list[str]], answers: list[str]) -> dict[str, float]:
    recall = ndcg = 0.0
    for ids, answer in zip(ranked, answers):
        if answer in ids[:10]:
            recall += 1
            ndcg += 1 / math.log2(ids.index(answer) + 2)
    return {"R@10": recall / len(answers), "nDCG@10": ndcg / len(answers)}


#: Fusion settings swept over the same vector and BM25 rankings (read DEPTH deep): RRF's k
#: and window, the weighted fusion's alpha and window. The engine's defaults are among them.
RRF_KS = (10, 30, 60, 100)
WINDOWS = (10, 20, 50, 100)
ALPHAS = (0.3, 0.5, 0.7)
DEPTH = max(WINDOWS)


def fused_top10(vector: tuple[list[str], list[float]], bm25: tuple[list[str], list[float]], order: dict[str, int],
                fusion: str, window: int, k: int = 60, alpha: float = 0.5) -> list[str]:
    """One question's top 10 by fusing its two rankings (ids, distances / scores) as
    storage/ranking.py does: the best ``window`` of each, RRF or min-max weighted, ties by
    insertion order."""
    from vectord.storage.ranking import rrf, weighted

    labels_v = np.asarray([order[i] for i in vector[0][:window]], np.int64)
    labels_b = np.asarray([order[i] for i in bm25[0][:window]], np.int64)
    if fusion == "rrf":
        labels, scores = rrf([labels_v, labels_b], k)
    else:
        labels, scores = weighted(labels_v, np.asarray(vector[1][:window], np.float32), labels_b,
                                  np.asarray(bm25[1][:window], np.float64), alpha)
    best = np.lexsort((labels, -scores))[:10]
    ids = list(order)
    return [ids[j] for j in labels[best]]


def sweep(vector, bm25, ids: list[str], answers: list[str]) -> dict[str, dict[str, float]]:
    order = {pid: j for j, pid in enumerate(ids)}  # insertion order = the engine's labels
    out = {}
    for window in WINDOWS:
        for k in RRF_KS:
            out[f"rrf k={k} window={window}"] = metrics(
                [fused_top10(v, b, order, "rrf", window, k=k) for v, b in zip(vector, bm25)], answers)
    for window in WINDOWS:
        for alpha in ALPHAS:
            out[f"weighted alpha={alpha} window={window}"] = metrics(
                [fused_top10(v, b, order, "weighted", window, alpha=alpha) for v, b in zip(vector, bm25)], answers)
    return out


def lost(hybrid: list[list[str]], vector: list[list[str]], bm25: list[list[str]], answers: list[str]):
    """Questions whose answer is in the top 10 of vector or BM25 but not of the fusion:
    (rank by vector, rank by BM25), None past DEPTH."""
    out = []
    for h, v, b, answer in zip(hybrid, vector, bm25, answers):
        rv = v.index(answer) + 1 if answer in v else None
        rb = b.index(answer) + 1 if answer in b else None
        if answer not in h[:10] and ((rv or 99) <= 10 or (rb or 99) <= 10):
            out.append((rv, rb))
    return out


def quality(qa: hybrid_data.QASet, workdir: Path) -> dict:
    import vectord
    from vectord.storage.analyzers import DEFAULT_FULLTEXT, analyzer
    from vectord.storage.fulltext import B, K1
    from vectord.storage.ranking import RRF_K, window

    ids, texts = list(qa.passages), list(qa.passages.values())
    questions, answers = [q for q, _ in qa.questions], [a for _, a in qa.questions]
    out: dict[str, dict[str, float]] = {}
    client = vectord.Client(path=str(workdir / qa.name))
    col = client.create_collection(qa.name)  # the built-in encoder, default analyzer
    started = time.perf_counter()
    for lo in range(0, len(ids), 256):
        col.add(ids=ids[lo:lo + 256], documents=texts[lo:lo + 256])
    print(f"  {qa.name}: {len(ids)} passages embedded and indexed in {time.perf_counter() - started:.0f} s",
          flush=True)

    def run(n_results: int = 10, column: str | None = None, **kwargs):
        found, values = [], []
        for lo in range(0, len(questions), 64):
            got = col.query(query_texts=questions[lo:lo + 64], n_results=n_results,
                            include=["distances"] if column == "distances" else [], **kwargs)
            found.extend(got["ids"])
            if column:
                values.extend(got[column])
        return (found, values) if column else found

    vector_ids, vector_dist = run(DEPTH, "distances")
    bm25_ids, bm25_scores = run(DEPTH, "scores", rank="bm25")
    out["vectord bm25"] = metrics(bm25_ids, answers)
    out["vectord vector"] = metrics(vector_ids, answers)
    hybrid = run(rank="hybrid")
    out["vectord hybrid rrf"] = metrics(hybrid, answers)
    out["vectord hybrid weighted 0.5"] = metrics(run(rank="hybrid", fusion="weighted", hybrid_alpha=0.5), answers)
    client.close()
    pairs_v, pairs_b = list(zip(vector_ids, vector_dist)), list(zip(bm25_ids, bm25_scores))
    order = {pid: j for j, pid in enumerate(ids)}
    # the sweep's fusion is the engine's: its default setting must give the engine's rankings
    same = sum(fused_top10(v, b, order, "rrf", window("rrf", 10), k=RRF_K) == h
               for v, b, h in zip(pairs_v, pairs_b, hybrid))
    extra = {"sweep": sweep(pairs_v, pairs_b, ids, answers), "sweep_matches_engine": same,
             "lost_by_hybrid_rrf": lost(hybrid, vector_ids, bm25_ids, answers)}
    try:  # the reference: bm25s with the same k1, b and idf ([bench] extra)
        import bm25s
        import Stemmer
    except ImportError:
        print("  bm25s is not installed: no reference rows", flush=True)
        return {"scores": out, **extra}
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False),
                    show_progress=False)
    docs, _ = retriever.retrieve(bm25s.tokenize(questions, stopwords="en", stemmer=stemmer, show_progress=False),
                                 k=10, show_progress=False)
    out["bm25s (own tokenizer)"] = metrics([[ids[j] for j in row] for row in docs.tolist()], answers)
    analyze = analyzer(DEFAULT_FULLTEXT)
    retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
    retriever.index([analyze(t) for t in texts], show_progress=False)
    # bm25s sums a term once per occurrence in the query; vectord once per distinct term
    docs, _ = retriever.retrieve([list(dict.fromkeys(analyze(q))) or ["\x00"] for q in questions], k=10,
                                 show_progress=False)
    reference = [[ids[j] for j in row] for row in docs.tolist()]
    out["bm25s (vectord's terms)"] = metrics(reference, answers)
    # beyond the metrics: the same top 10, as a list and as a set, question by question
    # (bm25s fills a short list with zero-score documents: only the matching ones compare)
    mine = [row[:10] for row in bm25_ids]
    extra["same_top10_as_bm25s"] = {
        "list": sum(m == r[:len(m)] for m, r in zip(mine, reference)),
        "set": sum(set(m) == set(r[:len(m)]) for m, r in zip(mine, reference))}
    return {"scores": out, **extra}


# ---------------------------------------------------------------------- 2, 3. scale
def p50s(fns: dict, items) -> dict[str, float]:
    """p50 ms of each function over ``items``, the functions interleaved item by item, so
    that a change in the machine's load (it is shared) weighs on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for item in items:
        for name, fn in fns.items():
            started = time.perf_counter()
            fn(item)
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def ingest(workdir: Path, docs: list[str], vectors: np.ndarray | None, batch: int,
           variants: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Ingests the same documents into one collection per full-text variant, batch by
    batch in turn (interleaved, as p50s), then times each one's open after a close."""
    import vectord

    clients = {name: vectord.Client(path=str(workdir / name)) for name in variants}
    cols = {name: (clients[name].create_collection("big", dim=DIM, fulltext=fulltext) if vectors is not None
                   else clients[name].create_collection("big", fulltext=fulltext))
            for name, fulltext in variants.items()}
    seconds = dict.fromkeys(variants, 0.0)
    for lo in range(0, len(docs), batch):
        ids = [f"p{i}" for i in range(lo, min(lo + batch, len(docs)))]
        for name, col in cols.items():
            started = time.perf_counter()
            if vectors is not None:
                col.add(ids=ids, embeddings=vectors[lo:lo + batch], documents=docs[lo:lo + batch])
            else:
                col.add(ids=ids, documents=docs[lo:lo + batch])
            seconds[name] += time.perf_counter() - started
    out = {}
    for name, client in clients.items():
        client.close()
        started = time.perf_counter()
        with vectord.Client(path=str(workdir / name)) as again:
            again.get_collection("big").count()
        out[name] = {"docs": len(docs), "seconds": seconds[name], "docs_per_s": len(docs) / seconds[name],
                     "open_s": time.perf_counter() - started}
    return out


def latencies(col, questions: list[str], qvecs: np.ndarray) -> dict[str, float]:
    pairs = list(zip(questions, qvecs))
    for q, v in pairs[:10]:  # warm up
        col.query(query_embeddings=[v], n_results=10)
        col.query(query_texts=[q], n_results=10, rank="bm25")
    return p50s({
        "vector": lambda p: col.query(query_embeddings=[p[1]], n_results=10),
        "bm25": lambda p: col.query(query_texts=[p[0]], n_results=10, rank="bm25"),
        "hybrid": lambda p: col.query(query_embeddings=[p[1]], query_texts=[p[0]], n_results=10, rank="hybrid"),
    }, pairs)


def scale(n: int, questions: list[str], workdir: Path, encoder_docs: int) -> dict:
    import vectord
    from serverproc import start_server

    docs, source = hybrid_data.corpus(n)
    vectors = hashed_vectors(docs)
    qvecs = hashed_vectors(questions)
    out: dict = {"docs": n, "source": source}
    print(f"  corpus: {source}", flush=True)
    runs = ingest(workdir, docs, vectors, 1000, {"plain": {"analyzer": "none"}, "fts": {"analyzer": "standard"}})
    out["ingest_without_index"], out["ingest_with_index"] = runs["plain"], runs["fts"]
    print(f"  ingest: {runs}", flush=True)
    shutil.rmtree(workdir / "plain")
    client = vectord.Client(path=str(workdir / "fts"))
    # steady state: a checkpoint now, not one by the background thread during the timing (the
    # log of the ingest is replayed at open; the checkpoint's Python work then holds the GIL,
    # slowing the Python-heavy bm25 and hybrid queries, not hnswlib's GIL-free search)
    client.checkpoint("big")
    out["embedded_p50_ms"] = latencies(client.get_collection("big"), questions, qvecs)
    client.close()
    print(f"  embedded p50: {out['embedded_p50_ms']}", flush=True)
    proc = start_server(workdir / "fts", timeout=900)
    try:
        with vectord.Client(proc.address, timeout=120) as remote:
            remote.checkpoint("big")
            out["remote_p50_ms"] = latencies(remote.get_collection("big"), questions, qvecs)
    finally:
        proc.terminate(timeout=600)
    print(f"  remote p50: {out['remote_p50_ms']}", flush=True)
    # through the built-in encoder: the analyzer's share of a text ingest, and one query's embedding
    runs = ingest(workdir, docs[:encoder_docs], None, 256,
                  {"enc-plain": {"analyzer": "none"}, "enc-fts": {"analyzer": "standard"}})
    out["encoder_ingest_without_index"], out["encoder_ingest_with_index"] = runs["enc-plain"], runs["enc-fts"]
    print(f"  encoder ingest: {runs}", flush=True)
    with vectord.Client(path=str(workdir / "enc-fts")) as client:
        col = client.get_collection("big")
        out["encoder_query_p50_ms"] = p50s({"vector by text": lambda q: col.query(query_texts=[q], n_results=10),
                                            "bm25": lambda q: col.query(query_texts=[q], n_results=10, rank="bm25"),
                                            "hybrid by text": lambda q: col.query(query_texts=[q], n_results=10,
                                                                                  rank="hybrid")}, questions)
    print(f"  encoder queries: {out['encoder_query_p50_ms']}", flush=True)
    return out


# ---------------------------------------------------------------------- report
def report(results: dict, path: Path) -> None:
    lines = [f"# Keyword and hybrid search, {results['date']}", "",
             f"Machine: {results['machine']}. Command: `{results['command']}`. Load average "
             f"(1 min) {results['load_average_at_start'][0]:.1f} at the start, "
             f"{results['load_average_at_end'][0]:.1f} at the end: other work shared the 2 cores, "
             "so absolute times are noisy; the ratios come from interleaved runs.", "",
             "## Ranking quality (R@10 / nDCG@10)", "",
             "Question -> answer passage sets from installed documentation (benchmarks/hybrid_data.py); "
             "each question has one relevant passage, pooled with distractor sections of the same manuals. "
             "vectord's analyzer: standard (UAX #29 words, lower case, Snowball English stop words and "
             "stemmer); BM25 k1 1.2, b 0.75, Lucene idf; bm25s with the same parameters.", ""]
    sets = results["quality"]
    methods = list(next(iter(sets.values()))["scores"])
    lines.append("| method | " + " | ".join(f"{name} ({s['questions']} q, {s['passages']} p)"
                                            for name, s in sets.items()) + " |")
    lines.append("|---|" + "---:|" * len(sets))
    for method in methods:
        lines.append(f"| {method} | " + " | ".join(
            f"{s['scores'][method]['R@10']:.3f} / {s['scores'][method]['nDCG@10']:.3f}" for s in sets.values()) + " |")
    from vectord.storage.ranking import RRF_K, window
    lines += ["", f"vectord's hybrid rows use the defaults: rrf k {RRF_K}, window {window('rrf', 10)} per list; "
              f"weighted alpha 0.5, window {window('weighted', 10)} per list."]
    if "bm25s (vectord's terms)" in methods:
        lines += ["", "bm25s is given two ways: with its own tokenizer (words of 2+ characters by "
                  "`\\b\\w\\w+\\b`, which splits \"don't\" and \"3.14\" and drops one-letter words, its own "
                  "English stop list, PyStemmer), and with vectord's analyzer's terms for the same texts "
                  "(like for like: the same tokens, so only the scoring is compared). Same top 10 as bm25s "
                  "on vectord's terms, question by question (in order / as a set): " + "; ".join(
                      f"{name} {s['same_top10_as_bm25s']['list']}/{s['questions']} / "
                      f"{s['same_top10_as_bm25s']['set']}/{s['questions']}" for name, s in sets.items()) + "."]
    lines += ["", "Targets:", ""]
    for name, s in sets.items():
        sc = s["scores"]
        for ref in ("bm25s (vectord's terms)", "bm25s (own tokenizer)"):
            if ref not in sc:
                continue
            dr = sc["vectord bm25"]["R@10"] - sc[ref]["R@10"]
            dn = sc["vectord bm25"]["nDCG@10"] - sc[ref]["nDCG@10"]
            verdict = ("PASS: within 0.02" if abs(dr) <= 0.02 and abs(dn) <= 0.02 else
                       "more than 0.02 apart, vectord higher" if dr >= -0.02 and dn >= -0.02 else
                       "FALLS SHORT: more than 0.02 below")
            lines.append(f"- {name}: vectord bm25 vs {ref}: R@10 {dr:+.3f}, nDCG@10 {dn:+.3f} ({verdict})")
        best = max(sc["vectord bm25"]["R@10"], sc["vectord vector"]["R@10"])
        h = sc["vectord hybrid rrf"]["R@10"]
        lines.append(f"- {name}: hybrid rrf R@10 {h:.3f} vs the better of vector and bm25 {best:.3f} "
                     f"({'PASS' if h >= best else 'FALLS SHORT'})")
    lines += ["", "## Fusion settings (R@10 / nDCG@10)", "",
              f"The same vector and BM25 rankings (read {DEPTH} deep), fused as storage/ranking.py fuses "
              "them (its own rrf and weighted functions), for each setting. Check: the engine's default "
              "setting gives the engine's hybrid top 10 for " + ", ".join(
                  f"{s['sweep_matches_engine']}/{s['questions']}" for s in sets.values()) + " questions.", "",
              "| setting | " + " | ".join(sets) + " |", "|---|" + "---:|" * len(sets)]
    marks = {f"rrf k={RRF_K} window={window('rrf', 10)}": " (the default)",
             f"weighted alpha=0.5 window={window('weighted', 10)}": " (the weighted default)",
             "rrf k=60 window=50": " (the default before 2026-11-29's change)"}
    for setting in next(iter(sets.values()))["sweep"]:
        lines.append(f"| {setting}{marks.get(setting, '')} | " + " | ".join(
            f"{s['sweep'][setting]['R@10']:.3f} / {s['sweep'][setting]['nDCG@10']:.3f}" for s in sets.values()) + " |")
    lines += ["", "Questions whose answer is in the top 10 of vector or BM25 but not in hybrid rrf's "
              f"(rank by vector, rank by BM25; - past {DEPTH}):", ""]
    for name, s in sets.items():
        pairs = s["lost_by_hybrid_rrf"]
        shown = ", ".join(f"({v or '-'}, {b or '-'})" for v, b in pairs)
        lines.append(f"- {name}: {len(pairs)} of {s['questions']}" + (f": {shown}" if pairs else ""))
    big = results.get("scale")
    if big:
        lines += ["", f"## At {big['docs']:,} documents", "",
                  f"Documents: {big['source']}. Vectors: {DIM}-d signed feature hashing of the words "
                  "(the built-in encoder would take most of an hour for them on this machine). "
                  f"{results['queries']} queries (the FAQ questions), n_results 10, one at a time.", "",
                  "| | vector p50 ms | bm25 p50 ms | hybrid p50 ms | bm25 / vector | hybrid / vector |",
                  "|---|---:|---:|---:|---:|---:|"]
        for where in ("embedded", "remote"):
            p = big[f"{where}_p50_ms"]
            lines.append(f"| {where} | {p['vector']:.2f} | {p['bm25']:.2f} | {p['hybrid']:.2f} | "
                         f"{p['bm25'] / p['vector']:.2f} | {p['hybrid'] / p['vector']:.2f} |")
        enc = big["encoder_query_p50_ms"]
        lines.append(f"\nQueries by text in a collection with the built-in encoder "
                     f"({big['encoder_ingest_with_index']['docs']:,} documents, embedded; the query "
                     f"text's embedding included where used): vector p50 {enc['vector by text']:.2f} ms, "
                     f"bm25 {enc['bm25']:.2f} ms, hybrid {enc['hybrid by text']:.2f} ms.")
        lines.append("\nThe vector query at this size is an HNSW search (ef 100) of the caller's vector; a hybrid "
                     "query runs that search with k = the fusion window (rrf: 20), a BM25 search of the same "
                     "depth, the fusion, and exact distances for results found by BM25 alone. Each is "
                     "timed after an explicit checkpoint of the reopened collection (steady state: a "
                     "background checkpoint holds the GIL in bursts and slows the Python-heavy bm25 and "
                     "hybrid queries far more than hnswlib's search, which releases it).")
        w, wo = big["ingest_with_index"], big["ingest_without_index"]
        lines += ["", "Ingest: the same documents into two collections, a batch to each in turn (so that the "
                  "shared machine's load weighs on both alike); open: the first call after a close "
                  "(the full-text index is rebuilt there).", "",
                  "| ingest (embedded, batches of 1,000, caller's vectors) | docs/s | open after close, s |",
                  "|---|---:|---:|",
                  f"| without full-text index (analyzer none) | {wo['docs_per_s']:,.0f} | {wo['open_s']:.2f} |",
                  f"| with full-text index (standard) | {w['docs_per_s']:,.0f} | {w['open_s']:.2f} |",
                  f"| ratio | {w['docs_per_s'] / wo['docs_per_s']:.2f} | |"]
        ew, ewo = big["encoder_ingest_with_index"], big["encoder_ingest_without_index"]
        lines.append(f"\nThrough the built-in encoder ({ew['docs']:,} documents, batches of 256): "
                     f"{ewo['docs_per_s']:.0f} docs/s without the index, {ew['docs_per_s']:.0f} with it "
                     f"(ratio {ew['docs_per_s'] / ewo['docs_per_s']:.2f}).")
        lines += ["", "Targets:", ""]
        for where in ("embedded", "remote"):
            p = big[f"{where}_p50_ms"]
            for rank in ("bm25", "hybrid"):
                ratio = p[rank] / p["vector"]
                lines.append(f"- {where} {rank} p50 <= 2 x vector p50: {ratio:.2f} x "
                             f"({'PASS' if ratio <= 2 else 'FALLS SHORT'})")
        ratio = w["docs_per_s"] / wo["docs_per_s"]
        lines.append(f"- ingest with the index >= 0.7 x without: {ratio:.2f} x ({'PASS' if ratio >= 0.7 else 'FALLS SHORT'})")
        lines.append(f"- open time (not a target): {w['open_s']:.1f} s with the index, {wo['open_s']:.1f} s "
                     "without: the index is rebuilt from the documents at open (durability by derivation)")
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--encoder-docs", type=int, default=2000)
    parser.add_argument("--distractors", type=int, default=1500)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes (10 questions a set, 1,000 documents), results to a temporary folder")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results)")
    args = parser.parse_args()
    if args.smoke:
        args.docs, args.queries, args.encoder_docs, args.distractors = 1000, 20, 50, 40
    if args.out is None:
        args.out = Path(tempfile.mkdtemp(prefix="vectord-hybrid-out-")) if args.smoke else ROOT / "benchmarks" / "results"
    workdir = Path(tempfile.mkdtemp(prefix="vectord-hybrid-"))
    results: dict = {"date": dt.date.today().isoformat(), "machine": machine(),
                     "load_average_at_start": os.getloadavg(),
                     "command": "python benchmarks/hybrid.py " + " ".join(sys.argv[1:]), "quality": {}}
    try:
        questions = []
        for make in (hybrid_data.perlfaq, hybrid_data.debian_faq, hybrid_data.gitfaq):
            qa = make(args.distractors)
            if args.smoke:  # 10 questions, their answers and the distractors
                answers = {a for _, a in qa.questions}
                qa.questions = qa.questions[:10]
                kept = {a for _, a in qa.questions}
                qa.passages = {pid: text for pid, text in qa.passages.items() if pid in kept or pid not in answers}
            found = quality(qa, workdir)
            results["quality"][qa.name] = {"questions": len(qa.questions), "passages": len(qa.passages), **found}
            print(json.dumps({qa.name: found["scores"]}, indent=1), flush=True)
            questions.extend(q for q, _ in qa.questions)
        questions = questions[:: max(1, len(questions) // args.queries)][: args.queries]
        results["queries"] = len(questions)  # the texts stay out of the results (not ours to commit)
        if not args.skip_scale:
            results["scale"] = scale(args.docs, questions, workdir, args.encoder_docs)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["load_average_at_end"] = os.getloadavg()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"hybrid-{results['date']}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1))
    report(results, stem.with_suffix(".md"))
    print(stem.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
