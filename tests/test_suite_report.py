"""The suite report's recall verdicts follow the spread rule (benchmarks/suite/report.py, issue 13
item 5): a difference of mean recall is called only when it exceeds the spread of the builds."""

from __future__ import annotations

from benchmarks.suite import report


def _results(vectord: float, chroma: float, seeds: dict | None = None, hnswlib=None) -> dict:
    systems = {"vectord remote": {"recall": vectord}, "vectord embedded": {"recall": vectord},
               "Chroma server": {"recall": chroma}, "Chroma embedded": {"recall": chroma}}
    if hnswlib:
        systems["hnswlib (in-process)"] = {"recall": hnswlib[0], "recall_rebuilds": hnswlib[1:]}
    ds = {"name": "glove-100k", "systems": systems, "config": {"filters": []}}
    if seeds is not None:
        ds["recall_seeds"] = seeds
    return {"datasets": [ds]}


def _recall_rows(results: dict) -> list[dict]:
    return [row for row in report.targets(results) if row["target"].startswith("recall@10: ")]


def test_a_difference_inside_the_spread_of_the_builds_gets_no_verdict():
    # the suite's final run: 0.9772 vs 0.9789; the builds spread 0.0039 (vectord), 0.0031 (Chroma)
    rows = _recall_rows(_results(0.9772, 0.9789, {"vectord": [0.9780, 0.9741], "Chroma": [0.9770, 0.9801]}))
    assert len(rows) == 2
    for row in rows:
        assert row["ok"] == report.WITHIN_SPREAD
        assert "within spread (no verdict)" in "\n".join(report.targets_table([row]))
        assert "3 builds" in row["detail"] and "spread 0.0039" in row["detail"]
        assert abs(row["value"] - ((0.9772 + 0.9780 + 0.9741) / 3 - (0.9789 + 0.9770 + 0.9801) / 3)) < 1e-12


def test_a_difference_beyond_the_spread_gets_a_verdict_either_way():
    lower = _recall_rows(_results(0.950, 0.980, {"vectord": [0.951, 0.952], "Chroma": [0.979, 0.981]}))
    assert [row["ok"] for row in lower] == [False, False]
    assert "**FALL SHORT**" in "\n".join(report.targets_table(lower))
    higher = _recall_rows(_results(0.980, 0.950, {"vectord": [0.979, 0.981], "Chroma": [0.951, 0.952]}))
    assert [row["ok"] for row in higher] == [True, True]
    assert "PASS" in "\n".join(report.targets_table(higher))


def test_single_builds_borrow_raw_hnswlibs_rebuild_spread_or_get_no_verdict():
    yard = (0.9766, 0.9720, 0.9780, 0.9750)  # spread 0.006
    assert [r["ok"] for r in _recall_rows(_results(0.9772, 0.9789, hnswlib=yard))] == [report.WITHIN_SPREAD] * 2
    assert [r["ok"] for r in _recall_rows(_results(0.960, 0.9789, hnswlib=yard))] == [False, False]
    # nothing measured the spread: a single build against another says nothing
    assert [r["ok"] for r in _recall_rows(_results(0.960, 0.9789))] == [None, None]


def test_two_standard_errors_also_bound_the_call():
    # beyond both spreads (0.001) but noisy: 2 s.e. of the difference is larger than it
    c = report.recall_comparison([0.950, 0.951, 0.950], [0.9515, 0.9520, 0.9520])
    assert c["spread"] < abs(c["diff"]) and c["ok"] in (report.WITHIN_SPREAD, False)
    assert (c["ok"] == report.WITHIN_SPREAD) == (abs(c["diff"]) <= c["two_se"])
