"""The keyword and hybrid benchmark's smoke mode runs end to end (benchmarks/hybrid.py).

`python benchmarks/hybrid.py --smoke`: 10 questions of each FAQ set with their answers and
40 distractors, 1,000 man page paragraphs, embedded and remote. It reads the installed
documentation (perl-doc, debian-faq, debian-reference-en, git-doc, manpages: .ci/run installs
them) and is skipped where it is missing; the bm25s reference rows appear where bm25s is
installed (the [bench] extra).
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import hybrid_data  # noqa: E402

NEEDED = [hybrid_data.PERL_POD / "perlfaq1.pod", hybrid_data.DEBIAN_FAQ, hybrid_data.DEBIAN_REFERENCE,
          hybrid_data.GIT_DOC / "gitfaq.txt", hybrid_data.MAN]


@pytest.mark.skipif(not all(p.exists() for p in NEEDED),
                    reason="the FAQ data is not installed: apt-get install perl-doc debian-faq "
                           "debian-reference-en git-doc manpages (.ci/run does)")
def test_hybrid_benchmark_smoke_writes_every_figure(tmp_path):
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "benchmarks/hybrid.py", "--smoke", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert elapsed < 90, f"the smoke run took {elapsed:.0f} s"  # about 30 s on 2 idle cores

    [report] = tmp_path.glob("hybrid-*.md")
    text = report.read_text()
    for heading in ("## Ranking quality", "## Fusion settings", "## At 1,000 documents", "Targets:"):
        assert heading in text, heading
    results = json.loads(next(tmp_path.glob("hybrid-*.json")).read_text())
    assert set(results["quality"]) == {"perlfaq", "debian-faq", "gitfaq"}
    for name, found in results["quality"].items():
        assert found["questions"] == 10 and found["passages"] == 50, name
        scores = found["scores"]
        for method in ("vectord bm25", "vectord vector", "vectord hybrid rrf", "vectord hybrid weighted 0.5"):
            assert 0.0 <= scores[method]["nDCG@10"] <= scores[method]["R@10"] <= 1.0, (name, method)
        # the sweep fuses with the engine's own functions: its default is the engine's ranking
        assert found["sweep_matches_engine"] == 10, name
        assert len(found["sweep"]) == 28
        if importlib.util.find_spec("bm25s") is not None:
            # like for like (vectord's terms): the same BM25, so the same figures
            same = scores["bm25s (vectord's terms)"]
            assert math.isclose(same["R@10"], scores["vectord bm25"]["R@10"]), name
            assert math.isclose(same["nDCG@10"], scores["vectord bm25"]["nDCG@10"]), name
            assert found["same_top10_as_bm25s"]["set"] == 10, name
    scale = results["scale"]
    for where in ("embedded", "remote"):
        assert all(scale[f"{where}_p50_ms"][rank] > 0 for rank in ("vector", "bm25", "hybrid"))
    assert scale["ingest_with_index"]["docs"] == scale["ingest_without_index"]["docs"] == 1000
